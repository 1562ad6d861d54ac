#include "reset_native/dram/timing_rules.hpp"

#include <initializer_list>

namespace reset_native::dram {

const char* scope_name(Scope s) {
  switch (s) {
    case Scope::Bank: return "bank";
    case Scope::BankGroup: return "bankgroup";
    case Scope::Rank: return "rank";
    case Scope::OtherRanks: return "other_ranks";
  }
  return "?";
}

std::vector<TimingRule> ddr4_timing_rules(const Spec& spec) {
  const Timing& t = spec.timing;
  const int burst = t.BL / 2;
  const int write_end = t.CWL + burst;  // WR issue to the end of its data
  std::vector<TimingRule> rules;
  auto add = [&](std::initializer_list<Command> prev, std::initializer_list<Command> next, Scope scope,
                 int latency, const char* name, int window = 1) {
    for (Command p : prev)
      for (Command n : next) rules.push_back({p, n, scope, latency, window, name});
  };
  using C = Command;
  const auto reads = {C::RD, C::RDA};
  const auto writes = {C::WR, C::WRA};
  const auto columns = {C::RD, C::RDA, C::WR, C::WRA};

  // Same bank.
  add({C::ACT}, columns, Scope::Bank, t.tRCD, "tRCD");
  add({C::ACT}, {C::PRE}, Scope::Bank, t.tRAS, "tRAS");
  add({C::ACT}, {C::ACT}, Scope::Bank, t.tRC, "tRC");
  add({C::PRE}, {C::ACT}, Scope::Bank, t.tRP, "tRP");
  add({C::RD}, {C::PRE}, Scope::Bank, t.tRTP, "tRTP");
  add({C::WR}, {C::PRE}, Scope::Bank, write_end + t.tWR, "tWR");
  add({C::RDA}, {C::ACT}, Scope::Bank, t.tRTP + t.tRP, "tRTP+tRP");  // auto-precharge, then tRP
  add({C::WRA}, {C::ACT}, Scope::Bank, write_end + t.tWR + t.tRP, "tWR+tRP");

  // Same bank group (the _L variants).
  add(reads, reads, Scope::BankGroup, t.tCCD_L, "tCCD_L");
  add(writes, writes, Scope::BankGroup, t.tCCD_L, "tCCD_L");
  add(writes, reads, Scope::BankGroup, write_end + t.tWTR_L, "tWTR_L");
  add({C::ACT}, {C::ACT}, Scope::BankGroup, t.tRRD_L, "tRRD_L");

  // Same rank (the _S variants bound every bank group; the _L rows above are the larger ones).
  add(reads, reads, Scope::Rank, t.tCCD_S, "tCCD_S");
  add(writes, writes, Scope::Rank, t.tCCD_S, "tCCD_S");
  add(writes, reads, Scope::Rank, write_end + t.tWTR_S, "tWTR_S");
  add(reads, writes, Scope::Rank, t.CL + burst + 2 - t.CWL, "RD_to_WR");
  add({C::ACT}, {C::ACT}, Scope::Rank, t.tRRD_S, "tRRD_S");
  add({C::ACT}, {C::ACT}, Scope::Rank, t.tFAW, "tFAW", 4);
  add({C::ACT}, {C::PREA}, Scope::Rank, t.tRAS, "tRAS");
  add({C::RD}, {C::PREA}, Scope::Rank, t.tRTP, "tRTP");
  add({C::WR}, {C::PREA}, Scope::Rank, write_end + t.tWR, "tWR");
  add({C::PREA}, {C::ACT}, Scope::Rank, t.tRP, "tRP");
  add({C::PRE, C::PREA}, {C::REF}, Scope::Rank, t.tRP, "tRP");
  add({C::RDA}, {C::REF}, Scope::Rank, t.tRTP + t.tRP, "tRTP+tRP");
  add({C::WRA}, {C::REF}, Scope::Rank, write_end + t.tWR + t.tRP, "tWR+tRP");
  add({C::ACT}, {C::REF}, Scope::Rank, t.tRAS + t.tRP, "tRAS+tRP");
  add({C::REF}, {C::ACT, C::REF}, Scope::Rank, t.tRFC, "tRFC");

  // Rank to rank: data-bus handover plus tRTRS.
  add(reads, reads, Scope::OtherRanks, burst + t.tRTRS, "tRTRS");
  add(writes, writes, Scope::OtherRanks, burst + t.tRTRS, "tRTRS");
  add(reads, writes, Scope::OtherRanks, t.CL + burst + t.tRTRS - t.CWL, "tRTRS");
  add(writes, reads, Scope::OtherRanks, t.CWL + burst + t.tRTRS - t.CL, "tRTRS");
  return rules;
}

}  // namespace reset_native::dram
