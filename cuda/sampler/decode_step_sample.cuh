// The sampling pass of the GPU decode step: kept mass per chunk, the exact threshold, and the
// inverse-CDF draw in index order.
// Part of decode_step.cu's translation unit: included only there, in order.
#pragma once

namespace reset_native::sampler::cuda_detail {

// Shared memory of the sampling phases.
struct SampleShared {
  unsigned long long warp_sums[kWarps];
  int last, first;
  int segment;  // draw_row_cells: the quantile's segment in its chunk
  std::int64_t chunk, token;
  unsigned long long rank, above;
  unsigned digit;
};

// Shared memory of the row's last sampling block.
struct DrawShared {
  alignas(16) unsigned long long kw[kCandidates];  // candidates: key << 32 | weight; the fallback's histogram
  unsigned index[kRankCandidates];      // candidates' positions in the row (n <= kRankCandidates)
  unsigned extra_lo[kThreads];          // kept mass of the boundary bin per chunk (chunks <= kThreads), in
  unsigned extra_hi[kThreads];          // two halves: bits 0..11 and 12..24 of each weight
  unsigned best, least;
  SubBinShared sub;                     // threshold_by_sub_bins (a.sub_bins; its scratch: kw[kRankCandidates...])
};

// This thread's logits of a chunk in the sampling pass: w[j] its weight if it is kept for sure (at or
// above the top-k floor, and above the top-p boundary bin when there is one), 0 if it is dropped; the
// logits inside the boundary bin (decided by the row's last block) are returned as bits j, with
// their weights in w[j].
// kFloor false: no top-k floor (plan.floor_key 0), so no key is computed or compared.
template <bool kLean, bool kFloor>
__device__ __forceinline__ unsigned kept_weights_of(const RowPlan& plan, const float (&x)[kPerThread],
                                                    unsigned (&w)[kPerThread]) {
  const bool binned = plan.bin >= 0;
  unsigned in_bin = 0u;
  if constexpr (kLean) {
    // Without branches: every logit's bin (bin_at's lean form is defined for every m <= 0, -inf included),
    // against a limit no bin reaches when there is no boundary bin. A weight-0 logit stays 0 and out of the
    // bin, as when its bin is not looked at.
    const int limit = binned ? plan.bin : kTopPBins;
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) {
      const float m = tempered(x[j], plan.zmax, plan.inv_t);
      w[j] = !kFloor || above_floor(x[j], plan.floor_key) ? weight_at<kLean>(m) : 0u;
      const int bin = bin_at<kLean>(m);
      in_bin |= (w[j] != 0u && bin == limit ? 1u : 0u) << j;
      w[j] = bin > limit ? 0u : w[j];  // below the boundary bin: never kept
    }
  } else {
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) {
      const float m = tempered(x[j], plan.zmax, plan.inv_t);
      w[j] = !kFloor || above_floor(x[j], plan.floor_key) ? weight_at<kLean>(m) : 0u;
      if (binned && w[j] != 0u) {
        const int bin = bin_at<kLean>(m);
        if (bin == plan.bin) in_bin |= 1u << j;
        if (bin > plan.bin) w[j] = 0u;  // below the boundary bin: never kept
      }
    }
  }
  return in_bin;
}

// kLean: weight_at / bin_at's lean forms, and no top-k floor test when there is no floor (a block-uniform
// branch outside the loop, as in topp_bins_add). The same bits either way.
template <bool kLean = false>
__device__ __forceinline__ unsigned kept_weights(const RowPlan& plan, const float (&x)[kPerThread],
                                                 unsigned (&w)[kPerThread]) {
  if (kLean && plan.floor_key == 0u) return kept_weights_of<kLean, false>(plan, x, w);
  return kept_weights_of<kLean, true>(plan, x, w);
}

