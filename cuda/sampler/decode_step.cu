// ReSET decode step on the GPU, with all state in device memory, no host synchronisation and no
// allocation (CUDA-graph capturable). Every pass splits each row into fixed chunks of kChunk logits,
// one 256-thread block per (row, chunk) (at large batches: per group of chunks, see grouped_parts and
// bins_parts);
// the last block of a row to finish a pass combines the row's partials (device_workspace.hpp).
// Kernels of one step, in stream order, each launched with programmatic dependent launch
// (core/pdl.cuh) so its launch overlaps the previous kernel's tail:
//   1. stats: entropy, max and argmax per chunk; the block of chunk 0 meanwhile claims the slot and
//      runs the part of the state update that needs no entropy; the last block merges the chunks in
//      a fixed tree, finishes the update and picks the temperature (same code as the CPU path);
//   2. top-k (only with top_k): radix levels (11 + 11 + 10 bits of order-preserving float keys; the
//      first two suffice for bf16/fp16 logits) on counts;
//   3. top-p bins (only with top_p < 1): every logit's probability weight, held in 2^-24 fixed
//      point so every sum is an exact, order-independent integer, is added to one of kTopPBins bins
//      by its tempered distance to the maximum; the last block finds the bin holding the top-p
//      boundary;
//   4. sample: kept mass per chunk (logits above the boundary bin); the logits inside it are
//      collected, and the last block finds the exact threshold among them (by counting, or by
//      sorting when there are many), then the chunk holding the uniform's quantile, and scans it, so
//      the draw is an inverse CDF in index order (by default the chunks' kept masses come as 128-logit cells and
//      one warp scans the quantile's cell: decode_step_cells.cuh).
// Kernels 3 and 4 load their logits before waiting on the previous kernel (see load_early_chunk).
// Switches of steps 1, 3 and 4, read at every call (read_switches below; each keeps every output bit):
// RESET_NATIVE_SAMPLER_LEAN (weights and bins without float-to-int conversions; on by default),
// _SAMPLE_PICKS (step 4's blocks pick the boundary bin, step 3 has no last block; default where rows x
// chunks <= SMs), _SUB_BINS and _LEAN_STATS (both on by default), _LEAN_DRAW (step 4's last block with
// fewer barriers; on by default), _BINS_ADD (step 3's adds in the carry form by default; =split the two halves).
// RESET_NATIVE_SAMPLER_TOPP=radix selects the earlier top-p search (three radix levels on masses,
// one kernel each) instead of step 3's bins: the same threshold, kept for comparison.
// RESET_NATIVE_SAMPLER_FUSED=1 runs steps 1, 3 and 4 as one kernel when the grid fits on the device
// at once (no top-k); opt-in, see "One-kernel step" below.
// RESET_NATIVE_SAMPLER_RESIDENT=1 runs the resident step (decode_step_resident.cuh: one launch, the
// row's blocks all resident, no last-block combines) where it fits (no top-k); resident_by_default
// decides where it runs without the variable (nowhere yet), =0 never.
#include <cuda_runtime.h>

#include <cfloat>
#include <cmath>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <string>

#include "block_primitives.cuh"
#include "trace.cuh"
#include "core/env_switch.hpp"
#include "core/pdl.cuh"
#include "reset_native/error.hpp"
#include "reset_native/sampler.hpp"
#include "sampler/device_workspace.hpp"
#include "sampler/philox.hpp"
#include "sampler/transition.hpp"

// The kernels, in dependency order (one translation unit; the headers are not included anywhere else).
#include "decode_step_row.cuh"
#include "decode_step_stats.cuh"
#include "decode_step_topp.cuh"
#include "decode_step_sample.cuh"
#include "decode_step_fused.cuh"
#include "decode_step_resident_words.cuh"
#include "decode_step_resident_meetings.cuh"
#include "decode_step_resident.cuh"

namespace reset_native::sampler {

namespace cuda_detail {

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
                   reinterpret_cast<unsigned long long*>(base + l.hist),
                   reinterpret_cast<unsigned*>(base + l.candidate_counts),
                   reinterpret_cast<Candidate*>(base + l.candidates), reinterpret_cast<unsigned*>(base + l.flags),
                   reinterpret_cast<unsigned*>(base + l.grid), reinterpret_cast<unsigned*>(base + l.steps),
                   reinterpret_cast<unsigned long long*>(base + l.tagged), static_cast<unsigned>(l.chunks),
                   static_cast<unsigned>(detail::tagged_words_per_row(l.chunks)),
                   reinterpret_cast<unsigned*>(base + l.cells)};
}

void check_launch(const char* what) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) throw Error(std::string(what) + " launch failed: " + cudaGetErrorString(err));
}

// RESET_NATIVE_SAMPLER_TOPP=radix: the earlier three-level top-p search; RESET_NATIVE_SAMPLER_FUSED=1:
// the one-kernel step where it applies (opt-in: on an H200 it was slower than the kernels in its
// first version, see bench/RESULTS-sampler5.md). Read at every call, so a benchmark can time the
// variants in one process (a captured graph keeps the choice made at capture).
bool env_is(const char* name, const char* value) {
  const char* v = std::getenv(name);
  return v != nullptr && std::strcmp(v, value) == 0;
}

