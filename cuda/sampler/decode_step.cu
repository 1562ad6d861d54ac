// ReSET decode step on the GPU, with all state in device memory, no host synchronisation and no
// allocation (CUDA-graph capturable). Every pass splits each row into fixed chunks of kChunk logits,
// one 256-thread block per (row, chunk); the last block of a row to finish a pass combines the
// row's partials (device_workspace.hpp). Kernels of one step, in stream order, each launched with
// programmatic dependent launch (core/pdl.cuh) so its launch overlaps the previous kernel's tail:
//   1. stats: entropy, max and argmax per chunk; the last block merges them in a fixed tree, claims
//      the slot, updates the state (staged in shared memory) and picks the temperature (same code as
//      the CPU path);
//   2. top-k (only with top_k): radix levels (11 + 11 + 10 bits of order-preserving float keys; the
//      first two suffice for bf16/fp16 logits) on counts;
//   3. top-p bins (only with top_p < 1): every logit's probability weight, held in 2^-24 fixed
//      point so every sum is an exact, order-independent integer, is added to one of kTopPBins bins
//      by its tempered distance to the maximum; the last block finds the bin holding the top-p
//      boundary;
//   4. sample: kept mass per chunk (logits above the boundary bin); the logits inside it are
//      collected, and the last block sorts them to find the exact threshold, then finds the chunk
//      holding the uniform's quantile and scans it, so the draw is an inverse CDF in index order.
// RESET_NATIVE_SAMPLER_TOPP=radix selects the earlier top-p search (three radix levels on masses,
// one kernel each) instead of step 3's bins: the same threshold, kept for comparison.
// RESET_NATIVE_SAMPLER_FUSED=1 runs steps 1, 3 and 4 as one kernel when the grid fits on the device
// at once (no top-k); opt-in, see "One-kernel step" below.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "block_primitives.cuh"
#include "core/pdl.cuh"
#include "reset_native/error.hpp"
#include "reset_native/sampler.hpp"
#include "sampler/device_workspace.hpp"
#include "sampler/philox.hpp"
#include "sampler/transition.hpp"

namespace reset_native::sampler {

namespace cuda_detail {

using detail::Candidate;
using detail::kBinScale;
using detail::kCandidates;
using detail::kHistBins;
using detail::kTopPBins;
using detail::RowPlan;
using cuda_core::pdl_trigger;
using cuda_core::pdl_wait;

struct Workspace {
  unsigned* counters;               // [slots] blocks of a row done with the current pass
  RowPlan* plans;                   // [slots]
  EntropyPart* entropy;             // [slots, chunks]
  unsigned long long* masses;       // [slots, chunks]
  unsigned long long* hist;         // [slots, kHistBins], zero between passes
  unsigned* candidate_counts;       // [slots], zero between steps
  Candidate* candidates;            // [slots, kCandidates]
  unsigned* flags;                  // [slots] one-kernel step: bumped when a row's pass is combined
  unsigned* grid;                   // [2] one-kernel step: rows that claimed their slot, rows done
  unsigned chunks;
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
  DeviceScratch scratch;
  Workspace ws;
};

template <int kDType>
__device__ __forceinline__ const void* row_logits(const KernelArgs& a, std::int64_t row) {
  return static_cast<const char*>(a.logits) + static_cast<std::size_t>(row * a.row_stride) * (kDType == 0 ? 4 : 2);
}

// Checks the row's slot and token id and claims the slot; 0 when the row may proceed.
__device__ int claim_slot(const KernelArgs& a, std::int64_t row, std::int64_t* slot_out) {
  const std::int64_t slot = a.slots ? a.slots[row] : row;
  const std::int64_t last = a.last_tokens[row];
  *slot_out = slot;
  int bad = 0;
  if (slot < 0 || slot >= a.state.slots) bad |= kErrorSlotRange;
  if (last < -1 || last >= a.vocab) bad |= kErrorTokenRange;
  if (!bad && atomicExch(a.scratch.slot_busy + slot, 1) != 0) bad |= kErrorSlotTwice;
  return bad;
}

// True when claim_slot took the slot (the row must release it) despite the other errors in `bad`.
__device__ __forceinline__ bool claimed(int bad) {
  return !(bad & (kErrorSlotRange | kErrorTokenRange | kErrorSlotTwice));
}

// Marks a rejected row: flag for the host, sentinel outputs, slot untouched.
__device__ void reject_row(const KernelArgs& a, std::int64_t row, int bad, float entropy) {
  atomicOr(a.scratch.error_flag, bad);
  if (a.tokens) a.tokens[row] = -1;  // update_kernel has no tokens
  a.temperatures[row] = NAN;
  if (a.entropies) a.entropies[row] = entropy;
}

// Fixed-point probability weight of logit x: round(exp((x - zmax) / T) * 2^24), in [0, 2^24].
// Explicit-rounding intrinsics: no FMA contraction may make two passes disagree on a weight.
__device__ __forceinline__ unsigned weight(float x, float zmax, float inv_t) {
  const float w = __expf(__fmul_rn(__fsub_rn(x, zmax), inv_t));
  return static_cast<unsigned>(__fadd_rn(__fmul_rn(w, 16777216.0f), 0.5f));
}

// Top-p bin of a logit of weight > 0: its tempered distance below the maximum in 1/kBinScale nats,
// computed from the same rounded product as weight(), so a larger logit never gets a larger bin.
__device__ __forceinline__ int topp_bin(float x, float zmax, float inv_t) {
  const float d = __fmul_rn(__fsub_rn(zmax, x), inv_t);  // == -(x - zmax) * inv_t, exactly
  return min(__float2int_rz(__fmul_rn(d, kBinScale)), kTopPBins - 1);
}

// This thread's kPerThread logits of a chunk (-inf past the row's end).
template <int kDType>
__device__ __forceinline__ void load_chunk(const void* z, std::int64_t begin, std::int64_t end, float (&x)[kPerThread]) {
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    const std::int64_t i = begin + j * kThreads + threadIdx.x;
    x[j] = i < end ? load_logit<kDType>(z, i) : -INFINITY;
  }
}

// This thread's share of a chunk: max and argmax of its logits, then fp32 sums relative to that max
// (explicit roundings, so every kernel computing it gets the same bits).
__device__ __forceinline__ ChunkPart thread_entropy(const float (&x)[kPerThread], std::int64_t begin) {
  ChunkPart p = empty_part<ChunkPart>();
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
    const float d = __fsub_rn(x[j], p.max);
    const float e = __expf(d);
    p.sum_exp = __fadd_rn(p.sum_exp, e);
    p.sum_zexp = __fmaf_rn(d, e, p.sum_zexp);
  }
  return p;
}

