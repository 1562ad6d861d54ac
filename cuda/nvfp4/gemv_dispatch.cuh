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

// A16 GEMV with a fused prologue (gemv_prologue.cuh): the same kernel choice among the variants that have one
// (fast path, whole-x staging). Explicitly instantiated in gemv_<dtype>_prologue.cu.
template <int XDT, int PRO>
void dispatch_prologue(const GemvParams& p, const LaunchPlan& plan, cudaStream_t stream) {
  if (try_bd<XDT, false, PRO>(p, plan, stream)) return;
  if (p.m > 8) return dispatch_tokens<XDT, false, 2, PRO>(p, plan, stream);
  return dispatch_tokens<XDT, false, 1, PRO>(p, plan, stream);
}

// Whether dispatch_prologue has a kernel for this call: the fast path, and x staged whole in the block-diagonal
// kernel (M <= 2, two CTAs per SM) or in the 16-bit kernel (at most the opt-in shared memory). Host only.
template <int XDT, int PRO>
bool prologue_fits(const GemvParams& p, const LaunchPlan& plan) {
  if (!plan.fast) return false;
  if (p.m <= 2 && size_t(BdSmem(p.k, p.m, p.m, int(prologue_smem_bytes<PRO>())).total) <= kWholeSmemLimit) return true;
  const size_t whole = p.m > 8 ? whole_smem_bytes<XDT, false, 2, 2, false, PRO>(p.k, p.m)
                               : whole_smem_bytes<XDT, false, 1, 2, false, PRO>(p.k, p.m);
  return whole <= plan.smem_optin;
}

}  // namespace reset_native::nvfp4_cuda::detail
