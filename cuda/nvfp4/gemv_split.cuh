// Split K for the 16-bit GEMV kernel: when x of m tokens over all of K does not fit shared memory next to a
// second CTA (m = 3..16 with long K, e.g. Qwen3 down projections, or m = 16 at K = 4096), the kernel otherwise
// runs one CTA per SM (8 warps to stream the weights) or re-stages x per K chunk for every group of two row
// tiles (x traffic from L2 above the weight traffic at m = 16; W4A4 re-quantizes x each time). With split K,
// ksplit groups of CTAs each stage one contiguous K slice of x once, stream their slice of every row tile
// with two CTAs per SM, and write fp32 partial sums; gemv_split_reduce adds the slices in slice order (fixed:
// the same bits on every call) and applies the epilogue of write_tile; A16 calls of one token (gemv.cu's rule)
// instead let the last CTA of each walker group do that (gemv_split_fixup.cuh). Costs: ksplit * m * n * 4 bytes of
// workspace, written and read once, and a small PDL-launched kernel, or with the fixup one 8-byte tag per group.
#pragma once
#include <cuda_runtime.h>

#include <cstdlib>
#include <cstring>

#include "core/pdl.cuh"
#include "nvfp4/gemv_bd_kernel.cuh"
#include "nvfp4/gemv_launch.cuh"
#include "nvfp4/gemv_split_cluster.cuh"
#include "nvfp4/gemv_split_fixup.cuh"
#include "nvfp4/launch_check.hpp"