// The row's slot state staged in shared memory: the last stats block loads it with all its threads
// while it merges the chunks, so the state machine (one thread) reads no global memory in its loops.
// The slot claim, the two token-class lookups and the row's random number are started there too.
struct SlotCopy {
  double sums[kSlotSums];
  std::int64_t ints[kSlotInts];
  float window[kMaxWindow];
  double uniform;
  std::int64_t slot;
  int bad;  // claim_slot's result
  std::uint8_t last_class, prev_class;
};

// All threads: claims the slot (thread 0) and copies its state into `s` (when the slot index is valid).
__device__ void stage_slot(const KernelArgs& a, std::int64_t row, SlotCopy& s) {
  if (threadIdx.x == 0) s.bad = claim_slot(a, row, &s.slot);  // its latency overlaps the loads below
  const std::int64_t slot = a.slots ? a.slots[row] : row;
  if (slot < 0 || slot >= a.state.slots) return;  // rejected by claim_slot
  const float* window = a.state.window_entropies + slot * a.state.window;
  for (int j = threadIdx.x; j < a.state.window; j += kThreads) s.window[j] = window[j];
  const std::int64_t* ints = a.state.ints + slot * kSlotInts;
  const int k = static_cast<int>(threadIdx.x) - 32;  // a warp each: sums, ints, lookups, random number
  if (threadIdx.x < kSlotSums) s.sums[threadIdx.x] = a.state.sums[slot * kSlotSums + threadIdx.x];
  if (k >= 0 && k < kSlotInts) s.ints[k] = ints[k];
  if (threadIdx.x == 64) {
    const std::int64_t last = a.last_tokens[row];
    s.last_class = last >= 0 && last < a.vocab ? a.classes[last] : 0;  // out of range: rejected by claim_slot
  }
  if (threadIdx.x == 96) {
    const std::int64_t prev = ints[kLastToken];
    s.prev_class = prev >= 0 && prev < a.vocab ? a.classes[prev] : 0;
  }
  if (threadIdx.x == 128) {
    s.uniform = detail::philox_uniform(static_cast<std::uint64_t>(ints[kSeed]), static_cast<std::uint64_t>(ints[kGlobalCount]));
  }
}

// The row's entropy is known: finish the claim, run the state machine on the staged copy, write the
// slot back and plan the rest of the step. One thread, after stage_slot and a __syncthreads.
__device__ void start_row(const KernelArgs& a, std::int64_t row, const EntropyPart& all, SlotCopy& s) {
  const float entropy = all.max == -INFINITY || all.nan
                            ? NAN
                            : static_cast<float>(fmax(log(all.sum_exp) - all.sum_zexp / all.sum_exp, 0.0));
  const std::int64_t slot = s.slot;
  int bad = s.bad;
  if (all.nan) bad |= kErrorNaN;
  else if (all.max == -INFINITY) bad |= kErrorAllNegInf;
  RowPlan plan{};
  plan.slot = -1;
  plan.active = 0;
  plan.bin = -1;
  if (bad) {
    reject_row(a, row, bad, entropy);
    if (claimed(bad)) plan.slot = slot;
  } else {
    plan.uniform = s.uniform;
    const std::int64_t head = s.ints[kWindowHead];  // where choose_temperature appends the entropy
    detail::observe_token_classes(s.sums, s.ints, a.last_tokens[row], s.last_class, s.prev_class);
    const double t = detail::choose_temperature(a.params, s.window, s.sums, s.ints, entropy);
    a.state.window_entropies[slot * a.state.window + head] = entropy;
    for (int k = 0; k < kSlotSums; ++k) a.state.sums[slot * kSlotSums + k] = s.sums[k];
    for (int k = 0; k < kSlotInts; ++k) a.state.ints[slot * kSlotInts + k] = s.ints[k];
    a.temperatures[row] = static_cast<float>(t);
    if (a.entropies) a.entropies[row] = entropy;
    plan.slot = slot;
    plan.argmax = all.argmax;
    if (t <= kGreedyTemperature) {
      a.tokens[row] = all.argmax;
    } else {
      plan.active = 1;
      plan.zmax = all.max;
      plan.inv_t = static_cast<float>(1.0 / t);
      plan.target = static_cast<double>(a.top_k);  // the top-k search's target, when there is one
    }
  }
  a.ws.plans[row] = plan;
}

// Pass 1: entropy per chunk; the row's last block merges the chunks in index order and plans the row.
template <int kDType>
__global__ void __launch_bounds__(kThreads) stats_kernel(KernelArgs a) {
  __shared__ ChunkPart chunk_parts[kWarps];
  __shared__ EntropyPart row_parts_shared[kWarps];
  __shared__ SlotCopy slot_copy;
  __shared__ int s_last;
  pdl_wait();  // the logits, the state and the workspace come from earlier kernels
  pdl_trigger();
  const std::int64_t row = blockIdx.x, chunk = blockIdx.y;
  const std::int64_t begin = chunk * kChunk, end = min(begin + kChunk, a.vocab);
  float x[kPerThread];
  load_chunk<kDType>(row_logits<kDType>(a, row), begin, end, x);
  const ChunkPart p = block_entropy(thread_entropy(x, begin), chunk_parts);
  EntropyPart* row_parts = a.ws.entropy + row * a.ws.chunks;
  if (threadIdx.x == 0) row_parts[chunk] = EntropyPart{p.max, p.sum_exp, p.sum_zexp, p.argmax, p.nan};
  if (!last_block_of_row(a.ws.counters + row, a.ws.chunks, &s_last)) return;
  stage_slot(a, row, slot_copy);  // its loads overlap the merge below
  EntropyPart q = empty_part<EntropyPart>();
  for (unsigned c = threadIdx.x; c < a.ws.chunks; c += kThreads) q = entropy_merge(q, load_part(row_parts + c));
  const EntropyPart all = block_entropy(q, row_parts_shared);  // ends with __syncthreads: the copy is complete
  if (threadIdx.x == 0) start_row(a, row, all, slot_copy);
}

// Radix levels per search: a float32 key needs all 32 bits; bf16 and fp16 logits widen to floats
// whose low 13 mantissa bits are zero, so all keys sharing bits 31..10 are equal and two levels
// find the threshold (the chosen bucket's lower bound then keeps exactly the keys >= K).
template <int kDType>
constexpr int kRadixLevels = kDType == 0 ? 3 : 2;