// Session 9's switches of the kernels path (docs/sampler.md, CUDA details), each giving the same bits as
// without it (tests/test_sampler_gpu_switches.py), =1 / =0 forcing them on / off:
// * RESET_NATIVE_SAMPLER_LEAN: weights and bins of the bins and sample passes without float-to-int
//   conversions. On by default: on an H200 (bench/RESULTS-sampler10.md, round 1) ReSET top-p B = 1 / 8 / 64
//   18.50 / 25.48 / 75.01 -> 17.87 / 24.14 / 70.21 us, fixed T 11.46 / 14.88 / 47.54 -> 11.07 / 14.33 / 45.15.
// * RESET_NATIVE_SAMPLER_SAMPLE_PICKS: the sample pass picks the top-p boundary bin, the bins pass has no
//   last block. By default only where every block of the sample pass has an SM of its own (rows x chunks <=
//   SMs: B = 1 at V = 151936 on an H200): measured 18.50 -> 17.85 us at B = 1, but 25.48 -> 26.53 at B = 8
//   and 75.0 -> 79.4 at B = 64, where every one of the many blocks reads the 8 KB histogram and scans it.
// * RESET_NATIVE_SAMPLER_SUB_BINS: the threshold inside the top-p boundary bin (at most 256 candidates)
//   through 64 sub-bins, then a count inside one of them (threshold_by_sub_bins). On by default: ReSET
//   top-p 17.18 -> 17.10 us at B = 1, 70.08 -> 69.27 at B = 64 (same call; level at B = 8).
// * RESET_NATIVE_SAMPLER_LEAN_STATS: the stats pass's exps as bare ex2 where no argument of the warp needs
//   __expf's subnormal path, and -inf logits without a branch (warp_chunk_part). On by default: 17.18 ->
//   17.04 us at B = 1, 70.08 -> 69.29 at B = 64, fixed T 44.43 -> 43.80 (same call; level at B = 8).
//   With SUB_BINS (and the then opt-in PREP_SPLIT): 16.96 / 22.68 / 68.28 us at B = 1 / 8 / 64.
// (Two more measured level and were removed: the draw loading its guessed chunk while the threshold was found
// (round 1), and PREP_SPLIT, the extra preparing block summing the window and drawing the random number beside
// its class lookups (final call: 17.15 vs 17.18 us at B = 1, 70.13 vs 70.08 at B = 64).)
// Session 10's switch (bench/RESULTS-sampler11.md):
// * RESET_NATIVE_SAMPLER_LEAN_DRAW: the sample pass's last block finds the counted threshold through sub-bins
//   from the candidates in registers (no copy to shared memory, three barriers fewer) and weighs the draw's
//   chunk with weight_at's lean form. On by default: on an H200 (round 2) ReSET top-p B = 1 / 4 / 8 / 64
//   17.00 / 20.65 / 24.43 / 69.29 -> 16.71 / 19.62 / 23.74 / 68.84 us; fixed T (no top-p: only the lean
//   weights) level (+0.32 / -0.04 / -0.01 / -0.18).
// (Session 10 also measured and removed: WARM_TAIL / WARM_BINS, the sample and bins passes running their code
// once on dummy data before the PDL wait, +7.2 / +0.15 us at B = 1; HIST_SPLIT, the bins pass's odd blocks
// adding to a second copy of the row histogram, +1.0 / +1.3 / +2.3 / +1.9 us at B = 1 / 4 / 8 / 64.)
// Session 11's switches (bench/RESULTS-sampler12.md), per-logit work of the three passes at large batches, each
// giving the same bits as without it (tests/test_sampler_gpu_session11.py). All six on by default: on an H200
// (graph replays, ReSET top-p, the same build with all six off / on) 16.52 / 23.45 / 69.32 -> 16.34 / 22.86 /
// 62.65 us at B = 1 / 8 / 64 (B = 64 once more: 69.32 -> 63.37), fixed T 10.83 / 13.92 / 44.34 -> 10.57 / 13.35
// / 38.69. Alone at B = 64 (top-p): FULL_LOADS -3.7, VEC_LOADS -2.7, WARP_REDUX -1.4, KEPT_SUM -1.2, FLAT_BINS
// -0.8, STATS_RANGE -0.7 us. (Alone at B = 1 some measured slower, KEPT_SUM +0.9 and STATS_RANGE +0.4 us; the
// six together are not: -0.18.) =0 turns one off:
// * RESET_NATIVE_SAMPLER_FULL_LOADS: the chunks wholly inside the row (all but a row's last) loaded without a
//   bounds check per element (load_chunk_as's kLoadFull: the same elements in the same registers), all passes.
// * RESET_NATIVE_SAMPLER_VEC_LOADS: the bins and sample passes load those chunks in 16-byte loads (kLoadVec; a
//   thread then holds other elements, which only changes the order of exact integer sums and the candidates'
//   index arithmetic), where the logits' rows are 16-byte aligned (else as FULL_LOADS).
// * RESET_NATIVE_SAMPLER_FLAT_BINS: the bins pass weighs and bins a thread's logits without branches, then adds
//   them by shared-memory reductions at precomputed addresses (topp_bins_add_flat; with LEAN only).
// * RESET_NATIVE_SAMPLER_WARP_REDUX: the sample pass's warp sums as 32-bit redux instructions, the candidate
//   scan only in warps that hold candidates (kept_mass_warp).
// * RESET_NATIVE_SAMPLER_STATS_RANGE: the stats pass's test for bare exps on each thread's smallest logit
//   (warp_chunk_part; with LEAN_STATS only).
// * RESET_NATIVE_SAMPLER_KEPT_SUM: the sample pass sums a thread's kept mass inside its weights' loop, as the
//   weights of bins above the boundary bin (kept_weights_summed; with LEAN only).
// Session 13's switches (bench/RESULTS.md, session 13 sampler14), the same bits on and off
// (tests/test_sampler_gpu_session13.py), where ptxas made a pass wait for loads one at a time
// (bench/probes/sass_sb_waits.py --loads / --straight):
// * RESET_NATIVE_SAMPLER_PHASED_LOADS (on by default): the grouped passes (several chunks per block: stats, bins,
//   sample) issue the next chunk's loads only once the current chunk has arrived (load_next_chunk), so that the use
//   of a chunk no longer waits for the loads of the next one (ptxas counts both on one scoreboard). On an H200, two
//   measurements: ReSET top-p B = 8 / 64 -0.96 / -1.25 us (round 1) and -0.17 / -1.83 (final call), fixed T at B = 64
//   -0.45 / -1.90; B = 1 runs no grouped pass (+-0.3 us: noise). =0: the loop as before.
// * RESET_NATIVE_SAMPLER_COMBINE_LOADS (on by default since session 14): the stats pass's row combine (its last block
//   of every row) loads a lane's cached chunk parts before noting the first, instead of one L2 round trip per part
//   (warp_combine_parts). On an H200, two measurements: ReSET top-p B = 1 / 8 / 64 -0.02 / -0.39 / -0.84 us (session
//   13's final call) and -0.30 / -0.76 / -0.77 (session 14's round 1), fixed T -0.54 / -0.43 / -0.48 and -0.41 /
//   -0.41 / -0.76; with fresh logits every step at B = 64 -0.71 / -0.63. =0: one round trip per part.
// (Measured and removed: STAGED_LOADS, the grouped passes' chunks through two shared-memory stages filled by
// cp.async, two chunks per thread in flight: +1.2 us at B = 64, the sample pass 24.8 -> 27.7 us under ncu; DRAW_LOADS,
// the draw's eight loads issued before its first weight instead of one round trip each: level, +0.05 / -0.27 / -0.19
// and +0.36 / -0.04 / +0.15 us at B = 1 / 8 / 64.)
// Session 14's switches (bench/RESULTS.md, session 14 sampler15; tests/test_sampler_gpu_session14.py), the same
// bits on and off:
// * RESET_NATIVE_SAMPLER_PREP_FIRST (on by default; the grouped stats pass: B >= 9 at V = 151936): the block of part 0
//   prepares the row's slot (the claim, the step means, the random number: one thread's serial chain, then a barrier
//   of its block) instead of the last part's. Blocks are dispatched part by part, so the last part's run in the
//   pass's last wave, where the chain lengthened the pass's tail: in the B = 64 trace (row 0) the preparation ended
//   at 17.9 us, after the last chunk (15.9), and the row was planned at 23.6 us; with the switch 6.4 and 22.3. On an
//   H200 (round 1, one measurement): ReSET top-p B = 64 -0.62 us, fixed T -0.34, with fresh logits every step -0.08 /
//   -0.31; B <= 8 runs the same code either way. =0: the last part prepares, as before.
// (Measured and removed: RECENT_FIRST, the grouped bins and sample passes visiting a row's chunks so that each read
// first what the pass before it read last (for the L2): +2.52 us at B = 64, +2.64 with fresh logits every step.)
// * RESET_NATIVE_SAMPLER_SAMPLE_OCC6 (off: level in session 14's final call; with PHASED_LOADS): the grouped sample
//   pass built for 6 resident blocks per SM instead of 5 (40 registers instead of 48; ptxas spills only in draw_row,
//   once per row, not in the chunk loop): more warps to hide the loads' latency (under ncu at B = 64 the pass kept 49 %
//   of its warp slots busy and issued in 63 % of its cycles).
// (Measured and removed: EARLY_WEIGHTS, session 14, the sample blocks after the top-p bins pass weighing and binning
// their chunk before their wait, from the stats pass's plan: level in session 14's final call and again with the cells
// in session 15's, +0.04 / -0.46 / -0.17 us ReSET top-p at B = 1 / 8 / 64.)
// Session 15's switches (bench/RESULTS.md, sampler session 15; tests/test_sampler_gpu_session15.py), the same bits on and off:
// * RESET_NATIVE_SAMPLER_CELL_MASSES (on by default; rows of at most kCellChunks = 192 chunks, V <= 393216): the sample
//   pass publishes each warp's kept mass as two cells of 128 logits from the warp's lane 0 (no block barrier and no
//   block sum before the arrival; the grouped pass without its per-round barriers), and the draw (the row's last
//   block) takes the chunk masses as sums of the cells, then, in kLoadVec's layout, the quantile's 128-logit segment
//   by its cells and the token by one warp (one 16- or 8-byte load per lane, a warp scan) instead of reloading the
//   whole chunk and scanning it with block barriers (decode_step_cells.cuh). On an H200 (round 1, one measurement):
//   ReSET top-p B = 1 / 8 / 64 -0.31 / -0.93 / -3.15 us, fixed T -1.03 / -0.62 / -2.34; in the B = 1 trace the draw
//   (sample marks 4 -> 9) 3.9 us instead of 4.6, at B = 64 4.3 instead of 6.1. =0: the block sums and draw_row.
// (Measured and removed: CELL_SCAN, the draw's segment of the quantile by one warp's scan of the chunk's 16 cells
// instead of the chunk owner's walk over them: +0.60 / +0.04 / -0.33 us ReSET top-p at B = 1 / 8 / 64 in session 15's
// final call.)
// (Measured and removed: PLAN_FLAG, the top-p bins pass starting a row on a flag the stats pass stored with its plan
// (a release) instead of at the stats grid's end, and BINS_FLAG, the sample pass starting a row once its bins blocks
// had counted themselves done (release adds) instead of at the bins grid's end: ReSET top-p +0.51 / +0.22 / +0.05
// and +1.35 / +1.52 / -0.45 us at B = 1 / 8 / 64; the flags' release / acquire round trips took longer than the grid
// boundaries they replaced, 0.5 us after the plan at B = 1 in that round's trace.)
// Session 16's switch (bench/RESULTS.md "session 16"; tests/test_sampler_gpu_session16.py), the same bits on and off:
// * RESET_NATIVE_SAMPLER_PRE_WARP (on by default): the stats pass's last block loads the row's prepared slot (RowPre)
//   with warp 1 while warp 0 combines the chunks' parts. Warp 0 loaded it before, and ptxas stored each word to shared
//   memory as it arrived, ahead of the combine's own loads: two L2 round trips in a row on a row's tail. On an H200, two
//   rounds: ReSET top-p B = 1 / 8 / 64 +0.05 / -0.28 / -0.61 and (two copies each) +0.15, +0.06 / -0.44, -0.22 /
//   -1.00, -0.75 us (the default's own copies: +0.67 / -0.01 / -0.30), fixed T -0.39 / -0.27 / -0.38 and -0.56, -0.53
//   / -0.12, -0.19 / -0.61, -0.69. At B = 1 and 8 the extra preparing block was the stats pass's last block in most
//   traced steps (then no RowPre is loaded). =0: warp 0 loads it first, as before.
// (Measured and removed: PREP_STAGED, the preparing thread's window sum with its shared-memory loads issued eight at
// a time ahead of the adds (prepare_row took 1.0 us in the B = 1 / 8 traces): in the final call's probe +0.82 / -0.02
// / -0.47 us ReSET top-p at B = 1 / 8 / 64 and +0.45 / +0.47 / +0.07 with a paragraph boundary every step, its own
// case; kept as bench/probes/trials/sampler_prep_staged.patch. WARP_DRAW, the draw's chunk scan, segment and token by
// warp 0 alone (a warp scan over the chunks' segment words instead of the block scan): +1.33 / +1.00 / +1.10 us ReSET
// top-p at B = 1 / 8 / 64, its chunk scan 1.8 us instead of 0.8 in the B = 1 trace; PICK_LEAN, the boundary bin's pick
// with one barrier fewer and integer compares: +0.28 / +0.20 / -0.09, level.)
// Session 17's switch (bench/RESULTS.md, sampler session 17; tests/test_sampler_gpu_session17.py), the same bits on and off:
// * RESET_NATIVE_SAMPLER_OWNER_DRAW (on by default where the sample pass does not pick the bin: rows x chunks > SMs, B >= 2
//   at V = 151936 on an H200): in the draw with the cells, the warp of the chunk that holds the quantile finds its
//   segment (a 16-lane scan of the chunk's segment words instead of its owner thread's walk) and the token, with no
//   barrier after the chunks' scan and none before the segment's load (the row's partial last chunk by that warp in
//   pieces of 128 logits). On an H200, three rounds (on against off): ReSET top-p B = 64 -0.29 / -0.31, -0.20 / -0.30 us
//   and B = 8 -0.02 / -0.11, -0.13 / -0.16, fixed T at B = 64 -0.97 / -0.33, -0.43 / -0.57; B = 1 +0.49 / +0.49, +0.45
//   against the default's first copy (its second copy: +0.26 / +0.41) / -0.07: not a win, so B = 1 keeps the walk.
// (Measured and removed: SEG_PREFETCH, the segments that could hold the token prefetched into L1 before the threshold:
// +1.12 / +0.62 / +0.46 us at B = 1 / 8 / 64, the threshold later and the segment phase no shorter; WARP_STAR, the
// boundary sub-bin's count by every warp with a warp max, no barrier: +0.49, +0.91, +0.34 at B = 1, level at 8 / 64;
// DEFER_CANDS, the grouped sample pass's warps holding their boundary-bin logits in shared slots until their last chunk,
// one slot atomic per warp: +0.07, +0.03 at B = 64.)
// Session 18's switch (branch sampler20; tests/test_sampler_gpu_session18.py), the same bits on and off, on by default
// since the session's round 2 (=0 turns it off):
// * RESET_NATIVE_SAMPLER_EARLY_SCAN (with top-p, the bins path): the draw with the cells and the lean counted threshold
//   (decode_step_early_scan.cuh) adds the boundary bin's candidates of the sub-bins before the threshold's sub-bin to
//   their segments as soon as that sub-bin is known and scans the chunks' masses across the threshold's last barrier;
//   after it only the threshold sub-bin's kept candidates are added (a loop over a few shared words), and the
//   quantile's chunk, segment and token are found by its owner's warp: 3 barriers from the loads to the token instead
//   of 7. On an H200 (round 2, two copies each): ReSET top-p B = 64 -0.96 / -1.13 us (against the default's second
//   copy -1.15 / -1.32), B = 8 +0.01 / +0.20 (-0.25 / -0.07), B = 1 +0.17 / +0.03 (-0.19 / -0.33); the B = 1 trace's
//   draw (sample marks 4 -> 9) 3.79 us against 4.15.
// (Measured and removed: SAMPLE_WIDE, the block-per-chunk sample kernel built for 2 blocks per SM where the pass fits
// one per SM (93 registers, no stack, against 48 and 40 bytes of stack): with EARLY_SCAN B = 1 top-p +0.14 / -0.02 us
// against EARLY_SCAN alone, its draw 3.73 us in the trace.)
// Session 20's default (branch sampler24, after session 19's opt-in sampler23; tests/test_sampler_gpu_bins_add.py),
// the same bits either way:
// * RESET_NATIVE_SAMPLER_BINS_ADD (with LEAN and FLAT_BINS, the top-p bins path): unset (or any value but split), the
//   bins pass adds a logit's weight with one 32-bit shared reduction and counts the adds that wrapped past 2^32
//   (topp_bins_add_carry: the kCarry instances of topp_bins_kernel); =split, the flat adds in two halves as before
//   (topp_bins_add_flat, two predicated reductions per logit). On an H200 (session 20, two copies each, =carry against
//   the then default): ReSET top-p B = 64 60.96 / 60.71 -> 58.16 / 58.24 us, B = 8 21.52 / 21.71 -> 20.71 / 20.80,
//   B = 1 level (15.18 / 15.99 -> 15.45 / 15.27). FLAT_BINS=0 keeps its per-logit adds (two halves; the carry form
//   is a form of the flat adds), and LEAN=0, radix top-p, the one-kernel and the resident steps keep theirs.
// Session 21's switch (branch sampler25; tests/test_sampler_gpu_fast_finish.py), the same bits on and off, on by
// default (H200, one-step graphs, same process: ReSET top-p B = 1 / 8 / 64 -0.10..-0.16 / -0.43 / -0.47..-0.94 us):
// * RESET_NATIVE_SAMPLER_FAST_FINISH=1 (the stats kernels path, every B; the grouped stats pass only with PHASED_LOADS;
//   =single: only the block-per-chunk stats pass, B <= 8 at V = 151936 on an H200, whose ptxas build the switch leaves
//   alone outside the last block, where the grouped pass's registers are allocated anew):
//   the stats pass's last block shortens its serial chain from the arrival to the plan: the row combine takes the row's
//   max from the max key (the argmax's reduction after the sums, no vote and shuffle before the rescale; a zero max
//   still takes the first argmax's sign) and rescales its cached parts without branch regions
//   (combine_cached_parts's kFast), and finish_row takes the plan's 1 / T from the two precomputed by warp 3 during
//   the combine instead of a double division after the temperature is chosen (stats_kernel's kFast instances). =0:
//   the earlier kernels; unset: kFastFinishDefault.
constexpr int kFastFinishOff = 0, kFastFinishSingle = 1, kFastFinishAll = 2;
constexpr int kFastFinishDefault = kFastFinishAll;  // on by default (sampler25on; =single: kFastFinishSingle)
int fast_finish_mode() {
  const char* name = "RESET_NATIVE_SAMPLER_FAST_FINISH";
  if (env_is(name, "0")) return kFastFinishOff;
  if (env_is(name, "1")) return kFastFinishAll;
  if (env_is(name, "single")) return kFastFinishSingle;
  return kFastFinishDefault;
}
struct Switches {
  bool sample_picks, lean, sub_bins, lean_stats, lean_draw;
  bool full_loads, vec_loads, flat_bins, warp_redux, stats_range, kept_sum;
  bool phased_loads, combine_loads;
  bool prep_first, sample_occ6;
  bool cell_masses;
  bool pre_warp;
  bool owner_draw;
  bool early_scan;
  bool bins_carry;
  bool fast_finish, fast_finish_grouped;
};
// sms: the device's multiprocessors (0 when unknown: the bins pass picks).
Switches read_switches(std::int64_t rows, unsigned chunks, int sms) {
  using cuda_core::env_switch;
  const bool picks = rows * static_cast<std::int64_t>(chunks) <= sms;
  const int fast = fast_finish_mode();
  return Switches{env_switch("RESET_NATIVE_SAMPLER_SAMPLE_PICKS", picks),
                  env_switch("RESET_NATIVE_SAMPLER_LEAN", true),
                  env_switch("RESET_NATIVE_SAMPLER_SUB_BINS", true),
                  env_switch("RESET_NATIVE_SAMPLER_LEAN_STATS", true),
                  env_switch("RESET_NATIVE_SAMPLER_LEAN_DRAW", true),
                  env_switch("RESET_NATIVE_SAMPLER_FULL_LOADS", true),
                  env_switch("RESET_NATIVE_SAMPLER_VEC_LOADS", true),
                  env_switch("RESET_NATIVE_SAMPLER_FLAT_BINS", true),
                  env_switch("RESET_NATIVE_SAMPLER_WARP_REDUX", true),
                  env_switch("RESET_NATIVE_SAMPLER_STATS_RANGE", true),
                  env_switch("RESET_NATIVE_SAMPLER_KEPT_SUM", true),
                  env_switch("RESET_NATIVE_SAMPLER_PHASED_LOADS", true),
                  env_switch("RESET_NATIVE_SAMPLER_COMBINE_LOADS", true),
                  env_switch("RESET_NATIVE_SAMPLER_PREP_FIRST", true),
                  env_switch("RESET_NATIVE_SAMPLER_SAMPLE_OCC6", false),
                  env_switch("RESET_NATIVE_SAMPLER_CELL_MASSES", true),
                  env_switch("RESET_NATIVE_SAMPLER_PRE_WARP", true),
                  env_switch("RESET_NATIVE_SAMPLER_OWNER_DRAW", !picks),
                  env_switch("RESET_NATIVE_SAMPLER_EARLY_SCAN", true),
                  !env_is("RESET_NATIVE_SAMPLER_BINS_ADD", "split"),
                  fast != kFastFinishOff, fast == kFastFinishAll};
}

