// reset_native._core.pim: converts dicts/numpy arrays to the C++ GradPIM model and back. Thin.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <optional>

#include "bindings.hpp"
#include "dram_convert.hpp"
#include "reset_native/error.hpp"
#include "reset_native/pim/commands.hpp"
#include "reset_native/pim/functional.hpp"
#include "reset_native/pim/layout.hpp"
#include "reset_native/pim/update.hpp"

namespace py = pybind11;

namespace reset_native::bindings {

namespace {
using namespace reset_native::pim;
namespace rd = reset_native::dram;

template <typename T>
T get(const py::dict& d, const char* key) {
  if (!d.contains(key)) throw InvalidArgument(std::string("pim config lacks '") + key + "'");
  return d[key].cast<T>();
}

UpdateConfig config_from_dict(const py::dict& d) {
  UpdateConfig c;
  c.spec = spec_from_dict(get<py::dict>(d, "spec"));
  c.channels = get<int>(d, "channels");
  c.ranks = get<int>(d, "ranks");
  c.registers_per_unit = get<int>(d, "registers_per_unit");
  c.optimizer = parse_optimizer(get<std::string>(d, "optimizer"));
  c.weight = parse_dtype(get<std::string>(d, "weight_dtype"));
  c.grad = parse_dtype(get<std::string>(d, "grad_dtype"));
  c.state = parse_dtype(get<std::string>(d, "state_dtype"));
  c.weight_copy = get<bool>(d, "weight_copy");
  c.copy = parse_dtype(get<std::string>(d, "copy_dtype"));
  c.layout = parse_layout(get<std::string>(d, "layout"));
  c.hyper = Hyper{get<float>(d, "lr"),    get<float>(d, "momentum"), get<float>(d, "weight_decay"),
                  get<float>(d, "beta1"), get<float>(d, "beta2"),    get<float>(d, "eps"),
                  get<int>(d, "step")};
  c.timing = PimTiming{get<int>(d, "write_to_read"), get<int>(d, "write_recovery"), get<int>(d, "cross_group"),
                       get<int>(d, "host_cross_group"), get<int>(d, "sfu_passes")};
  c.energy = Energy{get<double>(d, "io_pJ_per_bit"), get<double>(d, "alu_pJ_per_byte")};
  c.host_tile = get<int>(d, "host_tile");
  c.host_interleaved = get<bool>(d, "host_interleaved");
  c.validate();
  return c;
}

py::dict stats_to_dict(const UpdateStats& s, bool command_log) {
  py::dict out;
  out["n_params"] = s.n_params;
  out["cycles"] = s.cycles;
  out["external_bytes"] = s.external_bytes;
  out["internal_column_ops"] = s.internal_column_ops;
  out["commands"] = std::vector<uint64_t>(s.commands.begin(), s.commands.end());
  out["data_bus_cycles"] = s.data_bus_cycles;
  if (command_log) out["log"] = command_log_to_dict(s.log);
  return out;
}

using F32 = py::array_t<float, py::array::c_style>;
float* data_or_null(std::optional<F32>& a, int64_t n, const char* name) {
  if (!a) return nullptr;
  if (a->ndim() != 1 || a->shape(0) != n)
    throw InvalidArgument(std::string(name) + " must be a 1-D float32 array of the weights' length");
  return a->mutable_data();
}
}  // namespace

void bind_pim(py::module_& m) {
  m.def("simulate", [](const py::dict& d, int64_t n_params, const std::string& mode, bool command_log) {
    const UpdateConfig c = config_from_dict(d);
    if (mode != "pim" && mode != "host") throw InvalidArgument("mode must be 'pim' or 'host', got '" + mode + "'");
    UpdateStats s;
    {
      py::gil_scoped_release release;
      s = mode == "pim" ? simulate_pim_update(c, n_params, command_log) : simulate_host_update(c, n_params, command_log);
    }
    return stats_to_dict(s, command_log);
  });
  m.def("layout", [](const py::dict& d, int64_t n_params) {
    const UpdateConfig c = config_from_dict(d);
    const Program p = build_program(c);
    const DataLayout l(c, p);
    py::dict out, streams;
    out["column_bytes"] = l.column_bytes();
    out["step_elements"] = l.step_elements();
    out["steps_per_chunk"] = l.steps_per_chunk();
    out["chunk_elements"] = l.chunk_elements();
    out["units"] = l.units();
    out["regs_per_value"] = l.regs_per_value();
    out["values_per_step"] = p.values;
    out["chunks"] = l.chunks(std::max<int64_t>(n_params, 1));
    out["rows_needed"] = l.rows_needed(std::max<int64_t>(n_params, 1));
    for (int s : p.streams) {
      const StreamPlace& sp = l.stream(s);
      streams[stream_name(s)] = py::make_tuple(sp.bank, sp.column, sp.cols_per_step, dtype_name(stream_dtype(c, s)));
    }
    out["streams"] = streams;
    std::vector<std::string> reads, writes;
    for (int s : p.read_streams) reads.push_back(stream_name(s));
    for (int s : p.write_streams) writes.push_back(stream_name(s));
    out["read_streams"] = reads;
    out["write_streams"] = writes;
    return out;
  });
  m.def("check_fits", [](const py::dict& d, int64_t n_params) {
    const UpdateConfig c = config_from_dict(d);
    DataLayout(c, build_program(c)).check_fits(n_params);
  });
  m.def("locate", [](const py::dict& d, py::array_t<int64_t, py::array::c_style | py::array::forcecast> elements,
                     const std::string& stream) {
    const UpdateConfig c = config_from_dict(d);
    const Program p = build_program(c);
    const DataLayout l(c, p);
    int s = -1;
    for (int k : p.streams)
      if (stream == stream_name(k)) s = k;
    if (s < 0) throw InvalidArgument("the optimizer keeps no stream '" + stream + "'");
    const py::ssize_t n = elements.size();
    py::array_t<int64_t> out({n, static_cast<py::ssize_t>(8)});
    auto o = out.mutable_unchecked<2>();
    for (py::ssize_t i = 0; i < n; ++i) {
      if (elements.data()[i] < 0) throw InvalidArgument("element indexes must be >= 0");
      const Location a = l.locate(elements.data()[i], s);
      const int64_t v[8] = {a.channel, a.rank, a.bankgroup, a.bank, a.row, a.column, a.device, a.byte};
      for (int k = 0; k < 8; ++k) o(i, k) = v[k];
    }
    return out;
  });
  m.def("apply_update", [](const py::dict& d, F32 weight, F32 grad, std::optional<F32> state1,
                           std::optional<F32> state2, std::optional<F32> copy, bool commands) {
    const UpdateConfig c = config_from_dict(d);
    const int64_t n = weight.ndim() == 1 ? weight.shape(0) : -1;
    require(n >= 0 && grad.ndim() == 1 && grad.shape(0) == n, "weight and grad must be 1-D arrays of one length");
    float* s1 = data_or_null(state1, n, "state1");
    float* s2 = data_or_null(state2, n, "state2");
    float* cp = data_or_null(copy, n, "copy");
    py::gil_scoped_release release;
    if (commands) execute_commands(c, n, weight.mutable_data(), grad.data(), s1, s2, cp);
    else apply_update(c, n, weight.mutable_data(), grad.data(), s1, s2, cp);
  });
  m.def("timing_rules", [](const py::dict& d) {
    const UpdateConfig c = config_from_dict(d);
    py::list out;
    for (const rd::TimingRule& r : pim_timing_rules(c.spec, c.resolved_timing()))
      out.append(py::make_tuple(rd::ddr4_command_name(r.prev), rd::ddr4_command_name(r.next), rd::scope_name(r.scope),
                                r.latency, r.name));
    return out;
  });
}

}  // namespace reset_native::bindings
