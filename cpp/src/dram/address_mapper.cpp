#include "reset_native/dram/address_mapper.hpp"

#include <sstream>

#include "reset_native/error.hpp"

namespace reset_native::dram {

namespace {
int log2_exact(int v) {
  int b = 0;
  while ((1 << b) < v) ++b;
  return b;
}
}  // namespace

AddressMapper::AddressMapper(const Organisation& org, int BL, int channels, int ranks, const std::string& mapping)
    : mapping_(mapping) {
  require(channels >= 1 && (channels & (channels - 1)) == 0,
          "channels must be a power of two >= 1, got " + std::to_string(channels));
  require(ranks >= 1 && (ranks & (ranks - 1)) == 0, "ranks must be a power of two >= 1, got " + std::to_string(ranks));
  const int width[kNumFields] = {log2_exact(channels), log2_exact(ranks), log2_exact(org.bankgroups),
                                 log2_exact(org.banks_per_group), log2_exact(org.rows),
                                 log2_exact(org.columns / BL)};
  static const char* names[kNumFields] = {"ch", "ra", "bg", "ba", "ro", "co"};
  std::vector<int> order;  // most significant first
  std::stringstream ss(mapping);
  std::string tok;
  bool seen[kNumFields] = {};
  while (std::getline(ss, tok, ':')) {
    int f = -1;
    for (int k = 0; k < kNumFields; ++k)
      if (tok == names[k]) f = k;
    require(f >= 0, "mapping '" + mapping + "': unknown field '" + tok +
                        "' (expected ':'-separated fields from ch, ra, bg, ba, ro, co, most significant first)");
    require(!seen[f], "mapping '" + mapping + "': field '" + tok + "' appears twice");
    seen[f] = true;
    order.push_back(f);
  }
  for (int k = 0; k < kNumFields; ++k)
    require(seen[k] || width[k] == 0,
            "mapping '" + mapping + "' lacks field '" + names[k] + "' (needed: it has " + std::to_string(width[k]) +
                " bits)");
  int shift = log2_exact(org.burst_bytes(BL));  // byte offset inside a burst
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    shift_[*it] = shift;
    bits_[*it] = width[*it];
    shift += width[*it];
  }
  require(shift < 63, "address space too large");
  capacity_ = uint64_t{1} << shift;
}

uint64_t AddressMapper::encode(int channel, const Address& a) const {
  auto put = [&](int f, int v) { return (static_cast<uint64_t>(v) & ((uint64_t{1} << bits_[f]) - 1)) << shift_[f]; };
  return put(kCh, channel) | put(kRa, a.rank) | put(kBg, a.bankgroup) | put(kBa, a.bank) | put(kRo, a.row) |
         put(kCo, a.column);
}

}  // namespace reset_native::dram