// Whether every chunk of every row starts on a 16-byte boundary (kLoadVec's loads): the logits' base and the row
// stride in bytes are multiples of 16 (chunks are 2048 elements, a multiple of 16 bytes in every dtype).
bool rows_16_byte_aligned(const void* logits, std::int64_t row_stride, int element_bytes) {
  return reinterpret_cast<std::uintptr_t>(logits) % 16 == 0 && (row_stride * element_bytes) % 16 == 0;
}

// Resident blocks per SM the stats and sample kernels are built for (__launch_bounds__(kThreads, 5)).
constexpr int kGroupedBlocksPerSm = 5;

template <typename Kernel, typename... Args>
void launch(Kernel kernel, dim3 grid, cudaStream_t s, const char* what, Args... args) {
  const cudaError_t err = cuda_core::launch_pdl(kernel, grid, dim3(kThreads), 0, s, args...);
  if (err != cudaSuccess) throw Error(std::string("ReSET decode_step: ") + what + " launch failed: " + cudaGetErrorString(err));
}

// Blocks per row for the one-kernel step: as many as fit on the device at once next to the other
// rows' (at most one per chunk); 0 when not even one per row fits (or the query fails).
template <typename Kernel>
unsigned one_wave_parts(Kernel kernel, std::int64_t rows, unsigned chunks) {
  const int sms = cuda_core::device_sms();
  int per_sm = 0;
  if (sms == 0 || cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, 0) != cudaSuccess) {
    cudaGetLastError();  // not fatal: take the multi-kernel path
    return 0;
  }
  const std::int64_t per_row = static_cast<std::int64_t>(sms) * per_sm / rows;
  return static_cast<unsigned>(per_row < chunks ? per_row : chunks);
}

