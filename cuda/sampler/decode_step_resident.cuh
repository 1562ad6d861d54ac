// The resident GPU decode step: the whole step in one launch, blocks of every row resident at once (the
// launcher checks the occupancy): one block per (row, chunk) while the grid fits, each keeping its
// chunk of logits in registers from the first read to the draw; at larger batches fewer blocks per
// row, each owning several chunks.
// Part of decode_step.cu's translation unit: included only there, in order.
//
// Why: the kernels (stats, top-p bins, sample) pass each row through three "last block" combines;
// each costs a fence, an arrival atomic, one block's serial merge, a plan written and read back and
// a kernel boundary, and the later kernels read the logits again. Here the row's blocks keep their
// logits and meet three times; the row's lead block (chunk 0's) gathers each time and tells the
// others what they need in a few words, with the kernels' arithmetic and merge orders (so the same
// bits):
//   1. entropy part of each chunk; the lead meanwhile claims and prepares the slot (as in
//      stats_kernel), then merges the parts, picks the temperature and publishes max, 1 / T and
//      whether the row goes on (greedy and rejected rows end here);
//   2. top-p bins: each block adds its 1024 bin masses to the row histogram with atomics that also
//      count the block (bits 48..63), so a bin is complete once its count reaches the row's blocks
//      (no fence, no arrival counter); the lead picks the boundary bin and publishes it;
//   3. per chunk its kept mass above the boundary bin and its boundary-bin logits; the other blocks
//      are done, and the lead finds the exact threshold (counting, sorting, or the radix fallback,
//      as draw_row), the chunk holding the uniform's quantile, and draws from it.
// The lead also does the row's bookkeeping: the state write-back and outputs (finish_row), the step
// counter, the slot release and the histogram's zeroing.
// Tagged word: value << 32 | tag, one 64-bit store, read by polling until the tag is the step's
// (steps[row] + 1: all earlier words of the row carry smaller tags). A 64-bit access is single-copy
// atomic, so a word is never seen half written. Only the lead polls the row's parts and bins; the
// others poll the lead's few plan words. (In the first version every block polled every part and
// bin and computed the merge itself: on an H200 the polling made those few L2 lines a hot spot,
// 6-8 us per exchange.)
#pragma once

