// One registration function per engine; module.cpp calls them all. Each lives in its own file
// (core.cpp, nvfp4.cpp, nvfp4_cuda.cpp, sampler.cpp, dram.cpp, pim.cpp, ops.cpp) and only converts between
// Python and C++.
#pragma once
#include <pybind11/pybind11.h>

namespace reset_native::bindings {

void bind_core(pybind11::module_& m);     // errors, build info
void bind_nvfp4(pybind11::module_& m);       // -> submodule _core.nvfp4 (CPU)
void bind_nvfp4_cuda(pybind11::module_& m);  // -> same submodule, CUDA launchers (no-op without CUDA)
void bind_sampler(pybind11::module_& m);  // -> submodule _core.sampler
void bind_dram(pybind11::module_& m);     // -> submodule _core.dram
void bind_pim(pybind11::module_& m);      // -> submodule _core.pim
void bind_ops(pybind11::module_& m);      // -> submodule _core.ops (integration ops; CUDA only)

}  // namespace reset_native::bindings
