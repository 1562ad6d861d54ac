// W4A4 x staging of the 16-bit GEMV kernel (gemv_kernel.cuh), cheaper forms with the same bits (opt-in FORM bits,
// session 19 helper w4a4x29):
//   kForm16QuantFast: quantize_activation_block_fast, ~19 instead of ~50 instructions per element of x. Every W4A4 CTA
//     (every SM with two teams) quantizes all of x (its K slice with split K) before its first MMA, so at 16 tokens x
//     K = 4096 a thread of a two-team CTA spent ~7400 instructions on it (4 warps per scheduler: ~15 us at 1.98 GHz
//     of issue, about the whole W4A4s - W4A16 gap of Qwen3-8B gate_up at M = 16, 39.6 vs 24.4 us).
//   kForm16AmaxWide: cta_amax_wide, the in-kernel amax(|x|) with 8 loads in flight per thread instead of 1 (the
//     loop of cta_amax waits one L2 round trip per 16 bytes: 16 of them per thread at 16 tokens x K = 4096).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "nvfp4/gemv_params.cuh"
#include "nvfp4/nvfp4_device.cuh"

namespace reset_native::nvfp4_cuda::detail {

// The fast path's range: blocks whose quotient divisor s (block scale * activation scale) and largest magnitude lie
// in [2^-32, 2^32]. There every quotient |v| / s is below 2^64 and s is far from the reciprocal's range limits, so
// the division sequence below is the one __fdiv_rn runs whenever its range check (FCHK) passes; where that check
// could fail inside this range (a dividend below ~2^-100: a quotient below 2^-68) both round to the E2M1 zero.
// Other blocks (inf, all-tiny or huge x, a tiny static scale) take quantize_activation_block itself.
constexpr float kQuantFastLo = 2.3283064365386963e-10f;  // 2^-32
constexpr float kQuantFastHi = 4294967296.0f;            // 2^32

__device__ __forceinline__ float rcp_approx_ftz(float s) {
  float r;
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(s));
  return r;
}

// A W4A4 x block's scale (SPEC section 2 steps 2-3; quantize_activation_block in gemv_kernel.cuh and the fast form
// below): its amax, the decoded E4M3 block scale and s = that scale times the global scale.
struct ActivationBlockScale {
  float amax, sdec, s;
};
__device__ __forceinline__ ActivationBlockScale activation_block_scale(const float (&v)[16], float act_gs,
                                                                       float act_d) {
  float amax_b = 0.0f;
#pragma unroll
  for (int i = 0; i < 16; ++i) amax_b = fmaxf(amax_b, fabsf(v[i]));
  const float sdec = e4m3_decode(e4m3_encode_scale(__fdiv_rn(amax_b, act_d)));
  return {amax_b, sdec, __fmul_rn(sdec, act_gs)};
}

// quantize_activation_block (gemv_kernel.cuh; SPEC section 2 steps 2-5) with the same bits in ~3x fewer instructions;
// returns false, v unchanged, outside the range above (the caller then runs quantize_activation_block). Per block:
// the amax, the E4M3 scale and s exactly as there. Per element:
//   q = RN(|v| / s) as __fdiv_rn's fast path computes it (MUFU.RCP, one Newton step, q0 = |v| r, the exact residual
//   |v| - s q0 by FMA, q0 + r * residual), with the reciprocal hoisted out of the 16 divisions (ptxas repeats it);
//   the E2M1 value of q by rounding q to its E2M1 grid: q + c - c with c = 2^22 / 2^23 / 2^24 below 2 / below 4 /
//   above (the sum's ulp is then 0.5 / 1 / 2 and its round-to-nearest-even picks the even multiple at a tie: 0.25 -> 0,
//   0.75 -> 1, 1.25 -> 1, 1.75 -> 2, 2.5 -> 2, 3.5 -> 4, 5 -> 4, as e2m1_round_magnitude's > / >= thresholds), then
//   min(., 6): the value e2m1_magnitude_value(e2m1_round_magnitude(q)) exactly (q = inf -> 6; a NaN element: q is
//   NaN, fmaxf(q, 0) = 0 -> 0, where every threshold compare is false -> code 0);
//   times the decoded scale, with v's sign (copysignf), as there.
// b: activation_block_scale(v, act_gs, act_d) (the overload below; kForm16ClusterCompact also keeps b.sdec).
__device__ __forceinline__ bool quantize_activation_block_fast(float (&v)[16], const ActivationBlockScale& b) {
  const float sdec = b.sdec, s = b.s;
  if (!(s >= kQuantFastLo && s <= kQuantFastHi && b.amax <= kQuantFastHi)) return false;  // (NaN s: false)
  const float r0 = rcp_approx_ftz(s);
  const float r = fmaf(r0, fmaf(-s, r0, 1.0f), r0);
#pragma unroll
  for (int i = 0; i < 16; ++i) {
    const float a = fabsf(v[i]);
    const float q0 = __fmul_rn(a, r);
    const float q = fmaxf(fmaf(r, fmaf(-s, q0, a), q0), 0.0f);
    const float c = q < 2.0f ? 4194304.0f : (q < 4.0f ? 8388608.0f : 16777216.0f);
    const float e2m1 = fminf(__fsub_rn(__fadd_rn(q, c), c), 6.0f);
    v[i] = copysignf(__fmul_rn(e2m1, sdec), v[i]);
  }
  return true;
}
__device__ __forceinline__ bool quantize_activation_block_fast(float (&v)[16], float act_gs, float act_d) {
  return quantize_activation_block_fast(v, activation_block_scale(v, act_gs, act_d));
}

