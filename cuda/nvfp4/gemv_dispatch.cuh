// Kernel choice of the NVFP4 GEMV by shape: the block-diagonal kernel for 1..2 tokens when x fits
// shared memory next to a second CTA (gemv_bd_kernel.cuh), else the 16-bit tensor-core kernel (gemv_kernel.cuh).
#pragma once
#include "nvfp4/gemv_bd_kernel.cuh"
#include "nvfp4/gemv_kernel.cuh"

namespace reset_native::nvfp4_cuda::detail {

// Explicitly instantiated once per (x dtype, activation) in gemv_<dtype>_<act>.cu (parallel compilation).
template <int XDT, bool W4A4>
void dispatch_mode(const GemvParams& p, const LaunchPlan& plan, cudaStream_t stream) {
  if (try_bd<XDT, W4A4>(p, plan, stream)) return;
  if (p.m > 8) return dispatch_tokens<XDT, W4A4, 2>(p, plan, stream);
  return dispatch_tokens<XDT, W4A4, 1>(p, plan, stream);
}

}  // namespace reset_native::nvfp4_cuda::detail
