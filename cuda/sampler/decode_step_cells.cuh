// RESET_NATIVE_SAMPLER_CELL_MASSES (session 15, a.cell_masses; on by default): the sampling pass publishes each warp's
// kept mass as two cells of 128 logits (a.ws.cells, kCells = 16 per chunk), stored by the warp's lane 0 as soon as the
// warp has weighed its logits: no block barrier, no block sum (store_block_mass) and, in the grouped pass, no
// per-round barriers. In kLoadVec's layout a cell is a run of 128 consecutive logits (fp32: float4 h of warp w,
// elements 1024 h + 128 w ...; 16-bit: lanes 16 h ... of warp w, elements 256 w + 128 h ...), so the row's last block
// (the draw) goes from the quantile's chunk to one cell by its 16 masses and finds the token among 128 logits by one
// warp (one 16- or 8-byte load per lane and a warp scan) instead of reloading and scanning the whole chunk with the
// block. A cell holds at most 128 weights of <= 2^24: below 2^32, so the sums are the exact integers of the
// chunk masses split in parts: the same chunk, rank and token as draw_row, bit for bit.
// Part of decode_step.cu's translation unit: included by decode_step_sample.cuh, before sample_kernel.
#pragma once

namespace reset_native::sampler::cuda_detail {

// The draw keeps the cells of every chunk in the words of DrawShared::kw past the counted threshold's scratch
// (kw[2 * kRankCandidates ...], unused with n <= kRankCandidates): rows of at most kCellChunks chunks (V <= 393216);
// longer rows run without the cells (decode_step.cu).
constexpr int kCellsFrom = 2 * kRankCandidates;
constexpr unsigned kCellChunks = static_cast<unsigned>((kCandidates - kCellsFrom) * 2 / kCells);
constexpr int kCellLogits = static_cast<int>(kChunk / kCells);  // 128
static_assert(kCells == 2 * kWarps && kCellLogits == 128, "a cell is half a warp's logits");

// Cell c = 2 w + h of a chunk in kLoadVec's layout covers the chunk's logits [128 s, 128 s + 128) of segment s:
// fp32 s = 8 h + w, 16-bit s = c. The inverse: the cell of segment s.
template <int kDType>
__device__ __forceinline__ int cell_of_segment(int s) {
  return kDType == 0 ? 2 * (s % kWarps) + s / kWarps : s;
}

// The warp's two cells of chunk `chunk` from each thread's kept masses k0 (x[0..3]) and k1 (x[4..7]): fp32 (and
// the layouts of other loads, where a cell only counts towards its chunk) by the thread's halves, 16-bit in
// kLoadVec's layout by the lanes' halves. Lane 0 stores both.
template <int kDType>
__device__ __forceinline__ void store_cells(const KernelArgs& a, std::int64_t row, unsigned chunk, unsigned k0,
                                            unsigned k1, int mode) {
  const int lane = threadIdx.x & 31;
  const std::int64_t begin = static_cast<std::int64_t>(chunk) * kChunk;
  unsigned c0, c1;
  if (kDType != 0 && vec_layout(mode, begin, min(begin + kChunk, a.vocab))) {
    const unsigned k = k0 + k1;  // <= 8 x 2^24
    c0 = __reduce_add_sync(kFullMask, lane < 16 ? k : 0u);
    c1 = __reduce_add_sync(kFullMask, lane < 16 ? 0u : k);
  } else {
    c0 = __reduce_add_sync(kFullMask, k0);  // <= 32 x 4 x 2^24 = 2^31
    c1 = __reduce_add_sync(kFullMask, k1);
  }
  if (lane == 0) {
    reinterpret_cast<uint2*>(a.ws.cells + (row * a.ws.chunks + chunk) * kCells)[threadIdx.x >> 5] =
        make_uint2(c0, c1);
  }
}

// kept_mass_warp with cells: the same weights, boundary-bin logits and candidates; the kept mass as the warp's two
// cells instead of warp_mass.
template <int kDType, bool kLean = false>
__device__ void kept_cells_warp(const KernelArgs& a, std::int64_t row, unsigned chunk, const RowPlan& plan,
                                const float (&x)[kPerThread], int mode) {
  unsigned w[kPerThread];
  unsigned k0 = 0u, k1 = 0u, in_bin;
  if (kLean && a.kept_sum) {
    in_bin = plan.floor_key == 0u ? kept_weights_summed_of<false, true>(plan, x, w, k0, k1)
                                  : kept_weights_summed_of<true, true>(plan, x, w, k0, k1);
  } else {
    in_bin = kept_weights<kLean>(plan, x, w);
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) (j < kPerThread / 2 ? k0 : k1) += in_bin & (1u << j) ? 0u : w[j];
  }
  store_cells<kDType>(a, row, chunk, k0, k1, mode);
  publish_candidates<kDType>(a, row, chunk, x, w, in_bin, mode, a.warp_redux != 0);
}