// One level of a radix search for the largest key K with measure(key >= K) >= target among keys
// >= floor_key, where each logit counts 1 (kMass false: top-k) or its weight (kMass true: top-p).
// Level 0 picks key bits 31..21, level 1 bits 20..10, level 2 bits 9..0; after the last level the
// threshold is folded into floor_key. Blocks histogram their chunk in shared memory and add the
// non-empty bins to the row's global histogram; the row's last block picks the digit.
template <int kDType, bool kMass>
__global__ void __launch_bounds__(kThreads) radix_level_kernel(KernelArgs a, int level) {
  // Masses as two 32-bit halves (bits 0..11 and 12..23 of each weight): both sums stay below 2^23
  // per chunk, and the adds stay 32-bit shared atomics (64-bit ones may become compare-and-swap loops).
  __shared__ unsigned hist_lo[kHistBins];
  __shared__ unsigned hist_hi[kMass ? kHistBins : 1];
  __shared__ unsigned long long warp_sums[kWarps];
  __shared__ int s_last;
  __shared__ unsigned s_digit;
  __shared__ unsigned long long s_above;
  pdl_wait();
  pdl_trigger();
  const std::int64_t row = blockIdx.x, chunk = blockIdx.y;
  RowPlan* plan = a.ws.plans + row;
  if (!plan->active) return;  // the same for every block of the row
  const unsigned prefix = plan->prefix, mask = plan->mask, floor_key = plan->floor_key;
  const float zmax = plan->zmax, inv_t = plan->inv_t;
  const int shift = level == 0 ? 21 : (level == 1 ? 10 : 0);
  const int bins = level == 2 ? 1024 : 2048;

  const void* z = row_logits<kDType>(a, row);
  const std::int64_t begin = chunk * kChunk, end = min(begin + kChunk, a.vocab);
  float x[kPerThread];
  unsigned key[kPerThread], matched = 0u;  // bit j: logit j is inside the prefix and above the floor
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    const std::int64_t i = begin + j * kThreads + threadIdx.x;
    x[j] = i < end ? load_logit<kDType>(z, i) : -INFINITY;
    key[j] = order_key(x[j]);
    if (i < end && (key[j] & mask) == prefix && key[j] >= floor_key) matched |= 1u << j;
  }
  unsigned long long* row_hist = a.ws.hist + row * kHistBins;
  // After the first level most chunks hold no logit of the chosen prefix: they only check in.
  if (__syncthreads_or(matched != 0u)) {
    for (int b = threadIdx.x; b < bins; b += kThreads) {
      hist_lo[b] = 0u;
      if (kMass) hist_hi[b] = 0u;
    }
    __syncthreads();
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) {
      if (!(matched & (1u << j))) continue;
      const unsigned digit = (key[j] >> shift) & static_cast<unsigned>(bins - 1);
      if (kMass) {
        const unsigned w = weight(x[j], zmax, inv_t);
        if (w == 0u) continue;
        atomicAdd(hist_lo + digit, w & 0xFFFu);
        atomicAdd(hist_hi + digit, w >> 12);
      } else {
        atomicAdd(hist_lo + digit, 1u);
      }
    }
    __syncthreads();
    for (int b = threadIdx.x; b < bins; b += kThreads) {
      const unsigned long long v =
          kMass ? (static_cast<unsigned long long>(hist_hi[b]) << 12) + hist_lo[b] : hist_lo[b];
      if (v) atomicAdd(row_hist + b, v);
    }
  }
  if (!last_block_of_row(a.ws.counters + row, a.ws.chunks, &s_last)) return;

  // Buckets from the top: thread t holds `per` consecutive ones; the first bucket whose inclusive
  // sum reaches the target is the digit. The histogram is zeroed for the next pass.
  const int per = bins / kThreads;
  unsigned long long v[kHistBins / kThreads];
  unsigned long long mine = 0;
  for (int j = 0; j < per; ++j) {
    const int b = bins - 1 - (threadIdx.x * per + j);
    v[j] = __ldcg(row_hist + b);
    row_hist[b] = 0ull;
    mine += v[j];
  }
  if (threadIdx.x == 0) {
    s_digit = 0;
    s_above = 0;
  }
  unsigned long long total;
  unsigned long long cum = block_exclusive_scan(mine, warp_sums, &total);
  const double target = kMass && level == 0 ? a.top_p * static_cast<double>(total) : plan->target;
  for (int j = 0; j < per; ++j) {
    if (v[j] > 0 && static_cast<double>(cum) < target && static_cast<double>(cum + v[j]) >= target) {
      s_digit = static_cast<unsigned>(bins - 1 - (threadIdx.x * per + j));
      s_above = cum;
    }
    cum += v[j];
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    const unsigned chosen = prefix | (s_digit << shift);
    if (level == kRadixLevels<kDType> - 1) {
      plan->floor_key = kMass ? max(chosen, floor_key) : chosen;
      plan->prefix = 0u;
      plan->mask = 0u;
    } else {
      plan->prefix = chosen;
      plan->mask = mask | (static_cast<unsigned>(bins - 1) << shift);
      plan->target = target - static_cast<double>(s_above);
    }
  }
}

// Top-p bins (after top-k, if any), one block's part: the weights of its chunks' logits (those >=
// floor_key) are added to kTopPBins bins of tempered distance to the maximum in shared memory
// (clear, add per chunk, then flush the non-empty bins to the row's global histogram).
__device__ void topp_bins_clear(unsigned* hist_lo, unsigned* hist_hi) {
  for (int b = threadIdx.x; b < kTopPBins; b += kThreads) {
    hist_lo[b] = 0u;
    hist_hi[b] = 0u;
  }
  __syncthreads();
}

__device__ void topp_bins_add(const RowPlan& plan, const float (&x)[kPerThread], unsigned* hist_lo, unsigned* hist_hi) {
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    const unsigned w = order_key(x[j]) >= plan.floor_key ? weight(x[j], plan.zmax, plan.inv_t) : 0u;
    if (w == 0u) continue;
    const int bin = topp_bin(x[j], plan.zmax, plan.inv_t);
    atomicAdd(hist_lo + bin, w & 0xFFFu);  // two 32-bit halves, as in radix_level_kernel
    atomicAdd(hist_hi + bin, w >> 12);
  }
}

__device__ void topp_bins_flush(const KernelArgs& a, std::int64_t row, const unsigned* hist_lo,
                                const unsigned* hist_hi) {
  __syncthreads();
  unsigned long long* row_hist = a.ws.hist + row * kHistBins;
  for (int b = threadIdx.x; b < kTopPBins; b += kThreads) {
    const unsigned long long v = (static_cast<unsigned long long>(hist_hi[b]) << 12) + hist_lo[b];
    if (v) atomicAdd(row_hist + b, v);
  }
}

