// The resident GPU decode step: the whole step in one launch, blocks of every row resident at once (the
// launcher checks the occupancy): one block per (row, chunk) while the grid fits, each keeping its
// chunk of logits in registers through the three passes; at larger batches fewer blocks per
// row, each owning several chunks. Its tagged words: decode_step_resident_words.cuh; the pieces of its
// meetings: decode_step_resident_meetings.cuh.
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
    const ChunkPart p = chunk_part(x, static_cast<std::int64_t>(c) * kChunk, sh.chunk_parts);
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
  // The parts are polled in parallel (a thread each), then combined as stats_kernel combines them.
  if (threadIdx.x < chunks) sh.part_values[threadIdx.x] = take_part_values(words, threadIdx.x, wait);
  if (threadIdx.x == kThreads - 1) sh.view = take_pre(words, wait);
  __syncthreads();
  const EntropyPart all =
      block_combine_parts(chunks, [&](unsigned c) { return part_of_values(sh.part_values[c]); }, &sh.row);
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
