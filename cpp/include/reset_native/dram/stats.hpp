// What a run counts, per channel, and the command log entry.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "reset_native/dram/command.hpp"

namespace reset_native::dram {

struct LogEntry {
  int64_t cycle;
  uint8_t command, channel, rank, bankgroup, bank;
  int32_t row, column;  // -1 where the command has none (PREA, REF; row for column cmds is the open row)
};

struct ChannelStats {
  std::array<uint64_t, kNumCommands> commands{};
  uint64_t reads = 0, writes = 0;
  uint64_t row_hits = 0, row_misses = 0, row_conflicts = 0;
  std::vector<uint64_t> column_per_bankgroup;  // [rank * bankgroups + bg]
  uint64_t data_bus_cycles = 0;                // BL/2 per burst on DQ
  int64_t last_cycle = 0;                      // last data beat / command of this channel
  uint64_t scheduler_passes = 0;               // cycles the controller looked at (the rest were skipped)
};

}  // namespace reset_native::dram
