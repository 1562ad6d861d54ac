// ReSET decode step on the GPU: ONE kernel launch per step for the whole batch, all state in device
// memory, no host synchronisation, no workspace and no allocation (CUDA-graph capturable).
//
// One thread-block cluster (sm_90) per row, C CTAs of 256 threads. The row is split into fixed
// chunks of kChunk = 2048 logits and CTA r of the cluster owns chunks [r*chunks/C, (r+1)*chunks/C).
// Each CTA copies its slice of the row from global memory into its shared memory once; every later
// pass reads shared memory, and the CTAs combine their partials through distributed shared memory
// (DSMEM) between cluster barriers:
//   1. entropy: per chunk (max, argmax, sum exp, sum z*exp) in the same thread layout and fixed
//      reduction tree as before the fusion (block_primitives.cuh), written into rank 0's shared
//      memory; rank 0 merges the chunks in a fixed tree, checks the row, runs the state machine
//      (transition.hpp, the CPU code) and plans the rest of the row; the other CTAs copy the plan;
//   2. radix select (only with top-k and/or top-p): 11 + 11 + 10 bits of order-preserving float keys
//      (two levels suffice for bf16/fp16). Each CTA histograms its slice; each CTA then sums a 1/C
//      share of the bins over the cluster and writes the sums into every CTA, so every CTA picks the
//      same digit from the same complete histogram without a further barrier. Top-k counts keys,
//      top-p adds probability weights held in 2^-24 fixed point: every sum is an exact integer;
//   3. sample: each CTA's kept mass; every CTA reads the C masses, and the CTA holding the uniform's
//      quantile finds the token by one block scan in index order.
// Because all sums after the entropy are exact integers and the entropy's chunking and trees do not
// depend on C, the result is bit-identical for every cluster size and to the former multi-kernel
// implementation (same chunking, same trees, same fixed-point weights, same Philox draw).
#include <cooperative_groups.h>
#include <cuda_pipeline.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <utility>

#include "block_primitives.cuh"
#include "reset_native/error.hpp"
#include "reset_native/sampler.hpp"
#include "sampler/philox.hpp"
#include "sampler/transition.hpp"

