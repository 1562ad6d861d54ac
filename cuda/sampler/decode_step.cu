// ReSET decode step on the GPU, with all state in device memory, no host synchronisation and no
// allocation (CUDA-graph capturable). Every pass splits each row into fixed chunks of kChunk logits,
// one 256-thread block per (row, chunk); the last block of a row to finish a pass combines the
// row's partials (device_workspace.hpp). Kernels of one step, in stream order:
//   1. stats: entropy, max and argmax per chunk; the last block merges them in a fixed tree, claims
//      the slot, updates the state and picks the temperature (same code as the CPU path);
//   2. radix levels (11 + 11 + 10 bits of order-preserving float keys; the first two suffice for
//      bf16/fp16 logits): top-k on counts, then top-p on probability masses held in 2^-24 fixed
//      point, so every sum is an exact, order-independent integer and the same seed gives the same
//      token on every run;
//   3. sample: kept mass per chunk; the last block finds the chunk holding the uniform's quantile
//      and scans it, so the draw is an inverse CDF in index order.
#include <cuda_runtime.h>

#include <cmath>
#include <string>

#include "block_primitives.cuh"
#include "reset_native/error.hpp"
#include "reset_native/sampler.hpp"
#include "sampler/device_workspace.hpp"
#include "sampler/philox.hpp"
#include "sampler/transition.hpp"