// Top-p bins, the row's last block: the bin where the mass counted from the top first reaches top_p
// of the total (the threshold is one of its logits) goes to the plan; the histogram is zeroed for
// the next step. All threads.
__device__ void topp_pick_bin(const KernelArgs& a, std::int64_t row, unsigned long long* warp_sums, int* s_bin,
                              unsigned long long* s_above) {
  unsigned long long* row_hist = a.ws.hist + row * kHistBins;
  constexpr int per = kTopPBins / kThreads;  // thread t holds bins [t * per, t * per + per), the top first
  unsigned long long v[per], mine = 0;
#pragma unroll
  for (int j = 0; j < per; ++j) {
    const int b = threadIdx.x * per + j;
    v[j] = __ldcg(row_hist + b);
    row_hist[b] = 0ull;
    mine += v[j];
  }
  if (threadIdx.x == 0) {
    *s_bin = kTopPBins - 1;
    *s_above = 0;
  }
  unsigned long long total;
  unsigned long long cum = block_exclusive_scan(mine, warp_sums, &total);  // ends with __syncthreads
  const double target = a.top_p * static_cast<double>(total);
#pragma unroll
  for (int j = 0; j < per; ++j) {
    if (v[j] > 0 && static_cast<double>(cum) < target && static_cast<double>(cum + v[j]) >= target) {
      *s_bin = threadIdx.x * per + j;
      *s_above = cum;
    }
    cum += v[j];
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    a.ws.plans[row].bin = *s_bin;
    a.ws.plans[row].target = target - static_cast<double>(*s_above);  // mass still to reach inside the bin
  }
}

template <int kDType>
__global__ void __launch_bounds__(kThreads) topp_bins_kernel(KernelArgs a) {
  __shared__ unsigned hist_lo[kTopPBins];
  __shared__ unsigned hist_hi[kTopPBins];
  __shared__ unsigned long long warp_sums[kWarps];
  __shared__ int s_last, s_bin;
  __shared__ unsigned long long s_above;
  pdl_wait();
  pdl_trigger();
  const std::int64_t row = blockIdx.x, chunk = blockIdx.y;
  const RowPlan plan = a.ws.plans[row];
  if (!plan.active) return;  // the same for every block of the row
  const std::int64_t begin = chunk * kChunk, end = min(begin + kChunk, a.vocab);
  float x[kPerThread];
  load_chunk<kDType>(row_logits<kDType>(a, row), begin, end, x);
  topp_bins_clear(hist_lo, hist_hi);
  topp_bins_add(plan, x, hist_lo, hist_hi);
  topp_bins_flush(a, row, hist_lo, hist_hi);
  if (!last_block_of_row(a.ws.counters + row, a.ws.chunks, &s_last)) return;
  topp_pick_bin(a, row, warp_sums, &s_bin, &s_above);
}

// Inclusive-scan search over n values held in shared memory in descending key order: the position
// of the first whose running weight sum reaches target (n - 1 if rounding leaves none). All threads.
__device__ int first_reaching(const unsigned long long* sorted, int n, double target,
                             unsigned long long* warp_sums, int* s_first) {
  const int per = (n + kThreads - 1) / kThreads;
  const int first = min(static_cast<int>(threadIdx.x) * per, n), last = min(first + per, n);
  unsigned long long run = 0;
  for (int i = first; i < last; ++i) run += sorted[i] & 0xFFFFFFFFull;
  if (threadIdx.x == 0) *s_first = n - 1;
  unsigned long long total;
  unsigned long long cum = block_exclusive_scan(run, warp_sums, &total);  // ends with __syncthreads
  if (static_cast<double>(cum + run) >= target && static_cast<double>(cum) < target) {
    for (int i = first; i < last; ++i) {
      cum += sorted[i] & 0xFFFFFFFFull;
      if (static_cast<double>(cum) >= target) {
        *s_first = i;
        break;
      }
    }
  }
  __syncthreads();
  return *s_first;
}

// The top-p threshold inside the boundary bin from the collected candidates (n <= kCandidates):
// (key << 32 | weight) sorted descending in shared memory (bitonic), then the first key whose running
// mass reaches the in-bin target. All threads; returns the threshold key.
__device__ unsigned threshold_from_candidates(const Candidate* cand, int n, double target, unsigned long long* keys,
                                              unsigned long long* warp_sums, int* s_first) {
  int size = 1;
  while (size < n) size <<= 1;
  for (int i = threadIdx.x; i < size; i += kThreads) {
    keys[i] = i < n ? (static_cast<unsigned long long>(__ldcg(&cand[i].key)) << 32) | __ldcg(&cand[i].weight) : 0ull;
  }
  __syncthreads();
  for (int k = 2; k <= size; k <<= 1) {
    for (int j = k >> 1; j > 0; j >>= 1) {
      for (int i = threadIdx.x; i < size; i += kThreads) {
        const int partner = i ^ j;
        if (partner > i) {
          const unsigned long long p = keys[i], q = keys[partner];
          if ((i & k) == 0 ? p < q : p > q) {  // descending overall
            keys[i] = q;
            keys[partner] = p;
          }
        }
      }
      __syncthreads();
    }
  }
  const int at = first_reaching(keys, n, target, warp_sums, s_first);
  return static_cast<unsigned>(keys[at] >> 32);
}

// The same threshold when the bin held more than kCandidates logits: radix levels over the whole
// row inside this one block (slow, exact). All threads; returns the threshold key.
template <int kDType>
__device__ unsigned threshold_from_row(const KernelArgs& a, const void* z, const RowPlan& plan,
                                       unsigned long long* hist, unsigned long long* warp_sums, unsigned* s_digit,
                                       unsigned long long* s_above) {
  unsigned prefix = 0u, mask = 0u;
  double target = plan.target;
  for (int level = 0; level < 3; ++level) {
    const int shift = level == 0 ? 21 : (level == 1 ? 10 : 0);
    const int bins = level == 2 ? 1024 : 2048;
    for (int b = threadIdx.x; b < bins; b += kThreads) hist[b] = 0ull;
    __syncthreads();
    for (std::int64_t i = threadIdx.x; i < a.vocab; i += kThreads) {
      const float x = load_logit<kDType>(z, i);
      const unsigned key = order_key(x);
      if (key < plan.floor_key || (key & mask) != prefix) continue;
      const unsigned w = weight(x, plan.zmax, plan.inv_t);
      if (w == 0u || topp_bin(x, plan.zmax, plan.inv_t) != plan.bin) continue;
      atomicAdd(hist + ((key >> shift) & static_cast<unsigned>(bins - 1)), static_cast<unsigned long long>(w));
    }
    __syncthreads();
    const int per = bins / kThreads;
    unsigned long long mine = 0;
    for (int j = 0; j < per; ++j) mine += hist[bins - 1 - (threadIdx.x * per + j)];
    if (threadIdx.x == 0) {
      *s_digit = 0u;
      *s_above = 0ull;
    }
    unsigned long long total;
    unsigned long long cum = block_exclusive_scan(mine, warp_sums, &total);
    for (int j = 0; j < per; ++j) {
      const int b = bins - 1 - (threadIdx.x * per + j);
      if (hist[b] > 0 && static_cast<double>(cum) < target && static_cast<double>(cum + hist[b]) >= target) {
        *s_digit = static_cast<unsigned>(b);
        *s_above = cum;
      }
      cum += hist[b];
    }
    __syncthreads();
    prefix |= *s_digit << shift;
    mask |= static_cast<unsigned>(bins - 1) << shift;
    target -= static_cast<double>(*s_above);
    __syncthreads();
  }
  return prefix;
}