// a.kept_sum (RESET_NATIVE_SAMPLER_KEPT_SUM), lean only: kept_weights_of's lean loop with the thread's kept mass
// summed in it, as the weights of the logits whose bin is above the boundary bin (bin < limit): that is the sum
// of the kept weights outside the bin, a weight-0 logit of the boundary bin adding 0 either way. w[j] is then only
// meaningful for the boundary bin's logits (bits of the result), the only ones write_candidates reads.
// kHalves (the cells, decode_step_cells.cuh): the kept mass of x[0..3] into k0 and of x[4..7] into k1; otherwise all
// of it into k0 (k1 unused).
template <bool kFloor, bool kHalves = false>
__device__ __forceinline__ unsigned kept_weights_summed_of(const RowPlan& plan, const float (&x)[kPerThread],
                                                           unsigned (&w)[kPerThread], unsigned& k0, unsigned& k1) {
  const int limit = plan.bin >= 0 ? plan.bin : kTopPBins;
  unsigned in_bin = 0u;
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    const float m = tempered(x[j], plan.zmax, plan.inv_t);
    w[j] = !kFloor || above_floor(x[j], plan.floor_key) ? weight_at<true>(m) : 0u;
    const int bin = bin_at<true>(m);
    in_bin |= (w[j] != 0u && bin == limit ? 1u : 0u) << j;
    (kHalves && j >= kPerThread / 2 ? k1 : k0) += bin < limit ? w[j] : 0u;
  }
  return in_bin;
}

__device__ __forceinline__ unsigned kept_weights_summed(const RowPlan& plan, const float (&x)[kPerThread],
                                                        unsigned (&w)[kPerThread], unsigned& kept) {
  if (plan.floor_key == 0u) return kept_weights_summed_of<false>(plan, x, w, kept, kept);
  return kept_weights_summed_of<true>(plan, x, w, kept, kept);
}

// This thread's logits of the boundary bin (bit j of in_bin: its j-th logit, weight w[j]) to consecutive
// candidate slots from `slot` on; slots past kCandidates are counted by the caller, not stored. vec: x is in
// kLoadVec's layout (vec_offset), else in load_chunk's.
template <int kDType>
__device__ __forceinline__ void write_candidates(Candidate* row_cand, unsigned long long slot, unsigned in_bin,
                                                 const float (&x)[kPerThread], const unsigned (&w)[kPerThread],
                                                 std::int64_t begin, bool vec = false) {
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    if (!(in_bin & (1u << j))) continue;
    if (slot < static_cast<unsigned long long>(kCandidates)) {
      const unsigned offset = vec ? vec_offset<kDType>(j) : static_cast<unsigned>(j * kThreads + threadIdx.x);
      row_cand[slot] = Candidate{order_key(x[j]), w[j], static_cast<unsigned>(begin + offset), 0u};
    }
    ++slot;
  }
}

// The warp's boundary-bin logits (bits of in_bin, weights w) to the row's candidates: one slot-reserving atomic per
// warp. skip_empty (a.warp_redux): the scan of the counts only in a warp that holds candidates.
template <int kDType>
__device__ __forceinline__ void publish_candidates(const KernelArgs& a, std::int64_t row, unsigned chunk,
                                                   const float (&x)[kPerThread], const unsigned (&w)[kPerThread],
                                                   unsigned in_bin, int mode, bool skip_empty) {
  const std::int64_t begin = static_cast<std::int64_t>(chunk) * kChunk;
  const int lane = threadIdx.x & 31;
  const unsigned count = __popc(in_bin);
  if (skip_empty && __reduce_add_sync(kFullMask, count) == 0u) return;
  unsigned upto = count;  // inclusive scan over the warp
  for (int o = 1; o < 32; o <<= 1) {
    const unsigned y = __shfl_up_sync(kFullMask, upto, o);
    if (lane >= o) upto += y;
  }
  const unsigned warp_count = __shfl_sync(kFullMask, upto, 31);
  if (warp_count == 0u) return;
  unsigned base = 0u;
  if (lane == 0) base = atomicAdd(a.ws.candidate_counts + row, warp_count);
  const bool vec = vec_layout(mode, begin, min(begin + kChunk, a.vocab));
  write_candidates<kDType>(a.ws.candidates + row * kCandidates,
                           __shfl_sync(kFullMask, base, 0) + static_cast<unsigned long long>(upto - count), in_bin, x,
                           w, begin, vec);
}

