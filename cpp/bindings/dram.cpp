// reset_native._core.dram: converts dicts/numpy arrays to the C++ DRAM model and back. Thin.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include "bindings.hpp"
#include "dram_convert.hpp"
#include "reset_native/dram/simulate.hpp"
#include "reset_native/error.hpp"

namespace py = pybind11;

namespace reset_native::bindings {

namespace {
using namespace reset_native::dram;

// Hands the vector's buffer to numpy without a copy (large: one entry per request).
template <typename T>
py::array_t<T> move_to_numpy(std::vector<T>&& v) {
  auto* owner = new std::vector<T>(std::move(v));
  py::capsule free_when_done(owner, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>(static_cast<py::ssize_t>(owner->size()), owner->data(), free_when_done);
}

template <typename T>
py::array_t<T> to_numpy(const std::vector<T>& v) {
  py::array_t<T> out(static_cast<py::ssize_t>(v.size()));
  if (!v.empty()) std::copy(v.begin(), v.end(), out.mutable_data());
  return out;
}

py::dict run_simulation(const py::dict& spec, int channels, int ranks, const std::string& mapping,
                        const std::string& scheduler, const std::string& page, int read_queue, int write_queue,
                        int write_high, int write_low, bool refresh,
                        py::array_t<int64_t, py::array::c_style | py::array::forcecast> arrival,
                        py::array_t<uint8_t, py::array::c_style | py::array::forcecast> is_write,
                        py::array_t<uint64_t, py::array::c_style | py::array::forcecast> address, bool command_log) {
  SystemConfig cfg;
  cfg.spec = spec_from_dict(spec);
  cfg.channels = channels;
  cfg.ranks = ranks;
  cfg.mapping = mapping;
  if (scheduler == "frfcfs") cfg.controller.scheduler = SchedulerKind::FRFCFS;
  else if (scheduler == "fcfs") cfg.controller.scheduler = SchedulerKind::FCFS;
  else throw InvalidArgument("scheduler must be 'frfcfs' or 'fcfs', got '" + scheduler + "'");
  if (page == "open") cfg.controller.page = PagePolicy::Open;
  else if (page == "closed") cfg.controller.page = PagePolicy::Closed;
  else throw InvalidArgument("page_policy must be 'open' or 'closed', got '" + page + "'");
  cfg.controller.read_queue = read_queue;
  cfg.controller.write_queue = write_queue;
  cfg.controller.write_high = write_high;
  cfg.controller.write_low = write_low;
  cfg.controller.refresh = refresh;
  const size_t n = static_cast<size_t>(arrival.size());
  require(static_cast<size_t>(is_write.size()) == n && static_cast<size_t>(address.size()) == n,
          "arrival, is_write and address must have the same length");
  SimResult r;
  {
    py::gil_scoped_release release;
    r = simulate(cfg, arrival.data(), is_write.data(), address.data(), n, command_log);
  }
  py::dict out;
  out["cycles"] = r.cycles;
  py::list chans;
  for (const ChannelStats& s : r.channels) {
    py::dict c;
    std::vector<uint64_t> cmds(s.commands.begin(), s.commands.end());
    c["commands"] = cmds;
    c["reads"] = s.reads;
    c["writes"] = s.writes;
    c["row_hits"] = s.row_hits;
    c["row_misses"] = s.row_misses;
    c["row_conflicts"] = s.row_conflicts;
    c["column_per_bankgroup"] = s.column_per_bankgroup;
    c["data_bus_cycles"] = s.data_bus_cycles;
    c["last_cycle"] = s.last_cycle;
    c["scheduler_passes"] = s.scheduler_passes;
    chans.append(c);
  }
  out["channels"] = chans;
  out["read_latency"] = move_to_numpy(std::move(r.read_latency));
  if (command_log) out["log"] = command_log_to_dict(r.log);
  return out;
}

}  // namespace

void bind_dram(py::module_& m) {
  m.def("preset_names", &Spec::preset_names);
  m.def("preset", [](const std::string& name) { return spec_to_dict(Spec::preset(name)); });
  m.def("validate_spec", [](const py::dict& d) { return spec_to_dict(spec_from_dict(d)); },
        "Validates a spec dict (raises ValueError naming the broken rule) and returns it normalised.");
  m.def("command_names", [] {
    std::vector<std::string> names;
    for (int i = 0; i < kNumCommands; ++i) names.push_back(ddr4_command_name(static_cast<Command>(i)));
    return names;
  });
  m.def("timing_rules", [](const py::dict& d) {
    py::list out;
    for (const TimingRule& r : ddr4_timing_rules(spec_from_dict(d)))
      out.append(py::make_tuple(ddr4_command_name(r.prev), ddr4_command_name(r.next), scope_name(r.scope),
                                r.latency, r.window, r.name));
    return out;
  });
  m.def("map_addresses",
        [](const py::dict& d, int channels, int ranks, const std::string& mapping,
           py::array_t<uint64_t, py::array::c_style | py::array::forcecast> address) {
          const Spec s = spec_from_dict(d);
          const AddressMapper mapper(s.org, s.timing.BL, channels, ranks, mapping);
          const py::ssize_t n = address.size();
          py::array_t<int64_t> out({n, static_cast<py::ssize_t>(6)});
          auto o = out.mutable_unchecked<2>();
          for (py::ssize_t i = 0; i < n; ++i) {
            const uint64_t a = address.data()[i];
            if (a >= mapper.capacity()) throw InvalidArgument("address beyond capacity at index " + std::to_string(i));
            const auto dec = mapper.decode(a);
            const int64_t v[6] = {dec.channel, dec.addr.rank, dec.addr.bankgroup, dec.addr.bank, dec.addr.row,
                                  dec.addr.column};
            for (int k = 0; k < 6; ++k) o(i, k) = v[k];
          }
          return out;
        },
        "Decodes addresses to an (n, 6) array of channel, rank, bankgroup, bank, row, column.");
  m.def("capacity", [](const py::dict& d, int channels, int ranks, const std::string& mapping) {
    const Spec s = spec_from_dict(d);
    return AddressMapper(s.org, s.timing.BL, channels, ranks, mapping).capacity();
  });
  m.def("simulate", &run_simulation);
  m.def("latency_summary",
        [](py::array_t<int64_t, py::array::c_style | py::array::forcecast> latency, const std::vector<uint64_t>& ranks) {
          LatencySummary s;
          {
            py::gil_scoped_release release;
            s = summarize_latencies(latency.data(), static_cast<size_t>(latency.size()), ranks);
          }
          return py::make_tuple(s.count, s.sum_exact ? py::object(py::int_(s.sum)) : py::object(py::none()), s.max,
                                s.at_rank);
        },
        "(count, exact sum or None, max, values at the given sorted ranks) of the non-negative latencies.");
  m.def("read_trace", [](const std::string& path) {
    Trace t;
    {
      py::gil_scoped_release release;
      t = read_trace(path);
    }
    return py::make_tuple(to_numpy(t.arrival), to_numpy(t.is_write), to_numpy(t.address));
  });
}

}  // namespace reset_native::bindings