// Shared memory of the sampling phases.
struct SampleShared {
  unsigned long long warp_sums[kWarps];
  int last, first;
  std::int64_t chunk, token;
  unsigned long long rank, base, above;
  unsigned digit;
};

// Sampling, one block's part: the kept mass of its chunk (with a top-p bin: the logits above the
// bin only) goes to the row's masses, and the logits inside the bin to the row's candidates.
template <int kDType>
__device__ void kept_mass_block(const KernelArgs& a, std::int64_t row, std::int64_t chunk, const RowPlan& plan,
                                const float (&x)[kPerThread], SampleShared& sh) {
  const bool binned = plan.bin >= 0;
  const std::int64_t begin = chunk * kChunk;
  unsigned long long mine = 0;
  unsigned in_bin = 0u;  // bit j: logit j of this thread is in the boundary bin
  unsigned w[kPerThread];
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    w[j] = order_key(x[j]) >= plan.floor_key ? weight(x[j], plan.zmax, plan.inv_t) : 0u;
    if (binned && w[j] != 0u) {
      const int bin = topp_bin(x[j], plan.zmax, plan.inv_t);
      if (bin == plan.bin) {
        in_bin |= 1u << j;  // decided by the last block
        continue;
      }
      if (bin > plan.bin) w[j] = 0u;  // below the boundary bin: never kept
    }
    mine += w[j];
  }
  unsigned long long chunk_mass;
  block_exclusive_scan(mine, sh.warp_sums, &chunk_mass);
  if (threadIdx.x == 0) a.ws.masses[row * a.ws.chunks + chunk] = chunk_mass;
  if (binned && __syncthreads_or(in_bin != 0u)) {
    const unsigned long long count = __popc(in_bin);
    unsigned long long block_count;
    const unsigned long long at = block_exclusive_scan(count, sh.warp_sums, &block_count);
    if (threadIdx.x == 0) sh.base = atomicAdd(a.ws.candidate_counts + row, static_cast<unsigned>(block_count));
    __syncthreads();
    Candidate* row_cand = a.ws.candidates + row * kCandidates;
    unsigned long long slot = sh.base + at;
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) {
      if (!(in_bin & (1u << j))) continue;
      if (slot < static_cast<unsigned long long>(kCandidates)) {
        row_cand[slot] = Candidate{order_key(x[j]), w[j], static_cast<unsigned>(begin + j * kThreads + threadIdx.x), 0u};
      }
      ++slot;
    }
  }
}

// Sampling, the row's last block: with a top-p bin, the exact threshold among the bin's logits and
// their kept masses added to their chunks; then the chunk holding the uniform's quantile of the kept
// mass, scanned in index order; writes the token. All threads.
template <int kDType>
__device__ void draw_row(const KernelArgs& a, std::int64_t row, const RowPlan& plan, unsigned long long* sorted,
                         SampleShared& sh) {
  const void* z = row_logits<kDType>(a, row);
  unsigned long long* row_masses = a.ws.masses + row * a.ws.chunks;
  unsigned floor_key = plan.floor_key;
  if (plan.bin >= 0) {
    const Candidate* row_cand = a.ws.candidates + row * kCandidates;
    const unsigned n = __ldcg(a.ws.candidate_counts + row);
    __syncthreads();  // every thread has read the count before it is reset
    if (threadIdx.x == 0) a.ws.candidate_counts[row] = 0u;
    if (n == 0u) {
      // Unreachable (the bin was chosen for its mass, and the same logits are recounted): keep the floor.
    } else if (n <= static_cast<unsigned>(kCandidates)) {
      floor_key = threshold_from_candidates(row_cand, static_cast<int>(n), plan.target, sorted, sh.warp_sums, &sh.first);
      for (unsigned c = threadIdx.x; c < n; c += kThreads) {
        const unsigned key = __ldcg(&row_cand[c].key);
        if (key >= floor_key) {
          atomicAdd(row_masses + __ldcg(&row_cand[c].index) / kChunk,
                    static_cast<unsigned long long>(__ldcg(&row_cand[c].weight)));
        }
      }
    } else {
      floor_key = threshold_from_row<kDType>(a, z, plan, sorted, sh.warp_sums, &sh.digit, &sh.above);
      // The kept logits of the bin, added chunk by chunk: warp w takes chunks w, w + kWarps, ...
      const int lane = threadIdx.x & 31;
      for (unsigned c = threadIdx.x >> 5; c < a.ws.chunks; c += kWarps) {
        unsigned long long m = 0;
        const std::int64_t stop = min(static_cast<std::int64_t>(c + 1) * kChunk, a.vocab);
        for (std::int64_t i = c * kChunk + lane; i < stop; i += 32) {
          const float x = load_logit<kDType>(z, i);
          if (order_key(x) < floor_key) continue;
          const unsigned wx = weight(x, plan.zmax, plan.inv_t);
          if (wx != 0u && topp_bin(x, plan.zmax, plan.inv_t) == plan.bin) m += wx;
        }
        for (int o = 16; o > 0; o >>= 1) m += __shfl_down_sync(kFullMask, m, o);
        if (lane == 0 && m) atomicAdd(row_masses + c, m);
      }
    }
    __threadfence();
    __syncthreads();
  }
  const auto kept_weight = [&](std::int64_t i, std::int64_t stop) -> unsigned {
    if (i >= stop) return 0u;
    const float x = load_logit<kDType>(z, i);
    return order_key(x) >= floor_key ? weight(x, plan.zmax, plan.inv_t) : 0u;
  };

  // Thread t holds a run of consecutive chunks; the quantile's chunk and its rank inside it.
  const unsigned per = (a.ws.chunks + kThreads - 1) / kThreads;
  const unsigned first = min(threadIdx.x * per, a.ws.chunks), last = min(first + per, a.ws.chunks);
  unsigned long long run = 0;
  for (unsigned c = first; c < last; ++c) run += __ldcg(row_masses + c);
  if (threadIdx.x == 0) {
    sh.chunk = -1;
    sh.token = plan.argmax;
  }
  unsigned long long total;
  unsigned long long cum = block_exclusive_scan(run, sh.warp_sums, &total);
  // total >= 2^24: the argmax always passes every threshold and weighs 2^24.
  const unsigned long long target =
      min(static_cast<unsigned long long>(plan.uniform * static_cast<double>(total)), total - 1);
  if (cum <= target && target < cum + run) {
    for (unsigned c = first; c < last; ++c) {
      const unsigned long long m = __ldcg(row_masses + c);
      if (target < cum + m) {
        sh.chunk = c;
        sh.rank = target - cum;
        break;
      }
      cum += m;
    }
  }
  __syncthreads();
  if (sh.chunk >= 0) {
    // Thread t takes logits [8t, 8t + 8) of the chunk: thread order is index order, one scan.
    const unsigned long long rank = sh.rank;
    const std::int64_t begin = sh.chunk * kChunk + threadIdx.x * kPerThread;
    const std::int64_t end = min(sh.chunk * kChunk + kChunk, a.vocab);
    unsigned wk[kPerThread];
    unsigned long long run_mass = 0;
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) {
      wk[j] = kept_weight(begin + j, end);
      run_mass += wk[j];
    }
    unsigned long long chunk_total;
    unsigned long long at = block_exclusive_scan(run_mass, sh.warp_sums, &chunk_total);
    if (at <= rank && rank < at + run_mass) {
      for (int j = 0; j < kPerThread; ++j) {
        if (rank < at + wk[j]) {
          sh.token = begin + j;
          break;
        }
        at += wk[j];
      }
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) a.tokens[row] = sh.token;
}

