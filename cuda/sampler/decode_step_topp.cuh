// Top-p of the GPU decode step: the weight bins of one pass and the exact threshold inside the boundary
// bin.
// Part of decode_step.cu's translation unit: included only there, in order.
#pragma once

namespace reset_native::sampler::cuda_detail {

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

// kFloor false: no top-k floor (plan.floor_key 0), so no key is computed or compared.
template <bool kLean, bool kFloor>
__device__ __forceinline__ void topp_bins_add_logits(const RowPlan& plan, const float (&x)[kPerThread],
                                                     unsigned* hist_lo, unsigned* hist_hi) {
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    const float m = tempered(x[j], plan.zmax, plan.inv_t);
    const unsigned w = !kFloor || above_floor(x[j], plan.floor_key) ? weight_at<kLean>(m) : 0u;
    if (w == 0u) continue;
    const int bin = bin_at<kLean>(m);
    atomicAdd(hist_lo + bin, w & 0xFFFu);  // two 32-bit halves, as in radix_level_kernel
    if (w >> 12) atomicAdd(hist_hi + bin, w >> 12);  // most weights are < 2^12: one atomic, not two
  }
}

// kLean: weight_at / bin_at's lean forms, and the loop without the top-k floor's test when there is no
// floor (a block-uniform branch outside the loop; the compiler kept the test, with its branches, inside
// every logit's code). The same bits either way.
template <bool kLean = false>
__device__ void topp_bins_add(const RowPlan& plan, const float (&x)[kPerThread], unsigned* hist_lo, unsigned* hist_hi) {
  if (kLean && plan.floor_key == 0u) {
    topp_bins_add_logits<kLean, false>(plan, x, hist_lo, hist_hi);
  } else {
    topp_bins_add_logits<kLean, true>(plan, x, hist_lo, hist_hi);
  }
}

// a.flat_bins (RESET_NATIVE_SAMPLER_FLAT_BINS), kLean only: every weight and bin of the thread's logits first,
// without branches (bin_at's lean form is defined for every m <= 0, -inf included; a weight-0 logit adds nothing),
// then the adds as predicated shared-memory reductions at 32-bit shared addresses computed once per block (the
// compiler had put a branch around each atomic and re-derived its address inside). A half that is 0 is not added
// (the low half of a nonzero weight may be 0: adding it or not gives the same sum). The same integers into the
// same bins: the same sums.
// *address += v in shared memory when v != 0: a predicated reduction, no branch around it.
__device__ __forceinline__ void shared_add_nonzero(unsigned address, unsigned v) {
  asm volatile(
      "{\n\t.reg .pred p;\n\tsetp.ne.u32 p, %1, 0;\n\t@p red.shared.add.u32 [%0], %1;\n\t}" ::"r"(address),
      "r"(v)
      : "memory");
}

// Each logit's lean weight (0 below the top-k floor) and its bin's byte offset, all before any add: the flat and
// the carry forms take the same integers into the same bins.
template <bool kFloor>
__device__ __forceinline__ void topp_lean_weights_and_offsets(const RowPlan& plan, const float (&x)[kPerThread],
                                                              unsigned (&w)[kPerThread],
                                                              unsigned (&offset)[kPerThread]) {
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    const float m = tempered(x[j], plan.zmax, plan.inv_t);
    w[j] = !kFloor || above_floor(x[j], plan.floor_key) ? weight_at<true>(m) : 0u;
    offset[j] = static_cast<unsigned>(bin_at<true>(m)) * 4u;
  }
}

template <bool kFloor>
__device__ __forceinline__ void topp_bins_add_flat_logits(const RowPlan& plan, const float (&x)[kPerThread],
                                                          unsigned lo, unsigned hi) {
  unsigned w[kPerThread], offset[kPerThread];
  topp_lean_weights_and_offsets<kFloor>(plan, x, w, offset);
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    shared_add_nonzero(lo + offset[j], w[j] & 0xFFFu);
    shared_add_nonzero(hi + offset[j], w[j] >> 12);
  }
}

