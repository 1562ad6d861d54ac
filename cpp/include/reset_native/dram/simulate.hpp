// Whole-system driver: decode addresses, split requests by channel, run one controller per channel
// (channels share nothing), gather statistics. Also the trace-file frontend.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "reset_native/dram/controller.hpp"

namespace reset_native::dram {

struct SystemConfig {
  Spec spec;
  int channels = 1;
  int ranks = 1;
  std::string mapping = kDefaultMapping;
  ControllerConfig controller;
  void validate() const;
};

struct SimResult {
  int64_t cycles = 0;                 // until the last read data / write burst finished
  std::vector<ChannelStats> channels;
  std::vector<int64_t> read_latency;  // per request position, -1 for writes
  std::vector<LogEntry> log;          // sorted by (cycle, channel) when requested
};

// What a PIM (or other) model adds to a run without forking the driver: command slots it defined,
// timing rules appended to the DDR4 table, and a command injector per channel (may return null;
// the caller owns it and keeps it alive for the run).
struct Extensions {
  CommandSet commands;
  std::vector<TimingRule> extra_rules;
  std::function<CommandInjector*(int channel)> injector;
};

// Arrivals must be non-decreasing and addresses below capacity (InvalidArgument names the index).
SimResult simulate(const SystemConfig& config, const int64_t* arrival, const uint8_t* is_write,
                   const uint64_t* address, size_t count, bool command_log,
                   const Extensions& extensions = Extensions());

struct Trace {
  std::vector<int64_t> arrival;
  std::vector<uint8_t> is_write;
  std::vector<uint64_t> address;
};
// Lines "<arrival_cycle> <R|W> <hex address>"; blank lines and '#' comments skipped. Errors name
// the file and line number.
Trace read_trace(const std::string& path);

}  // namespace reset_native::dram