// The end of kept_mass_warp (below) once a thread's kept mass `kept`, its boundary-bin logits (bits of in_bin) and
// their weights w are known: the warp's kept mass into warp_mass[warp], the warp's boundary-bin logits to the row's
// candidates.
// a.warp_redux (RESET_NATIVE_SAMPLER_WARP_REDUX): the warp's kept mass as two 32-bit redux sums (of each thread's
// bits 16 and up, and below: at most 32 x 2^11 and 32 x 2^16, exact) instead of a 64-bit shuffle tree, and the
// candidate count as one redux, so that the scan of the counts runs only in a warp that holds candidates (nearly
// none do: the boundary bin holds at most a few hundred of the row's logits). The same integers.
template <int kDType>
__device__ __forceinline__ void kept_mass_publish(const KernelArgs& a, std::int64_t row, unsigned chunk,
                                                  const float (&x)[kPerThread], const unsigned (&w)[kPerThread],
                                                  unsigned in_bin, unsigned kept, unsigned long long* warp_mass,
                                                  int mode) {
  const int lane = threadIdx.x & 31;
  static_assert(kPerThread * (1ull << 24) < (1ull << 32), "a thread's kept mass fits 32 bits");
  if (a.warp_redux) {
    const unsigned high = __reduce_add_sync(kFullMask, kept >> 16), low = __reduce_add_sync(kFullMask, kept & 0xFFFFu);
    if (lane == 0) warp_mass[threadIdx.x >> 5] = (static_cast<unsigned long long>(high) << 16) + low;
  } else {
    unsigned long long mine = kept;
    for (int o = 16; o > 0; o >>= 1) mine += __shfl_down_sync(kFullMask, mine, o);
    if (lane == 0) warp_mass[threadIdx.x >> 5] = mine;
  }
  publish_candidates<kDType>(a, row, chunk, x, w, in_bin, mode, a.warp_redux != 0);
}

// Sampling, one chunk's part, without a block barrier: the kept mass of the chunk (with a top-p bin:
// the logits above the bin only) is summed per warp into warp_mass[warp] (the caller adds the kWarps
// sums: exact integers, in any grouping), and each warp reserves its boundary-bin logits' candidate
// slots with one atomic, as soon as its logits are weighed, and writes them (their order in the buffer
// does not matter: the threshold and the kept masses are computed from the set). mode: how x was loaded
// (load_chunk_as; kLoadVec's layout only changes which indices the candidates get).
template <int kDType, bool kLean = false>
__device__ void kept_mass_warp(const KernelArgs& a, std::int64_t row, unsigned chunk, const RowPlan& plan,
                               const float (&x)[kPerThread], unsigned long long* warp_mass,
                               int mode = kLoadChecked) {
  unsigned w[kPerThread];
  unsigned kept = 0u;  // at most kPerThread weights of <= 2^24: no overflow
  unsigned in_bin;
  if (kLean && a.kept_sum) {
    in_bin = kept_weights_summed(plan, x, w, kept);
  } else {
    in_bin = kept_weights<kLean>(plan, x, w);
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) kept += in_bin & (1u << j) ? 0u : w[j];
  }
  kept_mass_publish<kDType>(a, row, chunk, x, w, in_bin, kept, warp_mass, mode);
}

// The end of a block's kept-mass part: after a barrier thread 0 adds the warps' masses (in warp order) into the
// row's masses for this chunk. All threads; ends with a barrier (warp_mass may be reused).
__device__ __forceinline__ void store_block_mass(const KernelArgs& a, std::int64_t row, unsigned chunk,
                                                 const unsigned long long* warp_mass) {
  RN_TRACE(2, 11);
  __syncthreads();
  if (threadIdx.x == 0) {
    unsigned long long m = 0;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) m += warp_mass[w];
    a.ws.masses[row * a.ws.chunks + chunk] = m;
  }
  __syncthreads();
}