namespace reset_native::nvfp4_cuda::detail {

// The second kernel of a split call without the in-kernel fixup (W4A4, or RESET_NATIVE_GEMV_SPLIT_FIXUP=0): every
// output by split_output.
template <int XDT, bool W4A4>
__global__ void __launch_bounds__(kThreads) gemv_split_reduce(const GemvParams p) {
  cuda_core::pdl_wait();  // the partial sums (and, W4A4, the activation amax stored by the split kernel) are complete
  cuda_core::pdl_trigger();
  float act_gs = 1.0f, act_d = 6.0f;
  if constexpr (W4A4) activation_scales(p, act_gs, act_d);
  const SplitSums f = split_sums(p);
  const int64_t total = int64_t(p.m) * p.n;
  for (int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x; i < total; i += int64_t(gridDim.x) * kThreads)
    split_output<XDT, W4A4>(f, i, act_gs);
}

// Shared memory of one split-K CTA: x of its (largest) slice, staged whole, and the reduction buffer (without
// kForm16RedPad's pad: choose_ksplit's size threshold for splitting at all).
template <int XDT, bool W4A4, int NT>
size_t split_smem_bytes(int k, int m, int ksplit) {
  const int nchunks = (k + kChunk - 1) / kChunk;
  const int slice_chunks = (nchunks + ksplit - 1) / ksplit;
  return smem_bytes<XDT, W4A4, NT, true>(slice_chunks * kChunk, m);
}

// What launch_split gives the split-K kernel: split_smem_bytes plus the pad of its form (2 KB: A16 with 16-bit x, and
// W4A4; none with RESET_NATIVE_GEMV_16_FORM=nopad).
// choose_ksplit's fit checks use these bytes.
template <int XDT, bool W4A4, int NT>
size_t split_launch_smem_bytes(int k, int m, int ksplit, Form16Force force) {
  return split_smem_bytes<XDT, W4A4, NT>(k, m, ksplit) +
         red_pad_bytes<XDT, W4A4, NT, true, true, 2, false, true, 1>(force);
}

// W4A4 with the dynamic activation scale under split K: whether every CTA reduces amax(|x|) over all of x itself
// (CTA 0 then leaves it in *act_amax for gemv_split_reduce) instead of the amax pre-kernel (a memset and a
// kernel, ~6 us in a CUDA graph). Each CTA stages only its slice but must read all of x for the max, so the
// L2 traffic is grid x |x|: inline while that stays under the limit of the kernel's amax form.
// RESET_NATIVE_GEMV_SPLIT_AMAX=1 / =0 forces inline / the pre-kernel (benchmarks; read at every call).
// cta_amax (one 16-byte load in flight per thread; RESET_NATIVE_GEMV_16_FORM=w4a4old): 32 MiB, session 19's rule.
// cta_amax_wide (kForm16AmaxWide, the W4A4 default since session 20): 50 MiB, just above the largest measured win.
// Session 20 round 1, H200 2026-11-29, under w4a4qa (= today's default), pre-kernel (the 32 MiB rule) -> every CTA:
// Qwen3-8B q/k/v M = 16 (grid 264 x 128 KiB of x = 33.0 MiB) 21.8 -> 19.3 us, 8B o M = 16 (33.0 MiB) 19.5 -> 16.7,
// 32B o M = 8 (264 x 128 KiB = 33.0 MiB) 23.9 -> 21.4, 8B down M = 8 (264 x 192 KiB = 49.5 MiB) 25.9 -> 25.2. The
// 50 MiB limit moves, besides those, 8B down M = 6, 7 (37.1, 43.3 MiB), 32B o M = 9..12 (37.1..49.5 MiB) and 32B
// down M = 3 (grid 260 x 150 KiB = 38.1 MiB) inline (none past 192 KiB of x per CTA); beyond it (8B down M >= 9,
// 32B o M >= 13, 32B down M >= 4: up to 203 MiB at 32B down M = 16) the pre-kernel stays: not measured. (8B q/k/v
// and o no longer split by default since session 20 helper w4a4split31: choose_ksplit.)
constexpr double kSplitInlineAmaxBytes = 32.0 * 1024 * 1024;
constexpr double kSplitInlineAmaxWideBytes = 50.0 * 1024 * 1024;

template <int XDT>
bool split_amax_inline(const GemvParams& p, int grid, bool amax_wide) {
  const double x_bytes = double(p.m) * p.k * sizeof(typename Elem<XDT>::T);
  const double limit = amax_wide ? kSplitInlineAmaxWideBytes : kSplitInlineAmaxBytes;
  return cuda_core::env_switch("RESET_NATIVE_GEMV_SPLIT_AMAX", double(grid) * x_bytes <= limit);
}

// The reduction of a split call's partial sums (PDL-launched after the split kernel; also gemv_bd_split.cuh's), unless
// the split kernel added them itself (A16 with p.split_nonce).
template <int XDT, bool W4A4>
void launch_split_reduce(const GemvParams& p, const LaunchPlan& plan, cudaStream_t stream) {
  if (!W4A4 && p.split_nonce != 0) return;
  const int64_t total = int64_t(p.m) * p.n;
  const int64_t blocks = (total + kThreads - 1) / kThreads;
  const int grid = int(blocks < 4 * plan.sms ? blocks : 4 * plan.sms);
  check_cuda(cuda_core::launch_pdl(gemv_split_reduce<XDT, W4A4>, dim3(grid), dim3(kThreads), 0, stream, p),
             "nvfp4 gemv: split reduce launch");
}

// Persistent CTAs of one K slice of a split launch (p.ksplit slices share the slots the kernel's occupancy allows; at
// most a CTA per row tile); sets the kernel's dynamic shared memory first.
template <class Kernel>
int split_ctas_per_slice(Kernel kernel, size_t smem, const GemvParams& p, const LaunchPlan& plan) {
  check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
             "nvfp4 gemv: cudaFuncSetAttribute");
  int per_sm = 1;
  check_cuda(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, smem), "nvfp4 gemv: occupancy");
  const int ntiles = (p.n + 15) / 16;
  const int per_slice = plan.sms * (per_sm > 0 ? per_sm : 1) / p.ksplit;
  return per_slice < 1 ? 1 : (per_slice > ntiles ? ntiles : per_slice);
}

