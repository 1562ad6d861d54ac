// The DDR4 spec crosses the binding as the dict of reset_native.dram.DDR4Spec (._d); both the dram and
// the pim bindings read it through this one converter.
#pragma once
#include <pybind11/pybind11.h>

#include "reset_native/dram/spec.hpp"

namespace reset_native::bindings {

// Builds and validates a Spec; a missing key raises InvalidArgument naming it.
dram::Spec spec_from_dict(const pybind11::dict& d);

}  // namespace reset_native::bindings
