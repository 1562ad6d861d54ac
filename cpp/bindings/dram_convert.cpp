#include <pybind11/numpy.h>

#include "dram_convert.hpp"

#include <string>

#include "reset_native/error.hpp"

namespace py = pybind11;

namespace reset_native::bindings {

namespace {
template <typename T>
T get(const py::dict& d, const char* key) {
  if (!d.contains(key)) throw InvalidArgument(std::string("DDR4 spec lacks '") + key + "'");
  return d[key].cast<T>();
}
}  // namespace

dram::Spec spec_from_dict(const py::dict& d) {
  dram::Spec s;
  s.name = get<std::string>(d, "name");
  s.tCK_ns = get<double>(d, "tCK_ns");
  const auto timings = get<py::dict>(d, "timings");
  for (const auto& f : dram::timing_fields()) s.timing.*(f.member) = get<int>(timings, f.name);
  const auto org = get<py::dict>(d, "organisation");
  s.org.bankgroups = get<int>(org, "bankgroups");
  s.org.banks_per_group = get<int>(org, "banks_per_group");
  s.org.rows = get<int>(org, "rows");
  s.org.columns = get<int>(org, "columns");
  s.org.device_width = get<int>(org, "device_width");
  s.org.bus_width = get<int>(org, "bus_width");
  const auto idd = get<py::dict>(d, "idd");
  s.idd = dram::Currents{get<double>(idd, "VDD"),  get<double>(idd, "IDD0"),  get<double>(idd, "IDD2N"),
                         get<double>(idd, "IDD3N"), get<double>(idd, "IDD4R"), get<double>(idd, "IDD4W"),
                         get<double>(idd, "IDD5B")};
  s.validate();
  return s;
}

py::dict command_log_to_dict(const std::vector<dram::LogEntry>& log) {
  const auto m = static_cast<py::ssize_t>(log.size());
  py::array_t<int64_t> cycle(m);
  py::array_t<uint8_t> command(m), channel(m), rank(m), bankgroup(m), bank(m);
  py::array_t<int32_t> row(m), column(m);
  for (py::ssize_t i = 0; i < m; ++i) {
    const dram::LogEntry& e = log[static_cast<size_t>(i)];
    cycle.mutable_data()[i] = e.cycle;
    command.mutable_data()[i] = e.command;
    channel.mutable_data()[i] = e.channel;
    rank.mutable_data()[i] = e.rank;
    bankgroup.mutable_data()[i] = e.bankgroup;
    bank.mutable_data()[i] = e.bank;
    row.mutable_data()[i] = e.row;
    column.mutable_data()[i] = e.column;
  }
  py::dict out;
  out["cycle"] = cycle;
  out["command"] = command;
  out["channel"] = channel;
  out["rank"] = rank;
  out["bankgroup"] = bankgroup;
  out["bank"] = bank;
  out["row"] = row;
  out["column"] = column;
  return out;
}

}  // namespace reset_native::bindings
