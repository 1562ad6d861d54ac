// Thin binding of the integration ops (reset_native/ops_cuda.hpp) into _core.ops. Device pointers and the
// CUDA stream cross as integers; reset_native/integrations/fused_norm.py validates the tensors first.
#include <cstdint>

#include "bindings.hpp"
#include "reset_native/error.hpp"
#if RESET_NATIVE_WITH_CUDA
#include "reset_native/ops_cuda.hpp"
#endif

namespace py = pybind11;

namespace reset_native::bindings {

#if RESET_NATIVE_WITH_CUDA
void bind_ops(py::module_& m) {
  namespace oc = reset_native::ops_cuda;
  m.attr("cuda_kernels") = true;
  m.def(
      "cuda_rms_norm",
      [](std::uintptr_t x, std::uintptr_t w, std::uintptr_t y, std::int64_t rows, std::int64_t h, float eps,
         int dtype, std::uintptr_t stream) {
        if (dtype < 0 || dtype > 2) throw InvalidType("rms_norm: dtype code must be 0 (f32), 1 (f16) or 2 (bf16)");
        oc::launch_rms_norm(reinterpret_cast<const void*>(x), reinterpret_cast<const void*>(w),
                            reinterpret_cast<void*>(y), rows, h, eps, static_cast<oc::DType>(dtype),
                            reinterpret_cast<void*>(stream));
      },
      py::arg("x"), py::arg("w"), py::arg("y"), py::arg("rows"), py::arg("h"), py::arg("eps"), py::arg("dtype"),
      py::arg("stream"), "y[rows, h] <- RMSNorm(x) * w on the given stream (transformers' Llama/Qwen semantics).");
}
#else
void bind_ops(py::module_& m) { m.attr("cuda_kernels") = false; }
#endif

}  // namespace reset_native::bindings
