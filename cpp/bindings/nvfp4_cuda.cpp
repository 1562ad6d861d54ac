// Thin binding of the NVFP4 CUDA launchers (reset_native/nvfp4_cuda.hpp) into _core.nvfp4.
// Device pointers and the CUDA stream cross as integers (torch's data_ptr() / cuda_stream); the Python
// layer (reset_native/_nvfp4_cuda.py) validates tensors before calling these.
#include <cstdint>

#include "bindings.hpp"
#include "reset_native/error.hpp"
#if RESET_NATIVE_WITH_CUDA
#include "reset_native/nvfp4_cuda.hpp"
#endif

namespace py = pybind11;

namespace reset_native::bindings {

#if RESET_NATIVE_WITH_CUDA
namespace {

using reset_native::nvfp4_cuda::Activation;
using reset_native::nvfp4_cuda::DType;

DType to_dtype(int code) {
  if (code < 0 || code > 2) throw InvalidType("nvfp4 cuda: dtype code must be 0 (f32), 1 (f16) or 2 (bf16)");
  return static_cast<DType>(code);
}

using reset_native::nvfp4_cuda::Prologue;

Prologue to_prologue(int code) {
  if (code < 0 || code > 1) throw InvalidArgument("nvfp4 cuda: prologue code must be 0 (none) or 1 (rms_norm)");
  return static_cast<Prologue>(code);
}

using reset_native::nvfp4_cuda::Epilogue;

Epilogue to_epilogue(int code) {
  if (code < 0 || code > 1) throw InvalidArgument("nvfp4 cuda: epilogue code must be 0 (none) or 1 (silu_mul)");
  return static_cast<Epilogue>(code);
}

template <class T>
T* ptr(std::uintptr_t p) {
  return reinterpret_cast<T*>(p);
}

// The operands and shape of a GEMV (GemvArgs) or a medium-M GEMM (GemmMidArgs), from the raw pointers and codes the
// Python side passes.
template <class Args>
Args shape_args(std::uintptr_t packed, std::uintptr_t block_scales, std::int64_t n, std::int64_t k, std::uintptr_t x,
                int x_dtype, std::int64_t m_tokens) {
  Args a;
  a.packed = ptr<const std::uint8_t>(packed);
  a.block_scales = ptr<const std::uint8_t>(block_scales);
  a.n = n;
  a.k = k;
  a.x = ptr<const void>(x);
  a.x_dtype = to_dtype(x_dtype);
  a.m = m_tokens;
  return a;
}

constexpr auto gemv_shape = shape_args<reset_native::nvfp4_cuda::GemvArgs>;
constexpr auto mid_shape = shape_args<reset_native::nvfp4_cuda::GemmMidArgs>;

}  // namespace

void bind_nvfp4_cuda(py::module_& m) {
  namespace nc = reset_native::nvfp4_cuda;
  m.attr("cuda_kernels") = true;
  m.attr("cuda_gemv_max_tokens") = nc::kGemvMaxTokens;

  m.def(
      "cuda_amax",
      [](std::uintptr_t x, int dtype, std::int64_t count, std::uintptr_t amax_out, std::uintptr_t first_nonfinite,
         std::uintptr_t stream) {
        nc::launch_amax(ptr<const void>(x), to_dtype(dtype), count, ptr<float>(amax_out),
                        ptr<unsigned long long>(first_nonfinite), ptr<void>(stream));
      },
      py::arg("x"), py::arg("dtype"), py::arg("count"), py::arg("amax_out"), py::arg("first_nonfinite"),
      py::arg("stream"), "amax_out[0] <- max|x| (must be 0 before); first_nonfinite (or 0) <- min index of NaN/Inf.");

  m.def(
      "cuda_quantize",
      [](std::uintptr_t w, int dtype, std::int64_t n, std::int64_t k, float global_scale, std::uintptr_t packed,
         std::uintptr_t block_scales, std::uintptr_t stream) {
        nc::launch_quantize(ptr<const void>(w), to_dtype(dtype), n, k, global_scale, ptr<std::uint8_t>(packed),
                            ptr<std::uint8_t>(block_scales), ptr<void>(stream));
      },
      py::arg("w"), py::arg("dtype"), py::arg("n"), py::arg("k"), py::arg("global_scale"), py::arg("packed"),
      py::arg("block_scales"), py::arg("stream"));

  m.def(
      "cuda_dequantize",
      [](std::uintptr_t packed, std::uintptr_t block_scales, float global_scale, std::int64_t n, std::int64_t k,
         std::uintptr_t out, int out_dtype, std::uintptr_t stream) {
        nc::launch_dequantize(ptr<const std::uint8_t>(packed), ptr<const std::uint8_t>(block_scales), global_scale, n,
                              k, ptr<void>(out), to_dtype(out_dtype), ptr<void>(stream));
      },
      py::arg("packed"), py::arg("block_scales"), py::arg("global_scale"), py::arg("n"), py::arg("k"),
      py::arg("out"), py::arg("out_dtype"), py::arg("stream"));

  m.def(
      "cuda_quantize_values",
      [](std::uintptr_t x, int dtype, std::int64_t n, std::int64_t k, float global_scale, std::uintptr_t out,
         int out_dtype, std::uintptr_t stream) {
        nc::launch_quantize_values(ptr<const void>(x), to_dtype(dtype), n, k, global_scale, ptr<void>(out),
                                   to_dtype(out_dtype), ptr<void>(stream));
      },
      py::arg("x"), py::arg("dtype"), py::arg("n"), py::arg("k"), py::arg("global_scale"), py::arg("out"),
      py::arg("out_dtype"), py::arg("stream"),
      "out <- e2m1 * e4m3 of x quantized with global_scale (NaN for NaN/Inf).");

  m.def(
      "cuda_gemv",
      [](std::uintptr_t packed, std::uintptr_t block_scales, float global_scale, std::int64_t n, std::int64_t k,
         std::uintptr_t x, int x_dtype, std::int64_t m_tokens, bool nvfp4_activations, float act_global_scale,
         std::uintptr_t act_amax_workspace, std::uintptr_t bias, std::uintptr_t out, std::uintptr_t stream,
         std::uintptr_t residual, int prologue, std::uintptr_t prologue_weight, float prologue_eps, int epilogue,
         std::uintptr_t split_workspace, std::int64_t split_workspace_bytes, bool defer_short_workspace) {
        nc::GemvArgs a = gemv_shape(packed, block_scales, n, k, x, x_dtype, m_tokens);
        a.global_scale = global_scale;
        a.activation = nvfp4_activations ? Activation::NVFP4 : Activation::A16;
        a.act_global_scale = act_global_scale;
        a.act_amax_workspace = ptr<float>(act_amax_workspace);
        a.bias = ptr<const void>(bias);
        a.residual = ptr<const void>(residual);
        a.out = ptr<void>(out);
        a.prologue = to_prologue(prologue);
        a.prologue_weight = ptr<const void>(prologue_weight);
        a.prologue_eps = prologue_eps;
        a.epilogue = to_epilogue(epilogue);
        a.split_workspace = ptr<void>(split_workspace);
        a.split_workspace_bytes = split_workspace_bytes;
        a.defer_short_workspace = defer_short_workspace;
        return nc::launch_gemv(a, ptr<void>(stream));
      },
      py::arg("packed"), py::arg("block_scales"), py::arg("global_scale"), py::arg("n"), py::arg("k"), py::arg("x"),
      py::arg("x_dtype"), py::arg("m"), py::arg("nvfp4_activations"), py::arg("act_global_scale"),
      py::arg("act_amax_workspace"), py::arg("bias"), py::arg("out"), py::arg("stream"), py::arg("residual") = 0,
      py::arg("prologue") = 0, py::arg("prologue_weight") = 0, py::arg("prologue_eps") = 0.0f,
      py::arg("epilogue") = 0, py::arg("split_workspace") = 0, py::arg("split_workspace_bytes") = 0,
      py::arg("defer_short_workspace") = false,
      "Launches the GEMV; returns the split-K workspace bytes it wants. With defer_short_workspace and fewer "
      "split_workspace_bytes than that, launches nothing (allocate, then call again).");

  m.def(
      "cuda_gemv_workspace_bytes",
      [](std::uintptr_t packed, std::uintptr_t block_scales, std::int64_t n, std::int64_t k, std::uintptr_t x,
         int x_dtype, std::int64_t m_tokens, bool nvfp4_activations) {
        nc::GemvArgs a = gemv_shape(packed, block_scales, n, k, x, x_dtype, m_tokens);
        a.activation = nvfp4_activations ? Activation::NVFP4 : Activation::A16;
        return nc::gemv_workspace_bytes(a);
      },
      py::arg("packed"), py::arg("block_scales"), py::arg("n"), py::arg("k"), py::arg("x"), py::arg("x_dtype"),
      py::arg("m"), py::arg("nvfp4_activations"),
      "Bytes of split-K workspace cuda_gemv would use for this call on the current device (0: none).");

  m.def(
      "cuda_gemv_uses_weight_ring",
      [](std::uintptr_t packed, std::uintptr_t block_scales, std::int64_t n, std::int64_t k, std::uintptr_t x,
         int x_dtype, std::int64_t m_tokens, bool nvfp4_activations, int prologue, std::uintptr_t prologue_weight,
         int epilogue) {
        nc::GemvArgs a = gemv_shape(packed, block_scales, n, k, x, x_dtype, m_tokens);
        a.activation = nvfp4_activations ? Activation::NVFP4 : Activation::A16;
        a.prologue = to_prologue(prologue);
        a.prologue_weight = ptr<const void>(prologue_weight);
        a.epilogue = to_epilogue(epilogue);
        return nc::gemv_uses_weight_ring(a);
      },
      py::arg("packed"), py::arg("block_scales"), py::arg("n"), py::arg("k"), py::arg("x"), py::arg("x_dtype"),
      py::arg("m"), py::arg("nvfp4_activations"), py::arg("prologue") = 0, py::arg("prologue_weight") = 0,
      py::arg("epilogue") = 0,
      "Whether cuda_gemv would stream this call's weights through the TMA weight ring on the current device "
      "(with the fusion codes of cuda_gemv: for the fused kernel, false when there is none).");

  m.attr("cuda_gemm_mid_max_tokens") = nc::kGemmMidMaxTokens;
  m.attr("cuda_gemm_mid_max_rows") = nc::kGemmMidMaxRows;
  m.attr("cuda_gemm_mid_max_outputs") = nc::kGemmMidMaxOutputs;
  m.attr("cuda_gemm_mid_wgmma") = nc::gemm_mid_wgmma_built();
  m.def("cuda_gemm_mid_shape", &nc::gemm_mid_shape_name, py::arg("m"), py::arg("n"), py::arg("hopper"),
        py::arg("request") = "", py::arg("sms") = 132,
        "The medium-M kernel shape cuda_gemm_mid takes for m tokens and n rows on a compute capability 9.0 GPU "
        "(hopper) or another with `sms` SMs, with RESET_NATIVE_GEMM_MID = request ('' = unset); no device needed.");
  m.def(
      "cuda_gemm_mid_plan_rule",
      [](std::int64_t m_tokens, std::int64_t n, std::int64_t k, bool hopper, int sms) {
        const nc::GemmMidPlanRule r = nc::gemm_mid_plan_rule(m_tokens, n, k, hopper, sms);
        return py::make_tuple(r.shape, r.splits, r.stream_k_ctas);
      },
      py::arg("m"), py::arg("n"), py::arg("k"), py::arg("hopper"), py::arg("sms") = 132,
      "(shape, K splits, stream-K CTAs) cuda_gemm_mid takes for m tokens, n rows and k on a compute capability 9.0 "
      "GPU (hopper) or another with `sms` SMs, under this process's environment; no device needed.");
  m.def(
      "cuda_gemm_mid_plan",
      [](std::uintptr_t packed, std::uintptr_t block_scales, std::int64_t n, std::int64_t k, std::uintptr_t x,
         int x_dtype, std::int64_t m_tokens) {
        const nc::GemmMidArgs a = mid_shape(packed, block_scales, n, k, x, x_dtype, m_tokens);
        const bool ok = nc::gemm_mid_supported(a);
        return py::make_tuple(ok, ok ? nc::gemm_mid_workspace_bytes(a) : std::int64_t(0));
      },
      py::arg("packed"), py::arg("block_scales"), py::arg("n"), py::arg("k"), py::arg("x"), py::arg("x_dtype"),
      py::arg("m"),
      "(supported, workspace bytes) of cuda_gemm_mid for this call on the current device; no launch.");
  m.def(
      "cuda_gemm_mid_launch_plan",
      [](std::int64_t n, std::int64_t k, int x_dtype, std::int64_t m_tokens) {
        const nc::GemmMidPlanRule r = nc::gemm_mid_launch_plan(mid_shape(0, 0, n, k, 0, x_dtype, m_tokens));
        return py::make_tuple(r.shape, r.splits, r.stream_k_ctas);
      },
      py::arg("n"), py::arg("k"), py::arg("x_dtype"), py::arg("m"),
      "(shape, K splits, stream-K CTAs) cuda_gemm_mid takes for this shape on the current device (1 split: none, 0 "
      "CTAs: a grid; ('', 0, 0): not supported); no launch.");

  m.def(
      "cuda_gemm_mid",
      [](std::uintptr_t packed, std::uintptr_t block_scales, float global_scale, std::int64_t n, std::int64_t k,
         std::uintptr_t x, int x_dtype, std::int64_t m_tokens, std::uintptr_t bias, std::uintptr_t out,
         std::uintptr_t workspace, std::int64_t workspace_bytes, std::uintptr_t stream) {
        nc::GemmMidArgs a = mid_shape(packed, block_scales, n, k, x, x_dtype, m_tokens);
        a.global_scale = global_scale;
        a.bias = ptr<const void>(bias);
        a.out = ptr<void>(out);
        a.workspace = ptr<void>(workspace);
        a.workspace_bytes = workspace_bytes;
        nc::launch_gemm_mid(a, ptr<void>(stream));
      },
      py::arg("packed"), py::arg("block_scales"), py::arg("global_scale"), py::arg("n"), py::arg("k"), py::arg("x"),
      py::arg("x_dtype"), py::arg("m"), py::arg("bias"), py::arg("out"), py::arg("workspace"),
      py::arg("workspace_bytes"), py::arg("stream"),
      "out [m, n] <- global_scale * (x @ W_local^T) + bias: the medium-M NVFP4 GEMM (W4A16, 16-bit x).");

  m.def(
      "cuda_gemv_fusion_supported",
      [](std::uintptr_t packed, std::uintptr_t block_scales, std::int64_t n, std::int64_t k, std::uintptr_t x,
         int x_dtype, std::int64_t m_tokens, int prologue, std::uintptr_t prologue_weight, int epilogue) {
        nc::GemvArgs a = gemv_shape(packed, block_scales, n, k, x, x_dtype, m_tokens);
        a.prologue = to_prologue(prologue);
        a.prologue_weight = ptr<const void>(prologue_weight);
        a.epilogue = to_epilogue(epilogue);
        return nc::gemv_fusion_supported(a);
      },
      py::arg("packed"), py::arg("block_scales"), py::arg("n"), py::arg("k"), py::arg("x"), py::arg("x_dtype"),
      py::arg("m"), py::arg("prologue"), py::arg("prologue_weight"), py::arg("epilogue"));
}

#else

void bind_nvfp4_cuda(py::module_& m) { m.attr("cuda_kernels") = false; }

#endif

}  // namespace reset_native::bindings