// Chunk t's kept mass as the sum of its kCells cell words (16-byte loads of the shared words, 64-bit sums).
__device__ __forceinline__ unsigned long long chunk_cells_mass(const unsigned* segments, unsigned t) {
  const uint4* w4 = reinterpret_cast<const uint4*>(segments + t * kCells);
  unsigned long long run = 0;
#pragma unroll
  for (int k = 0; k < kCells / 4; ++k) {
    const uint4 v = w4[k];
    run += static_cast<unsigned long long>(v.x) + v.y + static_cast<unsigned long long>(v.z) + v.w;
  }
  return run;
}

// The segment of a chunk that holds `rank` (lane l < kCells holds segment l's kept mass m): the number of the first
// kCells - 1 segments whose inclusive running mass is <= rank, by a warp scan; `before` = the mass ahead of it.
__device__ __forceinline__ int segment_of_rank(unsigned long long m, unsigned long long rank, int lane,
                                               unsigned long long& before) {
  unsigned long long upto = m;
  for (int o = 1; o < 32; o <<= 1) {
    const unsigned long long y = __shfl_up_sync(kFullMask, upto, o);
    if (lane >= o) upto += y;
  }
  const int seg = __popc(__ballot_sync(kFullMask, lane < kCells - 1 && upto <= rank));
  before = __shfl_sync(kFullMask, upto - m, seg);
  return seg;
}

// One warp (warp 0), the draw's last step: the token of rank `rank` in the kept mass of the 128 logits from `begin`
// (a segment of a chunk wholly inside the row, 16-byte aligned): lane l weighs logits begin + 4 l ... + 3 as
// draw_row's kept_weight does, then a warp scan in index order. Writes the token (the argmax if no lane holds the
// rank, which the exact masses rule out, as in draw_row).
template <int kDType>
__device__ void draw_in_cell(const KernelArgs& a, std::int64_t row, const void* z, std::int64_t begin,
                             unsigned rank, unsigned floor_key, const RowPlan& plan, bool lean) {
  const int lane = threadIdx.x & 31;
  const std::int64_t at_lane = begin + 4 * lane;
  float x[4];
  if constexpr (kDType == 0) {
    const float4 v = __ldg(reinterpret_cast<const float4*>(static_cast<const float*>(z) + at_lane));
    x[0] = v.x;
    x[1] = v.y;
    x[2] = v.z;
    x[3] = v.w;
  } else {
    const uint2 v = __ldg(reinterpret_cast<const uint2*>(static_cast<const unsigned short*>(z) + at_lane));
    x[0] = widen_half<kDType>(static_cast<unsigned short>(v.x & 0xFFFFu));
    x[1] = widen_half<kDType>(static_cast<unsigned short>(v.x >> 16));
    x[2] = widen_half<kDType>(static_cast<unsigned short>(v.y & 0xFFFFu));
    x[3] = widen_half<kDType>(static_cast<unsigned short>(v.y >> 16));
  }
  unsigned wk[4], mine = 0u;
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const float m = tempered(x[j], plan.zmax, plan.inv_t);
    wk[j] = order_key(x[j]) < floor_key ? 0u : (lean ? weight_at<true>(m) : weight_at<false>(m));
    mine += wk[j];
  }
  unsigned upto = mine;  // inclusive scan over the warp: at most 128 x 2^24 = 2^31
  for (int o = 1; o < 32; o <<= 1) {
    const unsigned y = __shfl_up_sync(kFullMask, upto, o);
    if (lane >= o) upto += y;
  }
  unsigned cum = upto - mine;
  std::int64_t token = -1;
  if (cum <= rank && rank < upto) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      if (token < 0 && rank < cum + wk[j]) token = at_lane + j;
      cum += wk[j];
    }
  }
  const unsigned found = __ballot_sync(kFullMask, token >= 0);
  if (found == 0u) {
    if (lane == 0) a.tokens[row] = plan.argmax;
  } else if (lane == __ffs(found) - 1) {
    a.tokens[row] = token;
  }
}