// lo, hi: the shared addresses of hist_lo and hist_hi (__cvta_generic_to_shared).
__device__ __forceinline__ void topp_bins_add_flat(const RowPlan& plan, const float (&x)[kPerThread], unsigned lo,
                                                   unsigned hi) {
  if (plan.floor_key == 0u) {
    topp_bins_add_flat_logits<false>(plan, x, lo, hi);
  } else {
    topp_bins_add_flat_logits<true>(plan, x, lo, hi);
  }
}

// The default since session 20 (sampler24; session 19's opt-in RESET_NATIVE_SAMPLER_BINS_ADD=carry, sampler23; kCarry
// instances of topp_bins_kernel only; =split: topp_bins_add_flat): one shared reduction per logit, not two.
// hist_lo[bin] takes the whole weight (a 32-bit add that returns the old word) and hist_hi[bin] counts the adds that
// wrapped it past 2^32 (a weight is < 2^25, so an add wraps at most once; with the N(0, 3) logits of the bench never: a
// bin's block sum stays far below 2^32). The block's exact sum of a bin is then hi * 2^32 + lo whatever the order of
// the adds (each wrap drops exactly 2^32), the same integer as the split form's hi * 2^12 + lo: the same flush values,
// the same row histogram, the same bits. The split form's second reduction (the high half, for weights >= 2^12) had
// some active lane in most warps' adds; the carry adds run only when a lane wrapped (a warp-uniform skip otherwise).
// H200 (session 20), bench/probes/bins_add_forms.cu (75 blocks, warm repeats of one chunk's add, cycles, split ->
// carry): N(0, 3) T = 1 955 -> 470, T = 0.6 839 -> 399, N(0, 1) 651 -> 471, 7 of 8 logits equal 3672 -> 2047; all
// logits equal (a wrap in every bin-0 warp) 2073 -> 2490.
template <bool kFloor>
__device__ __forceinline__ void topp_bins_add_carry_logits(const RowPlan& plan, const float (&x)[kPerThread],
                                                           unsigned lo, unsigned hi) {
  unsigned w[kPerThread], offset[kPerThread];
  topp_lean_weights_and_offsets<kFloor>(plan, x, w, offset);
  // Every lane adds, without a predicate (ptxas put a branch around a predicated add that returns its word, and the
  // returned word's first use then waited for each add in turn): a weight-0 logit adds 0 to word `lane` of hist_lo,
  // which changes no sum and never wraps, and keeps the lanes' zero adds on distinct words (banks).
  const unsigned lane_word = lo + (threadIdx.x & 31u) * 4u;
  unsigned old[kPerThread];
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    asm volatile("atom.shared.add.u32 %0, [%1], %2;"
                 : "=r"(old[j])
                 : "r"(w[j] != 0u ? lo + offset[j] : lane_word), "r"(w[j])
                 : "memory");
  }
  static_assert(kPerThread <= 32, "one wrap bit per logit");
  unsigned wraps = 0u;
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) wraps |= (old[j] + w[j] < old[j] ? 1u : 0u) << j;
  if (wraps != 0u) {
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) shared_add_nonzero(hi + offset[j], (wraps >> j) & 1u);
  }
}

__device__ __forceinline__ void topp_bins_add_carry(const RowPlan& plan, const float (&x)[kPerThread], unsigned lo,
                                                    unsigned hi) {
  if (plan.floor_key == 0u) {
    topp_bins_add_carry_logits<false>(plan, x, lo, hi);
  } else {
    topp_bins_add_carry_logits<true>(plan, x, lo, hi);
  }
}