// Chunks per block of the top-p bins pass: one while the rows are few (latency: every chunk its own
// SM), more as the batch grows (each block's flush of its non-empty bins to the row's histogram is
// one global atomic per bin). Measured on an H200 (bench/RESULTS.md, sampler8 round 1; V = 151936,
// ReSET top-p): 2 per block is best at B = 8 ... 32 (B = 32: 63.5 us vs 68.9 with the earlier 8), 4
// at B = 64 (101.9 vs 106.0); 1 below B = 8. RESET_NATIVE_SAMPLER_BIN_CHUNKS=n sets it (n >= 1).
unsigned bins_parts(std::int64_t rows, unsigned chunks) {
  std::int64_t per_block = rows < 8 ? 1 : (rows < 64 ? 2 : 4);
  if (const char* v = std::getenv("RESET_NATIVE_SAMPLER_BIN_CHUNKS")) {
    const long n = std::strtol(v, nullptr, 10);
    if (n >= 1) per_block = n;
  }
  return static_cast<unsigned>((chunks + per_block - 1) / per_block);
}

// Chunks per block of the stats and sample passes: one while a block per chunk fits on the device at
// once (every block its own share of the SMs: latency), two once the grid would take several waves of
// resident blocks (rows x chunks > SMs x 5: B >= 9 at V = 151936 on 132 SMs), where each block's fixed
// costs (barriers, fence, arrival atomic, its launch) weigh on the pass. Measured on an H200
// (bench/RESULTS.md, sampler8 round 1; ReSET top-p): 2 per block beat 1, 4, 8 and 16 at B = 16 and 32
// (B = 32: 66.8 us; 1: 74.9, 4: 68.9) and was within 0.5 us of the best at B = 64 (104.0; 1: 114.8; 8, one
// wave: 105.9). `four_from` (> 0): four per block from that many rows on: the sample pass from B = 64, where
// 4 per block beat 2 in three measurements on an H200 (ReSET top-p: sampler8 103.5 vs 104.0 us; session 10
// rounds 1 and 2 67.92 vs 68.53 and 68.58 vs 69.32; fixed T 44.34 vs 44.41 and 44.56 vs 44.99;
// bench/RESULTS-sampler11.md), while for the stats pass 4 against 2 changed sign between them. `env`
// (RESET_NATIVE_SAMPLER_STATS_CHUNKS / _SAMPLE_CHUNKS=n, n >= 1) sets it for measurements. Tokens, temperatures
// and entropies do not depend on it (per-chunk partials).
// sms: the device's multiprocessors (0 when unknown: a block per chunk).
unsigned grouped_parts(const char* env, std::int64_t rows, unsigned chunks, int sms, std::int64_t four_from = 0) {
  std::int64_t per_block = 1;
  if (sms > 0 && rows * chunks > static_cast<std::int64_t>(sms) * kGroupedBlocksPerSm) per_block = 2;
  if (per_block == 2 && four_from > 0 && rows >= four_from) per_block = 4;
  if (const char* v = std::getenv(env)) {
    const long n = std::strtol(v, nullptr, 10);
    if (n >= 1) per_block = n;
  }
  return static_cast<unsigned>((chunks + per_block - 1) / per_block);
}