namespace reset_native::sampler::cuda_detail {

using detail::kChunkCandidates;
using detail::kKeptWords;
using detail::kPartWords;
using detail::kPlanWords;
using detail::kPreWords;

// Largest row (in chunks) the resident step takes: thread t reads chunk t's words and the last
// threads the prepared slot.
constexpr unsigned kResidentMaxChunks = 192;
// Most chunks per block the launcher gives the resident step (more rows: the kernels run).
constexpr unsigned kResidentChunksPerBlock = 16;

__device__ __forceinline__ void put_word(unsigned long long* p, unsigned value, unsigned tag) {
  const unsigned long long w = (static_cast<unsigned long long>(value) << 32) | tag;
  asm volatile("st.relaxed.gpu.global.u64 [%0], %1;" ::"l"(p), "l"(w) : "memory");
}

__device__ __forceinline__ unsigned long long peek_word(const unsigned long long* p) {
  unsigned long long w;
  asm volatile("ld.relaxed.gpu.global.u64 %0, [%1];" : "=l"(w) : "l"(p) : "memory");
  return w;
}

__device__ __forceinline__ bool has_tag(unsigned long long w, unsigned tag) { return static_cast<unsigned>(w) == tag; }

__device__ __forceinline__ unsigned long long global_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// The waits of one block: the step's tag, and a deadline far beyond any step (a stall means the
// blocks were not all resident after all, e.g. another kernel held SMs until this one finished):
// past it a wait gives up, flags kErrorStalled and takes what it has, so nothing hangs.
struct Waiter {
  unsigned tag;
  unsigned long long deadline;
  int* error_flag;
  __device__ bool expired() const {
    if (global_ns() < deadline) return false;
    atomicOr(error_flag, kErrorStalled);
    return true;
  }
};
constexpr unsigned long long kStallNs = 200000000ull;  // 0.2 s

// N consecutive words, all loads in flight together, until every one carries the tag.
template <int N>
__device__ __forceinline__ void take_words(const unsigned long long* p, const Waiter& wait, unsigned (&out)[N]) {
  unsigned long long w[N];
  bool ready;
  do {
#pragma unroll
    for (int j = 0; j < N; ++j) w[j] = peek_word(p + j);
    ready = true;
#pragma unroll
    for (int j = 0; j < N; ++j) ready &= has_tag(w[j], wait.tag);
  } while (!ready && !wait.expired());
#pragma unroll
  for (int j = 0; j < N; ++j) out[j] = static_cast<unsigned>(w[j] >> 32);
}

// Where a row's tagged words live (device_workspace.hpp, kPartWords ...).
struct RowWords {
  unsigned long long* base;
  unsigned chunks;
  __device__ unsigned long long* part(unsigned c) const { return base + c * kPartWords; }
  __device__ unsigned long long* pre() const { return base + chunks * kPartWords; }
  __device__ unsigned long long* kept(unsigned c) const { return pre() + kPreWords + c * kKeptWords; }
  __device__ unsigned long long* candidates(unsigned c) const {
    return base + chunks * (kPartWords + kKeptWords) + kPreWords + c * 2 * kChunkCandidates;
  }
  __device__ unsigned long long* plan() const { return candidates(chunks); }  // kPlanWords
};

// A chunk's entropy part as stats_kernel stores it (the floats widen exactly to the EntropyPart's
// doubles); the argmax (-1 or < 2^31 - 1) travels as argmax + 1 beside the NaN bit.
__device__ void put_part(const RowWords& w, unsigned c, const ChunkPart& p, unsigned tag) {
  unsigned long long* at = w.part(c);
  put_word(at + 0, __float_as_uint(p.max), tag);
  put_word(at + 1, __float_as_uint(p.sum_exp), tag);
  put_word(at + 2, __float_as_uint(p.sum_zexp), tag);
  put_word(at + 3, static_cast<unsigned>(p.argmax + 1) | (p.nan ? 0x80000000u : 0u), tag);
}

__device__ EntropyPart take_part(const RowWords& w, unsigned c, const Waiter& wait) {
  unsigned v[kPartWords];
  take_words(w.part(c), wait, v);
  return EntropyPart{__uint_as_float(v[0]), static_cast<double>(__uint_as_float(v[1])),
                     static_cast<double>(__uint_as_float(v[2])),
                     static_cast<std::int64_t>(v[3] & 0x7FFFFFFFu) - 1, static_cast<std::int32_t>(v[3] >> 31)};
}

// What every block needs of the prepared slot: the step means, the uniform and the claim's errors.
struct PreView {
  detail::StepMeans means;
  double uniform;
  int bad;
};

__device__ void put_pre(const RowWords& w, const RowPre& pre, unsigned tag) {
  unsigned long long* at = w.pre();
  const auto put_double = [&](int k, double v) {
    const unsigned long long bits = static_cast<unsigned long long>(__double_as_longlong(v));
    put_word(at + k, static_cast<unsigned>(bits), tag);
    put_word(at + k + 1, static_cast<unsigned>(bits >> 32), tag);
  };
  put_double(0, pre.means.hs);
  put_double(2, pre.means.hbar);
  put_double(4, pre.uniform);
  put_word(at + 6, static_cast<unsigned>(pre.bad) | (pre.means.hs_is_entropy ? 1u << 16 : 0u) |
                       (pre.means.hbar_is_hs ? 1u << 17 : 0u), tag);
}

__device__ PreView take_pre(const RowWords& w, const Waiter& wait) {
  unsigned v[kPreWords];
  take_words(w.pre(), wait, v);
  const auto as_double = [&](int k) {
    return __longlong_as_double(static_cast<long long>((static_cast<unsigned long long>(v[k + 1]) << 32) | v[k]));
  };
  PreView p;
  p.means.hs = as_double(0);
  p.means.hbar = as_double(2);
  p.means.hs_is_entropy = (v[6] >> 16) & 1u;
  p.means.hbar_is_hs = (v[6] >> 17) & 1u;
  p.uniform = as_double(4);
  p.bad = static_cast<int>(v[6] & 0xFFFFu);
  return p;
}

struct ResidentShared {
  union {
    float window[kMaxWindow];                        // exchange 1, chunk 0's block: the slot's window
    unsigned hist[2 * kTopPBins];                    // top-p bins: masses in two halves, as topp_bins_kernel
    struct {
      alignas(16) unsigned long long kw[kCandidates];  // boundary-bin logits, key << 32 | weight; the fallback's histogram
      unsigned long long sorted[kCandidates];          // a copy of kw for the sort (more than 256 of them)
    } c;
    unsigned kept[kChunk];  // the drawing block: kept weights in index order
  } u;
  unsigned long long extra[kThreads];  // kept boundary-bin mass per chunk
  unsigned char cand_chunk[kCandidates];
  static_assert(kResidentMaxChunks <= 256, "a chunk index fits cand_chunk");
  unsigned long long warp_sums[kWarps];
  ChunkPart chunk_parts[kWarps];
  EntropyPart row_parts[kWarps];
  PrepShared prep;
  RowPre pre;  // chunk 0's block
  PreView view;
  unsigned long long rank, above;
  std::int64_t chunk, token;
  unsigned n, best, least, digit;
  int bin, first, overflow, go;
  float plan_zmax, plan_inv_t;
};

// Exchange 2: the row's top-p boundary bin, read from the counted histogram once every block is in
// (all threads; thread t holds bins 4t..4t+3, the layout of topp_pick_bin, so the same bin and
// in-bin target). Returns the target; the bin goes to sh.bin.
__device__ double take_boundary_bin(const unsigned long long* row_hist, unsigned blocks, double top_p,
                                    const Waiter& wait, ResidentShared& sh) {
  constexpr int per = kTopPBins / kThreads;
  constexpr unsigned long long kMassBits = (1ull << 48) - 1;
  unsigned long long v[per];
  bool ready;
  do {
#pragma unroll
    for (int j = 0; j < per; ++j) v[j] = peek_word(row_hist + threadIdx.x * per + j);
    ready = true;
#pragma unroll
    for (int j = 0; j < per; ++j) ready &= (v[j] >> 48) == blocks;
  } while (!ready && !wait.expired());
  unsigned long long mine = 0;
#pragma unroll
  for (int j = 0; j < per; ++j) {
    v[j] &= kMassBits;
    mine += v[j];
  }
  if (threadIdx.x == 0) {
    sh.bin = kTopPBins - 1;
    sh.above = 0;
  }
  unsigned long long total;
  unsigned long long cum = block_exclusive_scan(mine, sh.warp_sums, &total);  // ends with __syncthreads
  const double target = top_p * static_cast<double>(total);
#pragma unroll
  for (int j = 0; j < per; ++j) {
    if (v[j] > 0 && static_cast<double>(cum) < target && static_cast<double>(cum + v[j]) >= target) {
      sh.bin = threadIdx.x * per + j;
      sh.above = cum;
    }
    cum += v[j];
  }
  __syncthreads();
  return target - static_cast<double>(sh.above);
}

// Exchange 3, one thread per chunk: the chunk's kept mass and boundary-bin logits (into kw, in any
// order: the threshold and the per-chunk sums do not depend on it). The first kPolled logits are
// polled with the mass (one round trip for most chunks), the rest kPolled at a time.
constexpr unsigned kPolled = 4;

__device__ unsigned long long take_kept(const RowWords& w, unsigned c, const Waiter& wait, ResidentShared& sh) {
  const unsigned tag = wait.tag;
  const unsigned long long* kept = w.kept(c);
  const unsigned long long* cand = w.candidates(c);
  unsigned long long k[kKeptWords], v[2 * kPolled];
  unsigned count = 0;
  for (;;) {
#pragma unroll
    for (int j = 0; j < kKeptWords; ++j) k[j] = peek_word(kept + j);
#pragma unroll
    for (int j = 0; j < 2 * static_cast<int>(kPolled); ++j) v[j] = peek_word(cand + j);
    count = static_cast<unsigned>(k[2] >> 32);
    bool ready = has_tag(k[0], tag) && has_tag(k[1], tag) && has_tag(k[2], tag);
#pragma unroll
    for (int j = 0; j < 2 * static_cast<int>(kPolled); ++j) ready &= j >= 2 * static_cast<int>(count) || has_tag(v[j], tag);
    if (ready || wait.expired()) break;
  }
  if (count > static_cast<unsigned>(kChunkCandidates)) sh.overflow = 1;  // not all were published
  const unsigned n = min(count, static_cast<unsigned>(kChunkCandidates));
  for (unsigned i0 = 0; i0 < n; i0 += kPolled) {
    const unsigned m = min(n - i0, kPolled);
    if (i0 > 0) {
      bool ready;
      do {
#pragma unroll
        for (int j = 0; j < 2 * static_cast<int>(kPolled); ++j) {
          if (j < 2 * static_cast<int>(m)) v[j] = peek_word(cand + 2 * i0 + j);
        }
        ready = true;
#pragma unroll
        for (int j = 0; j < 2 * static_cast<int>(kPolled); ++j) ready &= j >= 2 * static_cast<int>(m) || has_tag(v[j], tag);
      } while (!ready && !wait.expired());
    }
    for (unsigned j = 0; j < m; ++j) {
      const unsigned at = atomicAdd(&sh.n, 1u);
      if (at < static_cast<unsigned>(kCandidates)) {
        sh.u.c.kw[at] = (v[2 * j] & 0xFFFFFFFF00000000ull) | (v[2 * j + 1] >> 32);
        sh.cand_chunk[at] = static_cast<unsigned char>(c);
      }
    }
  }
  return (static_cast<unsigned long long>(k[1] >> 32) << 32) | static_cast<unsigned>(k[0] >> 32);
}

// The exact threshold inside the boundary bin and the kept boundary-bin mass of every chunk (into
// sh.extra), as draw_row: counting (n <= 256), sorting (n <= 2048, every chunk's logits published),
// or radix levels over the whole row. All threads, after take_kept and a barrier. Returns the key
// the draw keeps from.
template <int kDType>
__device__ unsigned resident_threshold(const KernelArgs& a, std::int64_t row, unsigned chunks, const RowPlan& plan,
                                       ResidentShared& sh) {
  const unsigned n = sh.n;
  unsigned floor_key = plan.floor_key;
  if (n == 0u && !sh.overflow) {
    // Unreachable (the bin was chosen for its mass): keep the floor, as draw_row.
  } else if (!sh.overflow && n <= static_cast<unsigned>(kRankCandidates)) {
    floor_key = threshold_by_rank(sh.u.c.kw, static_cast<int>(n), plan.target, &sh.best, &sh.least);
    const unsigned i = threadIdx.x;
    if (i < n && static_cast<unsigned>(sh.u.c.kw[i] >> 32) >= floor_key) {
      atomicAdd(&sh.extra[sh.cand_chunk[i]], sh.u.c.kw[i] & 0xFFFFFFFFull);
    }
  } else if (!sh.overflow && n <= static_cast<unsigned>(kCandidates)) {
    for (unsigned i = threadIdx.x; i < n; i += kThreads) sh.u.c.sorted[i] = sh.u.c.kw[i];
    __syncthreads();
    floor_key = threshold_by_sort(sh.u.c.sorted, static_cast<int>(n), plan.target, sh.warp_sums, &sh.first);
    for (unsigned i = threadIdx.x; i < n; i += kThreads) {  // kw is still in arrival order, beside cand_chunk
      if (static_cast<unsigned>(sh.u.c.kw[i] >> 32) >= floor_key) {
        atomicAdd(&sh.extra[sh.cand_chunk[i]], sh.u.c.kw[i] & 0xFFFFFFFFull);
      }
    }
  } else {
    const void* z = row_logits<kDType>(a, row);
    floor_key = threshold_from_row<kDType>(a, z, plan, sh.u.c.kw, sh.warp_sums, &sh.digit, &sh.above);
    // The kept logits of the bin, chunk by chunk: warp w takes chunks w, w + kWarps, ...
    const int lane = threadIdx.x & 31;
    for (unsigned c = threadIdx.x >> 5; c < chunks; c += kWarps) {
      unsigned long long m = 0;
      const std::int64_t stop = min(static_cast<std::int64_t>(c + 1) * kChunk, a.vocab);
      for (std::int64_t i = c * kChunk + lane; i < stop; i += 32) {
        const float x = load_logit<kDType>(z, i);
        if (order_key(x) < floor_key) continue;
        const unsigned wx = weight(x, plan.zmax, plan.inv_t);
        if (wx != 0u && topp_bin(x, plan.zmax, plan.inv_t) == plan.bin) m += wx;
      }
      for (int o = 16; o > 0; o >>= 1) m += __shfl_down_sync(kFullMask, m, o);
      if (lane == 0) sh.extra[c] += m;
    }
  }
  __syncthreads();
  return floor_key;
}

// The drawing block: the kept weights of its chunk in index order, then the logit holding `rank`,
// as draw_row (thread t scans logits [8t, 8t + 8)). All threads; returns the token in every thread.
__device__ std::int64_t draw_from_registers(const float (&x)[kPerThread], std::int64_t begin, const RowPlan& plan,
                                            unsigned floor_key, unsigned long long rank, ResidentShared& sh) {
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    sh.u.kept[j * kThreads + threadIdx.x] = order_key(x[j]) >= floor_key ? weight(x[j], plan.zmax, plan.inv_t) : 0u;
  }
  __syncthreads();
  unsigned wk[kPerThread];
  unsigned long long run = 0;
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    wk[j] = sh.u.kept[threadIdx.x * kPerThread + j];
    run += wk[j];
  }
  unsigned long long chunk_total;
  unsigned long long at = block_exclusive_scan(run, sh.warp_sums, &chunk_total);
  if (at <= rank && rank < at + run) {
    for (int j = 0; j < kPerThread; ++j) {
      if (rank < at + wk[j]) {
        sh.token = begin + threadIdx.x * kPerThread + j;
        break;
      }
      at += wk[j];
    }
  }
  __syncthreads();
  return sh.token;
}

