// Block-wide building blocks of the decode kernels: scans, the max-first entropy parts (a chunk's and a row's),
// order-preserving float keys, logits loads for each dtype and the "last block of a row"
// hand-off.
#pragma once
#include <cuda_fp16.h>

#include <cstdint>

#include "sampler/device_workspace.hpp"
#include "trace.cuh"

namespace reset_native::sampler::cuda_detail {

using detail::EntropyPart;
using detail::kChunk;

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kPerThread = static_cast<int>(kChunk / kThreads);  // logits per thread in a chunk
constexpr unsigned kFullMask = 0xFFFFFFFFu;
static_assert(kChunk % kThreads == 0, "a chunk is whole tiles of the block");

// A 16-bit logit's bits as float (kDType 1: bf16, widened by a shift, no cuda_bf16 dependency; 2: fp16).
template <int kDType>
__device__ __forceinline__ float widen_half(unsigned short b) {
  if constexpr (kDType == 1) {
    return __uint_as_float(static_cast<unsigned>(b) << 16);
  } else {
    return __half2float(__ushort_as_half(b));
  }
}

// Logits element i of a row as float.
template <int kDType>
__device__ __forceinline__ float load_logit(const void* row, std::int64_t i) {
  if constexpr (kDType == 0) {
    return __ldg(static_cast<const float*>(row) + i);
  } else {
    return widen_half<kDType>(__ldg(static_cast<const unsigned short*>(row) + i));
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
// Each warp scans with shuffles; after one barrier every thread adds the kWarps warp totals itself
// (broadcast reads of shared memory: shorter than a second scan by one warp and a second barrier).
// The sums are integers, so the order of the adds does not matter. "open": no closing barrier, for a
// caller that uses warp_sums no more (block_exclusive_scan adds it).
__device__ __forceinline__ unsigned long long block_exclusive_scan_open(unsigned long long v,
                                                                        unsigned long long* warp_sums,
                                                                        unsigned long long* total) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  unsigned long long x = v;
  for (int o = 1; o < 32; o <<= 1) {
    const unsigned long long y = __shfl_up_sync(kFullMask, x, o);
    if (lane >= o) x += y;
  }
  if (lane == 31) warp_sums[warp] = x;
  __syncthreads();
  unsigned long long before = 0, all = 0;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) {
    const unsigned long long s = warp_sums[w];
    before += w < warp ? s : 0ull;
    all += s;
  }
  *total = all;
  return before + x - v;
}

__device__ inline unsigned long long block_exclusive_scan(unsigned long long v, unsigned long long* warp_sums,
                                                          unsigned long long* total) {
  const unsigned long long before = block_exclusive_scan_open(v, warp_sums, total);
  __syncthreads();  // warp_sums is reused by the next call
  return before;
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

// ---- A chunk's part, max first ---------------------------------------------------------------------
// A chunk (kChunk logits, kPerThread per thread of a block) is reduced with its maximum known before any
// exponential: the warp's maximum first (shuffles of one float), then every logit's exp(z - warp max) summed
// in fp32 (explicit roundings) in a fixed butterfly, then the kWarps warp parts rescaled once to the chunk's
// maximum and summed by one warp. An earlier version merged (max, sums) pairs in a 10-level tree, each level
// with two exponentials on its critical path: at B = 64 those merges were most of the stats pass's
// instructions (docs/sampler.md). Butterfly sums give every lane the same bits (a + b == b + a), and every
// kernel and grouping calls these functions, so a chunk's part is the same bits everywhere.

// The first index of the maximum over the warp: the smallest of the lanes' candidate indices (each lane passes
// INT32_MAX when it holds none); -1 when no lane holds one.
__device__ __forceinline__ std::int32_t warp_first_index(std::int32_t index) {
  const unsigned m = __reduce_min_sync(kFullMask, static_cast<unsigned>(index));
  return m == static_cast<unsigned>(INT32_MAX) ? -1 : static_cast<std::int32_t>(m);
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
  r.argmax = warp_first_index(holds ? q.argmax : INT32_MAX);
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

// The row's combine of its chunks' entropy parts, max first (docs/sampler.md, CUDA details): one warp,
// lane l takes parts l, l + 32, ... in that order. The row's max and first argmax are exact and
// order-free (the maximum of the maxima; the smallest argmax among the parts that reach it, whose max
// is then the result's, so a -0 / +0 tie keeps the first one's sign); then each part is rescaled once,
// by exp(max_i - max), and the fp64 sums are added per lane in chunk order and across lanes in a fixed
// butterfly of plain adds. The result depends only on the parts (not on the batch or the launch shape),
// and every lane ends with the same bits (a + b == b + a). `load(c)` gives part c; the first
// kCombineCached parts of a lane are kept in registers (rows of up to 128 chunks, V <= 262144), the
// others are loaded twice (once for the max, once for the sums: the same values, the same result).
constexpr int kCombineCached = 4;
constexpr unsigned kNoArgmax = 0xFFFFFFFFu;  // argmaxes are < 2^31 (a row has at most 65535 chunks)

// Part p's share of the sums, rescaled to the row's max m (m > -inf); a -inf part adds nothing. The
// explicit fmas keep the rounding the same in every kernel that inlines this.
__device__ __forceinline__ void add_rescaled(float p_max, double p_sum_exp, double p_sum_zexp, float m, double& s,
                                             double& t) {
  if (p_max == -INFINITY) return;
  const double d = static_cast<double>(p_max) - static_cast<double>(m);
  // A float exp: accurate to ~1e-7 relative, far inside what the fp32 entropy resolves.
  const double f = static_cast<double>(expf(static_cast<float>(d)));
  s = fma(p_sum_exp, f, s);
  t = fma(fma(d, p_sum_exp, p_sum_zexp), f, t);
}

// add_rescaled of a cached part without the branch (kFast of combine_cached_parts): the same operations in the same
// order, taken by a select where the part is present (max > -inf), so that ptxas may interleave the cached parts'
// chains instead of running one branch region after the other. An absent part's operations (on -inf) are discarded.
__device__ __forceinline__ void add_rescaled_selected(float p_max, double p_sum_exp, double p_sum_zexp, float m,
                                                      double& s, double& t) {
  const double d = static_cast<double>(p_max) - static_cast<double>(m);
  const double f = static_cast<double>(expf(static_cast<float>(d)));
  const double s_new = fma(p_sum_exp, f, s);
  const double t_new = fma(fma(d, p_sum_exp, p_sum_zexp), f, t);
  const bool present = p_max != -INFINITY;
  s = present ? s_new : s;
  t = present ? t_new : t;
}

// The float of an order_key (its inverse for every float but -0, whose key is +0's).
__device__ __forceinline__ float float_of_key(unsigned key) {
  return __uint_as_float((key & 0x80000000u) ? (key & 0x7FFFFFFFu) : ~key);
}
constexpr unsigned kKeyOfZero = 0x80000000u;  // order_key(+0) == order_key(-0)

// All 32 lanes of one warp call it (warp-uniform n); the result is valid in every lane. kCached parts per lane are
// kept in registers (kCombineCached, or 3 for the batched form of rows of up to 96 parts: fewer registers held; the
// parts past them are loaded in the loops below, in the same per-lane order, so the same bits either way).
// kBatched (RESET_NATIVE_SAMPLER_COMBINE_LOADS, session 13): the lane's cached parts are all loaded before the first
// is noted. Loaded and noted part by part (each load and its use in one `if (c < n)`), ptxas waited for each part
// before issuing the next one's loads: three L2 round trips in a row at V = 151936 (75 parts). The same parts noted
// in the same order: the same bits.
// kFast (RESET_NATIVE_SAMPLER_FAST_FINISH, session 21; the stats pass's row combine): the row's max straight from the
// max key (float_of_key) instead of after the argmax's reduction, vote and shuffle (a zero max, whose key does not give
// its sign, still takes the winner's), and the cached parts rescaled without branches (add_rescaled_selected). The
// same values in the same order: the same bits.
template <int kCached, bool kBatched, class Load, bool kFast = false>
__device__ __forceinline__ EntropyPart combine_cached_parts(unsigned n, const Load& load) {
  const unsigned lane = threadIdx.x & 31;
  float m[kCached];
  double s[kCached], t[kCached];
  float lane_max = -INFINITY;
  unsigned lane_arg = kNoArgmax;  // the first argmax among this lane's parts of max lane_max
  int nan = 0;
  // In increasing chunk order only a strictly greater max replaces: ties keep the first. A NaN max
  // is never taken (its part flags the row, which is rejected).
  const auto note = [&](const auto& p) {  // an EntropyPart or a NarrowPart
    nan |= p.nan;
    if (p.argmax >= 0 && !isnan(p.max) && (lane_arg == kNoArgmax || p.max > lane_max)) {
      lane_max = p.max;
      lane_arg = static_cast<unsigned>(p.argmax);
    }
  };
  // Cached part k of this lane: noted, and its max and sums kept (an absent part: -inf and zeros).
  const auto keep = [&](int k, bool present, const auto& get) {
    m[k] = -INFINITY;
    s[k] = 0.0;
    t[k] = 0.0;
    if (present) {
      const auto p = get();
      note(p);
      m[k] = p.max;
      s[k] = p.sum_exp;
      t[k] = p.sum_zexp;
    }
  };
  if constexpr (kBatched) {
    decltype(load(0u)) cached[kCached];
#pragma unroll
    for (int k = 0; k < kCached; ++k) {
      const unsigned c = lane + 32u * k;
      if (c < n) cached[k] = load(c);
    }
#pragma unroll
    for (int k = 0; k < kCached; ++k) keep(k, lane + 32u * k < n, [&] { return cached[k]; });
  } else {
#pragma unroll
    for (int k = 0; k < kCached; ++k) {
      const unsigned c = lane + 32u * k;
      keep(k, c < n, [&] { return load(c); });
    }
  }
  for (unsigned c = lane + 32u * kCached; c < n; c += 32u) note(load(c));
  // The row's max key (order_key: ties of -0 and +0 are one key), then the first argmax among the
  // lanes that reach it, then that lane's max itself.
  const unsigned top = __reduce_max_sync(kFullMask, lane_arg == kNoArgmax ? 0u : order_key(lane_max));
  const bool reaches = lane_arg != kNoArgmax && order_key(lane_max) == top;
  // kFast: the argmax's reduction after the sums (nothing before them waits for it), but for a zero max.
  unsigned arg = kNoArgmax;
  if constexpr (!kFast) arg = __reduce_min_sync(kFullMask, reaches ? lane_arg : kNoArgmax);
  float row_max;
  if constexpr (kFast) {
    // top 0: no lane holds a part (a lane's key is never 0: that is a NaN's, and NaN maxima are not noted).
    row_max = top == 0u ? -INFINITY : float_of_key(top);
    if (top == kKeyOfZero) {  // +0 or -0: the first argmax's, as below
      arg = __reduce_min_sync(kFullMask, reaches ? lane_arg : kNoArgmax);
      const unsigned winner = __ffs(__ballot_sync(kFullMask, reaches && lane_arg == arg));
      row_max = winner ? __shfl_sync(kFullMask, lane_max, winner - 1) : -INFINITY;
    }
  } else {
    const unsigned winner = __ffs(__ballot_sync(kFullMask, reaches && lane_arg == arg));  // 0: no lane
    row_max = winner ? __shfl_sync(kFullMask, lane_max, winner - 1) : -INFINITY;
  }
  double sum_exp = 0.0, sum_zexp = 0.0;
  if (row_max != -INFINITY) {
#pragma unroll
    for (int k = 0; k < kCached; ++k) {
      if constexpr (kFast) {
        add_rescaled_selected(m[k], s[k], t[k], row_max, sum_exp, sum_zexp);
      } else {
        add_rescaled(m[k], s[k], t[k], row_max, sum_exp, sum_zexp);
      }
    }
    for (unsigned c = lane + 32u * kCached; c < n; c += 32u) {
      const auto p = load(c);
      add_rescaled(p.max, p.sum_exp, p.sum_zexp, row_max, sum_exp, sum_zexp);
    }
  }
  if constexpr (kFast) arg = __reduce_min_sync(kFullMask, reaches ? lane_arg : kNoArgmax);
  for (int o = 16; o > 0; o >>= 1) {
    sum_exp += __shfl_xor_sync(kFullMask, sum_exp, o);
    sum_zexp += __shfl_xor_sync(kFullMask, sum_zexp, o);
  }
  EntropyPart r;
  r.max = row_max;
  r.sum_exp = sum_exp;
  r.sum_zexp = sum_zexp;
  r.argmax = arg == kNoArgmax ? -1 : static_cast<std::int64_t>(arg);
  r.nan = __any_sync(kFullMask, nan) ? 1 : 0;
  return r;
}

// kFast: combine_cached_parts's fast form (the batched loads only).
template <bool kFast = false, class Load>
__device__ __forceinline__ EntropyPart warp_combine_parts(unsigned n, const Load& load, bool batched = false) {
  if constexpr (kFast) {
    if (n <= 96u) return combine_cached_parts<3, true, Load, true>(n, load);
    return combine_cached_parts<kCombineCached, true, Load, true>(n, load);
  }
  if (batched && n <= 96u) return combine_cached_parts<3, true>(n, load);
  if (batched) return combine_cached_parts<kCombineCached, true>(n, load);
  return combine_cached_parts<kCombineCached, false>(n, load);
}

// warp_combine_parts run by warp 0 and given to every thread of the block through `slot` (shared).
// All threads call it; it ends with a barrier, so shared data written before the call is complete.
template <class Load>
__device__ __forceinline__ EntropyPart block_combine_parts(unsigned n, const Load& load, EntropyPart* slot) {
  if (threadIdx.x < 32) {
    const EntropyPart r = warp_combine_parts(n, load);
    if (threadIdx.x == 0) *slot = r;
  }
  __syncthreads();
  const EntropyPart r = *slot;
  __syncthreads();  // the slot may be written again by a later call
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

// The same part with its argmax as the low 32 bits of the stored one: argmaxes are -1 or < 2^31 (a row has at most
// 65535 chunks of 2048), so the same value as a signed 32-bit integer, one register fewer and no widening right after
// the load (the batched row combine holds several parts' loads in flight at once).
struct NarrowPart {
  float max;
  double sum_exp, sum_zexp;
  std::int32_t argmax, nan;
};
__device__ inline NarrowPart load_part_narrow(const EntropyPart* p) {
  NarrowPart q;
  q.max = __ldcg(&p->max);
  q.sum_exp = __ldcg(&p->sum_exp);
  q.sum_zexp = __ldcg(&p->sum_zexp);
  q.argmax = __ldcg(reinterpret_cast<const std::int32_t*>(&p->argmax));  // little-endian: the low word
  q.nan = __ldcg(&p->nan);
  return q;
}

// Called by every thread of every block of a row once the block's results are written: true in the
// last block of the row to arrive, which may then read all of them (through L2: __ldcg). The counter
// is reset to zero by that block, ready for the next kernel of the step (and for graph replays).
// The barrier orders every thread's writes before thread 0's arrival, an atomic add with release and
// acquire semantics at GPU scope: it publishes the block's writes (a release is cumulative: it covers
// what the barrier ordered before it) and, in the last block, orders the other blocks' writes before
// the reads after the second barrier. This is cooperative groups' grid barrier pattern; it replaces a
// sequentially consistent fence in every thread before the barrier and another after the atomic
// (MEMBAR.SC.GPU each), which cost more. `trace_kernel`: the trace marks 12 (past the barrier) and 13
// (the count returned) of that kernel, in trace builds.
__device__ inline bool last_block_of_row(unsigned* counter, unsigned blocks, int* s_flag, int trace_kernel = -1) {
  __syncthreads();
  if (threadIdx.x == 0) {
    if (trace_kernel >= 0) RN_TRACE(trace_kernel, 12);
    unsigned before;
    asm volatile("atom.add.acq_rel.gpu.global.u32 %0, [%1], 1;" : "=r"(before) : "l"(counter) : "memory");
    if (trace_kernel >= 0) RN_TRACE(trace_kernel, 13);
    const int last = before + 1u == blocks;
    if (last) *counter = 0u;  // read next by a later kernel of the stream
    *s_flag = last;
  }
  (void)trace_kernel;
  __syncthreads();
  return *s_flag != 0;
}

}  // namespace reset_native::sampler::cuda_detail