// Each bin's block sum to the row's histogram: hist_hi * 2^kHiShift + hist_lo, 12 for the two-halves form (hist_hi
// holds the weights' high 12+ bits), 32 for the carry form (hist_hi counts the wraps of hist_lo past 2^32).
template <int kHiShift = 12>
__device__ void topp_bins_flush(const KernelArgs& a, std::int64_t row, const unsigned* hist_lo,
                                const unsigned* hist_hi) {
  __syncthreads();
  unsigned long long* row_hist = a.ws.hist + row * kHistBins;
  for (int b = threadIdx.x; b < kTopPBins; b += kThreads) {
    const unsigned long long v = (static_cast<unsigned long long>(hist_hi[b]) << kHiShift) + hist_lo[b];
    if (v) atomicAdd(row_hist + b, v);
  }
}

// The top-p boundary bin from the row's histogram: the bin where the mass counted from the top first
// reaches top_p of the total (the threshold is one of its logits), and the mass still to reach inside it.
// Thread t holds bins [t * kBinsPerThread, t * kBinsPerThread + kBinsPerThread), the top first, in v. All
// threads; the result is valid in every thread. The bins pass's last block runs it (topp_pick_bin), or,
// with sample_picks, every block of the sample pass (the same histogram, the same arithmetic: the same bin
// and target in every block).
constexpr int kBinsPerThread = kTopPBins / kThreads;
struct BinPick {
  int bin;
  double target;  // mass still to reach inside the bin
};
struct BinPickShared {
  unsigned long long warp_sums[kWarps];
  unsigned long long above;
  int bin;
};
// Sh: BinPickShared, or any shared struct with the same three fields (the resident step's ResidentShared).
template <class Sh>
__device__ BinPick pick_bin(const unsigned long long (&v)[kBinsPerThread], double top_p, Sh& sh) {
  unsigned long long mine = 0;
#pragma unroll
  for (int j = 0; j < kBinsPerThread; ++j) mine += v[j];
  if (threadIdx.x == 0) {
    sh.bin = kTopPBins - 1;
    sh.above = 0;
  }
  unsigned long long total;
  unsigned long long cum = block_exclusive_scan(mine, sh.warp_sums, &total);  // ends with __syncthreads
  const double target = top_p * static_cast<double>(total);
#pragma unroll
  for (int j = 0; j < kBinsPerThread; ++j) {
    if (v[j] > 0 && static_cast<double>(cum) < target && static_cast<double>(cum + v[j]) >= target) {
      sh.bin = threadIdx.x * kBinsPerThread + j;
      sh.above = cum;
    }
    cum += v[j];
  }
  __syncthreads();
  return BinPick{sh.bin, target - static_cast<double>(sh.above)};
}

// This thread's bins of the row's histogram (through L2: written by other blocks' atomics).
__device__ __forceinline__ void load_row_bins(const KernelArgs& a, std::int64_t row,
                                              unsigned long long (&v)[kBinsPerThread]) {
  const unsigned long long* row_hist = a.ws.hist + row * kHistBins;
#pragma unroll
  for (int j = 0; j < kBinsPerThread; ++j) v[j] = __ldcg(row_hist + threadIdx.x * kBinsPerThread + j);
}

// The row's histogram zeroed for the next step (this thread's bins).
__device__ __forceinline__ void clear_row_bins(const KernelArgs& a, std::int64_t row) {
  unsigned long long* row_hist = a.ws.hist + row * kHistBins;
#pragma unroll
  for (int j = 0; j < kBinsPerThread; ++j) row_hist[threadIdx.x * kBinsPerThread + j] = 0ull;
}

// Top-p bins, the row's last block: the boundary bin and the in-bin target go to the plan; the histogram
// is zeroed for the next step. All threads.
__device__ void topp_pick_bin(const KernelArgs& a, std::int64_t row, BinPickShared& sh) {
  unsigned long long v[kBinsPerThread];
  load_row_bins(a, row, v);
  clear_row_bins(a, row);
  const BinPick p = pick_bin(v, a.top_p, sh);
  if (threadIdx.x == 0) {
    a.ws.plans[row].bin = p.bin;
    a.ws.plans[row].target = p.target;
  }
}

