// Split K for the block-diagonal GEMV (1..2 tokens, plain A16 calls on the fast path): the rule that picks the
// slice count and the launch (the kernel's kSmallSplit form, then gemv_split_reduce unless the fixup adds the slices).
//
// Why: the kernel gives each CTA whole 16-row tiles and runs two CTAs per SM. Where the tiles are few against those
// slots, the last round of tiles runs on few CTAs while the rest of the GPU idles: Qwen3-32B o and down have 320
// tiles for 264 slots on an H200, so 56 CTAs stream a second tile alone and the call takes two tile times for 1.2
// tiles of work per slot. With K in s slices, CTA b takes slice b % s of tiles b / s, + slots / s, ... (each slice a
// contiguous run of chunks; only that part of x is staged), and the s partial sums of every output are added in
// slice order (the same bits on every call): at one token by the split kernel's last CTA per walker group
// (gemv_split_fixup.cuh), else by the reduction kernel.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "core/env_switch.hpp"
#include "nvfp4/gemv_bd_kernel.cuh"
#include "nvfp4/gemv_split.cuh"

namespace reset_native::nvfp4_cuda::detail {

// RESET_NATIVE_GEMV_BD_SPLIT: unset or "auto" = bd_split_slices' rule; "0" = never; "N" (2..64) = N slices (at most
// one per chunk) wherever the kernel may split (benchmarks). Read at every call.
inline int bd_split_override() {
  const char* v = std::getenv("RESET_NATIVE_GEMV_BD_SPLIT");
  if (v == nullptr || *v == '\0' || std::strcmp(v, "auto") == 0) return -1;
  const int n = std::atoi(v);
  return n >= 0 && n <= 64 ? n : -1;
}

// The rule's cost model, in chunk-steps of the busiest CTA (one chunk-step: 16 rows x 1024 K of weights, ~0.65 us on
// an H200 at M = 1): rounds of tiles x (chunks per slice + one tile epilogue), plus the reduction kernel and the
// partial sums for a split call. Constants fitted to bench/probes/gemv_bd_split_sweep.py (H200, session 13): the
// split costs ~2.5 us more than the model's chunk-steps (Qwen3-32B o: 320 tiles x 8 chunks, every split slower;
// Qwen3-32B down: 320 x 25, 4-13 slices 1.20-1.32x faster).
constexpr double kBdTileEpilogueChunks = 0.5;
constexpr double kBdSplitReduceChunks = 4.0;
// A split must promise at least this much less (else the unsplit kernel: one kernel, no workspace).
constexpr double kBdSplitMaxCostRatio = 0.9;
constexpr int kBdSplitMaxSlices = 16;
// Among slice counts costing within this factor of the cheapest, one that divides the chunks evenly wins: uneven
// slices leave the longest slice's CTAs running alone at the end (Qwen3-32B down, 25 chunks: 5 slices 24.95 us vs
// 4 slices (6, 6, 6, 7 chunks) 26.51 at M = 1, 26.43 vs 28.64 at M = 2, the same model cost within 3%).
constexpr double kBdSplitEvenSlack = 1.05;

// The lean split form (kSmallLean | kSmallSplit, session 17 helper gemv21; gemv_bd_kernel.cuh kTileGroup): every
// slice exactly kDepth chunks (4, or 5 with kSmallDepth5: Qwen3-32B down, 25 chunks in 5 slices), one token, so one
// group of steps is one tile; n % 16 == 0 (no tile ends past n: the kernel has no clamped recompute in this form) and
// ksplit * n < 2^31 (its 32-bit workspace index). 0 = cb | kSmallSplit. RESET_NATIVE_GEMV_BD_LEAN_SPLIT (read at every
// call): unset or "1" = wherever it fits (on by default since session 18: 32B down 24.70 -> 23.73 us on an H200, the
// same bits), "0" = never. The same bits either way (each tile's slice still summed by one CTA in the same order).
constexpr const char* kBdLeanSplitEnv = "RESET_NATIVE_GEMV_BD_LEAN_SPLIT";
constexpr bool kBdLeanSplitByDefault = true;
inline int bd_lean_split_form(const GemvParams& p, int tokens) {
  const int forced = cuda_core::env_forced(kBdLeanSplitEnv);
  if (forced == 0 || (forced < 0 && !kBdLeanSplitByDefault) || tokens != 1 || p.ksplit < 2) return 0;
  const int nchunks = p.k / kChunk;  // the fast path: k % kChunk == 0
  if (nchunks % p.ksplit != 0 || p.n % 16 != 0 || int64_t(p.ksplit) * p.m * p.n >= (int64_t(1) << 31)) return 0;
  const int per_slice = nchunks / p.ksplit;
  return per_slice == 4 ? kSmallLean : per_slice == 5 ? kSmallLean | kSmallDepth5 : 0;
}

// One token from K = kBdMaxKOneToken: where the cost model declines a split, the call does not run the unsplit
// block-diagonal kernel the model prices but the 16-bit kernel (bd_chosen), and the lean split (4 or 5 chunks per
// slice, one group of steps per tile) beat that kernel on every shape measured but one (H200, bench/RESULTS.md
// "Session 40", call D; us at one token, 16-bit kernel -> lean split): 10240 x 25600 50.0 -> 39.8 (5 slices), 2560 x
// 25600 18.9 -> 14.9 (5), 8192 x 28672 39.3 -> 35.0 (7), 8192 x 16384 23.4 -> 22.1 (4), 2048 x 20480 12.3 -> 11.5
// (4); and with many rounds of tiles (call F: 16384 x 16384 44.0 -> 39.4, 14336 x 20480 55.5 -> 45.9, 20480 x 28672
// 97.7 -> 87.0). The one it lost, 4096 x 16384 (13.7 -> 14.2), has 256 row tiles on 264 slots: one full round, where a
// split only adds its partial sums; hence no split where the tiles fill at least kBdLongKFullRound of one round. Two
// tokens keep the rule (the same slice counts there won on some shapes and lost on others, call D).
// fits: bd_split_slices' shared-memory check of a slice count.
constexpr double kBdLongKFullRound = 0.9;
template <class Fits>
int bd_long_k_slices(const GemvParams& p, int nchunks, int ntiles, int slots, const Fits& fits) {
  if (p.m != 1 || p.k < kBdMaxKOneToken) return 1;
  if (ntiles <= slots && ntiles >= kBdLongKFullRound * slots) return 1;
  GemvParams q = p;  // the fewest slices: of 5 chunks each, else of 4 (bd_lean_split_form checks the rest)
  q.ksplit = nchunks % 5 == 0 ? nchunks / 5 : nchunks % 4 == 0 ? nchunks / 4 : 0;
  const bool lean =
      q.ksplit >= 2 && q.ksplit <= kBdSplitMaxSlices && q.ksplit <= slots && bd_lean_split_form(q, 1) != 0;
  return lean && fits(q.ksplit) ? q.ksplit : 1;
}

// Slices for a call (1 = unsplit): plain A16 calls (x16: bf16 or fp16 x) of 1..2 tokens on the fast path without the
// ring, unless RESET_NATIVE_GEMV_BD=0 or RESET_NATIVE_GEMV_KSPLIT forces the 16-bit kernel's split. Host only.
inline int bd_split_slices(const GemvParams& p, const LaunchPlan& plan, bool x16, bool w4a4) {
  if (!x16 || w4a4 || !plan.fast || plan.ring || p.m > 2 || p.m < 1) return 1;
  if (ksplit_override() != 0 || !cuda_core::env_switch("RESET_NATIVE_GEMV_BD", true)) return 1;
  const int forced = bd_split_override();
  if (forced == 0) return 1;
  const int nchunks = p.k / kChunk, ntiles = (p.n + 15) / 16, slots = 2 * plan.sms;
  auto fits = [&](int s) { return size_t(BdSmem(bd_slice_k(p.k, s), p.m, p.m).total) <= kWholeSmemLimit; };
  if (forced > 1) {
    const int s = forced < nchunks ? forced : nchunks;
    return s > 1 && fits(s) ? s : 1;
  }
  // Only calls whose tiles fill at least one round of the slots (measured there), or one token at a long K
  // (bd_long_k_slices). With fewer tiles and a shorter K a split may pay too (most of the GPU idles) but was not
  // measured, and those shapes keep the fused kernels.
  if (ntiles < slots) return bd_long_k_slices(p, nchunks, ntiles, slots, fits);
  auto cost = [&](int s) {
    const int per_slice = slots / s < ntiles ? slots / s : ntiles;
    const int rounds = (ntiles + per_slice - 1) / per_slice;
    return rounds * ((nchunks + s - 1) / s + kBdTileEpilogueChunks) + (s > 1 ? kBdSplitReduceChunks : 0.0);
  };
  int best = 1;
  for (int s = 2; s <= nchunks && s <= kBdSplitMaxSlices && s <= slots; ++s)
    if (fits(s) && cost(s) < cost(best)) best = s;
  if (best == 1 || cost(best) > kBdSplitMaxCostRatio * cost(1))
    return bd_long_k_slices(p, nchunks, ntiles, slots, fits);
  int even = 0;  // the cheapest even split within the slack
  for (int s = 2; s <= nchunks && s <= kBdSplitMaxSlices && s <= slots; ++s)
    if (nchunks % s == 0 && fits(s) && cost(s) <= kBdSplitEvenSlack * cost(best) && (even == 0 || cost(s) < cost(even)))
      even = s;
  return even > 0 && cost(even) <= kBdSplitMaxCostRatio * cost(1) ? even : best;
}

// Runs the split kernel (p.ksplit = bd_split_slices' count, p.split_ws sized for it), then the reduction.
template <int XDT, int TOK, int FORM>
void launch_bd_split(const GemvParams& p, const LaunchPlan& plan, cudaStream_t stream) {
  auto kernel = gemv_bd_kernel<XDT, false, TOK, true, 2, false, kProNone, false, FORM>;
  const size_t smem = size_t(BdSmem(bd_slice_k(p.k, p.ksplit), p.m, TOK).total);
  const int per_slice = split_ctas_per_slice(kernel, smem, p, plan);
  check_cuda(cuda_core::launch_pdl(kernel, dim3(per_slice * p.ksplit), dim3(kThreads), smem, stream, p, RingMaps{}),
             "nvfp4 gemv: launch");
  launch_split_reduce<XDT, false>(p, plan, stream);
}

template <int XDT>
void dispatch_bd_split(const GemvParams& p, const LaunchPlan& plan, cudaStream_t stream) {
  constexpr int kCbSplit = kSmallCompact | kSmallBatchX | kSmallSplit;
  if (p.m == 1) {
    const int lean = bd_lean_split_form(p, 1);
    if (lean == kSmallLean) return launch_bd_split<XDT, 1, kCbSplit | kSmallLean>(p, plan, stream);
    if (lean == (kSmallLean | kSmallDepth5))
      return launch_bd_split<XDT, 1, kCbSplit | kSmallLean | kSmallDepth5>(p, plan, stream);
    return launch_bd_split<XDT, 1, kCbSplit>(p, plan, stream);
  }
  return launch_bd_split<XDT, 2, kCbSplit>(p, plan, stream);
}

}  // namespace reset_native::nvfp4_cuda::detail
