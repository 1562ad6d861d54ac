// Per-row device helpers of the GPU decode step: workspace views, slot claims, chunk loads, per-thread
// entropy partials and the staged slot state.
// Part of decode_step.cu's translation unit: included only there, in order.
#pragma once

namespace reset_native::sampler::cuda_detail {

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

}  // namespace reset_native::sampler::cuda_detail