// Sampling, one block's part for chunk `chunk` (the sample kernel with a block per chunk, the one-kernel
// step): kept_mass_warp, then thread 0 adds the warp masses into the row's masses. All threads; ends
// with a barrier (warp_mass may be reused). (Until session 8 a block scan of the packed mass and
// in-bin count came first, then one candidate-slot atomic per block: the atomic's round trip then
// started only after the scan's three barriers.)
template <int kDType, bool kLean = false>
__device__ void kept_mass_block(const KernelArgs& a, std::int64_t row, unsigned chunk, const RowPlan& plan,
                                const float (&x)[kPerThread], unsigned long long* warp_mass,
                                int mode = kLoadChecked) {
  kept_mass_warp<kDType, kLean>(a, row, chunk, plan, x, warp_mass, mode);
  store_block_mass(a, row, chunk, warp_mass);
}

// A kept logit of the boundary bin adds its weight to its chunk's mass: in shared memory when thread
// t owns chunk t, otherwise to the row's masses in global memory (then fenced and re-read).
__device__ __forceinline__ void add_kept(DrawShared& d, unsigned long long* row_masses, unsigned chunk, unsigned w,
                                         bool own_chunk) {
  if (own_chunk) {
    atomicAdd(d.extra_lo + chunk, w & 0xFFFu);
    atomicAdd(d.extra_hi + chunk, w >> 12);
  } else {
    atomicAdd(row_masses + chunk, static_cast<unsigned long long>(w));
  }
}

// The radix fallback's kept mass of chunk c inside the boundary bin (logits at or above floor_key): one warp's
// sum, complete in lane 0. draw_row and the resident step's threshold meeting both add it to their chunk masses.
template <int kDType>
__device__ __forceinline__ unsigned long long boundary_bin_chunk_mass(const KernelArgs& a, const void* z,
                                                                      const RowPlan& plan, unsigned floor_key,
                                                                      unsigned c) {
  unsigned long long m = 0;
  const std::int64_t stop = min(static_cast<std::int64_t>(c + 1) * kChunk, a.vocab);
  for (std::int64_t i = c * kChunk + (threadIdx.x & 31); i < stop; i += 32) {
    const float x = load_logit<kDType>(z, i);
    if (order_key(x) < floor_key) continue;
    const unsigned wx = weight(x, plan.zmax, plan.inv_t);
    if (wx != 0u && topp_bin(x, plan.zmax, plan.inv_t) == plan.bin) m += wx;
  }
  for (int o = 16; o > 0; o >>= 1) m += __shfl_down_sync(kFullMask, m, o);
  return m;
}

// The draw's last step over a whole chunk (sh.chunk, rank sh.rank inside its kept mass): thread t weighs logits
// [8t, 8t + 8) with weigh(i, end) (0 past the row's end), thread order is index order, one block scan; the logit where
// the running mass passes the rank goes to sh.token. All threads. (draw_row, and draw_row_cells where the cells do not
// apply.)
template <class Weigh>
__device__ __forceinline__ void draw_in_chunk(const KernelArgs& a, SampleShared& sh, Weigh weigh) {
  const unsigned long long rank = sh.rank;
  const std::int64_t begin = sh.chunk * kChunk + threadIdx.x * kPerThread;
  const std::int64_t end = min(sh.chunk * kChunk + kChunk, a.vocab);
  unsigned wk[kPerThread];
  unsigned long long run_mass = 0;
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    wk[j] = weigh(begin + j, end);
    run_mass += wk[j];
  }
  RN_TRACE(2, 15);  // thread 0's logits of the chunk loaded and weighed
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

