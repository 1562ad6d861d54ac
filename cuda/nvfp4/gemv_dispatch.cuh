// Kernel choice of the NVFP4 GEMV by shape: the block-diagonal kernel for 1..2 tokens when x fits
// shared memory next to a second CTA (gemv_bd_kernel.cuh), else the 16-bit tensor-core kernel (gemv_kernel.cuh),
// split along K when the launcher chose it (gemv_split.cuh).
#pragma once
#include "nvfp4/gemv_bd_kernel.cuh"
#include "nvfp4/gemv_bd_split.cuh"
#include "nvfp4/gemv_launch.cuh"
#include "nvfp4/gemv_split.cuh"

namespace reset_native::nvfp4_cuda::detail {

// Explicitly instantiated once per (x dtype, activation) in gemv_<dtype>_<act>.cu (parallel compilation).
template <int XDT, bool W4A4>
void dispatch_mode(const GemvParams& p, const LaunchPlan& plan, cudaStream_t stream) {
  if (p.ksplit > 1) {  // set by the launcher from ksplit_for, with its workspace
    if constexpr (XDT != kF32 && !W4A4) {
      if (plan.bd_ksplit == p.ksplit) return dispatch_bd_split<XDT>(p, plan, stream);
    }
    if (p.m > 8) return launch_split<XDT, W4A4, 2>(p, plan, stream);
    return launch_split<XDT, W4A4, 1>(p, plan, stream);
  }
  if (try_bd<XDT, W4A4>(p, plan, stream)) return;
  if (p.m > 8) return dispatch_tokens<XDT, W4A4, 2>(p, plan, stream);
  return dispatch_tokens<XDT, W4A4, 1>(p, plan, stream);
}

// A16 GEMV with the fused RMSNorm prologue (PRO) and/or the SiLU * up epilogue (SILU): the block-diagonal kernel
// only (M <= 2 where bd_chosen takes it, x fitting shared memory next to a second CTA; fused_fits). Explicitly
// instantiated in gemv_<dtype>_fused.cu.
template <int XDT, int PRO, bool SILU>
void dispatch_fused(const GemvParams& p, const LaunchPlan& plan, cudaStream_t stream) {
  require(try_bd<XDT, false, PRO, SILU>(p, plan, stream), "nvfp4 gemv: no fused kernel for this call");
}

// Whether dispatch_fused has a kernel for this call. Host only.
template <int PRO, bool SILU>
bool fused_fits(const GemvParams& p, const LaunchPlan& plan) {
  const int extra = p.m == 1 ? bd_extra_bytes<PRO, SILU, 1>() : bd_extra_bytes<PRO, SILU, 2>();
  // bd_chosen: only where the plain call runs this kernel too, so fused and separate ops give the same bits.
  // Not where the plain call splits K (gemv_bd_split.cuh): the fused kernels do not.
  return plan.fast && bd_chosen<kBF16, false>(p, plan) && (!SILU || p.n % 32 == 0) &&
         plan.bd_ksplit == 1 &&
         size_t(BdSmem(p.k, p.m, p.m, extra).total) <= kWholeSmemLimit;
}

}  // namespace reset_native::nvfp4_cuda::detail