namespace reset_native::sampler {

namespace cuda_detail {

namespace cg = cooperative_groups;

constexpr int kMaxCluster = 16;  // non-portable on sm_90 (portable limit 8): falls back when refused

// What the later phases need to know about a row; written by rank 0, copied by the other CTAs.
struct RowPlan {
  double uniform;          // the row's random number for the draw
  double target;           // radix search: measure still to reach inside the chosen prefix
  std::int64_t argmax;     // first index of the maximum
  float zmax;              // row maximum
  float inv_t;             // 1 / temperature
  std::uint32_t prefix;    // radix search: key bits chosen so far
  std::uint32_t mask;      // ... and which bits those are
  std::uint32_t floor_key; // keep keys >= floor_key (top-k, then top-p threshold)
  std::int32_t active;     // 1: the row still needs sampling (not greedy, not rejected)
};

struct KernelArgs {
  detail::TransitionParams params;
  double top_p;
  std::int64_t top_k;
  const std::uint8_t* classes;
  std::int64_t vocab;
  StateView state;
  const std::int64_t* last_tokens;
  const std::int64_t* slots;
  const void* logits;
  std::int64_t row_stride;
  std::int64_t* tokens;
  float* temperatures;
  float* entropies;
  std::int32_t* error_flag;
  std::int64_t* phase_clocks;  // optional, CudaLaunchOptions
  unsigned chunks;             // chunks per row
};

// Phase ends recorded in CudaLaunchOptions::phase_clocks (slots of kPhaseSlots per CTA).
enum Phase : int {
  kPhaseStart = 0,
  kPhaseCopied = 1,    // the slice is in shared memory
  kPhaseEntropy = 2,   // this CTA's chunk partials are computed
  kPhaseGathered = 3,  // first cluster barrier: rank 0 holds every partial
  kPhasePlanned = 4,   // the row's plan is known in this CTA
  kPhaseLevel0 = 5,    // + n: radix level n done (top-k levels first, then top-p levels)
  kPhaseSampled = 12,  // the draw is done
  kPhaseEnd = 13,      // the last cluster barrier
};
static_assert(kPhaseEnd < kPhaseSlots, "phase slots");

// Thread 0 of the CTA records clock64() (SM cycles) at the end of phase `p` when profiling.
__device__ __forceinline__ void mark(const KernelArgs& a, int p) {
  if (a.phase_clocks != nullptr && threadIdx.x == 0) {
    a.phase_clocks[static_cast<std::int64_t>(blockIdx.x) * kPhaseSlots + p] = clock64();
  }
}

// Static shared memory of the decode kernel (the row slice and histograms are dynamic).
struct StaticShared {
  EntropyPart row_warps[kWarps];
  unsigned long long warp_sums[kWarps];
  unsigned long long cta_masses[kMaxCluster];
  unsigned long long cta_mass;  // this CTA's kept mass, read by the whole cluster
  unsigned long long above;
  unsigned long long run_at;  // the draw: mass before the run holding the quantile
  RowPlan plan;
  unsigned digit;
  int run_first;              // ... and its first logit
};

// Dynamic shared memory: the slice, then a region used first for the entropy partials (the row's
// chunk partials, filled in rank 0 by the whole cluster, then this CTA's per-warp partials of its
// chunks) and afterwards for the histograms: the cluster-wide sums (uint64) and this CTA's own
// counts (two uint32 halves, see radix_level).
constexpr std::int64_t kHistBytes = kHistBins * (8 + 4 + 4);

__host__ __device__ inline unsigned chunks_per_cta(unsigned chunks, unsigned cluster) {
  return (chunks + cluster - 1) / cluster;
}

__host__ __device__ inline std::int64_t slice_bytes(unsigned chunks, unsigned cluster, int logit_bytes) {
  return static_cast<std::int64_t>(chunks_per_cta(chunks, cluster)) * kChunk * logit_bytes;
}

// Offset of the per-warp chunk partials inside the region (after the row's chunk partials).
__host__ __device__ inline std::int64_t warp_parts_offset(unsigned chunks) {
  return static_cast<std::int64_t>(chunks) * sizeof(EntropyPart);  // a multiple of 8
}

std::int64_t dynamic_smem_bytes(unsigned chunks, unsigned cluster, int logit_bytes) {
  const std::int64_t entropy = warp_parts_offset(chunks) + static_cast<std::int64_t>(chunks_per_cta(chunks, cluster)) *
                                                                 kWarps * sizeof(ChunkPart);
  return slice_bytes(chunks, cluster, logit_bytes) + std::max<std::int64_t>(kHistBytes, entropy);
}

// This CTA's part of a row: global logits [begin, begin + len) held in `values`.
struct Slice {
  const void* values;
  std::int64_t begin;
  int len;
  unsigned first_chunk, end_chunk;
};

// True when last_token is a valid input (-1 or a vocabulary id).
__device__ __forceinline__ bool token_ok(const KernelArgs& a, std::int64_t last) { return last >= -1 && last < a.vocab; }

// Marks a rejected row: flag for the host, sentinel outputs, slot untouched.
__device__ void reject_row(const KernelArgs& a, std::int64_t row, int bad, float entropy) {
  atomicOr(a.error_flag, bad);
  if (a.tokens) a.tokens[row] = -1;  // update_kernel has no tokens
  a.temperatures[row] = NAN;
  if (a.entropies) a.entropies[row] = entropy;
}

// 1 when an earlier row names the same slot and would itself be accepted on its slot and token:
// that row owns the slot in this step and this one is rejected (kErrorSlotTwice). A scan instead of
// per-slot busy flags: deterministic (the first row wins) and without state between launches.
// All threads of the block call it; the result is valid in all of them.
__device__ int slot_taken_before(const KernelArgs& a, std::int64_t row) {
  int taken = 0;
  if (a.slots) {
    const std::int64_t slot = a.slots[row];
    for (std::int64_t j = threadIdx.x; j < row; j += kThreads) {
      if (a.slots[j] == slot && token_ok(a, a.last_tokens[j])) taken = 1;
    }
  }
  return __syncthreads_or(taken);
}

// Fixed-point probability weight of logit x: round(exp((x - zmax) / T) * 2^24), in [0, 2^24].
// Explicit-rounding intrinsics: no FMA contraction may make two passes disagree on a weight.
__device__ __forceinline__ unsigned weight(float x, float zmax, float inv_t) {
  const float w = __expf(__fmul_rn(__fsub_rn(x, zmax), inv_t));
  return static_cast<unsigned>(__fadd_rn(__fmul_rn(w, 16777216.0f), 0.5f));
}

// This thread's share of the chunk [begin, end): the logits begin + j*kThreads + threadIdx.x,
// j < kPerThread (this layout fixes the fp32 summation order, hence the entropy's bits); their max
// and argmax, then fp32 sums relative to that max. load(i) returns global logit i.
template <class Load>
__device__ ChunkPart thread_entropy(Load load, std::int64_t begin, std::int64_t end) {
  float x[kPerThread];
  ChunkPart p = empty_part<ChunkPart>();
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    const std::int64_t i = begin + j * kThreads + threadIdx.x;
    x[j] = i < end ? load(i) : -INFINITY;
  }
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    if (x[j] != x[j] || x[j] == INFINITY) {  // +inf has no softmax either: flagged like NaN (as on the CPU)
      p.nan = 1;
    } else if (x[j] > p.max) {
      p.max = x[j];
      p.argmax = begin + j * kThreads + threadIdx.x;
    }
  }
  if (p.max == -INFINITY) return p;
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    if (x[j] != x[j] || x[j] == -INFINITY) continue;
    const float d = x[j] - p.max;
    const float e = __expf(d);
    p.sum_exp += e;
    p.sum_zexp += d * e;
  }
  return p;
}