// The stats or sample kernel for `parts` blocks per row: grouped when a block takes several chunks.
template <typename Kernel>
void launch_pass(Kernel single, Kernel grouped, std::int64_t rows, unsigned parts, unsigned chunks, cudaStream_t s,
                 const char* what, const KernelArgs& a) {
  launch(parts < chunks ? grouped : single, dim3(static_cast<unsigned>(rows), parts), s, what, a);
}

template <int kDType, int kMinBlocks>
auto resident_kernel(bool top_p) {
  return top_p ? resident_step_kernel<kDType, true, kMinBlocks> : resident_step_kernel<kDType, false, kMinBlocks>;
}

// The resident step's launch (decode_step_resident.cuh): the register build (kMinBlocks 1: no limit,
// no spills; 5: 48 registers) and the blocks per row, as many as can be resident next to the other
// rows' (at most one per chunk). parts 0: it does not fit (or the device query failed; not fatal),
// the kernels run.
struct ResidentLaunch {
  int min_blocks = 0;
  unsigned parts = 0;
};

template <int kDType>
ResidentLaunch resident_launch(std::int64_t rows, unsigned chunks, bool top_p) {
  ResidentLaunch r;
  if (chunks > kResidentMaxChunks) return r;
  const int sms = cuda_core::device_sms();
  int per_sm1 = 0, per_sm5 = 0;
  if (sms == 0 ||
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm1, resident_kernel<kDType, 1>(top_p), kThreads, 0) !=
          cudaSuccess ||
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm5, resident_kernel<kDType, 5>(top_p), kThreads, 0) !=
          cudaSuccess) {
    cudaGetLastError();
    return r;
  }
  const auto parts_of = [&](int per_sm) {
    const std::int64_t p = static_cast<std::int64_t>(sms) * per_sm / rows;
    return static_cast<unsigned>(p < chunks ? p : chunks);
  };
  const unsigned p1 = parts_of(per_sm1), p5 = parts_of(per_sm5);
  // A block works its chunks one after the other in each pass: past a few per block the kernels'
  // one block per chunk is the better shape. RESET_NATIVE_SAMPLER_RESIDENT_CHUNKS=n moves the limit.
  unsigned max_per_block = kResidentChunksPerBlock;
  if (const char* v = std::getenv("RESET_NATIVE_SAMPLER_RESIDENT_CHUNKS")) {
    const long n = std::strtol(v, nullptr, 10);
    if (n >= 1) max_per_block = static_cast<unsigned>(n);
  }
  const unsigned most = p1 > p5 ? p1 : p5;
  if (most == 0 || (chunks + most - 1) / most > max_per_block) return r;
  if (p1 >= p5) {
    r.min_blocks = 1;
    r.parts = p1;
  } else {
    r.min_blocks = 5;
    r.parts = p5;
  }
  return r;
}

