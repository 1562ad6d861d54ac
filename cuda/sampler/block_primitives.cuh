// Block-wide building blocks of the decode kernel: scans, the (max, sum exp, sum z*exp) entropy
// merge, order-preserving float keys and logit loads for each dtype.
#pragma once
#include <cuda_fp16.h>

#include <cstdint>

namespace reset_native::sampler::cuda_detail {

// Entropy is summed per chunk of kChunk logits (fp32 inside a chunk, fp64 across chunks). The
// chunking is fixed, independent of the batch and of the launch shape, so a row's entropy is the
// same bits whatever the batch around it and whatever cluster size the launcher picks.
constexpr std::int64_t kChunk = 2048;
constexpr int kHistBins = 2048;  // the widest radix digit (11 bits)

// Running (max, sum exp(z - max), sum (z - max) exp(z - max)) of a set of logits, with its first
// argmax: the per-chunk partial, merged across chunks in fp64.
struct EntropyPart {
  float max;
  double sum_exp;
  double sum_zexp;
  std::int64_t argmax;
  std::int32_t nan;
};

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kPerThread = static_cast<int>(kChunk / kThreads);  // logits per thread in a chunk
constexpr unsigned kFullMask = 0xFFFFFFFFu;
static_assert(kChunk % kThreads == 0, "a chunk is whole tiles of the block");

// Bytes of one logit of the dtype (0 float32, 1 bfloat16, 2 float16).
template <int kDType>
constexpr int kLogitBytes = kDType == 0 ? 4 : 2;

// Logit i of a row held in shared memory in its storage format, as float; bf16 is widened by a
// shift (no cuda_bf16 dependency).
template <int kDType>
__device__ __forceinline__ float smem_logit(const void* values, int i) {
  if constexpr (kDType == 0) {
    return static_cast<const float*>(values)[i];
  } else if constexpr (kDType == 1) {
    return __uint_as_float(static_cast<unsigned>(static_cast<const unsigned short*>(values)[i]) << 16);
  } else {
    return __half2float(__ushort_as_half(static_cast<const unsigned short*>(values)[i]));
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

// Inside a chunk the sums stay in fp32 (at most kChunk terms <= 1 each, relative to the chunk's max);
// chunks are merged in fp64 (EntropyPart) by the row's first CTA.
struct ChunkPart {
  float max;
  float sum_exp;
  float sum_zexp;
  std::int64_t argmax;
  std::int32_t nan;
};

// Rescale factors exp(max_part - max_merged) <= 1: a float exp is accurate to ~1e-7 relative,
// well inside what an fp32 entropy resolves, and far cheaper than an fp64 exp.
__device__ __forceinline__ float exp_of(float d) { return __expf(d); }
__device__ __forceinline__ double exp_of(double d) { return static_cast<double>(expf(static_cast<float>(d))); }

// The part of an empty set of logits.
template <class Part>
__device__ __forceinline__ Part empty_part() {
  return Part{-INFINITY, 0, 0, -1, 0};
}

// (max, sum exp(z - max), sum (z - max) exp(z - max)) of the union of two sets; ties of the max
// keep the smaller argmax, so the result is the first index of the maximum.
template <class Part>
__device__ __forceinline__ Part entropy_merge(const Part& a, const Part& b) {
  using Real = decltype(a.sum_exp);
  Part r;
  r.nan = a.nan | b.nan;
  const bool take_b = b.max > a.max || (b.max == a.max && b.argmax >= 0 && (a.argmax < 0 || b.argmax < a.argmax));
  r.max = take_b ? b.max : a.max;
  r.argmax = take_b ? b.argmax : a.argmax;
  r.sum_exp = 0;
  r.sum_zexp = 0;
  if (r.max == -INFINITY) return r;
  const Part* parts[2] = {&a, &b};
  for (const Part* p : parts) {
    if (p->max == -INFINITY) continue;
    const Real d = static_cast<Real>(p->max) - static_cast<Real>(r.max);
    const Real f = exp_of(d);
    r.sum_exp += p->sum_exp * f;
    r.sum_zexp += (p->sum_zexp + d * p->sum_exp) * f;
  }
  return r;
}

template <class Part>
__device__ inline Part shfl_part(const Part& p, int offset) {
  Part q;
  q.max = __shfl_down_sync(kFullMask, p.max, offset);
  q.sum_exp = __shfl_down_sync(kFullMask, p.sum_exp, offset);
  q.sum_zexp = __shfl_down_sync(kFullMask, p.sum_zexp, offset);
  q.argmax = __shfl_down_sync(kFullMask, p.argmax, offset);
  q.nan = __shfl_down_sync(kFullMask, p.nan, offset);
  return q;
}

// Warp reduction in a fixed shuffle tree; the result is valid in lane 0.
template <class Part>
__device__ inline Part warp_entropy(Part p) {
  for (int o = 16; o > 0; o >>= 1) p = entropy_merge(p, shfl_part(p, o));
  return p;
}

// warp_entropy on N independent parts at once, level by level: the same merges as N calls, with
// the N shuffle/merge chains interleaved (latency hidden by independent work).
template <int N, class Part>
__device__ inline void warp_entropy_each(Part (&p)[N]) {
  for (int o = 16; o > 0; o >>= 1) {
    Part q[N];
#pragma unroll
    for (int k = 0; k < N; ++k) q[k] = shfl_part(p[k], o);
#pragma unroll
    for (int k = 0; k < N; ++k) p[k] = entropy_merge(p[k], q[k]);
  }
}

// The second level of block_entropy: lane 0 of the calling warp gets the merge of the kWarps warp
// results `parts` (entries beyond kWarps count as empty).
template <class Part>
__device__ inline Part merge_warp_parts(const Part* parts) {
  const int lane = threadIdx.x & 31;
  return warp_entropy(lane < kWarps ? parts[lane] : empty_part<Part>());
}

// Block reduction in a fixed tree (the result does not depend on scheduling); valid in every
// thread. `parts` is shared scratch of kWarps entries.
template <class Part>
__device__ inline Part block_entropy(Part p, Part* parts) {
  p = warp_entropy(p);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) parts[warp] = p;
  __syncthreads();
  if (warp == 0) {
    const Part q = merge_warp_parts(parts);
    if (lane == 0) parts[0] = q;
  }
  __syncthreads();
  const Part r = parts[0];
  __syncthreads();
  return r;
}

}  // namespace reset_native::sampler::cuda_detail