// The max of each thread's v over the CTA, returned to every thread: the last step of cta_amax and cta_amax_wide
// (fmaxf: the order does not matter). All threads of the CTA must call it (one barrier).
__device__ __forceinline__ float cta_max_to_all(float v) {
#pragma unroll
  for (int off = 16; off > 0; off /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
  __shared__ float warp_max[32];  // written once per CTA: one barrier
  if (threadIdx.x % 32 == 0) warp_max[threadIdx.x / 32] = v;
  __syncthreads();
  for (int w = 0; w < int(blockDim.x / 32); ++w) v = fmaxf(v, warp_max[w]);
  return v;
}

// This thread's max of |x| over slice `part` of `parts` of x ([n part / parts, n (part + 1) / parts) of its n 16-byte
// units, or of its elements when x is not 16-byte aligned), with kAmaxBatch 16-byte loads in flight per thread (the
// loads past the slice read zeros, and the max starts at zero). cta_amax_wide takes the whole of x (0 of 1),
// cluster_amax (gemv_w4a4_cluster.cuh) CTA rank r's slice of C.
template <int XDT>
__device__ __forceinline__ float thread_amax_slice(const GemvParams& p, int64_t part, int64_t parts) {
  using E = Elem<XDT>;
  constexpr int kPer16B = 16 / int(sizeof(typename E::T));
  constexpr int kAmaxBatch = 8;
  const int64_t count = int64_t(p.m) * p.k;
  float amax = 0.0f;
  if (p.x_aligned) {
    const uint4* xv = static_cast<const uint4*>(p.x);
    const int64_t units = count / kPer16B, end = units * (part + 1) / parts, stride = blockDim.x;
    for (int64_t i = units * part / parts + threadIdx.x; i < end; i += kAmaxBatch * stride) {
      uint4 u[kAmaxBatch];
#pragma unroll
      for (int b = 0; b < kAmaxBatch; ++b)
        u[b] = i + b * stride < end ? __ldg(xv + i + b * stride) : make_uint4(0, 0, 0, 0);
#pragma unroll
      for (int b = 0; b < kAmaxBatch; ++b) {
        const auto* e = reinterpret_cast<const typename E::T*>(&u[b]);
#pragma unroll
        for (int j = 0; j < kPer16B; ++j) amax = fmaxf(amax, fabsf(E::to_float(e[j])));
      }
    }
  } else {
    const auto* x = static_cast<const typename E::T*>(p.x);
    const int64_t end = count * (part + 1) / parts;
    for (int64_t i = count * part / parts + threadIdx.x; i < end; i += blockDim.x)
      amax = fmaxf(amax, fabsf(E::to_float(x[i])));
  }
  return amax;
}

// cta_amax (gemv_kernel.cuh) with kAmaxBatch 16-byte loads in flight per thread (16-byte aligned x) instead of one:
// the same max (fmaxf over the same elements; a max does not depend on the order). All threads of the CTA must call
// it (one barrier).
template <int XDT>
__device__ float cta_amax_wide(const GemvParams& p) {
  return cta_max_to_all(thread_amax_slice<XDT>(p, 0, 1));
}

}  // namespace reset_native::nvfp4_cuda::detail
