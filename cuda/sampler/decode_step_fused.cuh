// The opt-in one-kernel GPU decode step (RESET_NATIVE_SAMPLER_FUSED=1): the three passes in one kernel,
// rows synchronised through per-row flags.
// Part of decode_step.cu's translation unit: included only there, in order.
#pragma once

namespace reset_native::sampler::cuda_detail {

// ---- One-kernel step ------------------------------------------------------------------------------
// When the grid fits on the device at once, the three passes run in one kernel: each row gets
// `parts` blocks (blockIdx.y), block p taking chunks p, p + parts, ... (per-chunk partials as above,
// so the results do not depend on parts), and the blocks of a row wait for the row's last block
// between the passes (a flag it bumps once it has published the row's plan) instead of ending and
// being relaunched. A block keeps its first chunk in registers for all passes (at B = 1 that is the
// whole row: one read of HBM); later chunks are read again (from L2 at moderate batch sizes). The
// launcher picks parts so that every block can be resident at once, so every waited-for block is
// running or finished. Same arithmetic as the kernels above, so the same tokens, temperatures and
// entropies. Opt-in (RESET_NATIVE_SAMPLER_FUSED=1): its first version, measured on an H200, was
// slower than the kernels at B = 1 and 8 and level at B = 64; every block then read the row's plan
// from L2 at once after each wait (fixed since, not measured yet).

// The row's blocks arrive here when their part of a pass is written: true in the last to arrive
// (it combines, then calls row_publish); the others then call row_wait. *s_gen keeps the flag's
// value from before the arrival: the last block bumps the flag only after everyone arrived.
__device__ bool row_arrive(unsigned* counter, unsigned blocks, const unsigned* flag, unsigned* s_gen, int* s_last) {
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    *s_gen = *static_cast<const volatile unsigned*>(flag);
    __threadfence();
    const unsigned arrived = atomicAdd(counter, 1u) + 1u;
    const int last = arrived == blocks;
    if (last) *counter = 0u;
    *s_last = last;
  }
  __syncthreads();
  const bool last = *s_last != 0;
  if (last) __threadfence();
  return last;
}

__device__ void row_publish(unsigned* flag) {
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) atomicAdd(flag, 1u);
}

__device__ void row_wait(const unsigned* flag, const unsigned* s_gen) {
  if (threadIdx.x == 0) {
    while (*static_cast<const volatile unsigned*>(flag) == *s_gen) __nanosleep(32);
    __threadfence();
  }
  __syncthreads();
}

// The row's plan as published by another block of this grid: a few threads read it through L2
// into shared memory, and the block takes it from there (every thread of every block reading the
// same 64 bytes from L2 at the same moment made one L2 line a hot spot). All threads.
__device__ RowPlan load_plan(const RowPlan* plan, RowPlan* s_plan) {
  constexpr int kWords = static_cast<int>(sizeof(RowPlan) / 8);
  static_assert(sizeof(RowPlan) % 8 == 0 && kWords <= kThreads, "RowPlan is a few whole 8-byte words");
  if (threadIdx.x < kWords) {
    reinterpret_cast<unsigned long long*>(s_plan)[threadIdx.x] =
        __ldcg(reinterpret_cast<const unsigned long long*>(plan) + threadIdx.x);
  }
  __syncthreads();
  const RowPlan p = *s_plan;
  __syncthreads();  // s_plan is written again by the next call
  return p;
}

// The slot is released once every row of the step has claimed its own (the duplicate-slot check);
// the last row to finish resets the two grid counters for the next step. One thread.
__device__ void release_after_all_claims(const KernelArgs& a, std::int64_t rows, std::int64_t slot) {
  while (*static_cast<volatile unsigned*>(a.ws.grid + 0) < rows) __nanosleep(32);
  if (slot >= 0) a.scratch.slot_busy[slot] = 0;
  __threadfence();
  if (atomicAdd(a.ws.grid + 1, 1u) + 1u == rows) {
    a.ws.grid[0] = 0u;
    a.ws.grid[1] = 0u;
  }
}