// One chunk's part of exchange 3, as kept_mass_block: its kept mass above the boundary bin and its
// boundary-bin logits, published as tagged words (at most kChunkCandidates logits; the count says
// how many there were). All threads.
template <bool kTopP>
__device__ void put_kept(const RowWords& words, unsigned c, const float (&x)[kPerThread], const RowPlan& plan,
                         unsigned tag, ResidentShared& sh) {
  unsigned long long mine = 0;
  unsigned in_bin = 0u;
  unsigned w[kPerThread];
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    w[j] = weight(x[j], plan.zmax, plan.inv_t);  // floor_key 0 (no top-k here): every key passes
    if (kTopP && w[j] != 0u) {
      const int bin = topp_bin(x[j], plan.zmax, plan.inv_t);
      if (bin == plan.bin) {
        in_bin |= 1u << j;
        continue;
      }
      if (bin > plan.bin) w[j] = 0u;
    }
    mine += w[j];
  }
  unsigned long long packed_total;
  const unsigned long long at = block_exclusive_scan((mine << 12) | __popc(in_bin), sh.warp_sums, &packed_total);
  if (threadIdx.x == 0) {
    const unsigned long long mass = packed_total >> 12;
    unsigned long long* kept = words.kept(c);
    put_word(kept + 0, static_cast<unsigned>(mass), tag);
    put_word(kept + 1, static_cast<unsigned>(mass >> 32), tag);
    put_word(kept + 2, static_cast<unsigned>(packed_total & 0xFFFu), tag);
  }
  if (in_bin) {
    unsigned long long* cand = words.candidates(c);
    unsigned slot = static_cast<unsigned>(at & 0xFFFu);
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) {
      if (!(in_bin & (1u << j))) continue;
      if (slot < static_cast<unsigned>(kChunkCandidates)) {
        put_word(cand + 2 * slot, order_key(x[j]), tag);
        put_word(cand + 2 * slot + 1, w[j], tag);
      }
      ++slot;
    }
  }
}