// Last pass: the sampling phases above, then the slot is released. Rows that finished earlier
// (greedy, rejected) only release their slot here, after every row has claimed its own in the stats
// pass.
template <int kDType>
__global__ void __launch_bounds__(kThreads) sample_kernel(KernelArgs a) {
  __shared__ unsigned long long sorted[kCandidates];  // also the fallback's histogram (2048 bins)
  __shared__ SampleShared sh;
  pdl_wait();
  pdl_trigger();
  const std::int64_t row = blockIdx.x, chunk = blockIdx.y;
  const RowPlan plan = a.ws.plans[row];
  if (!plan.active) {
    if (chunk == 0 && threadIdx.x == 0 && plan.slot >= 0) a.scratch.slot_busy[plan.slot] = 0;
    return;
  }
  const std::int64_t begin = chunk * kChunk, end = min(begin + kChunk, a.vocab);
  float x[kPerThread];
  load_chunk<kDType>(row_logits<kDType>(a, row), begin, end, x);
  kept_mass_block<kDType>(a, row, chunk, plan, x, sh);
  if (!last_block_of_row(a.ws.counters + row, a.ws.chunks, &sh.last)) return;
  draw_row<kDType>(a, row, plan, sorted, sh);
  if (threadIdx.x == 0) a.scratch.slot_busy[plan.slot] = 0;
}

// ---- One-kernel step ------------------------------------------------------------------------------
// When the grid fits on the device at once, the three passes run in one kernel: each row gets
// `parts` blocks (blockIdx.y), block p taking chunks p, p + parts, ... (per-chunk partials as above,
// so the results do not depend on parts), and the blocks of a row wait for the row's last block
// between the passes (a flag it bumps once it has published the row's plan) instead of ending and
// being relaunched. A block keeps its first chunk in registers for all passes (at B = 1 that is the
// whole row: one read of HBM); later chunks are read again (from L2 at moderate batch sizes). The
// launcher picks parts so that every block can be resident at once, so every waited-for block is
// running or finished. Same arithmetic as the kernels above, so the same tokens, temperatures and
// entropies. Opt-in (RESET_NATIVE_SAMPLER_FUSED=1): its first version, measured on an H200, was
// slower than the kernels at B = 1 and 8 and level at B = 64; every block then read the row's plan
// from L2 at once after each wait (fixed since, not measured yet).

// The row's blocks arrive here when their part of a pass is written: true in the last to arrive
// (it combines, then calls row_publish); the others then call row_wait. *s_gen keeps the flag's
// value from before the arrival: the last block bumps the flag only after everyone arrived.
__device__ bool row_arrive(unsigned* counter, unsigned blocks, const unsigned* flag, unsigned* s_gen, int* s_last) {
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    *s_gen = *static_cast<const volatile unsigned*>(flag);
    __threadfence();
    const unsigned arrived = atomicAdd(counter, 1u) + 1u;
    const int last = arrived == blocks;
    if (last) *counter = 0u;
    *s_last = last;
  }
  __syncthreads();
  const bool last = *s_last != 0;
  if (last) __threadfence();
  return last;
}

__device__ void row_publish(unsigned* flag) {
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) atomicAdd(flag, 1u);
}

__device__ void row_wait(const unsigned* flag, const unsigned* s_gen) {
  if (threadIdx.x == 0) {
    while (*static_cast<const volatile unsigned*>(flag) == *s_gen) __nanosleep(32);
    __threadfence();
  }
  __syncthreads();
}

// The row's plan as published by another block of this grid: a few threads read it through L2
// into shared memory, and the block takes it from there (every thread of every block reading the
// same 64 bytes from L2 at the same moment made one L2 line a hot spot). All threads.
__device__ RowPlan load_plan(const RowPlan* plan, RowPlan* s_plan) {
  constexpr int kWords = static_cast<int>(sizeof(RowPlan) / 8);
  static_assert(sizeof(RowPlan) % 8 == 0 && kWords <= kThreads, "RowPlan is a few whole 8-byte words");
  if (threadIdx.x < kWords) {
    reinterpret_cast<unsigned long long*>(s_plan)[threadIdx.x] =
        __ldcg(reinterpret_cast<const unsigned long long*>(plan) + threadIdx.x);
  }
  __syncthreads();
  const RowPlan p = *s_plan;
  __syncthreads();  // s_plan is written again by the next call
  return p;
}