// THE place that decides where the resident step is the default (RESET_NATIVE_SAMPLER_RESIDENT=1
// takes it wherever it fits, =0 never): only shapes where it was measured faster than the kernels.
// None: measured on an H200 (bench/RESULTS.md, session 6 final run) it loses with top-p at every B and
// wins only without top-p at B = 1 (greedy 13.7 vs 14.9 us, fixed T 16.2 vs 19.9 us), and it needs the
// whole grid co-resident (another stream or an MPS limit holding SMs turns its waits into the 0.2 s
// `stalled` error), which the kernels never do: 1-4 us is not worth that failure mode as a default.
bool resident_by_default(std::int64_t rows, bool top_p) {
  (void)rows;
  (void)top_p;
  return false;
}

// The path of a step: "resident", "one-kernel" (opt-in) or "kernels".
template <int kDType>
const char* decode_path(const KernelArgs& a, std::int64_t rows, ResidentLaunch* resident, unsigned* fused_parts) {
  const bool top_k = a.top_k > 0 && a.top_k < a.vocab, top_p = a.top_p < 1.0;
  const bool radix = top_p && env_is("RESET_NATIVE_SAMPLER_TOPP", "radix");
  if (top_k || radix) return "kernels";
  if (env_is("RESET_NATIVE_SAMPLER_FUSED", "1")) {
    const auto fused = top_p ? fused_step_kernel<kDType, true> : fused_step_kernel<kDType, false>;
    *fused_parts = one_wave_parts(fused, rows, a.ws.chunks);
    return *fused_parts > 0 ? "one-kernel" : "kernels";
  }
  if (env_is("RESET_NATIVE_SAMPLER_RESIDENT", "0")) return "kernels";
  if (!env_is("RESET_NATIVE_SAMPLER_RESIDENT", "1") && !resident_by_default(rows, top_p)) return "kernels";
  *resident = resident_launch<kDType>(rows, a.ws.chunks, top_p);  // does it fit?
  return resident->parts > 0 ? "resident" : "kernels";
}