// Exchange 2, every block: its chunks' bin masses into the row histogram, each of the 1024 bins with a
// count of one in bits 48..63 (the mass stays below 2^42), so the lead sees when all are in.
template <class ForOwnChunks>
__device__ void add_bins(const KernelArgs& a, std::int64_t row, const RowPlan& plan, const ForOwnChunks& for_own_chunks,
                         ResidentShared& sh) {
  topp_bins_clear(sh.u.hist, sh.u.hist + kTopPBins);  // the window is no longer read
  for_own_chunks([&](unsigned, const float (&x)[kPerThread]) { topp_bins_add(plan, x, sh.u.hist, sh.u.hist + kTopPBins); });
  __syncthreads();
  RN_TRACE(3, 3);
  unsigned long long* row_hist = a.ws.hist + row * kHistBins;
  constexpr int per = kTopPBins / kThreads;
#pragma unroll
  for (int j = 0; j < per; ++j) {
    const int b = threadIdx.x * per + j;
    const unsigned long long v = (static_cast<unsigned long long>(sh.u.hist[kTopPBins + b]) << 12) + sh.u.hist[b];
    atomicAdd(row_hist + b, v + (1ull << 48));
  }
}

// Grid (rows, parts): block p of a row owns chunks p, p + parts, ... (parts = chunks at small batches:
// one chunk per block). Its first chunk stays in registers for the whole step; further chunks are
// read again in each pass (from L2 at the batch sizes that need them), the next one loading while
// the current one is worked on. The per-chunk arithmetic does not depend on parts.
// kMinBlocks: blocks per SM the registers must allow (1: no limit, no spills; 5: 48 registers, with
// a few spills, so that e.g. 8 rows of 75 chunks are resident on 132 SMs).
template <int kDType, bool kTopP, int kMinBlocks>
__global__ void __launch_bounds__(kThreads, kMinBlocks) resident_step_kernel(KernelArgs a) {
  __shared__ ResidentShared sh;
  RN_TRACE(3, 0);
  pdl_wait();     // the logits, the state and the workspace come from earlier kernels
  pdl_trigger();  // a dependent starts only once every block here has run this: all are resident
  const std::int64_t row = blockIdx.x;
  const unsigned part = blockIdx.y, parts = gridDim.y, chunks = a.ws.chunks;
  const bool lead = part == 0;  // owns chunk 0: the row's bookkeeping
  const RowWords words{a.ws.tagged + row * a.ws.row_words, chunks};
  const unsigned tag = __ldcg(a.ws.steps + row) + 1u;
  const Waiter wait{tag, global_ns() + kStallNs, a.scratch.error_flag};
  const void* z = row_logits<kDType>(a, row);
  const auto load = [&](unsigned c, float (&x)[kPerThread]) {
    const std::int64_t begin = static_cast<std::int64_t>(c) * kChunk;
    load_chunk<kDType>(z, begin, min(begin + kChunk, a.vocab), x);
  };
  float x0[kPerThread];  // chunk `part`
  load(part, x0);
  // fn(c, logits of chunk c) over this block's chunks in order, the next one loading meanwhile.
  const auto for_own_chunks = [&](auto&& fn) {
    fn(part, x0);
    if (part + parts >= chunks) return;
    float x[kPerThread];
    load(part + parts, x);
    for (unsigned c = part + parts; c < chunks; c += parts) {
      float xn[kPerThread];
      if (c + parts < chunks) load(c + parts, xn);
      fn(c, x);
      if (c + parts < chunks) {
#pragma unroll
        for (int j = 0; j < kPerThread; ++j) x[j] = xn[j];
      }
    }
  };
  int claim = 0;
  if (lead) {
    claim = prepare_loads(a, row, sh.prep);
    stage_window(a, row, sh.u.window);
  }
  if (threadIdx.x == 0) {
    sh.n = 0u;
    sh.overflow = 0;
    sh.chunk = -1;
  }
  sh.extra[threadIdx.x] = 0ull;

  // Exchange 1: entropy parts and the prepared slot.
  for_own_chunks([&](unsigned c, const float (&x)[kPerThread]) {
    // the first one's barriers publish sh.prep
    const ChunkPart p = block_entropy(thread_entropy(x, static_cast<std::int64_t>(c) * kChunk), sh.chunk_parts);
    if (threadIdx.x == 0) put_part(words, c, p, tag);
    if (lead && c == 0 && threadIdx.x == kPreparer) {
      prepare_row(a, row, claim, sh.prep, sh.u.window, sh.pre);
      put_pre(words, sh.pre, tag);
      __threadfence();  // the claim is ordered before the count of claims (release_after_all_claims)
      atomicAdd(a.ws.grid + 0, 1u);
    }
  });
  RN_TRACE(3, 1);
  // The other blocks wait for the lead's word on what follows; only the lead polls the row's parts
  // (every block polling every part made the few L2 lines holding them a hot spot).
  if (!lead) {
    if (threadIdx.x == 0) {
      unsigned v[3];
      take_words(words.plan(), wait, v);
      sh.plan_zmax = __uint_as_float(v[0]);
      sh.plan_inv_t = __uint_as_float(v[1]);
      sh.go = static_cast<int>(v[2]);
    }
    __syncthreads();
    if (!sh.go) return;  // greedy or rejected: the lead finishes the row
    RowPlan plan{};
    plan.zmax = sh.plan_zmax;
    plan.inv_t = sh.plan_inv_t;
    plan.floor_key = 0u;
    plan.bin = -1;
    if (kTopP) {
      add_bins(a, row, plan, for_own_chunks, sh);
      if (threadIdx.x == 0) {
        unsigned v[1];
        take_words(words.plan() + 3, wait, v);
        sh.bin = static_cast<int>(v[0]);
      }
      __syncthreads();
      plan.bin = sh.bin;
    }
    for_own_chunks([&](unsigned c, const float (&x)[kPerThread]) { put_kept<kTopP>(words, c, x, plan, tag, sh); });
    return;  // the lead draws
  }

  // The lead from here on. Exchange 1: entropy parts and the prepared slot.
  EntropyPart q = empty_part<EntropyPart>();
  if (threadIdx.x < chunks) q = entropy_merge(q, take_part(words, threadIdx.x, wait));
  if (threadIdx.x == kThreads - 1) sh.view = take_pre(words, wait);
  const EntropyPart all = block_entropy_of_holders(q, chunks, sh.row_parts);  // the same tree as stats_kernel
  RN_TRACE(3, 2);
  const float entropy = all.max == -INFINITY || all.nan
                            ? NAN
                            : static_cast<float>(fmax(log(all.sum_exp) - all.sum_zexp / all.sum_exp, 0.0));
  int bad = sh.view.bad;
  if (all.nan) bad |= kErrorNaN;
  else if (all.max == -INFINITY) bad |= kErrorAllNegInf;
  const double t = bad ? 0.0 : detail::temperature_for(a.params, sh.view.means, entropy);
  const bool go = !bad && t > kGreedyTemperature;
  RowPlan plan{};
  plan.zmax = all.max;
  plan.inv_t = go ? static_cast<float>(1.0 / t) : 0.0f;
  plan.floor_key = 0u;
  plan.bin = -1;
  if (threadIdx.x == 0) {
    put_word(words.plan() + 0, __float_as_uint(plan.zmax), tag);
    put_word(words.plan() + 1, __float_as_uint(plan.inv_t), tag);
    put_word(words.plan() + 2, go ? 1u : 0u, tag);
  }
  // Outputs and state (finish_row reaches the same entropy and temperature); the step counter moves
  // on (every block has read it: each published its parts after).
  const auto bookkeeping = [&] {
    finish_row(a, row, all, sh.pre);
    a.ws.steps[row] = tag;
  };
  const auto release = [&] { release_after_all_claims(a, gridDim.x, claimed(sh.pre.bad) ? sh.pre.slot : -1); };
  if (!go) {
    if (threadIdx.x == 0) {
      bookkeeping();
      release();
    }
    return;
  }

  // Exchange 2: top-p bins; the lead reads the counted histogram and picks the boundary bin.
  if (kTopP) {
    add_bins(a, row, plan, for_own_chunks, sh);
    plan.target = take_boundary_bin(a.ws.hist + row * kHistBins, parts, a.top_p, wait, sh);
    plan.bin = sh.bin;
    if (threadIdx.x == 0) put_word(words.plan() + 3, static_cast<unsigned>(plan.bin), tag);
    unsigned long long* row_hist = a.ws.hist + row * kHistBins;  // read by the lead alone: zeroed now
#pragma unroll
    for (int j = 0; j < kTopPBins / kThreads; ++j) row_hist[threadIdx.x * (kTopPBins / kThreads) + j] = 0ull;
    RN_TRACE(3, 4);
  }

  // Exchange 3: kept masses and boundary-bin logits per chunk.
  for_own_chunks([&](unsigned c, const float (&x)[kPerThread]) { put_kept<kTopP>(words, c, x, plan, tag, sh); });
  // While the kept words come in, two threads that read none (chunks <= 192), in different warps.
  static_assert(kResidentMaxChunks <= kThreads - 33, "the bookkeeping threads poll no chunk");
  if (threadIdx.x == kThreads - 1) bookkeeping();
  if (threadIdx.x == kThreads - 33) release();
  unsigned long long my_mass = 0;
  if (threadIdx.x < chunks) my_mass = take_kept(words, threadIdx.x, wait, sh);
  __syncthreads();
  RN_TRACE(3, 5);
  const unsigned floor_key = kTopP ? resident_threshold<kDType>(a, row, chunks, plan, sh) : 0u;
  RN_TRACE(3, 6);

  // The chunk holding the uniform's quantile of the kept mass, and the rank inside it (draw_row).
  const unsigned long long run = threadIdx.x < chunks ? my_mass + sh.extra[threadIdx.x] : 0ull;
  unsigned long long total;
  const unsigned long long cum = block_exclusive_scan(run, sh.warp_sums, &total);
  const unsigned long long target =
      min(static_cast<unsigned long long>(sh.view.uniform * static_cast<double>(total)), total - 1);
  if (cum <= target && target < cum + run) {
    sh.chunk = threadIdx.x;
    sh.rank = target - cum;
  }
  if (threadIdx.x == 0) sh.token = all.argmax;
  __syncthreads();
  RN_TRACE(3, 7);
  const std::int64_t at_chunk = sh.chunk;
  std::int64_t token = all.argmax;
  if (at_chunk >= 0) {
    float x[kPerThread];
    if (at_chunk == 0) {
#pragma unroll
      for (int j = 0; j < kPerThread; ++j) x[j] = x0[j];
    } else {
      load(static_cast<unsigned>(at_chunk), x);  // another block's chunk: from L2
    }
    token = draw_from_registers(x, at_chunk * kChunk, plan, floor_key, sh.rank, sh);
  }
  if (threadIdx.x == 0) a.tokens[row] = token;
  RN_TRACE(3, 8);
}

}  // namespace reset_native::sampler::cuda_detail