// W4A4 split K in clusters (gemv_split_cluster.cuh) where RESET_NATIVE_GEMV_W4A4_SPLIT_CLUSTER or, unset, the rule
// (from kSplitClusterMinTokens tokens: clusters of 4 or 2) asks for them, the instance runs its rule's form
// (RESET_NATIVE_GEMV_16_FORM) and a cluster of that size fits: the clustered split kernel (the plain one's shared
// memory), then the reduction. Returns false, launching nothing, otherwise.
template <int XDT, int NT>
bool launch_split_cluster(const GemvParams& p, const LaunchPlan& plan, cudaStream_t stream) {
  int cluster = w4a4_split_cluster_override();
  if (cluster == 1 || (cluster == 0 && p.m < kSplitClusterMinTokens)) return false;
  constexpr int kRule = form16_rule<XDT, true, NT, true, true, 2, false, true, 1>();
  static_assert((kRule & kForm16QuantFast) != 0, "the W4A4 rule (the compact exchange needs its quantizer)");
  if (form16_bits<XDT, true, NT, true, true, 2, false, true, 1>(plan.form16) != kRule) return false;
  auto kernel = gemv_kernel<XDT, true, NT, true, true, 2, false, true, 1, split_cluster_form<XDT, NT>()>;
  const size_t smem = split_launch_smem_bytes<XDT, true, NT>(p.k, p.m, p.ksplit, plan.form16);
  check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
             "nvfp4 gemv: cudaFuncSetAttribute");
  auto grid_of = [&](int c) {  // CTAs of the launch in clusters of c; 0: none fits
    const int clusters = cuda_core::max_active_clusters(kernel, kThreads, smem, c, stream);
    return clusters < 1 ? 0 : split_cluster_walkers(clusters, c, p.ksplit, (p.n + 15) / 16) * p.ksplit;
  };
  int grid = 0;
  if (cluster == 0) {  // the rule (gemv_split_cluster.cuh): 4 where few slices and the amax inline at 4, else 2
    const double x_bytes = double(p.m) * p.k * sizeof(typename Elem<XDT>::T);
    if (p.ksplit <= kSplitClusterWideMaxSlices) grid = grid_of(kSplitClusterWide);
    cluster = kSplitClusterWide;
    if (grid == 0 || double(grid / kSplitClusterWide) * x_bytes > kSplitInlineAmaxWideBytes) {
      cluster = kSplitClusterNarrow;
      grid = grid_of(cluster);
    }
  } else {
    grid = grid_of(cluster);
  }
  if (grid == 0) return false;
  // Each CTA reads 1/C of x for the amax (cluster_amax): the inline limit is on grid / C CTAs reading all of it.
  const GemvParams q = with_activation_amax<XDT, true>(p, split_amax_inline<XDT>(p, grid / cluster, true), stream);
  check_cuda(cuda_core::launch_pdl_cluster(kernel, dim3(grid), dim3(kThreads), smem, cluster, stream, q, RingMaps{}),
             "nvfp4 gemv: split cluster launch");
  launch_split_reduce<XDT, true>(q, plan, stream);
  return true;
}

// Runs the split-K kernel (p.ksplit > 1, p.split_ws sized by split_workspace_bytes), then the reduction.
template <int XDT, bool W4A4, int NT>
void launch_split(const GemvParams& p, const LaunchPlan& plan, cudaStream_t stream) {
  if constexpr (W4A4) {
    if (launch_split_cluster<XDT, NT>(p, plan, stream)) return;
  }
  auto kernel = form16_kernel<XDT, W4A4, NT, true, true, 2, false, true, 1>(plan.form16);
  const size_t smem = split_launch_smem_bytes<XDT, W4A4, NT>(p.k, p.m, p.ksplit, plan.form16);
  const int per_slice = split_ctas_per_slice(kernel, smem, p, plan);
  const bool amax_wide =
      (form16_bits<XDT, W4A4, NT, true, true, 2, false, true, 1>(plan.form16) & kForm16AmaxWide) != 0;
  const GemvParams q =
      with_activation_amax<XDT, W4A4>(p, split_amax_inline<XDT>(p, per_slice * p.ksplit, amax_wide), stream);
  check_cuda(cuda_core::launch_pdl(kernel, dim3(per_slice * p.ksplit), dim3(kThreads), smem, stream, q, RingMaps{}),
             "nvfp4 gemv: launch");
  launch_split_reduce<XDT, W4A4>(q, plan, stream);
}