namespace reset_native::sampler {

namespace cuda_detail {

using detail::kHistBins;
using detail::RowPlan;

struct Workspace {
  unsigned* counters;               // [slots] blocks of a row done with the current pass
  RowPlan* plans;                   // [slots]
  EntropyPart* entropy;             // [slots, chunks]
  unsigned long long* masses;       // [slots, chunks]
  unsigned long long* hist;         // [slots, kHistBins], zero between passes
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

// This thread's share of a chunk: max and argmax of its kPerThread logits, then fp32 sums relative
// to that max.
template <int kDType>
__device__ ChunkPart thread_entropy(const void* z, std::int64_t begin, std::int64_t end) {
  float x[kPerThread];
  ChunkPart p = empty_part<ChunkPart>();
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    const std::int64_t i = begin + j * kThreads + threadIdx.x;
    x[j] = i < end ? load_logit<kDType>(z, i) : -INFINITY;
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

// The row's entropy is known: claim the slot, run the state machine and plan the rest of the step.
// One thread.
__device__ void start_row(const KernelArgs& a, std::int64_t row, const EntropyPart& all) {
  const float entropy = all.max == -INFINITY || all.nan
                            ? NAN
                            : static_cast<float>(fmax(log(all.sum_exp) - all.sum_zexp / all.sum_exp, 0.0));
  std::int64_t slot = 0;
  int bad = claim_slot(a, row, &slot);
  if (all.nan) bad |= kErrorNaN;
  else if (all.max == -INFINITY) bad |= kErrorAllNegInf;
  RowPlan plan{};
  plan.slot = -1;
  plan.active = 0;
  if (bad) {
    reject_row(a, row, bad, entropy);
    if (claimed(bad)) plan.slot = slot;
  } else {
    double* sums = a.state.sums + slot * kSlotSums;
    std::int64_t* ints = a.state.ints + slot * kSlotInts;
    plan.uniform = detail::philox_uniform(static_cast<std::uint64_t>(ints[kSeed]),
                                          static_cast<std::uint64_t>(ints[kGlobalCount]));
    detail::observe_token(a.classes, sums, ints, a.last_tokens[row]);
    const double t = detail::choose_temperature(a.params, a.state.window_entropies + slot * a.state.window, sums,
                                                ints, entropy);
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
  __shared__ int s_last;
  const std::int64_t row = blockIdx.x, chunk = blockIdx.y;
  const std::int64_t begin = chunk * kChunk, end = min(begin + kChunk, a.vocab);
  const ChunkPart p = block_entropy(thread_entropy<kDType>(row_logits<kDType>(a, row), begin, end), chunk_parts);
  EntropyPart* row_parts = a.ws.entropy + row * a.ws.chunks;
  if (threadIdx.x == 0) row_parts[chunk] = EntropyPart{p.max, p.sum_exp, p.sum_zexp, p.argmax, p.nan};
  if (!last_block_of_row(a.ws.counters + row, a.ws.chunks, &s_last)) return;
  EntropyPart q = empty_part<EntropyPart>();
  for (unsigned c = threadIdx.x; c < a.ws.chunks; c += kThreads) q = entropy_merge(q, load_part(row_parts + c));
  const EntropyPart all = block_entropy(q, row_parts_shared);
  if (threadIdx.x == 0) start_row(a, row, all);
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

// Last pass: kept mass per chunk; the row's last block finds the chunk holding the uniform's quantile
// of the total kept mass, scans it in index order, writes the token and releases the slot. Rows that
// finished earlier (greedy, rejected) only release their slot here, after every row has claimed
// its own in the stats pass.
template <int kDType>
__global__ void __launch_bounds__(kThreads) sample_kernel(KernelArgs a) {
  __shared__ unsigned long long warp_sums[kWarps];
  __shared__ int s_last;
  __shared__ std::int64_t s_chunk, s_token;
  __shared__ unsigned long long s_rank;
  const std::int64_t row = blockIdx.x, chunk = blockIdx.y;
  const RowPlan plan = a.ws.plans[row];
  if (!plan.active) {
    if (chunk == 0 && threadIdx.x == 0 && plan.slot >= 0) a.scratch.slot_busy[plan.slot] = 0;
    return;
  }
  const void* z = row_logits<kDType>(a, row);
  const auto kept_weight = [&](std::int64_t i, std::int64_t end) -> unsigned {
    if (i >= end) return 0u;
    const float x = load_logit<kDType>(z, i);
    return order_key(x) >= plan.floor_key ? weight(x, plan.zmax, plan.inv_t) : 0u;
  };
  std::int64_t begin = chunk * kChunk, end = min(begin + kChunk, a.vocab);
  unsigned long long mine = 0;
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) mine += kept_weight(begin + j * kThreads + threadIdx.x, end);
  unsigned long long chunk_mass;
  block_exclusive_scan(mine, warp_sums, &chunk_mass);
  unsigned long long* row_masses = a.ws.masses + row * a.ws.chunks;
  if (threadIdx.x == 0) row_masses[chunk] = chunk_mass;
  if (!last_block_of_row(a.ws.counters + row, a.ws.chunks, &s_last)) return;

  // Thread t holds a run of consecutive chunks; the quantile's chunk and its rank inside it.
  const unsigned per = (a.ws.chunks + kThreads - 1) / kThreads;
  const unsigned first = min(threadIdx.x * per, a.ws.chunks), last = min(first + per, a.ws.chunks);
  unsigned long long run = 0;
  for (unsigned c = first; c < last; ++c) run += __ldcg(row_masses + c);
  if (threadIdx.x == 0) {
    s_chunk = -1;
    s_token = plan.argmax;
  }
  unsigned long long total;
  unsigned long long cum = block_exclusive_scan(run, warp_sums, &total);
  // total >= 2^24: the argmax always passes every threshold and weighs 2^24.
  const unsigned long long target =
      min(static_cast<unsigned long long>(plan.uniform * static_cast<double>(total)), total - 1);
  if (cum <= target && target < cum + run) {
    for (unsigned c = first; c < last; ++c) {
      const unsigned long long m = __ldcg(row_masses + c);
      if (target < cum + m) {
        s_chunk = c;
        s_rank = target - cum;
        break;
      }
      cum += m;
    }
  }
  __syncthreads();
  if (s_chunk >= 0) {
    // Thread t takes logits [8t, 8t + 8) of the chunk: thread order is index order, one scan.
    const unsigned long long rank = s_rank;
    begin = s_chunk * kChunk + threadIdx.x * kPerThread;
    end = min(s_chunk * kChunk + kChunk, a.vocab);
    unsigned w[kPerThread];
    unsigned long long run_mass = 0;
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) {
      w[j] = kept_weight(begin + j, end);
      run_mass += w[j];
    }
    unsigned long long chunk_total;
    unsigned long long at = block_exclusive_scan(run_mass, warp_sums, &chunk_total);
    if (at <= rank && rank < at + run_mass) {
      for (int j = 0; j < kPerThread; ++j) {
        if (rank < at + w[j]) {
          s_token = begin + j;
          break;
        }
        at += w[j];
      }
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    a.tokens[row] = s_token;
    a.scratch.slot_busy[plan.slot] = 0;
  }
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
                   reinterpret_cast<unsigned long long*>(base + l.hist), static_cast<unsigned>(l.chunks)};
}

void check_launch(const char* what) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) throw Error(std::string(what) + " launch failed: " + cudaGetErrorString(err));
}

template <int kDType>
void launch_decode(const KernelArgs& a, std::int64_t rows, cudaStream_t s) {
  const dim3 grid(static_cast<unsigned>(rows), a.ws.chunks);
  stats_kernel<kDType><<<grid, kThreads, 0, s>>>(a);
  if (a.top_k > 0 && a.top_k < a.vocab) {
    for (int level = 0; level < kRadixLevels<kDType>; ++level) {
      radix_level_kernel<kDType, false><<<grid, kThreads, 0, s>>>(a, level);
    }
  }
  if (a.top_p < 1.0) {
    for (int level = 0; level < kRadixLevels<kDType>; ++level) {
      radix_level_kernel<kDType, true><<<grid, kThreads, 0, s>>>(a, level);
    }
  }
  sample_kernel<kDType><<<grid, kThreads, 0, s>>>(a);
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
