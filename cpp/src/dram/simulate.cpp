#include "reset_native/dram/simulate.hpp"

#include <algorithm>
#include <sstream>

#include "reset_native/error.hpp"

namespace reset_native::dram {

namespace {
std::string hex(uint64_t v) {
  std::ostringstream s;
  s << "0x" << std::hex << v;
  return s.str();
}
}  // namespace

void SystemConfig::validate() const {
  spec.validate();
  controller.validate();
  require(channels >= 1 && channels <= 64, "channels must be in [1, 64], got " + std::to_string(channels));
  require(ranks >= 1 && ranks <= 16, "ranks must be in [1, 16], got " + std::to_string(ranks));
}

SimResult simulate(const SystemConfig& config, const int64_t* arrival, const uint8_t* is_write,
                   const uint64_t* address, size_t count, bool command_log, const Extensions& extensions) {
  config.validate();
  const Spec& spec = config.spec;
  const AddressMapper mapper(spec.org, spec.timing.BL, config.channels, config.ranks, config.mapping);
  require(config.channels == 1 || count < (size_t{1} << 32), "at most 2^32 requests with several channels");
  std::vector<std::vector<uint32_t>> per_channel(config.channels > 1 ? config.channels : 0);
  for (size_t i = 0; i < count; ++i) {
    if (address[i] >= mapper.capacity())
      throw InvalidArgument("address " + hex(address[i]) + " of request " + std::to_string(i) +
                            " is beyond the capacity of " + hex(mapper.capacity()) + " bytes");
    if (arrival[i] < 0) throw InvalidArgument("arrival cycle of request " + std::to_string(i) + " is negative");
    if (i > 0 && arrival[i] < arrival[i - 1])
      throw InvalidArgument("arrival cycles must be non-decreasing: request " + std::to_string(i) + " arrives at " +
                            std::to_string(arrival[i]) + " after request " + std::to_string(i - 1) + " at " +
                            std::to_string(arrival[i - 1]));
    if (config.channels > 1) per_channel[mapper.decode(address[i]).channel].push_back(static_cast<uint32_t>(i));
  }
  std::vector<TimingRule> rules = ddr4_timing_rules(spec);
  rules.insert(rules.end(), extensions.extra_rules.begin(), extensions.extra_rules.end());
  SimResult result;
  result.read_latency.assign(count, -1);
  std::vector<LogEntry> channel_log;
  for (int ch = 0; ch < config.channels; ++ch) {
    RequestStream stream{arrival, is_write, address, nullptr, count};
    if (config.channels > 1) {
      stream.index = per_channel[ch].data();
      stream.count = per_channel[ch].size();
    }
    Controller controller(spec, ch, config.ranks, config.controller, rules, extensions.commands);
    if (extensions.injector) controller.set_injector(extensions.injector(ch));
    channel_log.clear();
    controller.run(stream, mapper, result.read_latency.data(), command_log ? &channel_log : nullptr);
    result.channels.push_back(controller.stats());
    result.cycles = std::max(result.cycles, controller.stats().last_cycle);
    result.log.insert(result.log.end(), channel_log.begin(), channel_log.end());
  }
  if (command_log && config.channels > 1)
    std::stable_sort(result.log.begin(), result.log.end(),
                     [](const LogEntry& a, const LogEntry& b) { return a.cycle < b.cycle; });
  return result;
}

}  // namespace reset_native::dram