// One warp, the draw's last step over a whole chunk [begin, end) (a row's partial last chunk, not in kLoadVec's
// layout) with rank `rank` inside its kept mass: pieces of 128 logits in index order, lane l weighing logits 4 l ...
// 4 l + 3 of a piece with weigh(i, end), a warp scan per piece; the first logit where the running mass passes the
// rank is the token, as draw_in_chunk's block scan finds it (the same weights, the same order).
template <class Weigh>
__device__ void draw_in_chunk_warp(const KernelArgs& a, std::int64_t row, std::int64_t begin, std::int64_t end,
                                   unsigned long long rank, std::int64_t fallback, Weigh weigh) {
  const int lane = threadIdx.x & 31;
#pragma unroll 1
  for (std::int64_t piece = begin; piece < end; piece += kCellLogits) {
    unsigned wk[4], mine = 0u;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      wk[j] = weigh(piece + 4 * lane + j, end);
      mine += wk[j];
    }
    unsigned upto = mine;  // at most 128 x 2^24 = 2^31
    for (int o = 1; o < 32; o <<= 1) {
      const unsigned y = __shfl_up_sync(kFullMask, upto, o);
      if (lane >= o) upto += y;
    }
    const unsigned piece_mass = __shfl_sync(kFullMask, upto, 31);
    if (rank < piece_mass) {
      const unsigned r = static_cast<unsigned>(rank);
      unsigned cum = upto - mine;
      std::int64_t token = -1;
      if (cum <= r && r < upto) {
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          if (token < 0 && r < cum + wk[j]) token = piece + 4 * lane + j;
          cum += wk[j];
        }
      }
      const unsigned found = __ballot_sync(kFullMask, token >= 0);
      if (found != 0u && lane == __ffs(found) - 1) a.tokens[row] = token;
      if (found == 0u && lane == 0) a.tokens[row] = fallback;
      return;
    }
    rank -= piece_mass;
  }
  if (lane == 0) a.tokens[row] = fallback;
}

