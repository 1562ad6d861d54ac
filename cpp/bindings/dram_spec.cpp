#include "dram_spec.hpp"

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

}  // namespace reset_native::bindings
