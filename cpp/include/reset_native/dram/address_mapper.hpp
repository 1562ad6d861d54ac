// Physical byte address <-> (channel, rank, bank group, bank, row, column). The mapping is a string of
// fields from the most to the least significant bits, e.g. "ro:ra:bg:ba:co:ch"; the lowest
// log2(burst bytes) bits are the offset inside one 64-byte burst and are ignored.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "reset_native/dram/device.hpp"
#include "reset_native/dram/spec.hpp"

namespace reset_native::dram {

// Bank-group interleaved: consecutive bursts rotate over channels, then bank groups, so a sequential
// stream paces at tCCD_S; a row's columns follow, so the stream stays in open rows.
constexpr const char* kDefaultMapping = "ro:ra:ba:co:bg:ch";

class AddressMapper {
 public:
  AddressMapper(const Organisation& org, int BL, int channels, int ranks, const std::string& mapping);
  struct Decoded { int channel; Address addr; };
  Decoded decode(uint64_t address) const {  // caller checks address < capacity()
    auto field = [&](int f) { return static_cast<int>((address >> shift_[f]) & ((uint64_t{1} << bits_[f]) - 1)); };
    Decoded d;
    d.channel = field(kCh);
    d.addr.rank = field(kRa);
    d.addr.bankgroup = field(kBg);
    d.addr.bank = field(kBa);
    d.addr.row = field(kRo);
    d.addr.column = field(kCo);
    return d;
  }
  uint64_t encode(int channel, const Address& a) const;  // inverse of decode (offset bits 0)
  uint64_t capacity() const { return capacity_; }       // bytes
  const std::string& mapping() const { return mapping_; }

 private:
  enum Field { kCh, kRa, kBg, kBa, kRo, kCo, kNumFields };
  int shift_[kNumFields] = {}, bits_[kNumFields] = {};
  uint64_t capacity_ = 0;
  std::string mapping_;
};

}  // namespace reset_native::dram
