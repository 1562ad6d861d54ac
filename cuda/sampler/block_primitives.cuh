// Block-wide building blocks of the decode kernels: scans, the (max, sum exp, sum z*exp) entropy
// merge, order-preserving float keys, logits loads for each dtype and the "last block of a row"
// hand-off.
#pragma once
#include <cuda_fp16.h>

#include <cstdint>

#include "sampler/device_workspace.hpp"

namespace reset_native::sampler::cuda_detail {

using detail::EntropyPart;
using detail::kChunk;

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kPerThread = static_cast<int>(kChunk / kThreads);  // logits per thread in a chunk
constexpr unsigned kFullMask = 0xFFFFFFFFu;
static_assert(kChunk % kThreads == 0, "a chunk is whole tiles of the block");

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

// Inside a chunk the sums stay in fp32 (at most kChunk terms <= 1 each, relative to the chunk's max);
// chunks are merged in fp64 (EntropyPart) by the row's last block.
struct ChunkPart {
  float max;
  float sum_exp;
  float sum_zexp;
  std::int32_t argmax;  // < 2^31: a row has at most 65535 chunks (make_workspace); one shuffle, 32-bit compares
  std::int32_t nan;
};

// Rescale factors exp(max_part - max_merged) <= 1 of the row combine: a float exp is accurate to ~1e-7
// relative, well inside what an fp32 entropy resolves, and far cheaper than an fp64 exp.
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
    // Explicit fma: the same rounding in every kernel that inlines this (no contraction choices).
    const Real d = static_cast<Real>(p->max) - static_cast<Real>(r.max);
    const Real f = exp_of(d);
    r.sum_exp = fma(p->sum_exp, f, r.sum_exp);
    r.sum_zexp = fma(fma(d, p->sum_exp, p->sum_zexp), f, r.sum_zexp);
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

// ---- A chunk's part, max first ---------------------------------------------------------------------
// A chunk (kChunk logits, kPerThread per thread of a block) is reduced with its maximum known before any
// exponential: the warp's maximum first (shuffles of one float), then every logit's exp(z - warp max) summed
// in fp32 (explicit roundings) in a fixed butterfly, then the kWarps warp parts rescaled once to the chunk's
// maximum and summed by one warp. An earlier version merged (max, sums) pairs in a 10-level tree, each level
// with two exponentials on its critical path: at B = 64 those merges were most of the stats pass's
// instructions (docs/sampler.md). Butterfly sums give every lane the same bits (a + b == b + a), and every
// kernel and grouping calls these functions, so a chunk's part is the same bits everywhere.

// The first index of the maximum over the warp: the smallest candidate index (INT32_MAX: none).
__device__ __forceinline__ std::int32_t warp_min_index(std::int32_t index) {
  return static_cast<std::int32_t>(__reduce_min_sync(kFullMask, static_cast<unsigned>(index)));
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(kFullMask, v, o));
  return v;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = __fadd_rn(v, __shfl_xor_sync(kFullMask, v, o));
  return v;
}

// One warp, all lanes: the chunk's part from its kWarps warp parts (lane l < kWarps reads parts[l]), valid in
// every lane. Each warp part is rescaled by exp(its max - the chunk's max) once; empty parts (max -inf: every
// logit -inf) add nothing.
__device__ __forceinline__ ChunkPart merge_warp_parts(const ChunkPart* parts) {
  const int lane = threadIdx.x & 31;
  const ChunkPart q = lane < kWarps ? parts[lane] : ChunkPart{-INFINITY, 0.0f, 0.0f, -1, 0};
  ChunkPart r;
  r.max = warp_max(q.max);
  r.nan = __any_sync(kFullMask, q.nan != 0);
  const bool holds = q.max == r.max && q.argmax >= 0;
  r.argmax = warp_min_index(holds ? q.argmax : INT32_MAX);
  if (r.argmax == INT32_MAX) r.argmax = -1;
  float s = 0.0f, z = 0.0f;
  if (q.max != -INFINITY) {
    const float d = __fsub_rn(q.max, r.max);
    const float f = __expf(d);
    s = __fmul_rn(q.sum_exp, f);
    z = __fmul_rn(__fmaf_rn(d, q.sum_exp, q.sum_zexp), f);
  }
  // The kWarps parts sit in lanes 0..kWarps-1: log2(kWarps) butterfly levels inside them.
  static_assert(kWarps <= 32 && (kWarps & (kWarps - 1)) == 0, "whole butterfly levels");
#pragma unroll
  for (int o = kWarps / 2; o > 0; o >>= 1) {
    s = __fadd_rn(s, __shfl_xor_sync(kFullMask, s, o));
    z = __fadd_rn(z, __shfl_xor_sync(kFullMask, z, o));
  }
  r.sum_exp = __shfl_sync(kFullMask, s, 0);
  r.sum_zexp = __shfl_sync(kFullMask, z, 0);
  return r;
}

