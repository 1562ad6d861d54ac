// Every DDR4 timing constraint as one row of a table: after `prev` issues at cycle t, `next` may not
// issue before t + latency at the nodes `scope` names (relative to prev's address). A rule with
// window = N > 1 says: `next` may not issue before the N-th most recent `prev` + latency (tFAW).
// The device applies whatever table it is given: PIM models append rows, they do not edit the device.
#pragma once
#include <string>
#include <vector>

#include "reset_native/dram/command.hpp"
#include "reset_native/dram/spec.hpp"

namespace reset_native::dram {

enum class Scope : uint8_t {
  Bank,        // the same bank
  BankGroup,   // every bank of the same bank group (same bank included)
  Rank,        // every bank of the same rank
  OtherRanks,  // every bank of every other rank on the channel (rank-to-rank turnaround)
};
const char* scope_name(Scope s);

struct TimingRule {
  Command prev;
  Command next;
  Scope scope;
  int latency;
  int window = 1;
  std::string name;  // e.g. "tRCD", reported by statistics/docs
};

// The full DDR4 table of SPEC-gradpim section 2 for this spec.
std::vector<TimingRule> ddr4_timing_rules(const Spec& spec);

}  // namespace reset_native::dram
