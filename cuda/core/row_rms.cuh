// The fp32 sum of squares of one RMSNorm row, in one fixed order shared by the rms_norm op (cuda/ops/rms_norm.cu)
// and the NVFP4 GEMV's fused RMSNorm prologue (cuda/nvfp4/gemv_prologue.cuh), so that the fused GEMV sees exactly
// the bits the separate op would have written. The order: 256 lanes; lane L sums (fmaf) the elements of 8-element
// groups 8L, 8L + 2048, 8L + 4096, ... in element order; each warp's 32 lanes combine by an xor butterfly; the 8
// warp sums are added in warp order. Which thread computes a lane's partial does not matter, only this order.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace reset_native::cuda_core {

constexpr int kRmsLanes = 256;
constexpr int kRmsWarps = kRmsLanes / 32;
constexpr int kRmsGroup = 8;  // consecutive elements per group (one 16-byte load of a 16-bit type)

// Lane `lane`'s partial sum of squares of row[0, h). vec: the row is 16-byte aligned and h % 8 == 0, so each group
// is one (16-bit types) or two (fp32) vector loads; otherwise element loads in the same order.
template <class T, class ToFloat>
__device__ __forceinline__ float rms_lane_partial(const T* row, std::int64_t h, int lane, bool vec, ToFloat to_float) {
  float sum = 0.0f;
  constexpr int kVecs = int(sizeof(T)) * kRmsGroup / 16;  // 16-byte loads per group
  for (std::int64_t base = std::int64_t(kRmsGroup) * lane; base < h; base += std::int64_t(kRmsGroup) * kRmsLanes) {
    T v[kRmsGroup];
    if (vec) {
#pragma unroll
      for (int i = 0; i < kVecs; ++i) reinterpret_cast<uint4*>(v)[i] = reinterpret_cast<const uint4*>(row + base)[i];
    } else {
#pragma unroll
      for (int e = 0; e < kRmsGroup; ++e) v[e] = base + e < h ? row[base + e] : T(0.0f);
    }
#pragma unroll
    for (int e = 0; e < kRmsGroup; ++e) {
      const float f = to_float(v[e]);
      sum = fmaf(f, f, sum);
    }
  }
  return sum;
}

// The xor butterfly of one warp: every lane returns the warp's sum.
__device__ __forceinline__ float rms_warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xFFFFFFFFu, v, o);
  return v;
}

// rsqrt(mean + eps) from the 8 warp sums of a row, added in warp order (as transformers: mean in fp32, + eps).
__device__ __forceinline__ float rms_scale(const float* warp_sums, std::int64_t h, float eps) {
  float total = 0.0f;
#pragma unroll
  for (int i = 0; i < kRmsWarps; ++i) total += warp_sums[i];
  return rsqrtf(__fadd_rn(__fdiv_rn(total, float(h)), eps));
}

}  // namespace reset_native::cuda_core