// draw_row with the cells (a.cell_masses; rows of at most kCellChunks chunks, so thread t owns chunk t): the chunk
// masses are the sums of their cells, loaded with the candidates; the boundary bin's kept logits are added to their
// segments in shared memory (with the counted threshold; otherwise to the chunks, as draw_row); then the quantile's
// chunk, and in kLoadVec's layout its segment and the token by one warp (draw_in_cell), else the chunk scanned by
// the block as draw_row. All threads.
template <int kDType>
__device__ void draw_row_cells(const KernelArgs& a, std::int64_t row, const RowPlan& plan, DrawShared& d,
                               SampleShared& sh) {
  const void* z = row_logits<kDType>(a, row);
  const unsigned chunks = a.ws.chunks;  // <= kCellChunks <= kThreads
  const unsigned t = threadIdx.x;
  const bool owner = t < chunks;
  uint4 cell[kCells / 4];
  if (owner) {
    const uint4* p = reinterpret_cast<const uint4*>(a.ws.cells + (row * chunks + t) * kCells);
#pragma unroll
    for (int k = 0; k < kCells / 4; ++k) cell[k] = __ldcg(p + k);
  }
  d.extra_lo[t] = 0u;
  d.extra_hi[t] = 0u;
  const bool lean = a.lean_draw && a.sub_bins;
  if (lean) sub_bins_init(d.sub);  // published by the barrier after the loads below
  unsigned* segments = reinterpret_cast<unsigned*>(d.kw + kCellsFrom);  // [chunk * kCells + segment]
  const std::int64_t chunk_begin = static_cast<std::int64_t>(t) * kChunk;
  const bool vec = vec_layout(a.sample_loads, chunk_begin, min(chunk_begin + kChunk, a.vocab));
  // The cells of chunk t: their sum, and (segments) each into its segment's word in shared memory.
  unsigned long long my_mass = 0;
  const auto note_cells = [&](bool to_segments) {
    if (!owner) return;
    const unsigned c[kCells] = {cell[0].x, cell[0].y, cell[0].z, cell[0].w, cell[1].x, cell[1].y, cell[1].z,
                                cell[1].w, cell[2].x, cell[2].y, cell[2].z, cell[2].w, cell[3].x, cell[3].y,
                                cell[3].z, cell[3].w};
#pragma unroll
    for (int k = 0; k < kCells; ++k) my_mass += c[k];
    if (to_segments) {
#pragma unroll
      for (int s = 0; s < kCells; ++s) segments[t * kCells + s] = vec ? c[cell_of_segment<kDType>(s)] : c[s];
    }
  };
  unsigned floor_key = plan.floor_key;
  bool segmented = true;  // the segments' words hold every kept mass of the row (block-uniform)
  if (plan.bin >= 0) {
    const uint4* row_cand = reinterpret_cast<const uint4*>(a.ws.candidates + row * kCandidates);
    const uint4 mine = __ldcg(row_cand + t);  // candidate t, if there are that many
    const unsigned n = __ldcg(a.ws.candidate_counts + row);
    segmented = lean && n <= static_cast<unsigned>(kRankCandidates);  // kw's words past the scratch are free
    note_cells(segmented);
    __syncthreads();  // every thread has read the count before it is reset
    RN_TRACE(2, 5);
    if (t == 0) a.ws.candidate_counts[row] = 0u;
    if (n == 0u) {
      // Unreachable (the bin was chosen for its mass, and the same logits are recounted): keep the floor.
    } else if (segmented) {
      floor_key = threshold_by_sub_bins_own((static_cast<unsigned long long>(mine.x) << 32) | mine.y,
                                            static_cast<int>(n), plan.target, plan, d.sub, d.kw + kRankCandidates);
      RN_TRACE(2, 6);
      if (t < n && mine.x >= floor_key) atomicAdd(segments + mine.z / kCellLogits, mine.y);
    } else if (n <= static_cast<unsigned>(kCandidates)) {
      for (unsigned i = t; i < n; i += kThreads) {
        const uint4 c = i == t ? mine : __ldcg(row_cand + i);  // (key, weight, index, pad)
        d.kw[i] = (static_cast<unsigned long long>(c.x) << 32) | c.y;
        if (i < static_cast<unsigned>(kRankCandidates)) d.index[i] = c.z;
      }
      __syncthreads();
      RN_TRACE(2, 14);
      if (n <= static_cast<unsigned>(kRankCandidates)) {
        floor_key = a.sub_bins ? threshold_by_sub_bins(d.kw, static_cast<int>(n), plan.target, plan, d.sub,
                                                       d.kw + kRankCandidates)
                               : threshold_by_rank(d.kw, static_cast<int>(n), plan.target, &d.best, &d.least);
        RN_TRACE(2, 6);
        if (t < n && static_cast<unsigned>(d.kw[t] >> 32) >= floor_key) {
          add_kept(d, nullptr, d.index[t] / kChunk, static_cast<unsigned>(d.kw[t]), true);
        }
      } else {
        floor_key = threshold_by_sort(d.kw, static_cast<int>(n), plan.target, sh.warp_sums, &sh.first);
        RN_TRACE(2, 6);
        for (unsigned i = t; i < n; i += kThreads) {  // kw is sorted now: the unsorted copy
          const uint4 c = __ldcg(row_cand + i);
          if (c.x >= floor_key) add_kept(d, nullptr, c.z / kChunk, c.y, true);
        }
      }
    } else {
      floor_key = threshold_from_row<kDType>(a, z, plan, d.kw, sh.warp_sums, &sh.digit, &sh.above);
      // The kept logits of the bin, added chunk by chunk (warp w takes chunks w, w + kWarps, ...) to the chunk's
      // extra mass in two halves (at most 2048 x 2^24 per chunk: bits 12 and up stay below 2^24).
      for (unsigned c = t >> 5; c < chunks; c += kWarps) {
        const unsigned long long m = boundary_bin_chunk_mass<kDType>(a, z, plan, floor_key, c);
        if ((t & 31) == 0 && m) {
          atomicAdd(d.extra_lo + c, static_cast<unsigned>(m & 0xFFFu));
          atomicAdd(d.extra_hi + c, static_cast<unsigned>(m >> 12));
        }
      }
    }
    __syncthreads();
    RN_TRACE(2, 7);
  } else {
    note_cells(true);  // no boundary bin: each thread reads back only its own chunk's words
  }
  unsigned long long run = 0;  // chunk t's kept mass
  if (owner) {
    if (segmented) {
      run = chunk_cells_mass(segments, t);
    } else {
      run = my_mass + (static_cast<unsigned long long>(d.extra_hi[t]) << 12) + d.extra_lo[t];
    }
  }
  const auto kept_weight = [&](std::int64_t i, std::int64_t stop) -> unsigned {
    if (i >= stop) return 0u;
    const float x = load_logit<kDType>(z, i);
    const float m = tempered(x, plan.zmax, plan.inv_t);
    return order_key(x) >= floor_key ? (lean ? weight_at<true>(m) : weight_at<false>(m)) : 0u;
  };
  if (a.owner_draw && segmented && a.sample_loads == kLoadVec) {
    // a.owner_draw (RESET_NATIVE_SAMPLER_OWNER_DRAW, session 17): the warp of the chunk that holds the quantile finds
    // its segment and the token; the other warps are done after the scan (no barrier after it). Every chunk but the
    // row's partial last one is in kLoadVec's layout, so its segment words are runs of 128 logits.
    unsigned long long total;
    const unsigned long long cum = block_exclusive_scan_open(run, sh.warp_sums, &total);
    const unsigned long long target =
        min(static_cast<unsigned long long>(plan.uniform * static_cast<double>(total)), total - 1);
    const unsigned holder = __ballot_sync(kFullMask, owner && cum <= target && target < cum + run);
    if (holder == 0u) return;  // exactly one owner holds it (exact masses, target < total)
    const int lane = t & 31, hl = __ffs(holder) - 1;
    const unsigned chunk = __shfl_sync(kFullMask, t, hl);
    const unsigned long long rank = __shfl_sync(kFullMask, target - cum, hl);
    if (lane == hl) RN_TRACE_HERE(2, 8);
    const std::int64_t begin = static_cast<std::int64_t>(chunk) * kChunk, end = min(begin + kChunk, a.vocab);
    if (end - begin == kChunk) {
      // The segment: the number of the first 15 segments whose inclusive running mass is <= rank (draw_row_cells'
      // walk, by a 16-lane scan), and the rank inside it.
      const unsigned long long m = lane < kCells ? segments[chunk * kCells + lane] : 0ull;
      unsigned long long before;
      const int seg = segment_of_rank(m, rank, lane, before);
      draw_in_cell<kDType>(a, row, z, begin + seg * kCellLogits, static_cast<unsigned>(rank - before), floor_key,
                           plan, lean);
    } else {
      draw_in_chunk_warp(a, row, begin, end, rank, plan.argmax, kept_weight);
    }
    if (lane == 0) RN_TRACE_HERE(2, 9);
    return;
  }
  if (t == 0) {
    sh.chunk = -1;
    sh.token = plan.argmax;
    sh.segment = -1;  // the segment of the quantile in its chunk; -1: scan the whole chunk
  }
  unsigned long long total;
  const unsigned long long cum = block_exclusive_scan(run, sh.warp_sums, &total);
  // total >= 2^24: the argmax always passes every threshold and weighs 2^24.
  const unsigned long long target =
      min(static_cast<unsigned long long>(plan.uniform * static_cast<double>(total)), total - 1);
  if (owner && cum <= target && target < cum + run) {
    unsigned long long rank = target - cum;
    sh.chunk = t;
    if (segmented && vec) {
      int s = 0;
      for (; s < kCells - 1; ++s) {
        const unsigned m = segments[t * kCells + s];
        if (rank < m) break;
        rank -= m;
      }
      sh.segment = s;
    }
    sh.rank = rank;
  }
  __syncthreads();
  RN_TRACE(2, 8);
#ifdef RESET_NATIVE_SAMPLER_TRACE
  {
    // Probe only: a second copy of the chunks' scan and a read of the owners' segment words, with their barriers, the
    // data and the shared memory warm (mark 17; the segment and token phase is then marks 17 -> 9).
    unsigned long long again_total;
    unsigned long long again = block_exclusive_scan(run, sh.warp_sums, &again_total) + again_total;
    if (owner) {
      for (int s = 0; s < kCells; ++s) again += segments[t * kCells + s];
    }
    if (again == 1ull) g_trace_sink = 1.0;  // keeps the loads
    __syncthreads();
    RN_TRACE(2, 17);
  }
#endif
  if (sh.segment >= 0) {
    if (t < 32) {
      draw_in_cell<kDType>(a, row, z, sh.chunk * kChunk + sh.segment * kCellLogits, static_cast<unsigned>(sh.rank),
                           floor_key, plan, lean);
      RN_TRACE(2, 9);
    }
    return;
  }
  if (sh.chunk >= 0) {
    draw_in_chunk(a, sh, kept_weight);  // draw_row's scan of the whole chunk
  }
  __syncthreads();
  RN_TRACE(2, 9);
  if (t == 0) a.tokens[row] = sh.token;
}

}  // namespace reset_native::sampler::cuda_detail
