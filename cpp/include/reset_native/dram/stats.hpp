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

// Summary of per-request read latencies (entries < 0, the writes, are skipped) in one pass plus
// selection: count, exact sum (sum_exact false if it overflowed 63 bits), maximum, and the values at
// the given ranks of the sorted latencies (0 = smallest; each rank < count). Lets a caller compute
// percentiles without sorting or copying in Python. Throws InvalidArgument for a rank >= count.
struct LatencySummary {
  uint64_t count = 0;
  int64_t sum = 0;
  bool sum_exact = true;
  int64_t max = 0;
  std::vector<int64_t> at_rank;
};
LatencySummary summarize_latencies(const int64_t* latency, size_t n, const std::vector<uint64_t>& ranks);

}  // namespace reset_native::dram