// The slot is released once every row of the step has claimed its own (the duplicate-slot check);
// the last row to finish resets the two grid counters for the next step. One thread.
__device__ void release_after_all_claims(const KernelArgs& a, std::int64_t rows, std::int64_t slot) {
  while (*static_cast<volatile unsigned*>(a.ws.grid + 0) < rows) __nanosleep(32);
  if (slot >= 0) a.scratch.slot_busy[slot] = 0;
  __threadfence();
  if (atomicAdd(a.ws.grid + 1, 1u) + 1u == rows) {
    a.ws.grid[0] = 0u;
    a.ws.grid[1] = 0u;
  }
}

template <int kDType, bool kTopP>
__global__ void __launch_bounds__(kThreads) fused_step_kernel(KernelArgs a) {
  __shared__ union {
    SlotCopy slot;                        // pass 1, last block
    unsigned hist[2 * kTopPBins];         // pass 2
    unsigned long long sorted[kCandidates];  // pass 3, last block
  } big;
  __shared__ ChunkPart chunk_parts[kWarps];
  __shared__ EntropyPart row_parts_shared[kWarps];
  __shared__ SampleShared sh;
  __shared__ unsigned s_gen;
  __shared__ int s_bin;
  __shared__ RowPlan s_plan;
  pdl_wait();
  pdl_trigger();
  const std::int64_t row = blockIdx.x, rows = gridDim.x;
  const unsigned part = blockIdx.y, parts = gridDim.y;
  unsigned* counter = a.ws.counters + row;
  unsigned* flag = a.ws.flags + row;
  const void* z = row_logits<kDType>(a, row);
  float x0[kPerThread];  // chunk `part`, kept for every pass
  load_chunk<kDType>(z, part * kChunk, min((part + 1) * kChunk, a.vocab), x0);
  // fn(c, logits of chunk c) for this block's chunks in order; the next chunk's loads are issued
  // before fn runs on the current one.
  const auto for_each_chunk = [&](auto&& fn) {
    float x[kPerThread];
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) x[j] = x0[j];
    for (unsigned c = part; c < a.ws.chunks; c += parts) {
      const unsigned next = c + parts;
      float xn[kPerThread];
      if (next < a.ws.chunks) load_chunk<kDType>(z, next * kChunk, min((next + 1) * kChunk, a.vocab), xn);
      fn(c, x);
      if (next < a.ws.chunks) {
#pragma unroll
        for (int j = 0; j < kPerThread; ++j) x[j] = xn[j];
      }
    }
  };

  // Pass 1: entropy per chunk; the last block plans the row.
  EntropyPart* row_parts = a.ws.entropy + row * a.ws.chunks;
  for_each_chunk([&](unsigned c, const float (&x)[kPerThread]) {
    const ChunkPart p = block_entropy(thread_entropy(x, static_cast<std::int64_t>(c) * kChunk), chunk_parts);
    if (threadIdx.x == 0) row_parts[c] = EntropyPart{p.max, p.sum_exp, p.sum_zexp, p.argmax, p.nan};
  });
  if (row_arrive(counter, parts, flag, &s_gen, &sh.last)) {
    stage_slot(a, row, big.slot);
    EntropyPart q = empty_part<EntropyPart>();
    for (unsigned c = threadIdx.x; c < a.ws.chunks; c += kThreads) q = entropy_merge(q, load_part(row_parts + c));
    const EntropyPart all = block_entropy(q, row_parts_shared);
    if (threadIdx.x == 0) {
      start_row(a, row, all, big.slot);
      __threadfence();
      atomicAdd(a.ws.grid + 0, 1u);  // this row has claimed (or been refused) its slot
    }
    row_publish(flag);
    const RowPlan plan = load_plan(a.ws.plans + row, &s_plan);
    if (!plan.active) {  // greedy or rejected: done, every other block of the row leaves too
      if (threadIdx.x == 0) release_after_all_claims(a, rows, plan.slot);
      return;
    }
  } else {
    row_wait(flag, &s_gen);
  }
  RowPlan plan = load_plan(a.ws.plans + row, &s_plan);
  if (!plan.active) return;

  // Pass 2: top-p bins; the last block picks the boundary bin.
  if (kTopP) {
    topp_bins_clear(big.hist, big.hist + kTopPBins);
    for_each_chunk([&](unsigned, const float (&x)[kPerThread]) { topp_bins_add(plan, x, big.hist, big.hist + kTopPBins); });
    topp_bins_flush(a, row, big.hist, big.hist + kTopPBins);
    if (row_arrive(counter, parts, flag, &s_gen, &sh.last)) {
      topp_pick_bin(a, row, sh.warp_sums, &s_bin, &sh.above);
      row_publish(flag);
    } else {
      row_wait(flag, &s_gen);
    }
    plan = load_plan(a.ws.plans + row, &s_plan);
  }

  // Pass 3: kept masses and candidates per chunk; the last block draws.
  for_each_chunk([&](unsigned c, const float (&x)[kPerThread]) { kept_mass_block<kDType>(a, row, c, plan, x, sh); });
  if (!row_arrive(counter, parts, flag, &s_gen, &sh.last)) return;
  draw_row<kDType>(a, row, plan, big.sorted, sh);
  if (threadIdx.x == 0) release_after_all_claims(a, rows, plan.slot);
}

// The state machine alone, one thread per row.
__global__ void update_kernel(KernelArgs a, std::int64_t rows, const float* entropies) {
  const std::int64_t row = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (row >= rows) return;
  std::int64_t slot = 0;
  int bad = claim_slot(a, row, &slot);
  const float h = entropies[row];
  if (!(h >= 0.0f) || isinf(h)) bad |= kErrorEntropy;  // also catches NaN
  if (bad) {
    reject_row(a, row, bad, h);
    if (claimed(bad)) a.scratch.slot_busy[slot] = 0;
    return;
  }
  double* sums = a.state.sums + slot * kSlotSums;
  std::int64_t* ints = a.state.ints + slot * kSlotInts;
  detail::observe_token(a.classes, sums, ints, a.last_tokens[row]);
  a.temperatures[row] = static_cast<float>(
      detail::choose_temperature(a.params, a.state.window_entropies + slot * a.state.window, sums, ints, h));
  a.scratch.slot_busy[slot] = 0;
}

KernelArgs make_args(const Config& config, const std::uint8_t* classes, std::int64_t vocab, StateView state,
                     const Batch& batch, DeviceScratch scratch) {
  validate(config);
  require(config.window == state.window, "config.window and the state's window differ");
  require(vocab >= 1, "vocab must be >= 1");
  require(batch.rows >= 1 && batch.rows <= state.slots, "rows must be in [1, batch_size]");
  require(scratch.error_flag && scratch.slot_busy, "device scratch buffers are missing");
  KernelArgs a{};
  a.params = detail::TransitionParams{config.t_low, config.t_high, config.tau0, config.window};
  a.top_p = config.top_p;
  a.top_k = config.top_k;
  a.classes = classes;
  a.vocab = vocab;
  a.state = state;
  a.last_tokens = batch.last_tokens;
  a.slots = batch.slots;
  a.scratch = scratch;
  return a;
}