// Copies global logits [begin, begin + len) of the row into shared memory: asynchronous 16-byte
// copies (cp.async, no registers held, all in flight at once) when the source is 16-byte aligned
// (chunk starts are, so it depends only on the row's address), element loads otherwise. The caller
// synchronises the block before reading.
template <int kDType>
__device__ void copy_slice(const void* row, std::int64_t begin, int len, void* dst) {
  constexpr int kBytes = kLogitBytes<kDType>;
  using Elem = std::conditional_t<kDType == 0, float, unsigned short>;
  const Elem* src = static_cast<const Elem*>(row) + begin;
  Elem* out = static_cast<Elem*>(dst);
  int done = 0;
  if ((reinterpret_cast<std::uintptr_t>(src) & 15u) == 0) {
    const int n16 = len * kBytes / 16;
    const uint4* s16 = reinterpret_cast<const uint4*>(src);
    uint4* d16 = static_cast<uint4*>(dst);
    for (int i = threadIdx.x; i < n16; i += kThreads) __pipeline_memcpy_async(d16 + i, s16 + i, 16);
    __pipeline_commit();
    done = n16 * 16 / kBytes;
  }
  for (int i = done + threadIdx.x; i < len; i += kThreads) out[i] = __ldg(src + i);
  __pipeline_wait_prior(0);
}

// Asks for the L1 lines the state machine will read for this row (the slot's window, sums and
// counts, the last token's class): one round trip overlapping the logits copy instead of the
// transition's chain of dependent loads later. Only a hint: nothing is read here.
__device__ __forceinline__ void prefetch_line(const void* p) { asm volatile("prefetch.global.L1 [%0];" ::"l"(p)); }

__device__ void prefetch_slot(const KernelArgs& a, std::int64_t row) {
  const std::int64_t slot = a.slots ? a.slots[row] : row;
  if (slot < 0 || slot >= a.state.slots) return;
  const char* win = reinterpret_cast<const char*>(a.state.window_entropies + slot * a.state.window);
  const int bytes = a.state.window * static_cast<int>(sizeof(float));
  for (int at = static_cast<int>(threadIdx.x) * 128; at < bytes + 128; at += kThreads * 128) {
    prefetch_line(win + min(at, bytes - 1));  // the last one covers a window straddling a line
  }
  if (threadIdx.x == 0) {
    prefetch_line(a.state.sums + slot * kSlotSums);
    prefetch_line(a.state.sums + slot * kSlotSums + kSlotSums - 1);
  } else if (threadIdx.x == 1) {
    prefetch_line(a.state.ints + slot * kSlotInts);
    prefetch_line(a.state.ints + slot * kSlotInts + kSlotInts - 1);
  } else if (threadIdx.x == 2) {
    const std::int64_t last = a.last_tokens[row];
    if (last >= 0 && last < a.vocab) prefetch_line(a.classes + last);
  }
}

// The row's entropy is known (rank 0, one thread): check the row, run the state machine and plan the
// rest of the step. `taken`: an earlier row owns this row's slot.
__device__ void start_row(const KernelArgs& a, std::int64_t row, const EntropyPart& all, int taken, RowPlan* plan) {
  const float entropy = all.max == -INFINITY || all.nan
                            ? NAN
                            : static_cast<float>(fmax(log(all.sum_exp) - all.sum_zexp / all.sum_exp, 0.0));
  const std::int64_t slot = a.slots ? a.slots[row] : row;
  int bad = 0;
  if (slot < 0 || slot >= a.state.slots) bad |= kErrorSlotRange;
  if (!token_ok(a, a.last_tokens[row])) bad |= kErrorTokenRange;
  if (!bad && taken) bad |= kErrorSlotTwice;
  if (all.nan) bad |= kErrorNaN;
  else if (all.max == -INFINITY) bad |= kErrorAllNegInf;
  RowPlan p{};
  p.active = 0;
  if (bad) {
    reject_row(a, row, bad, entropy);
  } else {
    double* sums = a.state.sums + slot * kSlotSums;
    std::int64_t* ints = a.state.ints + slot * kSlotInts;
    p.uniform = detail::philox_uniform(static_cast<std::uint64_t>(ints[kSeed]),
                                       static_cast<std::uint64_t>(ints[kGlobalCount]));
    detail::observe_token(a.classes, sums, ints, a.last_tokens[row]);
    const double t = detail::choose_temperature(a.params, a.state.window_entropies + slot * a.state.window, sums,
                                                ints, entropy);
    a.temperatures[row] = static_cast<float>(t);
    if (a.entropies) a.entropies[row] = entropy;
    p.argmax = all.argmax;
    if (t <= kGreedyTemperature) {
      a.tokens[row] = all.argmax;
    } else {
      p.active = 1;
      p.zmax = all.max;
      p.inv_t = static_cast<float>(1.0 / t);
      p.target = static_cast<double>(a.top_k);  // the top-k search's target, when there is one
    }
  }
  *plan = p;
}

