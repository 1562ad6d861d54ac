// Host launcher of the NVFP4 GEMV: validates, runs the W4A4 activation-amax pre-kernel when asked, picks
// the tile and launches. Kernel and design notes: gemv_kernel.cuh.
#include <cuda_runtime.h>

#include <string>

#include "nvfp4/gemv_dispatch.cuh"
#include "nvfp4/launch_check.hpp"
#include "reset_native/error.hpp"
#include "reset_native/nvfp4_cuda.hpp"

namespace reset_native::nvfp4_cuda {
namespace detail {
#define RESET_NATIVE_NVFP4_GEMV_EXTERN(XDT)                                                          \
  extern template void dispatch_mode<XDT, false>(const GemvParams&, bool, int, size_t, cudaStream_t); \
  extern template void dispatch_mode<XDT, true>(const GemvParams&, bool, int, size_t, cudaStream_t);
RESET_NATIVE_NVFP4_GEMV_EXTERN(kF32)
RESET_NATIVE_NVFP4_GEMV_EXTERN(kF16)
RESET_NATIVE_NVFP4_GEMV_EXTERN(kBF16)
#undef RESET_NATIVE_NVFP4_GEMV_EXTERN

template <int XDT>
void dispatch_dtype(const GemvParams& p, bool w4a4, bool fast, int sms, size_t smem_optin, cudaStream_t stream) {
  if (w4a4) return dispatch_mode<XDT, true>(p, fast, sms, smem_optin, stream);
  return dispatch_mode<XDT, false>(p, fast, sms, smem_optin, stream);
}
}  // namespace detail

void launch_gemv(const GemvArgs& a, void* stream_ptr) {
  using namespace detail;
  require(a.n > 0 && a.k > 0 && a.k % 16 == 0, "nvfp4 gemv: need n > 0 and k > 0 with k % 16 == 0, got n=" +
                                                   std::to_string(a.n) + " k=" + std::to_string(a.k));
  require(a.m >= 1 && a.m <= kGemvMaxTokens,
          "nvfp4 gemv: m (tokens) must be in [1, 16], got " + std::to_string(a.m));
  require(a.n < (int64_t(1) << 31) && a.k < (int64_t(1) << 31), "nvfp4 gemv: n and k must be < 2^31");
  require(a.packed && a.block_scales && a.x && a.out, "nvfp4 gemv: null pointer");
  require(reinterpret_cast<uintptr_t>(a.packed) % 8 == 0, "nvfp4 gemv: packed must be 8-byte aligned");
  auto stream = static_cast<cudaStream_t>(stream_ptr);

  GemvParams p{};
  p.packed = a.packed;
  p.scales = a.block_scales;
  p.x = a.x;
  p.bias = a.bias;
  p.residual = a.residual;
  p.out = a.out;
  p.w_gs = a.global_scale;
  p.n = int(a.n), p.k = int(a.k), p.m = int(a.m);
  p.x_aligned = reinterpret_cast<uintptr_t>(a.x) % 16 == 0;
  p.act_gs = a.act_global_scale;
  p.act_amax = nullptr;
  const bool w4a4 = a.activation == Activation::NVFP4;
  if (w4a4 && a.act_amax_workspace != nullptr) {
    check_cuda(cudaMemsetAsync(a.act_amax_workspace, 0, sizeof(float), stream), "nvfp4 gemv: memset");
    launch_amax(a.x, a.x_dtype, a.m * a.k, a.act_amax_workspace, nullptr, stream_ptr);
    p.act_amax = a.act_amax_workspace;
  }
  const bool fast = a.k % kChunk == 0 && reinterpret_cast<uintptr_t>(a.packed) % 16 == 0 &&
                    reinterpret_cast<uintptr_t>(a.block_scales) % 2 == 0;
  int device = 0, sms = 132;
  check_cuda(cudaGetDevice(&device), "nvfp4 gemv: cudaGetDevice");
  check_cuda(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device), "nvfp4 gemv: SM count");
  int optin = 0;  // largest dynamic shared memory one CTA may opt into (227 KiB on H100/H200)
  check_cuda(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
             "nvfp4 gemv: shared memory limit");

  switch (a.x_dtype) {
    case DType::F32:
      return dispatch_dtype<kF32>(p, w4a4, fast, sms, size_t(optin), stream);
    case DType::F16:
      return dispatch_dtype<kF16>(p, w4a4, fast, sms, size_t(optin), stream);
    case DType::BF16:
      return dispatch_dtype<kBF16>(p, w4a4, fast, sms, size_t(optin), stream);
  }
  throw InvalidType("nvfp4 gemv: unknown x dtype");
}

}  // namespace reset_native::nvfp4_cuda
