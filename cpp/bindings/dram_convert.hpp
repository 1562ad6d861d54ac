// Conversions of the dram and pim bindings: the DDR4 spec to and from the dict of
// reset_native.dram.DDR4Spec (._d); command logs leave as a dict of numpy columns.
#pragma once
#include <pybind11/pybind11.h>

#include <vector>

#include "reset_native/dram/simulate.hpp"
#include "reset_native/dram/spec.hpp"

namespace reset_native::bindings {

// The dict of reset_native.dram.DDR4Spec: name, tCK_ns, timings, their meanings, organisation, idd.
pybind11::dict spec_to_dict(const dram::Spec& s);

// Builds and validates a Spec; a missing key raises InvalidArgument naming it.
dram::Spec spec_from_dict(const pybind11::dict& d);

// One numpy array per field: cycle, command, channel, rank, bankgroup, bank, row, column.
pybind11::dict command_log_to_dict(const std::vector<dram::LogEntry>& log);

}  // namespace reset_native::bindings