// Radix levels per search: a float32 key needs all 32 bits; bf16 and fp16 logits widen to floats
// whose low 13 mantissa bits are zero, so all keys sharing bits 31..10 are equal and two levels
// find the threshold (the chosen bucket's lower bound then keeps exactly the keys >= K).
template <int kDType>
constexpr int kRadixLevels = kDType == 0 ? 3 : 2;

// One level of a radix search for the largest key K with measure(key >= K) >= target among keys
// >= floor_key, where each logit counts 1 (kMass false: top-k) or its weight (kMass true: top-p).
// Level 0 picks key bits 31..21, level 1 bits 20..10, level 2 bits 9..0; after the last level the
// threshold is folded into floor_key. All threads of every CTA of the cluster call it; on return
// s.plan is updated identically in every CTA.
template <int kDType, bool kMass>
__device__ void radix_level(const KernelArgs& a, const cg::cluster_group& cluster, const Slice& sl,
                            unsigned char* region, StaticShared& s, int level) {
  // The CTA's counts as two 32-bit halves (bits 0..11 and 12..23 of each weight): a slice fits in
  // 227 KiB of shared memory, so it holds fewer than 2^17 logits and each half-sum stays below 2^30
  // (a warp's sum of 32 halves below 2^17); the adds stay 32-bit shared atomics (64-bit ones may
  // become compare-and-swap loops).
  unsigned long long* full = reinterpret_cast<unsigned long long*>(region);  // cluster sums [kHistBins]
  unsigned* hist_lo = reinterpret_cast<unsigned*>(region + kHistBins * 8);
  unsigned* hist_hi = hist_lo + kHistBins;
  const unsigned prefix = s.plan.prefix, mask = s.plan.mask, floor_key = s.plan.floor_key;
  const float zmax = s.plan.zmax, inv_t = s.plan.inv_t;
  const int shift = level == 0 ? 21 : (level == 1 ? 10 : 0);
  const int bins = level == 2 ? 1024 : 2048;

  for (int b = threadIdx.x; b < bins; b += kThreads) {
    hist_lo[b] = 0u;
    if (kMass) hist_hi[b] = 0u;
  }
  __syncthreads();
  // Logits of similar size share their top key bits, so at level 0 most of a slice lands in a few
  // bins: the lanes of a warp that share a digit add their sum once (one shared atomic per digit
  // per warp instead of one per logit). All lanes run every iteration, so the warp masks are exact.
  const unsigned lane = threadIdx.x & 31u;
  for (int base = 0; base < sl.len; base += kThreads) {
    const int i = base + static_cast<int>(threadIdx.x);
    unsigned digit = 0u, w = 0u;
    bool take = false;
    if (i < sl.len) {
      const float x = smem_logit<kDType>(sl.values, i);
      const unsigned key = order_key(x);
      if ((key & mask) == prefix && key >= floor_key) {
        digit = (key >> shift) & static_cast<unsigned>(bins - 1);
        w = kMass ? weight(x, zmax, inv_t) : 1u;
        take = w != 0u;
      }
    }
    const unsigned takers = __ballot_sync(kFullMask, take);
    if (!take) continue;
    const unsigned peers = __match_any_sync(takers, digit);
    const bool leader = lane == static_cast<unsigned>(__ffs(peers) - 1);
    if (kMass) {
      const unsigned lo = __reduce_add_sync(peers, w & 0xFFFu), hi = __reduce_add_sync(peers, w >> 12);
      if (leader) {
        atomicAdd(hist_lo + digit, lo);
        atomicAdd(hist_hi + digit, hi);
      }
    } else if (leader) {
      atomicAdd(hist_lo + digit, static_cast<unsigned>(__popc(peers)));
    }
  }
  cluster.sync();  // every CTA's counts are complete (also orders this block)

  // This CTA sums bins [rank*bins/C, (rank+1)*bins/C) over the cluster and stores the sums in every
  // CTA. Each bin has one owner, so `full` needs no clearing between levels.
  const unsigned rank = cluster.block_rank(), csize = cluster.num_blocks();
  const int bin_lo = static_cast<int>(rank * bins / csize), bin_hi = static_cast<int>((rank + 1) * bins / csize);
  for (int b = bin_lo + threadIdx.x; b < bin_hi; b += kThreads) {
    unsigned long long v = 0;
#pragma unroll 4
    for (unsigned q = 0; q < csize; ++q) {  // unrolled: several remote loads in flight at once
      const unsigned lo = cluster.map_shared_rank(hist_lo, q)[b];
      v += kMass ? (static_cast<unsigned long long>(cluster.map_shared_rank(hist_hi, q)[b]) << 12) + lo : lo;
    }
    for (unsigned q = 0; q < csize; ++q) cluster.map_shared_rank(full, q)[b] = v;
  }
  cluster.sync();  // `full` is complete everywhere; the counts may be overwritten again

  // Buckets from the top: thread t holds `per` consecutive ones; the first bucket whose inclusive
  // sum reaches the target is the digit (the same choice as the former per-row kernel).
  const int per = bins / kThreads;
  unsigned long long v[kHistBins / kThreads];
  unsigned long long mine = 0;
  for (int j = 0; j < per; ++j) {
    v[j] = full[bins - 1 - (threadIdx.x * per + j)];
    mine += v[j];
  }
  if (threadIdx.x == 0) {
    s.digit = 0;
    s.above = 0;
  }
  unsigned long long total;
  unsigned long long cum = block_exclusive_scan(mine, s.warp_sums, &total);
  const double target = kMass && level == 0 ? a.top_p * static_cast<double>(total) : s.plan.target;
  for (int j = 0; j < per; ++j) {
    if (v[j] > 0 && static_cast<double>(cum) < target && static_cast<double>(cum + v[j]) >= target) {
      s.digit = static_cast<unsigned>(bins - 1 - (threadIdx.x * per + j));
      s.above = cum;
    }
    cum += v[j];
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    const unsigned chosen = prefix | (s.digit << shift);
    if (level == kRadixLevels<kDType> - 1) {
      s.plan.floor_key = kMass ? max(chosen, floor_key) : chosen;
      s.plan.prefix = 0u;
      s.plan.mask = 0u;
    } else {
      s.plan.prefix = chosen;
      s.plan.mask = mask | (static_cast<unsigned>(bins - 1) << shift);
      s.plan.target = target - static_cast<double>(s.above);
    }
  }
  __syncthreads();
}