// RESET_NATIVE_GEMV_KSPLIT: unset or "auto" = the rule below; "1" = never split; "N" (2..64) = N slices (at most one
// per chunk) for every fast-path call without the ring that fits, even where the block-diagonal kernel would run
// (for benchmarks comparing slice counts). Read at every call.
inline int ksplit_override() {
  const char* v = std::getenv("RESET_NATIVE_GEMV_KSPLIT");
  if (v == nullptr || *v == '\0' || std::strcmp(v, "auto") == 0) return 0;
  const int n = std::atoi(v);
  return n >= 1 && n <= 64 ? n : 0;
}

// Whole-x shared memory above which a long-K call splits (below, the unsplit kernels were as fast or faster: Qwen3-32B
// o at m = 4, 74 KB, lost 4% split; Qwen3-8B down at m = 4, 105 KB, gained 5%).
constexpr size_t kSplitMinWholeBytes = 96 * 1024;
// K chunks from which a call the block-diagonal kernel would take (m <= 2: W4A4, or A16 with RESET_NATIVE_GEMV_BD=1)
// splits instead: A16 Qwen3-32B down (25 chunks) ran 1.12x faster split at m = 1, Qwen3-8B down (12) 1.2x slower.
constexpr int kSplitMinChunksBd = 20;
// W4A4 calls with few row tiles that split where A16 would not (choose_ksplit): from this many tokens, this many
// slices (measured at M = 4, 8 and 16 with 2 and 4 slices: 4 was best or level), with at least this many K chunks
// unless there are fewer row tiles than SMs.
constexpr int kSplitW4A4MinTokens = 4;
constexpr int kSplitW4A4Slices = 4;
constexpr int kSplitW4A4MinChunks = 8;
// ... and from this many tokens also at 4..7 chunks where every row tile has a CTA slot of its own (at most two
// tiles per SM). H200 2026-11-29 (bench/RESULTS.md, session 22 call B and session 23 call 2), split by 4 against two
// teams: Qwen3-8B o (256 tiles, K = 4096) M = 16 14.0 vs 15.4 us (three runs), M = 14 13.9 vs 14.6, M = 12 13.8 vs
// 13.7, M = 9..10 and 8 lost 1.1-1.4 us; 4096 x 6144 M = 16 21.4 vs 30.3; 4096 x 5120 M = 16 20.0 vs 20.5 but M = 12
// 18.0 vs 15.9; 8B q/k/v (384 tiles) M = 16 17.3 vs 15.7 (not one tile per slot: never split).
constexpr int kSplitW4A4OneTileMinTokens = 14;

