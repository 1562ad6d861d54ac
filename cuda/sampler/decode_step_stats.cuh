// Pass 1 of the GPU decode step (entropy, max, argmax and the row plan) and the radix-level search used
// by top-k and by the optional radix top-p.
// Part of decode_step.cu's translation unit: included only there, in order.
#pragma once

namespace reset_native::sampler::cuda_detail {

// The row's last block, warp 0: the chunks' parts combined max first (warp_combine_parts; valid in
// every lane of warp 0).
// kFast (RESET_NATIVE_SAMPLER_FAST_FINISH): warp_combine_parts's fast form, always with the batched loads.
template <bool kFast = false>
__device__ RN_TRACE_NOINLINE EntropyPart merge_row_parts(const KernelArgs& a, const EntropyPart* row_parts) {
  if constexpr (kFast) {
    return warp_combine_parts<true>(a.ws.chunks, [&](unsigned c) { return load_part_narrow(row_parts + c); });
  }
  if (a.combine_loads) {
    return warp_combine_parts(a.ws.chunks, [&](unsigned c) { return load_part_narrow(row_parts + c); }, true);
  }
  return warp_combine_parts(a.ws.chunks, [&](unsigned c) { return load_part(row_parts + c); });
}

// Pass 1: entropy per chunk; the row's last block merges the chunks in index order and plans the row.
// One block per chunk (kGrouped false), or per group of chunks part, part + parts, ... (kGrouped true,
// parts = gridDim.y: large batches, where a block per chunk leaves the pass bound by each block's
// fixed costs rather than by the reads); every chunk's part is the same bits either way.
// One block also prepares the row's slot while the entropy is reduced (chunk 0's; grouped: part 0's, with
// a.prep_first, else the last part's; with a block per chunk, by default: an extra block past the last chunk,
// gridDim.y = chunks + 1, which reads no logits, so that its serial chain runs beside the chunks rather than
// after chunk 0's): warps 1-4 claim the slot and load its state and token classes, the
// block stages the window, and kPreparer runs the part of the state machine that needs no entropy
// (prepare_row) before the block arrives.
// kPhased (kGrouped only): the next chunk's loads issued only once this chunk has arrived (load_next_chunk).
// kFast (RESET_NATIVE_SAMPLER_FAST_FINISH, session 21): the last block's combine in its fast form (merge_row_parts),
// and thread kInvThread computes the plan's two 1 / T beside it (finish_row's fast form). The same bits.
constexpr unsigned kInvThread = 96;  // warp 3: neither the combine's warp 0 nor load_pre's words (threads < 64)
template <int kDType, bool kGrouped, bool kPhased = false, bool kFast = false>
__global__ void __launch_bounds__(kThreads, 5) stats_kernel(KernelArgs a) {
  __shared__ ChunkPart chunk_parts[kWarps];
  __shared__ float s_window[kMaxWindow];
  __shared__ PrepShared s_prep;
  __shared__ RowPre s_pre;
  __shared__ int s_last;
  RN_TRACE(0, 0);
  pdl_wait();  // the logits, the state and the workspace come from earlier kernels
  pdl_trigger();
  RN_TRACE(0, 1);
  const std::int64_t row = blockIdx.x;
  const unsigned part = blockIdx.y, parts = gridDim.y;  // one block per chunk: part == chunk
  const bool prep_block = !kGrouped && parts > a.ws.chunks;  // the extra preparing block exists
  // a.prep_first (RESET_NATIVE_SAMPLER_PREP_FIRST, grouped only): part 0's block prepares instead, dispatched in the
  // pass's first wave of blocks rather than its last (blocks run part by part), so that the preparation's serial
  // chain runs beside the other blocks' chunks instead of after them. Which block prepares changes no value.
  const unsigned preparer = kGrouped && a.prep_first ? 0u : parts - 1;
  const bool prepares = kGrouped ? part == preparer : (prep_block ? part == parts - 1 : part == 0);
  const bool chunkless = prep_block && prepares;  // the extra block: no logits
  const std::int64_t begin = static_cast<std::int64_t>(part) * kChunk, end = min(begin + kChunk, a.vocab);
  float x[kPerThread];
  if (!chunkless) load_chunk_as<kDType>(a.stats_loads, row_logits<kDType>(a, row), begin, end, x);
  int bad = 0;
  if (prepares) {
    bad = prepare_loads(a, row, s_prep);
    stage_window(a, row, s_window);
  }
  EntropyPart* row_parts = a.ws.entropy + row * a.ws.chunks;
  if constexpr (kGrouped) {
    // Rounds of up to kWarps chunks: each chunk is reduced warp by warp as it arrives (no barrier),
    // then, once per round, warp k merges the warp parts of the round's chunk k (chunk_part's two
    // levels taken apart: the same bits).
    __shared__ ChunkPart round_parts[kWarps][kWarps];  // [chunk of the round][warp]
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    bool first_round = true;
    for (unsigned round = part; round < a.ws.chunks; round += parts * kWarps) {
      const int k = grouped_round<kDType, kPhased>(a, row, round, parts, x, [&](int i, unsigned c) {
        const ChunkPart p = warp_chunk_part(x, static_cast<std::int64_t>(c) * kChunk, a.lean_stats != 0,
                                            a.stats_range != 0);
        if (lane == 0) round_parts[i][warp] = p;
      }, a.stats_loads);
      __syncthreads();  // the round's warp parts (and, in the first round, s_prep and s_window) are complete
      RN_TRACE(0, 2);
      if (warp < k) {
        const ChunkPart p = merge_warp_parts(round_parts[warp]);
        if (lane == 0) row_parts[round + warp * parts] = EntropyPart{p.max, p.sum_exp, p.sum_zexp, p.argmax, p.nan};
      }
      if (prepares && first_round && threadIdx.x == kPreparer) {
        RN_TRACE_HERE(0, 15);
        prepare_row(a, row, bad, s_prep, s_window, s_pre);
        RN_TRACE_HERE(0, 14);
      }
      first_round = false;
      __syncthreads();  // round_parts is reused
    }
  } else {
    if (chunkless) {
      __syncthreads();  // s_prep and s_window are complete
    } else {
      const ChunkPart p = chunk_part(x, begin, chunk_parts, a.lean_stats != 0, a.stats_range != 0);  // its barriers publish s_prep
      RN_TRACE(0, 2);
      if (threadIdx.x == 0) row_parts[part] = EntropyPart{p.max, p.sum_exp, p.sum_zexp, p.argmax, p.nan};
    }
    if (prepares && threadIdx.x == kPreparer) {
      RN_TRACE_HERE(0, 15);  // the slot's loads and the window are in shared memory
      prepare_row(a, row, bad, s_prep, s_window, s_pre);
      RN_TRACE_HERE(0, 14);
    }
  }
  if (!last_block_of_row(a.ws.counters + row, parts, &s_last, 0)) return;
  RN_TRACE(0, 3);
  // Without a.pre_warp, warp 0's loads: ptxas stores each word to shared memory as soon as it arrives, before the
  // combine's loads are issued, so the combine waits for two L2 round trips in a row (SASS of stats_kernel).
  // a.pre_warp (RESET_NATIVE_SAMPLER_PRE_WARP, session 16): warp 1 loads it while warp 0 combines. The same words.
  // (The two forms are separate branches: predicated into one sequence, warp 0 still ran the store's wait.)
  EntropyPart all{};
  // kFast: the two 1 / T in chunk_parts' first bytes (every read of chunk_parts ended before the arrival's barriers).
  InvTemperatures* s_inv = reinterpret_cast<InvTemperatures*>(chunk_parts);
  if constexpr (kFast) {
    if (threadIdx.x == kInvThread) s_inv[0] = inv_temperatures(a.params);
  }
  if (a.pre_warp) {
    if (threadIdx.x >= 32) {
      if (!prepares) load_pre(a, row, s_pre, 32u);
    } else {
      all = merge_row_parts<kFast>(a, row_parts);
    }
  } else {
    if (!prepares) load_pre(a, row, s_pre);
    if (threadIdx.x < 32) all = merge_row_parts<kFast>(a, row_parts);
  }
  if (threadIdx.x < 32) {
    RN_TRACE(0, 4);
#ifdef RESET_NATIVE_SAMPLER_TRACE
    // Probe only: the same loads and combine once more, the same instructions with warm caches (mark 7).
    const double again = merge_row_parts<kFast>(a, row_parts).sum_exp;
    if (threadIdx.x == 0) g_trace_sink = again;
    RN_TRACE(0, 7);
#endif
  }
  __syncthreads();  // s_pre is complete
  if (threadIdx.x == 0) finish_row<kFast>(a, row, all, s_pre, s_inv);
  RN_TRACE(0, 5);
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

}  // namespace reset_native::sampler::cuda_detail