// The draw: the token at the uniform's quantile of the kept mass, by inverse CDF in index order
// over exact integer weights (so the order of the partial sums cannot change the token). Thread t
// of a CTA holds a run of consecutive logits of the slice; CTAs are in index order by rank.
template <int kDType>
__device__ void sample(const KernelArgs& a, const cg::cluster_group& cluster, const Slice& sl, StaticShared& s,
                       std::int64_t row) {
  const RowPlan& plan = s.plan;
  const auto kept_weight = [&](int i) -> unsigned {
    const float x = smem_logit<kDType>(sl.values, i);
    return order_key(x) >= plan.floor_key ? weight(x, plan.zmax, plan.inv_t) : 0u;
  };
  // Odd run length: the 32 lanes' runs start in 32 different shared-memory banks.
  const int per = ((sl.len + kThreads - 1) / kThreads) | 1;
  const int i0 = min(static_cast<int>(threadIdx.x) * per, sl.len), i1 = min(i0 + per, sl.len);
  unsigned long long run = 0;
  for (int i = i0; i < i1; ++i) run += kept_weight(i);
  unsigned long long cta_total;
  unsigned long long at = block_exclusive_scan(run, s.warp_sums, &cta_total);
  if (threadIdx.x == 0) s.cta_mass = cta_total;
  cluster.sync();  // every CTA's mass is published

  const unsigned rank = cluster.block_rank(), csize = cluster.num_blocks();
  if (threadIdx.x < csize) s.cta_masses[threadIdx.x] = *cluster.map_shared_rank(&s.cta_mass, threadIdx.x);
  __syncthreads();
  unsigned long long total = 0, before = 0;
  for (unsigned q = 0; q < csize; ++q) {
    if (q < rank) before += s.cta_masses[q];
    total += s.cta_masses[q];
  }
  // total >= 2^24: the argmax passes every threshold and weighs 2^24. Kept as a guard.
  if (total == 0) {
    if (rank == 0 && threadIdx.x == 0) a.tokens[row] = plan.argmax;
    return;
  }
  const unsigned long long target =
      min(static_cast<unsigned long long>(plan.uniform * static_cast<double>(total)), total - 1);
  if (target < before || target >= before + cta_total) return;  // the same in the whole CTA
  const unsigned long long rank_in = target - before;
  if (rank_in >= at && rank_in < at + run) {  // exactly one thread of the CTA holds the quantile
    s.run_first = i0;
    s.run_at = at;
  }
  __syncthreads();
  if (threadIdx.x >= 32) return;
  // Warp 0 scans that run: lane l takes `piece` consecutive logits of it, in index order.
  const int first = s.run_first, last = min(first + per, sl.len), piece = (per + 31) / 32;
  const int lane = static_cast<int>(threadIdx.x);
  const int p0 = min(first + lane * piece, last), p1 = min(p0 + piece, last);
  unsigned long long mine = 0;
  for (int i = p0; i < p1; ++i) mine += kept_weight(i);
  unsigned long long incl = mine;
  for (int o = 1; o < 32; o <<= 1) {
    const unsigned long long y = __shfl_up_sync(kFullMask, incl, o);
    if (lane >= o) incl += y;
  }
  unsigned long long pos = s.run_at + incl - mine;
  if (rank_in < pos || rank_in >= pos + mine) return;
  for (int i = p0; i < p1; ++i) {  // exactly one lane gets here
    pos += kept_weight(i);
    if (rank_in < pos) {
      a.tokens[row] = sl.begin + i;
      return;
    }
  }
}

