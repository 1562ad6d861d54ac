#include "reset_native/dram/command.hpp"

#include "reset_native/error.hpp"

namespace reset_native::dram {

const char* ddr4_command_name(Command c) {
  static const char* names[kNumCommands] = {"ACT",  "PRE",  "PREA", "RD",   "RDA",  "WR",   "WRA",  "REF",
                                            "PIM0", "PIM1", "PIM2", "PIM3", "PIM4", "PIM5", "PIM6", "PIM7"};
  return names[index(c)];
}

CommandSet::CommandSet() {
  for (int i = 0; i < kNumCommands; ++i) traits_[i].name = ddr4_command_name(static_cast<Command>(i));
  auto& act = traits_[index(Command::ACT)];
  act.defined = act.needs_closed_bank = act.opens_row = true;
  auto& pre = traits_[index(Command::PRE)];
  pre.defined = pre.closes_bank = true;
  auto& prea = traits_[index(Command::PREA)];
  prea.defined = prea.closes_rank = true;
  prea.target = Target::Rank;
  auto& ref = traits_[index(Command::REF)];
  ref.defined = ref.needs_all_closed = true;
  ref.target = Target::Rank;
  for (Command c : {Command::RD, Command::RDA, Command::WR, Command::WRA}) {
    auto& t = traits_[index(c)];
    t.defined = t.needs_open_row = t.uses_data_bus = true;
    t.is_read = (c == Command::RD || c == Command::RDA);
    t.is_write = !t.is_read;
    t.closes_bank = (c == Command::RDA || c == Command::WRA);
  }
}

void CommandSet::define(Command c, const CommandTraits& traits) {
  require(index(c) >= kNumDdr4Commands, std::string("cannot redefine DDR4 command ") + ddr4_command_name(c));
  traits_[index(c)] = traits;
  traits_[index(c)].defined = true;
  if (traits_[index(c)].name.empty()) traits_[index(c)].name = ddr4_command_name(c);
}

}  // namespace reset_native::dram
