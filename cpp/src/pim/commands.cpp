#include "reset_native/pim/commands.hpp"

#include <initializer_list>

namespace reset_native::pim {

using dram::Command;
using dram::Scope;

dram::CommandSet pim_commands() {
  dram::CommandSet set;
  auto column = [](const char* name) {
    dram::CommandTraits t;
    t.name = name;
    t.needs_open_row = true;    // a unit column access reaches the open row through the sense amplifiers
    t.uses_data_bus = false;    // ... and stays inside the bank group
    t.is_read = false;          // not host traffic: counted per command slot instead
    t.is_write = false;
    return t;
  };
  set.define(kLoad, column("PIM_LD"));
  set.define(kMac, column("PIM_MAC"));
  set.define(kStore, column("PIM_ST"));
  dram::CommandTraits alu;
  alu.name = "PIM_ALU";  // register-only: no bank state needed
  set.define(kAlu, alu);
  return set;
}

std::vector<dram::TimingRule> pim_timing_rules(const dram::Spec& spec, const PimTiming& pt) {
  const dram::Timing& t = spec.timing;
  std::vector<dram::TimingRule> r;
  auto add = [&](std::initializer_list<Command> prev, std::initializer_list<Command> next, Scope scope, int lat,
                 const char* name) {
    for (Command p : prev)
      for (Command n : next) r.push_back({p, n, scope, lat, 1, name});
  };
  const auto reads = {kLoad, kMac};
  const auto columns = {kLoad, kMac, kStore};
  const auto unit = {kLoad, kMac, kStore, kAlu};
  const auto host = {Command::RD, Command::RDA, Command::WR, Command::WRA};
  const auto host_writes = {Command::WR, Command::WRA};
  const auto host_reads = {Command::RD, Command::RDA};
  const int burst = t.BL / 2;
  // The row must be open for tRCD; the unit datapath takes one column access per tCCD_L.
  add({Command::ACT}, columns, Scope::Bank, t.tRCD, "pim_tRCD");
  add(unit, unit, Scope::BankGroup, t.tCCD_L, "pim_tCCD_L");
  add({kStore}, reads, Scope::BankGroup, pt.write_to_read, "pim_tWTR_L");
  if (pt.cross_group > 1) add(unit, unit, Scope::Rank, pt.cross_group, "pim_cross_group");
  // Closing a bank after a unit access: read-to-precharge, internal write recovery.
  add(reads, {Command::PRE}, Scope::Bank, t.tRTP, "pim_tRTP");
  add({kStore}, {Command::PRE}, Scope::Bank, pt.write_recovery, "pim_tWR");
  add(reads, {Command::PREA}, Scope::Rank, t.tRTP, "pim_tRTP");
  add({kStore}, {Command::PREA}, Scope::Rank, pt.write_recovery, "pim_tWR");
  // Mixed with host traffic: the bank group's I/O gating is shared (tCCD_L within the group), host
  // bursts pace against unit accesses like tCCD_S across groups, and write data must land first.
  add(columns, host, Scope::BankGroup, t.tCCD_L, "pim_host_tCCD_L");
  add(host, columns, Scope::BankGroup, t.tCCD_L, "pim_host_tCCD_L");
  add(columns, host, Scope::Rank, pt.host_cross_group, "pim_host_tCCD_S");
  add(host, columns, Scope::Rank, pt.host_cross_group, "pim_host_tCCD_S");
  add(host_writes, reads, Scope::BankGroup, t.CWL + burst + t.tWTR_L, "pim_host_tWTR_L");
  add({kStore}, host_reads, Scope::BankGroup, pt.write_to_read, "pim_tWTR_L");
  return r;
}

}  // namespace reset_native::pim