// The whole block: the chunk's part from every warp's part (warp_part valid in every lane), valid in every
// thread. `parts` is shared scratch of kWarps entries; two barriers (the first publishes everything the block
// wrote to shared memory before the call).
__device__ inline ChunkPart block_chunk_part(const ChunkPart& warp_part, ChunkPart* parts) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) parts[warp] = warp_part;
  __syncthreads();
  const ChunkPart r = merge_warp_parts(parts);  // every warp, the same bits
  __syncthreads();                              // parts is reused by the next call
  return r;
}

// The row combine: a block reduction of entropy parts in a fixed tree (warp shuffles, then one warp over
// the warps' results; the result does not depend on scheduling) when only threads [0, holders) hold parts
// (the others hold empty ones), without the levels whose partners are all empty. Merging with an empty part
// returns the part bit for bit, so skipping them changes nothing; a row of 75 chunks takes 7 merge levels
// on its critical path instead of 10. Valid in every thread; `parts` is shared scratch of kWarps entries.
template <class Part>
__device__ inline Part block_entropy_of_holders(Part p, unsigned holders, Part* parts) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int in_warp = min(max(static_cast<int>(holders) - warp * 32, 0), 32);  // warp-uniform
  for (int o = 16; o > 0; o >>= 1) {
    if (o < in_warp) p = entropy_merge(p, shfl_part(p, o));
  }
  if (lane == 0) parts[warp] = p;
  __syncthreads();
  if (warp == 0) {
    const int warps = static_cast<int>((min(holders, static_cast<unsigned>(kThreads)) + 31) / 32);
    Part q = lane < kWarps ? parts[lane] : empty_part<Part>();
    for (int o = 16; o > 0; o >>= 1) {
      if (o < warps) q = entropy_merge(q, shfl_part(q, o));
    }
    if (lane == 0) parts[0] = q;
  }
  __syncthreads();
  const Part r = parts[0];
  __syncthreads();
  return r;
}

// A partial written by another block of this grid: read through L2, never a stale L1 line.
__device__ inline EntropyPart load_part(const EntropyPart* p) {
  EntropyPart q;
  q.max = __ldcg(&p->max);
  q.sum_exp = __ldcg(&p->sum_exp);
  q.sum_zexp = __ldcg(&p->sum_zexp);
  q.argmax = static_cast<std::int64_t>(__ldcg(reinterpret_cast<const long long*>(&p->argmax)));
  q.nan = __ldcg(&p->nan);
  return q;
}

// Called by every thread of every block of a row once the block's results are written: true in the
// last block of the row to arrive, which may then read all of them (through L2: __ldcg). The counter
// is reset to zero by that block, ready for the next kernel of the step (and for graph replays).
// Every thread fences its own writes before the block is counted; on the reading side one fence,
// by the thread that saw the last arrival, before the barrier.
__device__ inline bool last_block_of_row(unsigned* counter, unsigned blocks, int* s_flag) {
  __threadfence();  // this block's partials are visible before it is counted
  __syncthreads();
  if (threadIdx.x == 0) {
    const unsigned arrived = atomicAdd(counter, 1u) + 1u;
    const int last = arrived == blocks;
    if (last) {
      *counter = 0u;
      __threadfence();
    }
    *s_flag = last;
  }
  __syncthreads();
  return *s_flag != 0;
}

}  // namespace reset_native::sampler::cuda_detail