// Sampling, the row's last block: with a top-p bin, the exact threshold among the bin's logits and
// their kept masses added to their chunks; then the chunk holding the uniform's quantile of the kept
// mass, scanned in index order; writes the token. All threads.
template <int kDType>
__device__ void draw_row(const KernelArgs& a, std::int64_t row, const RowPlan& plan, DrawShared& d, SampleShared& sh) {
  const void* z = row_logits<kDType>(a, row);
  unsigned long long* row_masses = a.ws.masses + row * a.ws.chunks;
  // Thread t owns chunk t when there are at most kThreads chunks (V <= 524288): its mass is loaded now,
  // with the candidate count and the first candidates, all in one round trip.
  const bool own_chunk = a.ws.chunks <= static_cast<unsigned>(kThreads);
  unsigned long long my_mass = own_chunk && threadIdx.x < a.ws.chunks ? __ldcg(row_masses + threadIdx.x) : 0ull;
  d.extra_lo[threadIdx.x] = 0u;
  d.extra_hi[threadIdx.x] = 0u;
  // a.lean_draw: the counted threshold through sub-bins from the candidates in registers
  // (threshold_by_sub_bins_own), and the draw's weights in weight_at's lean form (the same bits).
  const bool lean = a.lean_draw && a.sub_bins;
  if (lean) sub_bins_init(d.sub);  // published by the barrier after the loads below
  unsigned floor_key = plan.floor_key;
  bool global_masses = false;  // kept masses went to the global row masses: fence, re-read
  if (plan.bin >= 0) {
    const uint4* row_cand = reinterpret_cast<const uint4*>(a.ws.candidates + row * kCandidates);
    static_assert(sizeof(Candidate) == sizeof(uint4), "a candidate is one 16-byte load");
    const uint4 mine = __ldcg(row_cand + threadIdx.x);  // candidate threadIdx.x, if there are that many
    const unsigned n = __ldcg(a.ws.candidate_counts + row);
    __syncthreads();  // every thread has read the count before it is reset
    RN_TRACE(2, 5);
    if (threadIdx.x == 0) a.ws.candidate_counts[row] = 0u;
    if (n == 0u) {
      // Unreachable (the bin was chosen for its mass, and the same logits are recounted): keep the floor.
    } else if (lean && n <= static_cast<unsigned>(kRankCandidates)) {
      floor_key = threshold_by_sub_bins_own((static_cast<unsigned long long>(mine.x) << 32) | mine.y,
                                            static_cast<int>(n), plan.target, plan, d.sub, d.kw + kRankCandidates);
      RN_TRACE(2, 6);
      if (threadIdx.x < n && mine.x >= floor_key) add_kept(d, row_masses, mine.z / kChunk, mine.y, own_chunk);
      global_masses = !own_chunk;
    } else if (n <= static_cast<unsigned>(kCandidates)) {
      for (unsigned i = threadIdx.x; i < n; i += kThreads) {
        const uint4 c = i == threadIdx.x ? mine : __ldcg(row_cand + i);  // (key, weight, index, pad)
        d.kw[i] = (static_cast<unsigned long long>(c.x) << 32) | c.y;
        if (i < static_cast<unsigned>(kRankCandidates)) d.index[i] = c.z;
      }
      __syncthreads();
      RN_TRACE(2, 14);  // the candidates loaded (their count known) and copied to shared memory
      if (n <= static_cast<unsigned>(kRankCandidates)) {
        static_assert(kCandidates >= 2 * kRankCandidates, "threshold_by_sub_bins' scratch after the candidates");
        const auto threshold = [&] {
          return a.sub_bins ? threshold_by_sub_bins(d.kw, static_cast<int>(n), plan.target, plan, d.sub,
                                                    d.kw + kRankCandidates)
                            : threshold_by_rank(d.kw, static_cast<int>(n), plan.target, &d.best, &d.least);
        };
        floor_key = threshold();
        RN_TRACE(2, 6);
#ifdef RESET_NATIVE_SAMPLER_TRACE
        // Probe only: the same search once more, the same instructions with warm caches (mark 18).
        const unsigned again = threshold();
        if (threadIdx.x == 0) g_trace_sink = again;
        RN_TRACE(2, 18);
#endif
        const unsigned i = threadIdx.x;
        if (i < n && static_cast<unsigned>(d.kw[i] >> 32) >= floor_key) {
          add_kept(d, row_masses, d.index[i] / kChunk, static_cast<unsigned>(d.kw[i]), own_chunk);
        }
      } else {
        floor_key = threshold_by_sort(d.kw, static_cast<int>(n), plan.target, sh.warp_sums, &sh.first);
        RN_TRACE(2, 6);
        for (unsigned i = threadIdx.x; i < n; i += kThreads) {  // kw is sorted now: the unsorted copy
          const uint4 c = __ldcg(row_cand + i);
          if (c.x >= floor_key) add_kept(d, row_masses, c.z / kChunk, c.y, own_chunk);
        }
      }
      global_masses = !own_chunk;
    } else {
      floor_key = threshold_from_row<kDType>(a, z, plan, d.kw, sh.warp_sums, &sh.digit, &sh.above);
      // The kept logits of the bin, added chunk by chunk: warp w takes chunks w, w + kWarps, ...
      for (unsigned c = threadIdx.x >> 5; c < a.ws.chunks; c += kWarps) {
        const unsigned long long m = boundary_bin_chunk_mass<kDType>(a, z, plan, floor_key, c);
        if ((threadIdx.x & 31) == 0 && m) atomicAdd(row_masses + c, m);
      }
      global_masses = true;
    }
    if (global_masses) __threadfence();
    __syncthreads();
    RN_TRACE(2, 7);
  }
  if (own_chunk && global_masses && threadIdx.x < a.ws.chunks) my_mass = __ldcg(row_masses + threadIdx.x);
  const auto kept_weight = [&](std::int64_t i, std::int64_t stop) -> unsigned {
    if (i >= stop) return 0u;
    const float x = load_logit<kDType>(z, i);
    if (order_key(x) < floor_key) return 0u;
    const float m = tempered(x, plan.zmax, plan.inv_t);
    return lean ? weight_at<true>(m) : weight_at<false>(m);
  };

  // Thread t holds a run of consecutive chunks (chunk t when it owns one); the quantile's chunk and
  // its rank inside it.
  const unsigned per = (a.ws.chunks + kThreads - 1) / kThreads;
  const unsigned first = min(threadIdx.x * per, a.ws.chunks), last = min(first + per, a.ws.chunks);
  unsigned long long run = 0;
  if (own_chunk) {
    run = my_mass + (static_cast<unsigned long long>(d.extra_hi[threadIdx.x]) << 12) + d.extra_lo[threadIdx.x];
  } else {
    for (unsigned c = first; c < last; ++c) run += __ldcg(row_masses + c);
  }
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
    if (own_chunk) {
      sh.chunk = threadIdx.x;
      sh.rank = target - cum;
    } else {
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
  }
  __syncthreads();
  RN_TRACE(2, 8);
  if (sh.chunk >= 0) draw_in_chunk(a, sh, kept_weight);
  __syncthreads();
  RN_TRACE(2, 9);
  if (threadIdx.x == 0) a.tokens[row] = sh.token;
}

}  // namespace reset_native::sampler::cuda_detail

