// Timing simulation of one optimizer update phase: on the GradPIM units (commands injected into the
// DDR4 controllers) or on the host (read/write requests over the bank-group-interleaved bus).
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "reset_native/dram/stats.hpp"
#include "reset_native/pim/config.hpp"

namespace reset_native::pim {

struct UpdateStats {
  int64_t n_params = 0;
  int64_t cycles = 0;
  uint64_t external_bytes = 0;          // over the DQ bus
  uint64_t internal_column_ops = 0;     // unit column accesses (PIM_LD/MAC/ST)
  std::array<uint64_t, dram::kNumCommands> commands{};
  uint64_t data_bus_cycles = 0;
  std::vector<dram::LogEntry> log;
};

UpdateStats simulate_pim_update(const UpdateConfig& config, int64_t n_params, bool command_log);
UpdateStats simulate_host_update(const UpdateConfig& config, int64_t n_params, bool command_log);

}  // namespace reset_native::pim
