// The meetings of the resident GPU decode step (decode_step_resident.cuh): its shared memory, the
// lead's reads of the counted histogram and of the kept masses and boundary-bin logits, the exact
// threshold, the draw, and what every block publishes for meetings 2 and 3.
// Part of decode_step.cu's translation unit: included only there, in order.
#pragma once

namespace reset_native::sampler::cuda_detail {

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
  uint4 part_values[kResidentMaxChunks];  // the lead: the row's entropy parts (part_of_values)
  EntropyPart row;                        // the lead: the row's combined part
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
  constexpr int per = kBinsPerThread;
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
#pragma unroll
  for (int j = 0; j < per; ++j) v[j] &= kMassBits;
  return pick_bin(v, top_p, sh).target;  // sets sh.bin
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
    for (unsigned c = threadIdx.x >> 5; c < chunks; c += kWarps) {
      const unsigned long long m = boundary_bin_chunk_mass<kDType>(a, z, plan, floor_key, c);
      if ((threadIdx.x & 31) == 0) sh.extra[c] += m;
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

}  // namespace reset_native::sampler::cuda_detail