#include "decode_step_cells.cuh"  // a.cell_masses: the kept masses as cells, the draw through them
#include "decode_step_early_scan.cuh"  // a.early_scan: the cells' draw with the chunks' scan inside the threshold

namespace reset_native::sampler::cuda_detail {

// Last pass: the sampling phases above, then the slot is released. Rows that finished earlier
// (greedy, rejected) only release their slot here, after every row has claimed its own in the stats
// pass. One block per chunk (kGrouped false) or per group of chunks part, part + parts, ... (kGrouped
// true, parts = gridDim.y: large batches); each chunk's kept mass and candidates are the same either way.
// kLean: weights and bins without float-to-int conversions (weight_at; the same bits). a.sample_picks:
// every block picks the top-p boundary bin from the row's histogram itself (pick_bin: the same bin and
// target in every block), so the bins pass needs no last block; the row's last block here zeroes the
// histogram for the next step (every block of the row has read it by then).
// kPhased (kGrouped only): the next chunk's loads issued only once this chunk has arrived (load_next_chunk). In this
// pass's loop ptxas already placed the wait a chunk's work after the next chunk's loads (the end-of-loop select);
// kPhased keeps it there.
// kMinBlocks: resident blocks per SM the registers are bounded for (5: 48 registers; 6, SAMPLE_OCC6: 40, the chunk
// loop without spills, draw_row with a few words on the stack).
// (Session 14's EARLY_WEIGHTS, the chunk weighed and binned before the wait from the stats pass's plan, was level in
// two measurements, sessions 14 and 15: removed.)
template <int kDType, bool kGrouped, bool kLean, bool kPhased = false, int kMinBlocks = 5>
__global__ void __launch_bounds__(kThreads, kMinBlocks) sample_kernel(KernelArgs a) {
  __shared__ DrawShared draw;
  __shared__ SampleShared sh;
  __shared__ BinPickShared pick;
  RN_TRACE(2, 0);
  const std::int64_t row = blockIdx.x;
  const unsigned part = blockIdx.y, parts = gridDim.y;  // one block per chunk: part == chunk
  const std::int64_t begin = static_cast<std::int64_t>(part) * kChunk, end = min(begin + kChunk, a.vocab);
  float x[kPerThread];
  load_early_chunk<kDType>(a, row, begin, end, x, a.sample_loads);
  pdl_wait();
  pdl_trigger();
  RN_TRACE(2, 1);
  RowPlan plan = a.ws.plans[row];
  unsigned long long bins[kBinsPerThread];
  if (a.sample_picks) load_row_bins(a, row, bins);  // in flight with the plan's load
  if (!plan.active) {
    if (part == 0 && threadIdx.x == 0 && plan.slot >= 0) a.scratch.slot_busy[plan.slot] = 0;
    return;
  }
  if (a.sample_picks) {
    const BinPick p = pick_bin(bins, a.top_p, pick);
    plan.bin = p.bin;
    plan.target = p.target;
    RN_TRACE(2, 16);
  }
  RN_TRACE(2, 2);
  if (a.cell_masses) {
    // Each warp publishes its cells as soon as it has weighed a chunk: no block barrier before the arrival.
    if constexpr (kGrouped) {
      for (unsigned round = part; round < a.ws.chunks; round += parts * kWarps) {
        grouped_round<kDType, kPhased>(a, row, round, parts, x, [&](int, unsigned c) {
          kept_cells_warp<kDType, kLean>(a, row, c, plan, x, a.sample_loads);
        }, a.sample_loads);
      }
    } else {
      kept_cells_warp<kDType, kLean>(a, row, part, plan, x, a.sample_loads);
    }
    RN_TRACE(2, 11);
  } else if constexpr (kGrouped) {
    // Rounds of up to kWarps chunks, each chunk reduced warp by warp as it arrives (no barrier); once
    // per round, thread k adds up the warp sums of the round's chunk k.
    __shared__ unsigned long long round_mass[kWarps][kWarps];  // [chunk of the round][warp]
    for (unsigned round = part; round < a.ws.chunks; round += parts * kWarps) {
      const int k = grouped_round<kDType, kPhased>(a, row, round, parts, x, [&](int i, unsigned c) {
        kept_mass_warp<kDType, kLean>(a, row, c, plan, x, round_mass[i], a.sample_loads);
      }, a.sample_loads);
      __syncthreads();
      if (static_cast<int>(threadIdx.x) < k) {
        unsigned long long m = 0;
#pragma unroll
        for (int w = 0; w < kWarps; ++w) m += round_mass[threadIdx.x][w];
        a.ws.masses[row * a.ws.chunks + round + threadIdx.x * parts] = m;
      }
      __syncthreads();  // round_mass is reused
    }
  } else {
    kept_mass_block<kDType, kLean>(a, row, part, plan, x, sh.warp_sums, a.sample_loads);
  }
  RN_TRACE(2, 3);
  const bool early = a.early_scan && a.cell_masses;
  if (early) sub_bins_init(draw.sub);  // published by the arrival's barriers: the last block's first phase uses it
  if (!last_block_of_row(a.ws.counters + row, parts, &sh.last, 2)) return;
  RN_TRACE(2, 4);
  if (a.sample_picks) clear_row_bins(a, row);
  if (early && draw_row_early<kDType>(a, row, plan, draw, sh)) {
    // drawn
  } else if (a.cell_masses) {
    draw_row_cells<kDType>(a, row, plan, draw, sh);
  } else {
    draw_row<kDType>(a, row, plan, draw, sh);
  }
  if (threadIdx.x == 0) a.scratch.slot_busy[plan.slot] = 0;
  RN_TRACE(2, 10);
}

}  // namespace reset_native::sampler::cuda_detail
