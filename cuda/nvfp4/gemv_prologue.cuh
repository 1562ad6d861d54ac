// A fused prologue of the NVFP4 GEMV: the decoder RMSNorm that produces the GEMV's input, computed while the
// block-diagonal kernel (M <= 2) stages x instead of by a kernel of its own: one launch and one dependent hand-off
// less per use (a Qwen3 decode step has two per layer: input RMSNorm -> q/k/v, post-attention RMSNorm -> gate/up).
// x is the un-normalised [m, k] row; each CTA first computes every token's rsqrt(mean(x^2) + eps) in the summation
// order of core/row_rms.cuh (the rms_norm op's), then stages weight * dtype(x * scale) with the op's two roundings:
// the GEMV sees exactly the bits rms_norm would have written.
// Why only this and only M <= 2 (measured on an H200, bench/RESULTS.md): every CTA recomputes the prologue over
// the whole x. For the norm at one token that is cheaper than a kernel boundary (q/k/v 12.99 -> 8.87 us); at
// M = 8 it costs more than it saves (15.57 -> 18.18 us), and SiLU * up in front of the down GEMV (K = 12288,
// IEEE exp and division per element) lost even at M = 1 (15.28 -> 17.76 us), so neither is built; SiLU * up is
// applied once per element in the gate/up GEMV's epilogue instead (silu_pair_tile, gemv_bd_kernel.cuh).
// Only kernels instantiated with the prologue contain this code (kProNone compiles to the plain load).
#pragma once
#include <cstddef>

#include "core/row_rms.cuh"
#include "nvfp4/gemv_params.cuh"
#include "nvfp4/gemv_ring.cuh"
#include "nvfp4/nvfp4_device.cuh"
#include "reset_native/nvfp4_cuda.hpp"

namespace reset_native::nvfp4_cuda {
namespace detail {

enum : int { kProNone = 0, kProRmsNorm = 1 };

// Shared memory of the RMSNorm prologue: one scale per token, then the 8 warp sums of each token.
template <int PRO>
__host__ __device__ constexpr size_t prologue_smem_bytes() {
  return PRO == kProRmsNorm ? size_t(kGemvMaxTokens) * (1 + cuda_core::kRmsWarps) * sizeof(float) : 0;
}

// Raw bits of 16 consecutive elements of one token row (a staging unit), zero outside x.
template <int XDT>
struct RawUnit {
  static constexpr int kVec = int(sizeof(typename Elem<XDT>::T));  // uint4s per 16 elements
  uint4 r[kVec];
};

template <int XDT>
__device__ __forceinline__ void load_unit(const GemvParams& p, int tok, int kidx, RawUnit<XDT>& u) {
  using T = typename Elem<XDT>::T;
  if (tok >= p.m || kidx >= p.k) {
#pragma unroll
    for (int i = 0; i < RawUnit<XDT>::kVec; ++i) u.r[i] = make_uint4(0, 0, 0, 0);
    return;
  }
  const T* x = static_cast<const T*>(p.x) + int64_t(tok) * p.k + kidx;
  if (p.x_aligned) {
#pragma unroll
    for (int i = 0; i < RawUnit<XDT>::kVec; ++i) u.r[i] = __ldg(reinterpret_cast<const uint4*>(x) + i);
  } else {
    T* e = reinterpret_cast<T*>(u.r);
#pragma unroll
    for (int i = 0; i < 16; ++i) e[i] = x[i];
  }
}

// kProRmsNorm, before staging (after pdl_wait, x is the previous kernel's output): every token's scale into
// pro_smem[tok]. All kThreads compute threads call it (thread = lane of the summation order); two barriers
// (compute_sync: without the ring's producer warp, which has left by then).
template <int XDT, bool RING>
__device__ __forceinline__ void rms_prologue_scales(const GemvParams& p, float* pro_smem) {
  using E = Elem<XDT>;
  static_assert(kThreads == cuda_core::kRmsLanes, "one thread per lane of the shared summation order");
  float* warp_sums = pro_smem + kGemvMaxTokens;
  const int tid = int(threadIdx.x);
  for (int tok = 0; tok < p.m; ++tok) {
    const auto* row = static_cast<const typename E::T*>(p.x) + int64_t(tok) * p.k;
    const float s = cuda_core::rms_warp_sum(
        cuda_core::rms_lane_partial(row, p.k, tid, true, [](typename E::T v) { return E::to_float(v); }));
    if (tid % 32 == 0) warp_sums[tok * cuda_core::kRmsWarps + tid / 32] = s;
  }
  compute_sync<RING>();
  if (tid < p.m) pro_smem[tid] = cuda_core::rms_scale(warp_sums + tid * cuda_core::kRmsWarps, p.k, p.pro_eps);
  compute_sync<RING>();
}

// One staging unit of the GEMV's input: x itself, or the prologue's output at (tok, kidx..kidx+15).
template <int XDT, int PRO>
__device__ __forceinline__ void load_x_unit(const GemvParams& p, int tok, int kidx, RawUnit<XDT>& u,
                                            const float* pro_smem) {
  if constexpr (PRO == kProNone) {
    load_unit<XDT>(p, tok, kidx, u);
  } else {
    static_assert(XDT != kF32, "prologues are instantiated for 16-bit x only");
    using E = Elem<XDT>;
    using T = typename E::T;
    constexpr int kVec = RawUnit<XDT>::kVec;
    if (tok >= p.m || kidx >= p.k) {
#pragma unroll
      for (int i = 0; i < kVec; ++i) u.r[i] = make_uint4(0, 0, 0, 0);
      return;
    }
    // The host guarantees 16-byte aligned rows (x, norm weight, k % 1024 == 0).
    RawUnit<XDT> a, b;
    const T* src = static_cast<const T*>(p.x) + int64_t(tok) * p.k + kidx;
    const T* wsrc = static_cast<const T*>(p.pro_w) + kidx;
#pragma unroll
    for (int i = 0; i < kVec; ++i) {
      a.r[i] = __ldg(reinterpret_cast<const uint4*>(src) + i);
      b.r[i] = __ldg(reinterpret_cast<const uint4*>(wsrc) + i);
    }
    const T* av = reinterpret_cast<const T*>(a.r);
    const T* bv = reinterpret_cast<const T*>(b.r);
    T* out = reinterpret_cast<T*>(u.r);
    const float scale = pro_smem[tok];
#pragma unroll
    for (int i = 0; i < 16; ++i) {  // rms_norm.cu's two roundings
      const T normed = E::from_float(__fmul_rn(E::to_float(av[i]), scale));
      out[i] = E::from_float(__fmul_rn(E::to_float(bv[i]), E::to_float(normed)));
    }
  }
}

}  // namespace detail
}  // namespace reset_native::nvfp4_cuda
