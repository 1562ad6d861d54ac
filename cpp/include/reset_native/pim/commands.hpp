// The unit's DRAM commands (in the DDR4 engine's reserved slots) and the timing rules appended to
// the DDR4 table for them. Column commands need the addressed row open and move nothing on DQ.
#pragma once
#include <vector>

#include "reset_native/dram/command.hpp"
#include "reset_native/dram/timing_rules.hpp"
#include "reset_native/pim/config.hpp"

namespace reset_native::pim {

constexpr dram::Command kLoad = dram::Command::Pim0;   // PIM_LD:  column -> register
constexpr dram::Command kMac = dram::Command::Pim1;    // PIM_MAC: a * column + b * register -> register
constexpr dram::Command kStore = dram::Command::Pim2;  // PIM_ST:  register -> column
constexpr dram::Command kAlu = dram::Command::Pim3;    // PIM_ALU: register-only datapath pass

dram::CommandSet pim_commands();
std::vector<dram::TimingRule> pim_timing_rules(const dram::Spec& spec, const PimTiming& timing);

}  // namespace reset_native::pim