// The whole step for one row per cluster; launched with cluster dimension C (see launch_decode).
template <int kDType>
__global__ void __launch_bounds__(kThreads, 3) decode_kernel(KernelArgs a) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 900
  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ StaticShared s;
  const cg::cluster_group cluster = cg::this_cluster();
  // DSMEM may only be touched once every CTA of the cluster runs: arrive now, wait before the first
  // remote write (the copy and the chunk entropies overlap the wait).
  mark(a, kPhaseStart);
  auto started = cluster.barrier_arrive();
  const unsigned rank = cluster.block_rank(), csize = cluster.num_blocks();
  const std::int64_t row = blockIdx.x / csize;
  const void* row_logits =
      static_cast<const char*>(a.logits) + static_cast<std::size_t>(row * a.row_stride) * kLogitBytes<kDType>;

  Slice sl;
  sl.first_chunk = static_cast<unsigned>(static_cast<unsigned long long>(rank) * a.chunks / csize);
  sl.end_chunk = static_cast<unsigned>(static_cast<unsigned long long>(rank + 1) * a.chunks / csize);
  sl.begin = sl.first_chunk * kChunk;
  sl.len = static_cast<int>(min(sl.end_chunk * kChunk, a.vocab) - sl.begin);
  sl.values = smem;
  unsigned char* region = smem + slice_bytes(a.chunks, csize, kLogitBytes<kDType>);

  if (rank == 0) prefetch_slot(a, row);
  copy_slice<kDType>(row_logits, sl.begin, sl.len, smem);
  const int taken = rank == 0 ? slot_taken_before(a, row) : 0;  // a block barrier in rank 0
  __syncthreads();                                              // the slice is in shared memory
  mark(a, kPhaseCopied);

  // 1. Entropy per chunk into rank 0's partials, then rank 0 plans the row. The chunk's block tree
  // (block_entropy) is split in its two levels so the chunks' second levels run in parallel warps:
  // the same merges in the same order, hence the same bits.
  EntropyPart* parts0 = cluster.map_shared_rank(reinterpret_cast<EntropyPart*>(region), 0);
  ChunkPart* warp_parts = reinterpret_cast<ChunkPart*>(region + warp_parts_offset(a.chunks));  // [chunk][warp]
  const auto load = [&](std::int64_t i) { return smem_logit<kDType>(sl.values, static_cast<int>(i - sl.begin)); };
  const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
  constexpr int kGroup = 4;  // chunks whose warp trees run interleaved
  for (unsigned c0 = sl.first_chunk; c0 < sl.end_chunk; c0 += kGroup) {
    ChunkPart p[kGroup];
#pragma unroll
    for (int k = 0; k < kGroup; ++k) {
      const std::int64_t begin = (c0 + k) * kChunk, end = min(begin + kChunk, a.vocab);
      p[k] = c0 + k < sl.end_chunk ? thread_entropy(load, begin, end) : empty_part<ChunkPart>();
    }
    warp_entropy_each(p);
#pragma unroll
    for (int k = 0; k < kGroup; ++k) {
      if (lane == 0 && c0 + k < sl.end_chunk) warp_parts[(c0 + k - sl.first_chunk) * kWarps + warp] = p[k];
    }
  }
  __syncthreads();
  mark(a, kPhaseEntropy);
  cluster.barrier_wait(std::move(started));
  for (unsigned c = sl.first_chunk + warp; c < sl.end_chunk; c += kWarps) {
    const ChunkPart p = merge_warp_parts(warp_parts + (c - sl.first_chunk) * kWarps);
    if (lane == 0) parts0[c] = EntropyPart{p.max, p.sum_exp, p.sum_zexp, p.argmax, p.nan};
  }
  cluster.sync();  // rank 0 holds every chunk's partial
  mark(a, kPhaseGathered);
  if (rank == 0) {
    const EntropyPart* parts = reinterpret_cast<const EntropyPart*>(region);
    EntropyPart q = empty_part<EntropyPart>();
    for (unsigned c = threadIdx.x; c < a.chunks; c += kThreads) q = entropy_merge(q, parts[c]);
    const EntropyPart all = block_entropy(q, s.row_warps);
    if (threadIdx.x == 0) start_row(a, row, all, taken, &s.plan);
  }
  cluster.sync();  // rank 0's plan is written (and its partials are no longer read)
  if (rank != 0 && threadIdx.x == 0) s.plan = *cluster.map_shared_rank(&s.plan, 0);
  __syncthreads();
  mark(a, kPhasePlanned);

  // 2-3. Restriction and draw; s.plan.active is the same in every CTA of the cluster.
  if (s.plan.active) {
    int done = 0;
    if (a.top_k > 0 && a.top_k < a.vocab) {
      for (int level = 0; level < kRadixLevels<kDType>; ++level) {
        radix_level<kDType, false>(a, cluster, sl, region, s, level);
        mark(a, kPhaseLevel0 + done++);
      }
    }
    if (a.top_p < 1.0) {
      for (int level = 0; level < kRadixLevels<kDType>; ++level) {
        radix_level<kDType, true>(a, cluster, sl, region, s, level);
        mark(a, kPhaseLevel0 + done++);
      }
    }
    sample<kDType>(a, cluster, sl, s, row);
    mark(a, kPhaseSampled);
  }
  cluster.sync();  // no CTA leaves while another may still read its shared memory
  mark(a, kPhaseEnd);