// Top-p bins. Block p of a row takes chunks p, p + parts, ... (parts = gridDim.y) into one shared
// histogram and flushes it once: at large batches several chunks per block cut the global atomics
// of the flush, which dominate this pass there (the sums are exact integers, so the grouping does
// not change them).
// kLean: weights and bins without float-to-int conversions (weight_at; the same bits). With
// a.sample_picks the blocks only flush: no arrival, no last block; the sample pass picks the bin.
// kPhased: the next chunk's loads issued only once this chunk has arrived (load_next_chunk; the same bits).
// kCarry (with kLean only): the flat adds in the carry form (topp_bins_add_carry) and their flush (the same bits);
// the host takes these instances with a.flat_bins (the default) unless RESET_NATIVE_SAMPLER_BINS_ADD=split.
template <int kDType, bool kLean, bool kPhased = false, bool kCarry = false>
__global__ void __launch_bounds__(kThreads) topp_bins_kernel(KernelArgs a) {
  static_assert(kLean || !kCarry, "the carry form is a form of the lean flat adds");
  __shared__ unsigned hist_lo[kTopPBins];
  __shared__ unsigned hist_hi[kTopPBins];
  __shared__ BinPickShared pick;
  __shared__ int s_last;
  RN_TRACE(1, 0);
  const std::int64_t row = blockIdx.x;
  const unsigned part = blockIdx.y, parts = gridDim.y;
  const auto chunk_end = [&](unsigned c) { return min(static_cast<std::int64_t>(c + 1) * kChunk, a.vocab); };
  float x[kPerThread];
  load_early_chunk<kDType>(a, row, static_cast<std::int64_t>(part) * kChunk, chunk_end(part), x, a.bins_loads);
  topp_bins_clear(hist_lo, hist_hi);
  pdl_wait();
  pdl_trigger();
  RN_TRACE(1, 1);
  const RowPlan plan = a.ws.plans[row];
  if (!plan.active) return;  // the same for every block of the row
  RN_TRACE(1, 2);
  const bool flat = kLean && a.flat_bins;
  const unsigned lo = static_cast<unsigned>(__cvta_generic_to_shared(hist_lo));
  const unsigned hi = static_cast<unsigned>(__cvta_generic_to_shared(hist_hi));
  for (unsigned c = part; c < a.ws.chunks; c += parts) {
    const unsigned next = c + parts;
    float xn[kPerThread];
    if (next < a.ws.chunks) load_next_chunk<kDType, kPhased>(a, row, next, a.bins_loads, x, xn);
    if constexpr (kCarry) {
      topp_bins_add_carry(plan, x, lo, hi);
    } else if (flat) {
      topp_bins_add_flat(plan, x, lo, hi);
    } else {
      topp_bins_add<kLean>(plan, x, hist_lo, hist_hi);
    }
    if (next < a.ws.chunks) {
#pragma unroll
      for (int j = 0; j < kPerThread; ++j) x[j] = xn[j];
    }
  }
  RN_TRACE(1, 3);
#ifdef RESET_NATIVE_SAMPLER_TRACE
  // Probe only (session 19, sampler22): mark 7, every warp's shared adds done (mark 3 is warp 0's alone); mark 8,
  // the block's flush atomics performed in L2 (a fence in every thread, then a barrier). Together with the sample
  // pass's mark 1 they split the bins -> sample boundary into the flush's drain and the grid's completion.
  __syncthreads();
  RN_TRACE(1, 7);
  topp_bins_flush<kCarry ? 32 : 12>(a, row, hist_lo, hist_hi);
  RN_TRACE(1, 4);
  __threadfence();
  __syncthreads();
  RN_TRACE(1, 8);
  if constexpr (kLean) {
    // Probe only, with g_trace_bins_repeat (B = 1: x still holds the block's one chunk): is the add bound by the
    // shared reductions (their address conflicts) or by the weights' arithmetic? The histogram is flushed, so it
    // may be overwritten.
    if (g_trace_bins_repeat && (kCarry || flat) && plan.floor_key == 0u) {
      // Each repeat takes x OR a zero loaded from shared memory after the mark before it, so that neither the
      // compiler nor ptxas can reuse the first add's weights or start the arithmetic before that mark (an empty
      // volatile asm did not hold ptxas: it hoisted the arithmetic above the barrier and the mark).
      __shared__ unsigned s_zero;
      if (threadIdx.x == 0) s_zero = 0u;
      float y[kPerThread];
      topp_bins_clear(hist_lo, hist_hi);  // ends with a barrier: s_zero is published
      RN_TRACE(1, 9);
      const unsigned zero9 = *static_cast<volatile unsigned*>(&s_zero);
#pragma unroll
      for (int j = 0; j < kPerThread; ++j) y[j] = __uint_as_float(__float_as_uint(x[j]) | zero9);
      if constexpr (kCarry) {
        topp_bins_add_carry(plan, y, lo, hi);
      } else {
        topp_bins_add_flat(plan, y, lo, hi);
      }
      __syncthreads();
      RN_TRACE(1, 10);
      unsigned sum = 0u;
      const unsigned zero10 = *static_cast<volatile unsigned*>(&s_zero);
#pragma unroll
      for (int j = 0; j < kPerThread; ++j) y[j] = __uint_as_float(__float_as_uint(x[j]) | zero10);
#pragma unroll
      for (int j = 0; j < kPerThread; ++j) {
        const float m = tempered(y[j], plan.zmax, plan.inv_t);
        sum += weight_at<true>(m) ^ static_cast<unsigned>(bin_at<true>(m));
      }
      if (sum == 0xFFFFFFFFu) g_trace_sink = sum;  // keeps the arithmetic
      __syncthreads();
      RN_TRACE(1, 11);
    }
  }
#else
  topp_bins_flush<kCarry ? 32 : 12>(a, row, hist_lo, hist_hi);
  RN_TRACE(1, 4);
#endif
  if (a.sample_picks) return;  // the kernel boundary publishes the flush to the sample pass
  if (!last_block_of_row(a.ws.counters + row, parts, &s_last, 1)) return;
  RN_TRACE(1, 5);
  topp_pick_bin(a, row, pick);
  RN_TRACE(1, 6);
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

// The top-p threshold inside the boundary bin from the collected candidates (kw[i] = key << 32 |
// weight in shared memory, n <= kCandidates): sorted descending in place (bitonic), then the first
// key whose running mass reaches the in-bin target. All threads, after kw is complete; returns the
// threshold key.
__device__ unsigned threshold_by_sort(unsigned long long* kw, int n, double target, unsigned long long* warp_sums,
                                      int* s_first) {
  int size = 1;
  while (size < n) size <<= 1;
  for (int i = n + static_cast<int>(threadIdx.x); i < size; i += kThreads) kw[i] = 0ull;
  __syncthreads();
  for (int k = 2; k <= size; k <<= 1) {
    for (int j = k >> 1; j > 0; j >>= 1) {
      for (int i = threadIdx.x; i < size; i += kThreads) {
        const int partner = i ^ j;
        if (partner > i) {
          const unsigned long long p = kw[i], q = kw[partner];
          if ((i & k) == 0 ? p < q : p > q) {  // descending overall
            kw[i] = q;
            kw[partner] = p;
          }
        }
      }
      __syncthreads();
    }
  }
  const int at = first_reaching(kw, n, target, warp_sums, s_first);
  return static_cast<unsigned>(kw[at] >> 32);
}

// Candidates the rank search takes (one per thread): above that the sort is cheaper.
constexpr int kRankCandidates = kThreads;

// The same threshold without sorting, for n <= kRankCandidates (one candidate per thread, each
// counted against all n; no barrier per sorting stage): the largest key K whose candidates with keys
// >= K reach the target, or the smallest key if none does. In descending order the running mass
// first reaches the target at some key K; the mass of keys >= K is at least that running sum, and
// for every larger key it is a running sum at an earlier position, which falls short: both
// searches give K. All threads, after kw is complete; returns the threshold key.
__device__ RN_TRACE_NOINLINE unsigned threshold_by_rank(const unsigned long long* kw, int n, double target,
                                                       unsigned* s_best, unsigned* s_least) {
  if (threadIdx.x == 0) {
    *s_best = 0u;  // keys of finite logits are > 0
    *s_least = 0xFFFFFFFFu;
  }
  __syncthreads();
  unsigned best = 0u, least = 0xFFFFFFFFu;
  const int i = threadIdx.x;
  if (i < n) {
    const unsigned key = static_cast<unsigned>(kw[i] >> 32);
    // The mass of the candidates with keys >= key, in 32-bit halves of the words (weight low, key
    // high): one compare and one predicated add per candidate. Four sums over 16-byte loads (every
    // thread reads the same kw[j], a broadcast); each adds at most kRankCandidates / 4 + 3 weights of
    // at most 2^24, below 2^31: the exact integers of 64-bit sums.
    static_assert((kRankCandidates / 4 + 3) * (1ull << 24) < (1ull << 31), "a 32-bit sum cannot overflow");
    unsigned ge[4] = {0u, 0u, 0u, 0u};
    const uint4* words = reinterpret_cast<const uint4*>(kw);  // .x weight j, .y key j, .z weight j + 1, .w key j + 1
    int j = 0;
    for (; j + 4 <= n; j += 4) {
      const uint4 p = words[j / 2];
      const uint4 q = words[j / 2 + 1];
      ge[0] += p.y >= key ? p.x : 0u;
      ge[1] += p.w >= key ? p.z : 0u;
      ge[2] += q.y >= key ? q.x : 0u;
      ge[3] += q.w >= key ? q.z : 0u;
    }
    for (; j < n; ++j) {
      const unsigned long long v = kw[j];
      ge[0] += static_cast<unsigned>(v >> 32) >= key ? static_cast<unsigned>(v) : 0u;
    }
    const unsigned long long mass =
        (static_cast<unsigned long long>(ge[0]) + ge[1]) + (static_cast<unsigned long long>(ge[2]) + ge[3]);
    if (static_cast<double>(mass) >= target) best = key;
    least = key;
  }
  best = __reduce_max_sync(kFullMask, best);
  least = __reduce_min_sync(kFullMask, least);
  if ((threadIdx.x & 31) == 0) {
    atomicMax(s_best, best);
    atomicMin(s_least, least);
  }
  __syncthreads();
  return *s_best != 0u ? *s_best : *s_least;
}

// The same threshold in fewer steps (a.sub_bins, n <= kRankCandidates): the counted search compares every
// candidate with every other (n^2 / 4 four-candidate steps spread over n threads: 1.5 us on an H200 with
// warm caches in the B = 1 trace, session 9), so the candidates are first split into kSubBins sub-bins of
// the boundary bin by their tempered distance to the maximum, finer than the bins (monotone in the logit:
// a larger logit never gets a later sub-bin, equal logits share one). The sub-bin where the running mass
// from the top first reaches the target holds the threshold: every key of an earlier sub-bin has a mass
// at or above it of at most the running mass before that sub-bin, which falls short, and the smallest key
// of the chosen sub-bin reaches it. Inside that sub-bin the count runs as in threshold_by_rank, with the
// earlier sub-bins' mass added: the same exact integers compared with the same target, so the same key.
// All threads, after kw is complete; returns the threshold key.
constexpr int kSubBins = 64;
struct SubBinShared {
  unsigned lo[kSubBins], hi[kSubBins];         // sub-bin masses in two halves, as the bins
  unsigned long long above;                  // the mass of the sub-bins before the chosen one
  int star_bin;                              // the chosen sub-bin; -1: the whole bin falls short of the target
  unsigned n_star, best, least;
};

// The logit of an order key (order_key's inverse; -0 comes back as +0, whose tempered distance is the same).
__device__ __forceinline__ float key_logit(unsigned key) {
  return __uint_as_float((key & 0x80000000u) ? (key & 0x7FFFFFFFu) : ~key);
}

// Empty sub-bins, no candidates of the boundary sub-bin yet, no key. Then a barrier before any other use.
__device__ __forceinline__ void sub_bins_init(SubBinShared& sb) {
  const int i = threadIdx.x;
  if (i < kSubBins) {
    sb.lo[i] = 0u;
    sb.hi[i] = 0u;
  }
  if (i == 0) {
    sb.n_star = 0u;
    sb.best = 0u;  // keys of finite logits are > 0
    sb.least = 0xFFFFFFFFu;
  }
}

// A candidate word (key << 32 | weight) into its sub-bin of the boundary bin (has: this thread holds one) and the
// smallest key into sb.least; returns the sub-bin (-1 without a candidate). All threads of every warp.
__device__ __forceinline__ int add_to_sub_bins(bool has, unsigned long long word, const RowPlan& plan,
                                               SubBinShared& sb) {
  int sub = -1;
  unsigned least = 0xFFFFFFFFu;
  if (has) {
    const unsigned key = static_cast<unsigned>(word >> 32), w = static_cast<unsigned>(word);
    const float m = tempered(key_logit(key), plan.zmax, plan.inv_t);
    const int fine = __float2int_rz(__fmul_rn(-m, kBinScale * static_cast<float>(kSubBins)));
    sub = min(max(fine - plan.bin * kSubBins, 0), kSubBins - 1);
    atomicAdd(sb.lo + sub, w & 0xFFFu);  // at most 256 weights: each half stays below 2^21
    atomicAdd(sb.hi + sub, w >> 12);
    least = key;
  }
  least = __reduce_min_sync(kFullMask, least);
  if ((threadIdx.x & 31) == 0) atomicMin(&sb.least, least);
  return sub;
}

// One warp, after the sub-bins are complete: lane l holds sub-bins 2l and 2l + 1 (the largest logits first) and
// returns the first sub-bin whose running mass reaches the target if it is one of its two (with the mass of the
// sub-bins before it in above), else -1; at most one lane returns one.
__device__ __forceinline__ int lane_star_sub_bin(double target, const SubBinShared& sb, unsigned long long& above) {
  const int lane = threadIdx.x & 31;
  const unsigned long long v0 = (static_cast<unsigned long long>(sb.hi[2 * lane]) << 12) + sb.lo[2 * lane];
  const unsigned long long v1 = (static_cast<unsigned long long>(sb.hi[2 * lane + 1]) << 12) + sb.lo[2 * lane + 1];
  unsigned long long upto = v0 + v1;  // inclusive scan over the lanes
  for (int o = 1; o < 32; o <<= 1) {
    const unsigned long long y = __shfl_up_sync(kFullMask, upto, o);
    if (lane >= o) upto += y;
  }
  const unsigned long long cum = upto - v0 - v1;  // mass of the sub-bins before 2l
  if (static_cast<double>(cum) < target && static_cast<double>(cum + v0) >= target) {
    above = cum;
    return 2 * lane;
  }
  if (static_cast<double>(cum + v0) < target && static_cast<double>(cum + v0 + v1) >= target) {
    above = cum + v0;
    return 2 * lane + 1;
  }
  return -1;
}

// The boundary sub-bin's last step: the largest key among its sb.n_star candidates in star whose mass (above, the
// sub-bins before it, plus every candidate of it at or above the key) reaches the target; sb.least when none does.
// All threads, after the barrier that completed star; sb.best starts at 0.
__device__ __forceinline__ unsigned star_threshold(const unsigned long long* star, unsigned long long above,
                                                   double target, SubBinShared& sb) {
  const int i = threadIdx.x, lane = threadIdx.x & 31;
  const unsigned n_star = sb.n_star;
  unsigned best = 0u;
  if (static_cast<unsigned>(i) < n_star) {
    const unsigned key = static_cast<unsigned>(star[i] >> 32);
    unsigned long long mass = above;
    for (unsigned j = 0; j < n_star; ++j) {
      const unsigned long long v = star[j];
      mass += static_cast<unsigned>(v >> 32) >= key ? (v & 0xFFFFFFFFull) : 0ull;
    }
    if (static_cast<double>(mass) >= target) best = key;
  }
  best = __reduce_max_sync(kFullMask, best);
  if (lane == 0) atomicMax(&sb.best, best);
  __syncthreads();
  return sb.best != 0u ? sb.best : sb.least;
}

// star: shared scratch of n words for the chosen sub-bin's candidates (draw_row passes kw + kRankCandidates,
// unused with n <= kRankCandidates).
__device__ unsigned threshold_by_sub_bins(const unsigned long long* kw, int n, double target, const RowPlan& plan,
                                          SubBinShared& sb, unsigned long long* star) {
  const int i = threadIdx.x;
  sub_bins_init(sb);
  if (i == 0) {
    sb.star_bin = -1;
    sb.above = 0ull;
  }
  __syncthreads();
  const int sub = add_to_sub_bins(i < n, i < n ? kw[i] : 0ull, plan, sb);
  __syncthreads();
  if (i < 32) {  // warp 0 finds the sub-bin and hands it out
    unsigned long long above = 0ull;
    const int mine = lane_star_sub_bin(target, sb, above);
    if (mine >= 0) {
      sb.star_bin = mine;
      sb.above = above;
    }
  }
  __syncthreads();
  const int star_bin = sb.star_bin;
  if (star_bin < 0) return sb.least;  // as threshold_by_rank: no key reaches the target, the smallest key
  if (i < n && sub == star_bin) star[atomicAdd(&sb.n_star, 1u)] = kw[i];
  __syncthreads();
  return star_threshold(star, sb.above, target, sb);
}

// a.lean_draw (RESET_NATIVE_SAMPLER_LEAN_DRAW): the same search with three barriers fewer. The thread's own
// candidate comes from its registers (draw_row copies no candidates to shared memory first), `sb` is
// initialised by sub_bins_init before a barrier the caller has anyway, and every warp scans the sub-bins
// itself (no barrier to hand the chosen sub-bin out). The same integers against the same target: the same key.
// own: candidate threadIdx.x's word (key << 32 | weight) when threadIdx.x < n; star: shared scratch of n words.
// All threads, after sub_bins_init and a barrier; once per initialisation.
__device__ unsigned threshold_by_sub_bins_own(unsigned long long own, int n, double target, const RowPlan& plan,
                                              SubBinShared& sb, unsigned long long* star) {
  const int i = threadIdx.x;
  const int sub = add_to_sub_bins(i < n, own, plan, sb);
  __syncthreads();
  unsigned long long mine_above = 0ull;  // every warp scans the sub-bins itself
  const int mine = lane_star_sub_bin(target, sb, mine_above);
  const unsigned holder = __ballot_sync(kFullMask, mine >= 0);
  if (holder == 0u) return sb.least;  // as threshold_by_rank: no key reaches the target, the smallest key
  const int star_bin = __shfl_sync(kFullMask, mine, __ffs(holder) - 1);
  const unsigned long long above = __shfl_sync(kFullMask, mine_above, __ffs(holder) - 1);
  if (i < n && sub == star_bin) star[atomicAdd(&sb.n_star, 1u)] = own;
  __syncthreads();
  return star_threshold(star, above, target, sb);
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

}  // namespace reset_native::sampler::cuda_detail
