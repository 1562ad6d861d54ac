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

template <typename S, typename T>
struct Field {
  const char* key;
  T S::*member;
};

// The organisation's and the currents' fields under their dict keys, in the dicts' order (both directions).
constexpr Field<dram::Organisation, int> kOrgFields[] = {
    {"bankgroups", &dram::Organisation::bankgroups}, {"banks_per_group", &dram::Organisation::banks_per_group},
    {"rows", &dram::Organisation::rows}, {"columns", &dram::Organisation::columns},
    {"device_width", &dram::Organisation::device_width}, {"bus_width", &dram::Organisation::bus_width}};
constexpr Field<dram::Currents, double> kIddFields[] = {
    {"VDD", &dram::Currents::VDD}, {"IDD0", &dram::Currents::IDD0}, {"IDD2N", &dram::Currents::IDD2N},
    {"IDD3N", &dram::Currents::IDD3N}, {"IDD4R", &dram::Currents::IDD4R}, {"IDD4W", &dram::Currents::IDD4W},
    {"IDD5B", &dram::Currents::IDD5B}};
}  // namespace

py::dict spec_to_dict(const dram::Spec& s) {
  py::dict timings, meanings, org, idd, d;
  for (const auto& f : dram::timing_fields()) {
    timings[f.name] = s.timing.*(f.member);
    meanings[f.name] = f.meaning;
  }
  for (const auto& f : kOrgFields) org[f.key] = s.org.*(f.member);
  for (const auto& f : kIddFields) idd[f.key] = s.idd.*(f.member);
  d["name"] = s.name;
  d["tCK_ns"] = s.tCK_ns;
  d["timings"] = timings;
  d["meanings"] = meanings;
  d["organisation"] = org;
  d["idd"] = idd;
  return d;
}

dram::Spec spec_from_dict(const py::dict& d) {
  dram::Spec s;
  s.name = get<std::string>(d, "name");
  s.tCK_ns = get<double>(d, "tCK_ns");
  const auto timings = get<py::dict>(d, "timings");
  for (const auto& f : dram::timing_fields()) s.timing.*(f.member) = get<int>(timings, f.name);
  const auto org = get<py::dict>(d, "organisation");
  for (const auto& f : kOrgFields) s.org.*(f.member) = get<int>(org, f.key);
  const auto idd = get<py::dict>(d, "idd");
  for (const auto& f : kIddFields) s.idd.*(f.member) = get<double>(idd, f.key);
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