#else
  __trap();  // the launcher only launches on sm_90 or newer
#endif
}

// The state machine alone, one thread per row.
__global__ void update_kernel(KernelArgs a, std::int64_t rows, const float* entropies) {
  const std::int64_t row = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (row >= rows) return;
  const std::int64_t slot = a.slots ? a.slots[row] : row;
  int bad = 0;
  if (slot < 0 || slot >= a.state.slots) bad |= kErrorSlotRange;
  if (!token_ok(a, a.last_tokens[row])) bad |= kErrorTokenRange;
  if (!bad && a.slots) {
    for (std::int64_t j = 0; j < row; ++j) {  // an earlier row owns the slot: see slot_taken_before
      if (a.slots[j] == slot && token_ok(a, a.last_tokens[j])) {
        bad |= kErrorSlotTwice;
        break;
      }
    }
  }
  const float h = entropies[row];
  if (!(h >= 0.0f) || isinf(h)) bad |= kErrorEntropy;  // also catches NaN
  if (bad) {
    reject_row(a, row, bad, h);
    return;
  }
  double* sums = a.state.sums + slot * kSlotSums;
  std::int64_t* ints = a.state.ints + slot * kSlotInts;
  detail::observe_token(a.classes, sums, ints, a.last_tokens[row]);
  a.temperatures[row] = static_cast<float>(
      detail::choose_temperature(a.params, a.state.window_entropies + slot * a.state.window, sums, ints, h));
}

KernelArgs make_args(const Config& config, const std::uint8_t* classes, std::int64_t vocab, StateView state,
                     const Batch& batch, std::int32_t* error_flag) {
  validate(config);
  require(config.window == state.window, "config.window and the state's window differ");
  require(vocab >= 1, "vocab must be >= 1");
  require(batch.rows >= 1 && batch.rows <= state.slots, "rows must be in [1, batch_size]");
  require(error_flag != nullptr, "the device error flag is missing");
  KernelArgs a{};
  a.params = detail::TransitionParams{config.t_low, config.t_high, config.tau0, config.window};
  a.top_p = config.top_p;
  a.top_k = config.top_k;
  a.classes = classes;
  a.vocab = vocab;
  a.state = state;
  a.last_tokens = batch.last_tokens;
  a.slots = batch.slots;
  a.error_flag = error_flag;
  return a;
}

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    (void)cudaGetLastError();  // clear it: the next launch must not report it again
    throw Error(std::string(what) + " failed: " + cudaGetErrorString(err));
  }
}

int device_attribute(cudaDeviceAttr attr) {
  int device = 0, value = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  check(cudaDeviceGetAttribute(&value, attr, device), "cudaDeviceGetAttribute");
  return value;
}

