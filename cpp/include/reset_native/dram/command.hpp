// DRAM commands and their traits. DDR4 uses the first slots; the Pim0..Pim7 slots are reserved for
// processing-in-memory column commands, whose traits the PIM model defines with CommandSet::define.
#pragma once
#include <array>
#include <cstdint>
#include <string>

namespace reset_native::dram {

enum class Command : uint8_t {
  ACT = 0, PRE, PREA, RD, RDA, WR, WRA, REF,
  Pim0, Pim1, Pim2, Pim3, Pim4, Pim5, Pim6, Pim7,
};
constexpr int kNumCommands = 16;
constexpr int kNumDdr4Commands = 8;
constexpr int index(Command c) { return static_cast<int>(c); }

// Which node a command addresses: one bank, or the whole rank (PREA, REF).
enum class Target : uint8_t { Bank, Rank };

struct CommandTraits {
  std::string name;
  bool defined = false;
  Target target = Target::Bank;
  bool needs_open_row = false;   // column command: the addressed row must be open
  bool needs_closed_bank = false;// ACT: the bank must be precharged
  bool needs_all_closed = false; // REF: every bank of the rank precharged
  bool opens_row = false;        // ACT
  bool closes_bank = false;      // PRE, RDA, WRA (auto-precharge)
  bool closes_rank = false;      // PREA
  bool uses_data_bus = false;    // RD/WR move a burst on DQ; PIM commands do not
  bool is_read = false;          // for statistics
  bool is_write = false;
};

// The command vocabulary of one device. DDR4 traits by default; PIM slots undefined until define().
class CommandSet {
 public:
  CommandSet();
  const CommandTraits& operator[](Command c) const { return traits_[index(c)]; }
  // Give an undefined slot (Pim0..Pim7) its traits. Throws InvalidArgument for DDR4 slots.
  void define(Command c, const CommandTraits& traits);
 private:
  std::array<CommandTraits, kNumCommands> traits_;
};

const char* ddr4_command_name(Command c);  // "ACT", ..., "PIM0".. for reserved slots

}  // namespace reset_native::dram
