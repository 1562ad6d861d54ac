#include "bindings.hpp"

PYBIND11_MODULE(_core, m) {
  m.doc() = "reset_native native core (C++/CUDA). Import reset_native, not this module.";
  namespace b = reset_native::bindings;
  b::bind_core(m);
  auto nvfp4 = m.def_submodule("nvfp4", "NVFP4 quantization and GEMV");
  b::bind_nvfp4(nvfp4);
  b::bind_nvfp4_cuda(nvfp4);
  auto sampler = m.def_submodule("sampler", "ReSET entropy state machine and sampling");
  b::bind_sampler(sampler);
  auto dram = m.def_submodule("dram", "DDR4 cycle-level memory model");
  b::bind_dram(dram);
  auto pim = m.def_submodule("pim", "GradPIM processing-in-memory model");
  b::bind_pim(pim);
  auto ops = m.def_submodule("ops", "Model ops fused by the integrations (RMSNorm)");
  b::bind_ops(ops);
}