Workspace make_workspace(const DeviceScratch& scratch, std::int64_t slots, std::int64_t vocab) {
  const detail::WorkspaceLayout l = detail::workspace_layout(slots, vocab);
  require(scratch.workspace != nullptr && scratch.workspace_bytes >= l.bytes,
          "the device workspace is missing or smaller than device_workspace_bytes(slots, vocab)");
  require(l.chunks <= 65535, "vocab is too large for the CUDA decode step (at most 65535 chunks of 2048)");
  char* base = static_cast<char*>(scratch.workspace);
  return Workspace{reinterpret_cast<unsigned*>(base + l.counters), reinterpret_cast<RowPlan*>(base + l.plans),
                   reinterpret_cast<EntropyPart*>(base + l.entropy),
                   reinterpret_cast<unsigned long long*>(base + l.masses),
                   reinterpret_cast<unsigned long long*>(base + l.hist),
                   reinterpret_cast<unsigned*>(base + l.candidate_counts),
                   reinterpret_cast<Candidate*>(base + l.candidates), reinterpret_cast<unsigned*>(base + l.flags),
                   reinterpret_cast<unsigned*>(base + l.grid), static_cast<unsigned>(l.chunks)};
}

void check_launch(const char* what) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) throw Error(std::string(what) + " launch failed: " + cudaGetErrorString(err));
}

// RESET_NATIVE_SAMPLER_TOPP=radix: the earlier three-level top-p search; RESET_NATIVE_SAMPLER_FUSED=1:
// the one-kernel step where it applies (opt-in: on an H200 it was slower than the kernels in its
// first version, see bench/RESULTS-sampler5.md). Read at every call, so a benchmark can time the
// variants in one process (a captured graph keeps the choice made at capture).
bool env_is(const char* name, const char* value) {
  const char* v = std::getenv(name);
  return v != nullptr && std::strcmp(v, value) == 0;
}

template <typename Kernel, typename... Args>
void launch(Kernel kernel, dim3 grid, cudaStream_t s, const char* what, Args... args) {
  const cudaError_t err = cuda_core::launch_pdl(kernel, grid, dim3(kThreads), 0, s, args...);
  if (err != cudaSuccess) throw Error(std::string("ReSET decode_step: ") + what + " launch failed: " + cudaGetErrorString(err));
}

// Blocks per row for the one-kernel step: as many as fit on the device at once next to the other
// rows' (at most one per chunk); 0 when not even one per row fits (or the query fails).
template <typename Kernel>
unsigned one_wave_parts(Kernel kernel, std::int64_t rows, unsigned chunks) {
  int device = 0, sms = 0, per_sm = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess ||
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, 0) != cudaSuccess) {
    cudaGetLastError();  // not fatal: take the multi-kernel path
    return 0;
  }
  const std::int64_t per_row = static_cast<std::int64_t>(sms) * per_sm / rows;
  return static_cast<unsigned>(per_row < chunks ? per_row : chunks);
}

template <int kDType>
void launch_decode(const KernelArgs& a, std::int64_t rows, cudaStream_t s) {
  const dim3 grid(static_cast<unsigned>(rows), a.ws.chunks);
  const bool top_k = a.top_k > 0 && a.top_k < a.vocab, top_p = a.top_p < 1.0;
  const bool radix = top_p && env_is("RESET_NATIVE_SAMPLER_TOPP", "radix");
  if (!top_k && !radix && env_is("RESET_NATIVE_SAMPLER_FUSED", "1")) {
    const auto fused = top_p ? fused_step_kernel<kDType, true> : fused_step_kernel<kDType, false>;
    const unsigned parts = one_wave_parts(fused, rows, a.ws.chunks);
    if (parts > 0) {
      launch(fused, dim3(static_cast<unsigned>(rows), parts), s, "one-kernel step", a);
      return;
    }
  }
  launch(stats_kernel<kDType>, grid, s, "stats", a);
  if (top_k) {
    for (int level = 0; level < kRadixLevels<kDType>; ++level) {
      launch(radix_level_kernel<kDType, false>, grid, s, "top-k", a, level);
    }
  }
  if (top_p) {
    if (radix) {
      for (int level = 0; level < kRadixLevels<kDType>; ++level) {
        launch(radix_level_kernel<kDType, true>, grid, s, "top-p", a, level);
      }
    } else {
      launch(topp_bins_kernel<kDType>, grid, s, "top-p bins", a);
    }
  }
  launch(sample_kernel<kDType>, grid, s, "sample", a);
}

}  // namespace cuda_detail

void decode_step_cuda(const Config& config, const std::uint8_t* classes, std::int64_t vocab, StateView state,
                      const Batch& batch, const void* logits, DType dtype, std::int64_t row_stride,
                      std::int64_t* tokens, float* temperatures, float* entropies, DeviceScratch scratch,
                      void* stream) {
  using namespace cuda_detail;
  KernelArgs a = make_args(config, classes, vocab, state, batch, scratch);
  require(row_stride >= vocab, "row_stride must be >= vocab");
  require(batch.rows <= 0x7FFFFFFF, "too many rows for one launch");
  a.ws = make_workspace(scratch, state.slots, vocab);
  a.logits = logits;
  a.row_stride = row_stride;
  a.tokens = tokens;
  a.temperatures = temperatures;
  a.entropies = entropies;
  const auto s = static_cast<cudaStream_t>(stream);
  switch (dtype) {
    case DType::kFloat32: launch_decode<0>(a, batch.rows, s); break;
    case DType::kBFloat16: launch_decode<1>(a, batch.rows, s); break;
    case DType::kFloat16: launch_decode<2>(a, batch.rows, s); break;
  }
  check_launch("ReSET decode_step");
}

void update_cuda(const Config& config, const std::uint8_t* classes, std::int64_t vocab, StateView state,
                 const Batch& batch, const float* entropies, float* temperatures, DeviceScratch scratch, void* stream) {
  using namespace cuda_detail;
  KernelArgs a = make_args(config, classes, vocab, state, batch, scratch);
  a.temperatures = temperatures;
  const unsigned threads = 128;
  const unsigned blocks = static_cast<unsigned>((batch.rows + threads - 1) / threads);
  update_kernel<<<blocks, threads, 0, static_cast<cudaStream_t>(stream)>>>(a, batch.rows, entropies);
  check_launch("ReSET update");
}

}  // namespace reset_native::sampler
