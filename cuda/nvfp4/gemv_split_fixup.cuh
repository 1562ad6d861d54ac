// Split K's last step: adding the K slices' fp32 partial sums of an output in slice order and writing it
// (split_output, shared by gemv_split_reduce and the in-kernel fixup below, so both give the same bits).
//
// The in-kernel fixup (A16 split calls with p.split_nonce != 0, i.e. one token by gemv.cu's rule; session 35): the
// ksplit CTAs that walk the same row tiles (one per K slice: a walker group) each count themselves in at their end
// on the group's 8-byte tag; the last one in adds the group's slices and writes the outputs, instead of
// gemv_split_reduce, a second PDL-launched kernel. Measured on an H200 (bench/RESULTS.md, session 35): 0.39 us less
// per call on Qwen3-32B down at one token; from two tokens on, one CTA per group adding many outputs loses.
//
// Why tags carry a nonce: the workspace is the call's scratch (torch.empty, or a CUDA graph's reserved block), so
// its bytes are garbage the first time. A tag is the call's mark (its 32-bit nonce and a 16-bit hash of it) plus a
// 16-bit count; a tag without the call's mark counts as zero, and the last CTA in resets it to 0, which is no call's
// mark (the host never gives nonce 0). So a graph replay, whose nonce is frozen at capture, finds the zeros its
// previous replay left, and garbage would have to hold the call's 48-bit mark to be misread. Calls on one workspace
// never overlap: each counts in only after its pdl_wait, i.e. after the call before it on the stream has completed,
// its resets included.
#pragma once
#include <cstdint>

#include "nvfp4/gemv_params.cuh"
#include "nvfp4/nvfp4_device.cuh"

namespace reset_native::nvfp4_cuda::detail {

// The tags: 8-byte aligned after the partial sums (gemv.cu sizes the workspace with split_tag_bytes).
__host__ __device__ inline unsigned long long* split_tags(float* split_ws, int ksplit, int m, int n) {
  const uintptr_t end = reinterpret_cast<uintptr_t>(split_ws + int64_t(ksplit) * m * n);
  return reinterpret_cast<unsigned long long*>((end + 7) / 8 * 8);
}
// Bytes of tags after the partial sums: at most one walker group per row tile, plus the alignment.
__host__ __device__ constexpr int64_t split_tag_bytes(int64_t n) { return 4 + (n + 15) / 16 * 8; }

// The high 48 bits of a tag of the call with this nonce (nonce != 0, so never 0).
__host__ __device__ constexpr unsigned long long split_mark(unsigned nonce) {
  return (static_cast<unsigned long long>(nonce) << 32) |
         (static_cast<unsigned long long>((nonce * 2654435761u) >> 16) << 16);
}

// What the last step reads of a split call's GemvParams, passed by value: a reference to the kernel's parameters
// would make ptxas copy all of them to the stack to take their address.
struct SplitSums {
  float* ws;
  void* out;
  const void* bias;
  const void* residual;
  float w_gs;
  int n, m, ksplit;
  unsigned nonce;  // the fixup's (0: the second kernel's call)
};
__device__ __forceinline__ SplitSums split_sums(const GemvParams& p) {
  return SplitSums{p.split_ws, p.out, p.bias, p.residual, p.w_gs, p.n, p.m, p.ksplit, p.split_nonce};
}

// out[i] (i = token * n + row) = ((sum over slices of ws, in slice order) * 2^7 * w_gs [* act_gs]) + bias + residual,
// rounded once; every step rounded as in tile_value.
template <int XDT, bool W4A4>
__device__ __forceinline__ void split_output(const SplitSums& f, int64_t i, float act_gs) {
  using E = Elem<XDT>;
  const int64_t total = int64_t(f.m) * f.n;
  float sum = __ldcg(f.ws + i);  // L2: other CTAs wrote the slices (the fixup), or the kernel before
  for (int s = 1; s < f.ksplit; ++s) sum += __ldcg(f.ws + s * total + i);
  float y = __fmul_rn(__fmul_rn(sum, kDecodeBias), f.w_gs);
  if constexpr (W4A4) y = __fmul_rn(y, act_gs);
  const int row = int(i % f.n);
  if (f.bias != nullptr) y = __fadd_rn(y, E::to_float(static_cast<const typename E::T*>(f.bias)[row]));
  if (f.residual != nullptr) y = __fadd_rn(y, E::to_float(static_cast<const typename E::T*>(f.residual)[i]));
  static_cast<typename E::T*>(f.out)[i] = E::from_float(y);
}

// This CTA's count on its group's tag; true for the last of the ksplit CTAs in (which then resets the tag).
// Thread 0 only, after a CTA barrier that follows every partial-sum store of the CTA. (An acq_rel CAS instead of
// the two fences and a relaxed reset instead of the exchange, with all slices' loads batched, measured 0.7-1.1 us
// slower: session 35 call 2.)
__device__ __forceinline__ bool split_count_in(const SplitSums& f, int group) {
  unsigned long long* tag = split_tags(f.ws, f.ksplit, f.m, f.n) + group;
  const unsigned long long mark = split_mark(f.nonce);
  __threadfence();  // the CTA's partial sums (ordered before by the barrier) are visible before the count
  unsigned long long cur = *reinterpret_cast<volatile unsigned long long*>(tag), next;
  for (;;) {
    next = (cur & ~0xFFFFull) == mark ? cur + 1 : (mark | 1ull);
    const unsigned long long seen = atomicCAS(tag, cur, next);
    if (seen == cur) break;
    cur = seen;
  }
  const bool last = int(next & 0xFFFFull) == f.ksplit;
  if (last) {
    atomicExch(tag, 0ull);  // for the next call on this workspace (a graph replay keeps its nonce)
    __threadfence();        // the other CTAs' partial sums are read after their counts
  }
  return last;
}

// The fixup at the end of a split kernel (every thread of the CTA; kThreads of them): group = the walker index
// (CTA b walks tiles group, group + groups, ... of K slice b % ksplit). Out of line, so that the kernels' main
// loops compile as before.
template <int XDT>
__device__ __noinline__ void split_fixup_run(SplitSums f) {
  const int group = int(blockIdx.x) / f.ksplit, groups = int(gridDim.x) / f.ksplit;
  __syncthreads();  // every partial-sum store of this CTA is issued
  // thread 0's verdict to the CTA by a barrier (no static shared memory: the kernels size theirs to the limit)
  if (__syncthreads_or(threadIdx.x == 0 && split_count_in(f, group)) == 0) return;
  const int ntiles = (f.n + 15) / 16, tiles = (ntiles - group + groups - 1) / groups;
  const int per_tile = 16 * f.m;  // outputs of a tile: 16 rows x m tokens
  for (int idx = int(threadIdx.x); idx < tiles * per_tile; idx += int(blockDim.x)) {
    const int tile = group + (idx / per_tile) * groups, within = idx % per_tile;
    const int row = tile * 16 + within % 16, tok = within / 16;
    if (row < f.n) split_output<XDT, false>(f, int64_t(tok) * f.n + row, 1.0f);
  }
}

// CTA b of a split launch walks the tiles of group b / ksplit (K slice b % ksplit): the kernels' own mapping, computed
// here again rather than kept live across their loops (two more registers spilled in the 128-register lean form).
template <int XDT>
__device__ __forceinline__ void split_fixup(const GemvParams& p) {
  split_fixup_run<XDT>(split_sums(p));
}

}  // namespace reset_native::nvfp4_cuda::detail