template <int kDType, bool kTopP>
__global__ void __launch_bounds__(kThreads) fused_step_kernel(KernelArgs a) {
  __shared__ union {
    float window[kMaxWindow];             // pass 1, the preparing block
    unsigned hist[2 * kTopPBins];         // pass 2
    DrawShared draw;                      // pass 3, last block
  } big;
  __shared__ ChunkPart chunk_parts[kWarps];
  __shared__ EntropyPart row_parts_shared[kWarps];
  __shared__ SampleShared sh;
  __shared__ unsigned s_gen;
  __shared__ BinPickShared s_pick;
  __shared__ RowPlan s_plan;
  __shared__ PrepShared s_prep;
  __shared__ RowPre s_pre;
  pdl_wait();
  pdl_trigger();
  const std::int64_t row = blockIdx.x, rows = gridDim.x;
  const unsigned part = blockIdx.y, parts = gridDim.y;
  unsigned* counter = a.ws.counters + row;
  unsigned* flag = a.ws.flags + row;
  const void* z = row_logits<kDType>(a, row);
  float x0[kPerThread];  // chunk `part`, kept for every pass
  load_chunk<kDType>(z, part * kChunk, min((part + 1) * kChunk, a.vocab), x0);
  // fn(c, logits of chunk c) for this block's chunks in order; the next chunk's loads are issued
  // before fn runs on the current one.
  const auto for_each_chunk = [&](auto&& fn) {
    float x[kPerThread];
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) x[j] = x0[j];
    for (unsigned c = part; c < a.ws.chunks; c += parts) {
      const unsigned next = c + parts;
      float xn[kPerThread];
      if (next < a.ws.chunks) load_chunk<kDType>(z, next * kChunk, min((next + 1) * kChunk, a.vocab), xn);
      fn(c, x);
      if (next < a.ws.chunks) {
#pragma unroll
        for (int j = 0; j < kPerThread; ++j) x[j] = xn[j];
      }
    }
  };

  // Pass 1: entropy per chunk; the last block plans the row.
  EntropyPart* row_parts = a.ws.entropy + row * a.ws.chunks;
  for_each_chunk([&](unsigned c, const float (&x)[kPerThread]) {
    const ChunkPart p = chunk_part(x, static_cast<std::int64_t>(c) * kChunk, chunk_parts);
    if (threadIdx.x == 0) row_parts[c] = EntropyPart{p.max, p.sum_exp, p.sum_zexp, p.argmax, p.nan};
  });
  if (part == 0) {  // the block of chunk 0 prepares the row's slot, as in stats_kernel
    const int bad = prepare_loads(a, row, s_prep);
    stage_window(a, row, big.window);
    __syncthreads();
    if (threadIdx.x == kPreparer) prepare_row(a, row, bad, s_prep, big.window, s_pre);
  }
  if (row_arrive(counter, parts, flag, &s_gen, &sh.last)) {
    if (part != 0) load_pre(a, row, s_pre);
    // ends with __syncthreads: s_pre is complete
    const EntropyPart all = block_combine_parts(
        a.ws.chunks, [&](unsigned c) { return load_part(row_parts + c); }, row_parts_shared);
    if (threadIdx.x == 0) {
      finish_row(a, row, all, s_pre);
      __threadfence();
      atomicAdd(a.ws.grid + 0, 1u);  // this row has claimed (or been refused) its slot
    }
    row_publish(flag);
    const RowPlan plan = load_plan(a.ws.plans + row, &s_plan);
    if (!plan.active) {  // greedy or rejected: done, every other block of the row leaves too
      if (threadIdx.x == 0) release_after_all_claims(a, rows, plan.slot);
      return;
    }
  } else {
    row_wait(flag, &s_gen);
  }
  RowPlan plan = load_plan(a.ws.plans + row, &s_plan);
  if (!plan.active) return;

  // Pass 2: top-p bins; the last block picks the boundary bin.
  if (kTopP) {
    topp_bins_clear(big.hist, big.hist + kTopPBins);
    for_each_chunk([&](unsigned, const float (&x)[kPerThread]) { topp_bins_add(plan, x, big.hist, big.hist + kTopPBins); });
    topp_bins_flush(a, row, big.hist, big.hist + kTopPBins);
    if (row_arrive(counter, parts, flag, &s_gen, &sh.last)) {
      topp_pick_bin(a, row, s_pick);
      row_publish(flag);
    } else {
      row_wait(flag, &s_gen);
    }
    plan = load_plan(a.ws.plans + row, &s_plan);
  }

  // Pass 3: kept masses and candidates per chunk; the last block draws.
  for_each_chunk([&](unsigned c, const float (&x)[kPerThread]) { kept_mass_block<kDType>(a, row, c, plan, x, sh.warp_sums); });
  if (!row_arrive(counter, parts, flag, &s_gen, &sh.last)) return;
  draw_row<kDType>(a, row, plan, big.draw, sh);
  if (threadIdx.x == 0) release_after_all_claims(a, rows, plan.slot);
}

}  // namespace reset_native::sampler::cuda_detail
