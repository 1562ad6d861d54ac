// RESET_NATIVE_SAMPLER_EARLY_SCAN (session 18, a.early_scan; on by default with top-p): draw_row_cells' counted-threshold path with the
// chunks' scan moved inside the threshold's barriers. The threshold K is a key of the boundary sub-bin (the "star"
// sub-bin of threshold_by_sub_bins_own), so before K is known every candidate of an earlier sub-bin is kept for sure
// (its logit is at least every star logit) and every one of a later sub-bin is dropped (sub-bins are monotone in the
// logit, equal logits share one). The sure candidates are added to their segments as soon as each warp knows the star
// sub-bin, and the chunks' prefix of the cells plus the sure candidates is scanned beside the star sub-bin's count,
// across that count's barrier. Once K is known, the star sub-bin's kept candidates (a few, in a shared list) are added
// to the prefix by a loop of broadcast reads, and the warp of the chunk that holds the quantile finds its segment and
// the token (OWNER_DRAW's end): 3 barriers from the loads to the token instead of 7, no block scan after K. The same
// kept set, masses, target, chunk, segment and token: the same bits as draw_row_cells.
// Part of decode_step.cu's translation unit: included by decode_step_sample.cuh, after decode_step_cells.cuh.
#pragma once

namespace reset_native::sampler::cuda_detail {

// draw_row_cells with the early scan: rows with a boundary bin, the lean counted threshold (a.lean_draw, a.sub_bins)
// and 1 ... kRankCandidates candidates; false for any other row (block-uniform, after a barrier: the caller then runs
// draw_row_cells, which reads the candidates' count again). d.sub was initialised by sub_bins_init before the row's
// arrival (sample_kernel), whose barriers published it. All threads.
template <int kDType>
__device__ bool draw_row_early(const KernelArgs& a, std::int64_t row, const RowPlan& plan, DrawShared& d,
                               SampleShared& sh) {
  const unsigned chunks = a.ws.chunks;  // <= kCellChunks <= kThreads
  const unsigned t = threadIdx.x;
  const int lane = t & 31, warp = t >> 5;
  const bool owner = t < chunks;
  const uint4* row_cand = reinterpret_cast<const uint4*>(a.ws.candidates + row * kCandidates);
  uint4 cell[kCells / 4];
  if (owner) {
    const uint4* p = reinterpret_cast<const uint4*>(a.ws.cells + (row * chunks + t) * kCells);
#pragma unroll
    for (int k = 0; k < kCells / 4; ++k) cell[k] = __ldcg(p + k);
  }
  const uint4 mine = __ldcg(row_cand + t);  // candidate t, if there are that many
  const unsigned n = __ldcg(a.ws.candidate_counts + row);
  if (plan.bin < 0 || !(a.lean_draw && a.sub_bins) || n == 0u || n > static_cast<unsigned>(kRankCandidates)) {
    __syncthreads();  // every thread has read the count before draw_row_cells resets it
    return false;
  }
  unsigned* segments = reinterpret_cast<unsigned*>(d.kw + kCellsFrom);  // [chunk * kCells + segment]
  unsigned long long* star = d.kw + kRankCandidates;                    // the star sub-bin's words
  unsigned* star_at = d.index;                                          // and their positions in the row
  const std::int64_t chunk_begin = static_cast<std::int64_t>(t) * kChunk;
  if (owner) {
    const bool vec = vec_layout(a.sample_loads, chunk_begin, min(chunk_begin + kChunk, a.vocab));
    const unsigned c[kCells] = {cell[0].x, cell[0].y, cell[0].z, cell[0].w, cell[1].x, cell[1].y, cell[1].z,
                                cell[1].w, cell[2].x, cell[2].y, cell[2].z, cell[2].w, cell[3].x, cell[3].y,
                                cell[3].z, cell[3].w};
#pragma unroll
    for (int s = 0; s < kCells; ++s) segments[t * kCells + s] = vec ? c[cell_of_segment<kDType>(s)] : c[s];
  }
  // The sub-bins before the first barrier (d.sub is initialised already): threshold_by_sub_bins_own's first phase.
  const unsigned long long word = (static_cast<unsigned long long>(mine.x) << 32) | mine.y;
  SubBinShared& sb = d.sub;
  const int sub = add_to_sub_bins(t < n, word, plan, sb);
  __syncthreads();  // barrier 1: the count read everywhere, the segments' cells and the sub-bins complete
  RN_TRACE(2, 5);
  if (t == 0) a.ws.candidate_counts[row] = 0u;
  unsigned long long above = 0ull;
  const int lane_star = lane_star_sub_bin(plan.target, sb, above);
  const unsigned holder = __ballot_sync(kFullMask, lane_star >= 0);
  // No sub-bin reaches the target: every candidate is kept (K = the smallest key), all of them "sure".
  const int star_bin = holder ? __shfl_sync(kFullMask, lane_star, __ffs(holder) - 1) : kSubBins;
  above = holder ? __shfl_sync(kFullMask, above, __ffs(holder) - 1) : 0ull;
  if (t < n) {
    if (sub < star_bin) {
      atomicAdd(segments + mine.z / kCellLogits, mine.y);
    } else if (sub == star_bin) {
      const unsigned at = atomicAdd(&sb.n_star, 1u);
      star[at] = word;
      star_at[at] = mine.z;
    }
  }
  __syncthreads();  // barrier 2: the star list and the sure candidates' segments complete
  // Chunk t's mass of the cells and the sure candidates, scanned across the star count's barrier.
  unsigned long long run = 0;
  if (owner) {
    run = chunk_cells_mass(segments, t);
  }
  unsigned long long upto = run;
  for (int o = 1; o < 32; o <<= 1) {
    const unsigned long long y = __shfl_up_sync(kFullMask, upto, o);
    if (lane >= o) upto += y;
  }
  if (lane == 31) sh.warp_sums[warp] = upto;
  unsigned floor_key = sb.least;
  const unsigned n_star = sb.n_star;
  if (holder) floor_key = star_threshold(star, above, plan.target, sb);  // barrier 3
  else __syncthreads();                                                    // barrier 3
  RN_TRACE(2, 6);
  unsigned long long cum = 0, total = 0;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) {
    const unsigned long long s = sh.warp_sums[w];
    cum += w < warp ? s : 0ull;
    total += s;
  }
  cum += upto - run;
  if (holder && sb.best == 0u) {
    // Unreachable (the star sub-bin's smallest key reaches the target), kept exact: K is the smallest key, so every
    // candidate of the star and later sub-bins is kept too. Add them and scan again.
    if (t < n && sub > star_bin) atomicAdd(segments + mine.z / kCellLogits, mine.y);
    if (t < n_star) atomicAdd(segments + star_at[t] / kCellLogits, static_cast<unsigned>(star[t]));
    __syncthreads();
    run = 0;
    if (owner) {
      for (int s = 0; s < kCells; ++s) run += segments[t * kCells + s];
    }
    cum = block_exclusive_scan_open(run, sh.warp_sums, &total);
  } else {
    // The star sub-bin's kept candidates: their mass in chunks before t and in chunk t, and in all.
    unsigned long long late_before = 0, late_own = 0, late_all = 0;
#pragma unroll 4
    for (unsigned j = 0; j < n_star; ++j) {
      const unsigned long long v = star[j];
      const unsigned c = star_at[j] / static_cast<unsigned>(kChunk);
      const unsigned long long w = static_cast<unsigned>(v >> 32) >= floor_key ? (v & 0xFFFFFFFFull) : 0ull;
      late_all += w;
      late_before += c < t ? w : 0ull;
      late_own += c == t ? w : 0ull;
    }
    cum += late_before;
    run += late_own;
    total += late_all;
  }
  // total >= 2^24: the argmax always passes every threshold and weighs 2^24.
  const unsigned long long target =
      min(static_cast<unsigned long long>(plan.uniform * static_cast<double>(total)), total - 1);
  const unsigned holds = __ballot_sync(kFullMask, owner && cum <= target && target < cum + run);
  if (holds == 0u) return true;  // exactly one owner holds it (exact masses, target < total)
  const int hl = __ffs(holds) - 1;
  const unsigned chunk = __shfl_sync(kFullMask, t, hl);
  const unsigned long long rank = __shfl_sync(kFullMask, target - cum, hl);
  if (lane == hl) RN_TRACE_HERE(2, 8);
  const void* z = row_logits<kDType>(a, row);
  const bool lean = true;  // a.lean_draw && a.sub_bins
  const std::int64_t begin = static_cast<std::int64_t>(chunk) * kChunk, end = min(begin + kChunk, a.vocab);
  if (vec_layout(a.sample_loads, begin, end)) {
    // The segment (OWNER_DRAW's 16-lane scan), each segment's word plus its kept star candidates.
    unsigned long long m = 0ull;
    if (lane < kCells) {
      const unsigned seg_index = chunk * kCells + lane;
      m = segments[seg_index];
      for (unsigned j = 0; j < n_star; ++j) {
        const unsigned long long v = star[j];
        const bool kept = static_cast<unsigned>(v >> 32) >= floor_key;
        if (star_at[j] / kCellLogits == seg_index && kept) m += v & 0xFFFFFFFFull;
      }
    }
    unsigned long long before;
    const int seg = segment_of_rank(m, rank, lane, before);
    draw_in_cell<kDType>(a, row, z, begin + seg * kCellLogits, static_cast<unsigned>(rank - before), floor_key, plan,
                         lean);
  } else {
    const auto kept_weight = [&](std::int64_t i, std::int64_t stop) -> unsigned {
      if (i >= stop) return 0u;
      const float x = load_logit<kDType>(z, i);
      const float mt = tempered(x, plan.zmax, plan.inv_t);
      return order_key(x) >= floor_key ? weight_at<true>(mt) : 0u;
    };
    draw_in_chunk_warp(a, row, begin, end, rank, plan.argmax, kept_weight);
  }
  if (lane == 0) RN_TRACE_HERE(2, 9);
  return true;
}

}  // namespace reset_native::sampler::cuda_detail
