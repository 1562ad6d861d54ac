// Block-wide building blocks of the fused decode kernel: scans, the (max, sum exp, sum z*exp)
// entropy merge, order-preserving float keys and logits loads for each dtype.
#pragma once
#include <cuda_fp16.h>

#include <cstdint>

namespace reset_native::sampler::cuda_detail {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr unsigned kFullMask = 0xFFFFFFFFu;

// Logits element i of a row as float; bf16 is widened by a shift (no cuda_bf16 dependency).
template <int kDType>
__device__ __forceinline__ float load_logit(const void* row, std::int64_t i) {
  if constexpr (kDType == 0) {
    return __ldg(static_cast<const float*>(row) + i);
  } else if constexpr (kDType == 1) {
    const unsigned short b = __ldg(static_cast<const unsigned short*>(row) + i);
    return __uint_as_float(static_cast<unsigned>(b) << 16);
  } else {
    return __half2float(__ushort_as_half(__ldg(static_cast<const unsigned short*>(row) + i)));
  }
}

// Monotone map float -> uint32: a > b as floats iff key(a) > key(b), and a == b iff the keys are
// equal (-0 is folded onto +0 so the two zeros tie, as in the CPU comparisons). NaN is excluded
// beforehand.
__device__ __forceinline__ unsigned order_key(float x) {
  const unsigned u = __float_as_uint(__fadd_rn(x, 0.0f));
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// Exclusive scan of one uint64 per thread over the block; *total gets the sum. All threads call it.
__device__ inline unsigned long long block_exclusive_scan(unsigned long long v, unsigned long long* warp_sums,
                                                          unsigned long long* total) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  unsigned long long x = v;
  for (int o = 1; o < 32; o <<= 1) {
    const unsigned long long y = __shfl_up_sync(kFullMask, x, o);
    if (lane >= o) x += y;
  }
  if (lane == 31) warp_sums[warp] = x;
  __syncthreads();
  if (warp == 0) {
    unsigned long long w = lane < kWarps ? warp_sums[lane] : 0ull;
    for (int o = 1; o < 32; o <<= 1) {
      const unsigned long long y = __shfl_up_sync(kFullMask, w, o);
      if (lane >= o) w += y;
    }
    if (lane < kWarps) warp_sums[lane] = w;
  }
  __syncthreads();
  const unsigned long long before = warp > 0 ? warp_sums[warp - 1] : 0ull;
  *total = warp_sums[kWarps - 1];
  __syncthreads();  // warp_sums is reused by the next call
  return before + x - v;
}

// Partial state of the one-pass entropy: max, sum exp(z - max), sum (z - max) exp(z - max). The
// block merges these in float64.
struct EntropyPart {
  float max;
  double sum_exp;
  double sum_zexp;
  std::int64_t argmax;
  int nan;
};

// One thread's running entropy sums over its ~V/1024 elements, in float32: float64 here would cost
// two float->float64 conversions per element, which run at a quarter of the FP32 rate or less.
// Float sums of a few hundred terms stay within ~1e-8 relative of float64 (also for rows in
// ascending order, where every element raises the maximum).
struct ThreadEntropy {
  float max = -INFINITY;
  float sum_exp = 0.0f;
  float sum_zexp = 0.0f;
  std::int64_t argmax = -1;
  int nan = 0;

  __device__ __forceinline__ void add(float x, std::int64_t i) {
    if (x != x || x == INFINITY) {  // +inf has no softmax either: flagged like NaN
      nan = 1;
      return;
    }
    if (x == -INFINITY) return;
    if (x > max) {
      const float d = max - x;  // < 0; -inf when max is -inf
      const float f = __expf(d);
      if (f > 0.0f) {  // rescale to the new maximum (d * sum_exp is finite here)
        sum_zexp = (sum_zexp + d * sum_exp) * f;
        sum_exp = sum_exp * f + 1.0f;
      } else {  // nothing so far, or everything so far underflows against x
        sum_zexp = 0.0f;
        sum_exp = 1.0f;
      }
      max = x;
      argmax = i;
    } else {
      const float d = x - max;
      const float e = __expf(d);
      if (e > 0.0f) {  // skips d = -inf (float overflow of x - max), where d * e would be NaN
        sum_exp += e;
        sum_zexp += d * e;
      }
    }
  }

  __device__ __forceinline__ EntropyPart widen() const {
    return EntropyPart{max, static_cast<double>(sum_exp), static_cast<double>(sum_zexp), argmax, nan};
  }
};

__device__ __forceinline__ EntropyPart entropy_merge(const EntropyPart& a, const EntropyPart& b) {
  EntropyPart r;
  r.nan = a.nan | b.nan;
  const bool take_b = b.max > a.max || (b.max == a.max && b.argmax >= 0 && (a.argmax < 0 || b.argmax < a.argmax));
  r.max = take_b ? b.max : a.max;
  r.argmax = take_b ? b.argmax : a.argmax;
  r.sum_exp = 0.0;
  r.sum_zexp = 0.0;
  if (r.max == -INFINITY) return r;
  const EntropyPart* parts[2] = {&a, &b};
  for (const EntropyPart* p : parts) {
    if (p->max == -INFINITY) continue;
    const double d = static_cast<double>(p->max) - r.max;
    const double f = exp(d);
    r.sum_exp += p->sum_exp * f;
    r.sum_zexp += (p->sum_zexp + d * p->sum_exp) * f;
  }
  return r;
}

__device__ inline EntropyPart shfl_part(const EntropyPart& p, int offset) {
  EntropyPart q;
  q.max = __shfl_down_sync(kFullMask, p.max, offset);
  q.sum_exp = __shfl_down_sync(kFullMask, p.sum_exp, offset);
  q.sum_zexp = __shfl_down_sync(kFullMask, p.sum_zexp, offset);
  q.argmax = __shfl_down_sync(kFullMask, p.argmax, offset);
  q.nan = __shfl_down_sync(kFullMask, p.nan, offset);
  return q;
}

// Block reduction; the result is valid in every thread. `parts` is shared scratch of kWarps entries.
__device__ inline EntropyPart block_entropy(EntropyPart p, EntropyPart* parts) {
  for (int o = 16; o > 0; o >>= 1) p = entropy_merge(p, shfl_part(p, o));
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) parts[warp] = p;
  __syncthreads();
  if (warp == 0) {
    EntropyPart q = lane < kWarps ? parts[lane] : EntropyPart{-INFINITY, 0.0, 0.0, -1, 0};
    for (int o = 16; o > 0; o >>= 1) q = entropy_merge(q, shfl_part(q, o));
    if (lane == 0) parts[0] = q;
  }
  __syncthreads();
  const EntropyPart r = parts[0];
  __syncthreads();
  return r;
}

}  // namespace reset_native::sampler::cuda_detail