// K slices for a call (1 = no split). Measured on an H200 (bench/RESULTS.md, session 7): split K wins where K is
// long (>= 8 chunks: the down and Qwen3-32B o projections) and x is big. It then replaces the one-CTA-per-SM and the
// chunked kernels (up to 1.47x at A16, 4.5x at W4A4) and the two-CTA kernels that stage ~100 KB of x per CTA (up
// to 1.13x). Two chunks per slice were about best (fewer slices stage more x per CTA before computing; more write
// more partial sums and run the tile epilogue more often; uneven slices wait for the longest). At K <= 5120 every
// split was slower than the one-CTA kernel with six weight steps in flight (a tile epilogue every 2 chunks).
template <int XDT, bool W4A4>
int choose_ksplit(const GemvParams& p, const LaunchPlan& plan) {
  if (!plan.fast || plan.ring) return 1;
  const int nchunks = p.k / kChunk;
  auto bytes = [&](int s) {  // x and the reduction buffer: the measured threshold kSplitMinWholeBytes is on these
    return p.m > 8 ? split_smem_bytes<XDT, W4A4, 2>(p.k, p.m, s) : split_smem_bytes<XDT, W4A4, 1>(p.k, p.m, s);
  };
  auto fits = [&](int s) {  // what launch_split asks for, next to a second CTA
    return (p.m > 8 ? split_launch_smem_bytes<XDT, W4A4, 2>(p.k, p.m, s, plan.form16)
                    : split_launch_smem_bytes<XDT, W4A4, 1>(p.k, p.m, s, plan.form16)) <= kWholeSmemLimit;
  };
  const int forced = ksplit_override();
  if (forced == 1) return 1;
  if (forced > 1) {
    const int s = forced < nchunks ? forced : nchunks;
    return s > 1 && fits(s) ? s : 1;
  }
  bool bd = false;  // the block-diagonal kernel would run (m <= 2, x fitting next to a second CTA)
  if constexpr (BdMode<XDT, W4A4>::kEnabled)
    bd = bd_chosen<XDT, W4A4>(p, plan) && size_t(BdSmem(p.k, p.m, p.m).total) <= kWholeSmemLimit;
  if (nchunks < 8 || (bd ? nchunks < kSplitMinChunksBd : bytes(1) <= kSplitMinWholeBytes)) {
    // W4A4 from 4 tokens with fewer than two row tiles per CTA (two CTAs per SM): every CTA quantizes all of x
    // for about one tile of weights, so splitting K by 4 quarters that work (H200, session 8: 8B q/k/v 17.8 ->
    // 14.2 us at M = 4 and 26.7 -> 17.6 at M = 8, 8B o 25.9 -> 15.4 at M = 8, 32B o 29.8 -> 21.7 at M = 4;
    // 32B q/k/v, 2.4 tiles per CTA, gained <= 5%, the gate/up projections lost). Since the fast quantizer and two
    // teams (session 20) that work is cheap enough at K = 4096 from one row tile per SM: H200 2026-11-29, split
    // vs RESET_NATIVE_GEMV_KSPLIT=1, 8B q/k/v (384 tiles, 4 chunks) 12.0 vs 10.6 us at M = 4, 14.1 vs 13.2 at
    // M = 8, 19.6 vs 19.9 at M = 16; 8B o (256 tiles) 10.1 vs 9.0, 12.1 vs 11.5, 17.0 vs 17.2. At K = 8192 the
    // split still wins (32B o, 320 tiles, 8 chunks: 17.5 vs 18.9 at M = 4, 22.3 vs 24.3 at M = 8), and below one
    // tile per SM the unsplit kernel leaves SMs idle (not re-measured). So: kSplitW4A4MinChunks chunks, or fewer
    // tiles than SMs, or (from kSplitW4A4OneTileMinTokens tokens) at most one row tile per CTA slot. K = 5..7 chunks
    // with 2..4 tiles per SM (no Qwen3 layer) no longer split: not measured.
    const int ntiles = (p.n + 15) / 16;
    const bool one_tile_per_slot =
        ntiles <= 2 * plan.sms && nchunks >= kSplitW4A4Slices && p.m >= kSplitW4A4OneTileMinTokens;
    const bool w4a4_few_tiles =
        ntiles < 4 * plan.sms && (nchunks >= kSplitW4A4MinChunks || ntiles < plan.sms || one_tile_per_slot);
    if (W4A4 && p.m >= kSplitW4A4MinTokens && w4a4_few_tiles && nchunks >= 2) {
      const int s = nchunks < kSplitW4A4Slices ? nchunks : kSplitW4A4Slices;
      if (fits(s)) return s;
    }
    return 1;
  }
  const int two_per_slice = (nchunks + 1) / 2;
  if (fits(two_per_slice)) return two_per_slice;
  return fits(nchunks) ? nchunks : 1;  // one chunk per slice, or not even that: the chunked kernel
}

}  // namespace reset_native::nvfp4_cuda::detail