template <int kDType>
void launch_decode(const KernelArgs& args, std::int64_t rows, cudaStream_t s) {
  KernelArgs a = args;
  const dim3 grid(static_cast<unsigned>(rows), a.ws.chunks);
  const bool top_k = a.top_k > 0 && a.top_k < a.vocab, top_p = a.top_p < 1.0;
  const bool radix = top_p && env_is("RESET_NATIVE_SAMPLER_TOPP", "radix");
  ResidentLaunch resident;
  unsigned parts = 0;
  const std::string path = decode_path<kDType>(a, rows, &resident, &parts);
  if (path == "resident") {
    const auto kernel =
        resident.min_blocks == 1 ? resident_kernel<kDType, 1>(top_p) : resident_kernel<kDType, 5>(top_p);
    launch(kernel, dim3(static_cast<unsigned>(rows), resident.parts), s, "resident step", a);
    return;
  }
  if (path == "one-kernel") {
    const auto fused = top_p ? fused_step_kernel<kDType, true> : fused_step_kernel<kDType, false>;
    launch(fused, dim3(static_cast<unsigned>(rows), parts), s, "one-kernel step", a);
    return;
  }
  const int sms = cuda_core::device_sms();  // once per step: the switches' and the groupings' rules
  const Switches sw = read_switches(rows, a.ws.chunks, sms);
  a.sample_picks = top_p && !radix && sw.sample_picks ? 1 : 0;  // only where the bins pass runs
  a.sub_bins = sw.sub_bins ? 1 : 0;
  a.lean_stats = sw.lean_stats ? 1 : 0;
  a.lean_draw = sw.lean_draw ? 1 : 0;
  const int full = sw.full_loads ? kLoadFull : kLoadChecked;
  const bool vec = sw.vec_loads && rows_16_byte_aligned(a.logits, a.row_stride, kDType == 0 ? 4 : 2);
  a.stats_loads = full;
  a.bins_loads = a.sample_loads = vec ? kLoadVec : full;
  a.flat_bins = sw.flat_bins ? 1 : 0;
  a.warp_redux = sw.warp_redux ? 1 : 0;
  a.stats_range = sw.stats_range ? 1 : 0;
  a.kept_sum = sw.kept_sum ? 1 : 0;
  a.combine_loads = sw.combine_loads ? 1 : 0;
  a.prep_first = sw.prep_first ? 1 : 0;
  a.cell_masses = sw.cell_masses && a.ws.chunks <= kCellChunks ? 1 : 0;  // the draw keeps the cells in DrawShared
  a.pre_warp = sw.pre_warp ? 1 : 0;
  a.owner_draw = sw.owner_draw ? 1 : 0;
  // Only where the bins pass gives the rows a boundary bin: without one the early draw would load the cells and the
  // candidates only to hand the row to draw_row_cells, which loads them again (round 2: fixed T +0.3 / +0.5 us at
  // B = 8 / 64 before this gate); so without top-p the kernels run the default's code.
  a.early_scan = sw.early_scan && top_p && !radix ? 1 : 0;
  const unsigned chunks = a.ws.chunks;
  const unsigned stats_parts = grouped_parts("RESET_NATIVE_SAMPLER_STATS_CHUNKS", rows, chunks, sms);
  if (stats_parts >= chunks && !env_is("RESET_NATIVE_SAMPLER_PREP_BLOCK", "0")) {
    // A block per chunk plus one that only prepares the row's slot (stats_kernel): on an H200 0.7 us faster
    // at B = 1 (ReSET top-p 20.14 -> 19.44 us, greedy 7.55 -> 6.85), level at B = 8, the same bits.
    // RESET_NATIVE_SAMPLER_PREP_BLOCK=0: chunk 0's block prepares, as before session 8.
    // RESET_NATIVE_SAMPLER_FAST_FINISH (read_switches): the kFast instance, the same bits.
    const auto single = sw.fast_finish ? stats_kernel<kDType, false, false, true> : stats_kernel<kDType, false>;
    launch(single, dim3(static_cast<unsigned>(rows), chunks + 1), s, "stats", a);
  } else {
    auto grouped = sw.phased_loads ? stats_kernel<kDType, true, true> : stats_kernel<kDType, true>;
    if (sw.fast_finish_grouped && sw.phased_loads) grouped = stats_kernel<kDType, true, true, true>;
    const auto single = sw.fast_finish ? stats_kernel<kDType, false, false, true> : stats_kernel<kDType, false>;
    launch_pass(single, grouped, rows, stats_parts, chunks, s, "stats", a);
  }
  if (top_k) {
    for (int level = 0; level < kRadixLevels<kDType>; ++level) {
      launch(radix_level_kernel<kDType, false>, grid, s, "top-k", a, level);
    }
  }
  if (top_p) {
    if (radix) {
      for (int level = 0; level < kRadixLevels<kDType>; ++level) {
        launch(radix_level_kernel<kDType, true>, grid, s, "top-p", a, level);
      }
    } else {
      auto lean_bins = sw.phased_loads ? topp_bins_kernel<kDType, true, true> : topp_bins_kernel<kDType, true>;
      // The flat adds in the carry form by default (RESET_NATIVE_SAMPLER_BINS_ADD, read_switches; the same bits).
      if (sw.flat_bins && sw.bins_carry) {
        lean_bins = sw.phased_loads ? topp_bins_kernel<kDType, true, true, true>
                                    : topp_bins_kernel<kDType, true, false, true>;
      }
      launch(sw.lean ? lean_bins : topp_bins_kernel<kDType, false>,
             dim3(static_cast<unsigned>(rows), bins_parts(rows, a.ws.chunks)), s, "top-p bins", a);
    }
  }
  const unsigned sample_parts = grouped_parts("RESET_NATIVE_SAMPLER_SAMPLE_CHUNKS", rows, chunks, sms, 64);
  if (sw.lean) {
    auto grouped = sw.phased_loads ? sample_kernel<kDType, true, true, true> : sample_kernel<kDType, true, true>;
    if (sw.sample_occ6 && sw.phased_loads) grouped = sample_kernel<kDType, true, true, true, 6>;
    launch_pass(sample_kernel<kDType, false, true>, grouped, rows, sample_parts, chunks, s, "sample", a);
  } else {
    launch_pass(sample_kernel<kDType, false, false>, sample_kernel<kDType, true, false>, rows, sample_parts, chunks,
                s, "sample", a);
  }
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

const char* decode_step_cuda_path(const Config& config, std::int64_t rows, std::int64_t vocab, DType dtype) {
  using namespace cuda_detail;
  validate(config);
  require(rows >= 1, "rows must be >= 1");
  require(vocab >= 1, "vocab must be >= 1");
  KernelArgs a{};
  a.top_p = config.top_p;
  a.top_k = config.top_k;
  a.vocab = vocab;
  a.ws.chunks = static_cast<unsigned>(detail::chunks_of(vocab));
  ResidentLaunch resident;
  unsigned parts = 0;
  switch (dtype) {
    case DType::kFloat32: return decode_path<0>(a, rows, &resident, &parts);
    case DType::kBFloat16: return decode_path<1>(a, rows, &resident, &parts);
    case DType::kFloat16: return decode_path<2>(a, rows, &resident, &parts);
  }
  return "kernels";
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
