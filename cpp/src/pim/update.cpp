#include "reset_native/pim/update.hpp"

#include <algorithm>

#include "injector.hpp"
#include "reset_native/dram/simulate.hpp"
#include "reset_native/error.hpp"
#include "reset_native/pim/commands.hpp"

namespace reset_native::pim {

namespace {
void accumulate(UpdateStats& out, const dram::ChannelStats& s) {
  for (int i = 0; i < dram::kNumCommands; ++i) out.commands[i] += s.commands[i];
  out.data_bus_cycles += s.data_bus_cycles;
  out.external_bytes += (s.reads + s.writes) * 64;
}
}  // namespace

UpdateStats simulate_pim_update(const UpdateConfig& config, int64_t n_params, bool command_log) {
  config.validate();
  const Program program = build_program(config);
  const DataLayout layout(config, program);
  layout.check_fits(n_params);
  std::vector<dram::TimingRule> rules = dram::ddr4_timing_rules(config.spec);
  const auto extra = pim_timing_rules(config.spec, config.resolved_timing());
  rules.insert(rules.end(), extra.begin(), extra.end());
  const dram::AddressMapper mapper(config.spec.org, config.spec.timing.BL, config.channels, config.ranks,
                                   dram::kDefaultMapping);
  dram::ControllerConfig cc;  // refresh on, as for the host
  UpdateStats out;
  out.n_params = n_params;
  std::vector<dram::LogEntry> log;
  const int burst = config.spec.timing.BL / 2;
  for (int ch = 0; ch < config.channels; ++ch) {
    dram::Controller controller(config.spec, ch, config.ranks, cc, rules, pim_commands());
    UpdateInjector injector(config, program, layout, ch, n_params);
    injector.attach(&controller);
    controller.set_injector(&injector);
    log.clear();
    controller.run(dram::RequestStream{}, mapper, nullptr, command_log ? &log : nullptr);
    accumulate(out, controller.stats());
    int64_t end = controller.stats().last_cycle;
    if (injector.last_store() >= 0) end = std::max(end, injector.last_store() + burst);  // data in the array
    out.cycles = std::max(out.cycles, end);
    if (command_log) out.log.insert(out.log.end(), log.begin(), log.end());
  }
  out.internal_column_ops = out.commands[dram::index(kLoad)] + out.commands[dram::index(kMac)] +
                            out.commands[dram::index(kStore)];
  if (command_log)
    std::stable_sort(out.log.begin(), out.log.end(), [](const dram::LogEntry& a, const dram::LogEntry& b) {
      return a.cycle != b.cycle ? a.cycle < b.cycle : a.channel < b.channel;
    });
  return out;
}

UpdateStats simulate_host_update(const UpdateConfig& config, int64_t n_params, bool command_log) {
  config.validate();
  const Program program = build_program(config);
  UpdateConfig host_cfg = config;
  host_cfg.layout = Layout::Banks;  // the host keeps every stream's rows open in its own bank
  const DataLayout layout(host_cfg, program);
  layout.check_fits(n_params);
  const dram::Spec& spec = config.spec;
  const int bgs = spec.org.bankgroups, ch = config.channels;
  // A stripe: the elements of one row of every bank group of every channel (one rank), laid out so
  // that consecutive bursts of a stream rotate over channels, then bank groups (bank-group interleaving).
  const int64_t stripe = layout.chunk_elements() * bgs * ch;
  const dram::AddressMapper mapper(spec.org, spec.timing.BL, ch, config.ranks, dram::kDefaultMapping);
  std::vector<uint64_t> address;
  std::vector<uint8_t> is_write;
  // The PIM layout instead (host_interleaved = false): burst k of a stream is part k % cols of step
  // k / cols, where the PIM unit would find it: a whole chunk in one bank group.
  const DataLayout pim_layout(config, program);
  auto emit_pim_layout = [&](int s, int64_t burst, bool write) {
    const int cols = pim_layout.stream(s).cols_per_step;
    const int64_t step = burst / cols;
    const ChunkPlace p = pim_layout.chunk(step / pim_layout.steps_per_chunk());
    const dram::Address a = pim_layout.address(p.rank, p.bankgroup, p.unit_chunk, s,
                                               static_cast<int>(step % pim_layout.steps_per_chunk()),
                                               static_cast<int>(burst % cols));
    address.push_back(mapper.encode(p.channel, a));
    is_write.push_back(write ? 1 : 0);
  };
  auto emit = [&](int s, int64_t burst, bool write) {
    if (!config.host_interleaved) return emit_pim_layout(s, burst, write);
    const int64_t per_stripe = stripe * dtype_bytes(stream_dtype(config, s)) / 64;
    const int64_t j = burst / per_stripe, q = burst % per_stripe;
    dram::Address a;
    a.rank = static_cast<int>(j % config.ranks);
    a.row = static_cast<int>(j / config.ranks);
    a.bank = layout.stream(s).bank;
    a.bankgroup = static_cast<int>((q / ch) % bgs);
    a.column = layout.stream(s).column + static_cast<int>(q / (int64_t{ch} * bgs));
    address.push_back(mapper.encode(static_cast<int>(q % ch), a));
    is_write.push_back(write ? 1 : 0);
  };
  std::vector<int64_t> next_burst(kNumStreams, 0);  // per stream, first burst not yet requested (reads)
  std::vector<int64_t> next_write(kNumStreams, 0);
  for (int64_t start = 0; start < n_params; start += config.host_tile) {
    const int64_t end = std::min<int64_t>(n_params, start + config.host_tile);
    for (int pass = 0; pass < 2; ++pass) {
      const auto& streams = pass == 0 ? program.read_streams : program.write_streams;
      auto& next = pass == 0 ? next_burst : next_write;
      for (int s : streams) {
        const int b = dtype_bytes(stream_dtype(config, s));
        const int64_t last = (end * b + 63) / 64;
        for (int64_t q = std::max(next[s], start * b / 64); q < last; ++q) emit(s, q, pass == 1);
        next[s] = std::max(next[s], last);
      }
    }
  }
  dram::SystemConfig sc;
  sc.spec = spec;
  sc.channels = ch;
  sc.ranks = config.ranks;
  sc.mapping = dram::kDefaultMapping;
  const std::vector<int64_t> arrival(address.size(), 0);  // a saturating stream: the queues pace it
  const dram::SimResult r = dram::simulate(sc, arrival.data(), is_write.data(), address.data(), address.size(),
                                           command_log);
  UpdateStats out;
  out.n_params = n_params;
  out.cycles = r.cycles;
  for (const auto& s : r.channels) accumulate(out, s);
  if (command_log) out.log = r.log;
  return out;
}

}  // namespace reset_native::pim