// Cluster size: as many CTAs per row as allowed (16 when the driver grants non-portable sizes,
// else 8), never more than the row has chunks. More CTAs per row spread a row's bytes over more
// SMs (the latency of B = 1) and give smaller slices, hence more resident CTAs per SM (the
// throughput of large B). A size whose slice does not fit the opt-in shared memory, or that no GPC
// can host, is skipped; the result does not depend on the size (see the file comment).
template <int kDType>
void launch_decode(const KernelArgs& a, std::int64_t rows, cudaStream_t stream, int max_cluster) {
  if (device_attribute(cudaDevAttrComputeCapabilityMajor) < 9) {
    throw Unsupported("the CUDA decode_step needs thread-block clusters (compute capability 9.0 or newer)");
  }
  const std::int64_t optin = device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin);
  const auto kernel = decode_kernel<kDType>;
  const bool non_portable =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1) == cudaSuccess;
  (void)cudaGetLastError();  // a refusal is not an error: portable sizes remain
  unsigned largest = std::min<unsigned>(non_portable ? kMaxCluster : 8, a.chunks);
  if (max_cluster > 0) largest = std::min<unsigned>(largest, static_cast<unsigned>(max_cluster));
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeClusterDimension;
  cudaLaunchConfig_t cfg{};
  cfg.blockDim = dim3(kThreads);
  cfg.stream = stream;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  for (unsigned cluster = largest; cluster >= 1; --cluster) {
    const std::int64_t dyn = dynamic_smem_bytes(a.chunks, cluster, kLogitBytes<kDType>);
    if (dyn + static_cast<std::int64_t>(sizeof(StaticShared)) > optin) break;  // smaller clusters need more
    require(rows * cluster <= 0x7FFFFFFF, "too many rows for one launch");
    check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(dyn)),
          "cudaFuncSetAttribute(MaxDynamicSharedMemorySize)");
    cfg.gridDim = dim3(static_cast<unsigned>(rows * cluster));
    cfg.dynamicSmemBytes = static_cast<std::size_t>(dyn);
    attr[0].val.clusterDim.x = cluster;
    attr[0].val.clusterDim.y = 1;
    attr[0].val.clusterDim.z = 1;
    int fits = 0;
    if (cudaOccupancyMaxActiveClusters(&fits, kernel, &cfg) != cudaSuccess) {
      (void)cudaGetLastError();  // no answer: trust the portable sizes (every GPC hosts 8 CTAs)
      fits = cluster <= 8 ? 1 : 0;
    }
    if (fits == 0) continue;
    check(cudaLaunchKernelEx(&cfg, kernel, a), "ReSET decode_step launch");
    return;
  }
  throw Unsupported("vocab " + std::to_string(a.vocab) +
                    " is too large for the CUDA decode_step: a row must fit the shared memory of one "
                    "thread-block cluster (" + std::to_string(optin) + " bytes per CTA, at most " +
                    std::to_string(non_portable ? kMaxCluster : 8) + " CTAs)");
}

}  // namespace cuda_detail

void decode_step_cuda(const Config& config, const std::uint8_t* classes, std::int64_t vocab, StateView state,
                      const Batch& batch, const void* logits, DType dtype, std::int64_t row_stride,
                      std::int64_t* tokens, float* temperatures, float* entropies, DeviceScratch scratch,
                      void* stream, CudaLaunchOptions options) {
  using namespace cuda_detail;
  require(options.max_cluster >= 0, "max_cluster must be >= 0");
  KernelArgs a = make_args(config, classes, vocab, state, batch, scratch.error_flag);
  require(row_stride >= vocab, "row_stride must be >= vocab");
  a.chunks = static_cast<unsigned>(std::min<std::int64_t>((vocab + kChunk - 1) / kChunk, 0x7FFFFFFF));
  a.logits = logits;
  a.row_stride = row_stride;
  a.tokens = tokens;
  a.temperatures = temperatures;
  a.entropies = entropies;
  a.phase_clocks = options.phase_clocks;
  const auto s = static_cast<cudaStream_t>(stream);
  switch (dtype) {
    case DType::kFloat32: launch_decode<0>(a, batch.rows, s, options.max_cluster); break;
    case DType::kBFloat16: launch_decode<1>(a, batch.rows, s, options.max_cluster); break;
    case DType::kFloat16: launch_decode<2>(a, batch.rows, s, options.max_cluster); break;
  }
}

void update_cuda(const Config& config, const std::uint8_t* classes, std::int64_t vocab, StateView state,
                 const Batch& batch, const float* entropies, float* temperatures, DeviceScratch scratch, void* stream) {
  using namespace cuda_detail;
  KernelArgs a = make_args(config, classes, vocab, state, batch, scratch.error_flag);
  a.temperatures = temperatures;
  const unsigned threads = 128;
  const unsigned blocks = static_cast<unsigned>((batch.rows + threads - 1) / threads);
  update_kernel<<<blocks, threads, 0, static_cast<cudaStream_t>(stream)>>>(a, batch.rows, entropies);
  check(cudaGetLastError(), "ReSET update launch");
}

}  // namespace reset_native::sampler
