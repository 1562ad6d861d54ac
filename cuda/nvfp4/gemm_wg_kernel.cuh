// The medium-M NVFP4 GEMM on warpgroup MMAs (wgmma, sm_90a): the same math and K order as gemm_mid_kernel.cuh
// (W4A16, 16-bit x, fp32 accumulation, one rounding; split K through the same workspace and finish kernel), for the
// token counts where the mma.sync kernel is bound by its own issue and latency (session 28 profile: 2 warps per
// scheduler, tensor pipe ~31% busy at 64 tokens).
//
// Tiles: a CTA of GROUPS (2 or 4) warpgroups owns 64 * GROUPS weight rows and NTOK tokens (the wgmma's N: 32,
// 64 or 128) and walks K in stages of kMidK = 128 through the mma.sync kernel's cp.async weight ring. Each warp decodes
// the FP4 words of its 16 rows into A fragments in registers (fp4_fragments.cuh, the block scales multiplied in
// exactly), and its warpgroup runs 8 wgmma m64nNk16 per stage with B (x) read from shared memory by descriptor.
// Pipelined (session 29): the stage's 4 FP4 words are decoded one at a time, each word's two wgmmas in their own
// fence / commit group, so word i + 1 is decoded while word i's wgmmas run; up to 3 groups stay in flight, across the
// stage boundary too (wgmma_wait<3> before any A registers are rewritten). ptxas keeps this asynchronous only when
// every instruction that writes a wgmma operand sits before that wgmma's fence and no other instruction defines the
// accumulators where in-flight wgmmas cross the loop head: so the CTA's first wgmma defines them (scale_d = 0)
// instead of a zero fill. (Session 28 decoded the whole stage, then ran its 8 wgmmas and waited for all of them; a
// second A register set for the next stage made ptxas serialise every wgmma, C7513.) x goes through three stage
// buffers: the next stage's is written while this stage's is read, and the one before it may still be read by the
// wgmmas in flight.
//
// K order: a thread's A pairs are the nibbles (j, j + 4) of its 32-bit words, as in the GEMV; so the wgmma's logical
// k of step q = 2i + h are, for thread column t = 0..3, the physical k 32t + 8i + 2h + {0, 4} (A registers 0, 1) and
// 32t + 8i + 2h + {1, 5} (registers 2, 3). x is staged in that order: for each token, step q's 16 values form two
// 16-byte core-matrix rows (logical k 0-7 and 8-15), gathered from the 8-value units 4t + i of the token's stage.
// B layout (no swizzle, K-major): step q at q * NTOK * 32 bytes, core matrix (K half kc, token group) at
// kc * NTOK * 16 + group * 128, token row r of it at + 16 r: LBO = NTOK * 16, SBO = 128. (The 128-byte swizzle, two
// atoms of NTOK x 128 bytes per stage, measured level or up to 14% slower: session 28 call 5.)
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "nvfp4/gemm_mid_kernel.cuh"
#include "nvfp4/wgmma_rs.cuh"

namespace reset_native::nvfp4_cuda::detail {

constexpr int kWgRing = 4;   // weight stages in the ring (3 in flight while one is decoded)
// x stage buffers (see the header comment): 3 for the pipelined loop, 2 for the serial one.
__host__ __device__ constexpr int wg_xbufs(bool pipe) { return pipe ? 3 : 2; }

// A CTA of GROUPS warpgroups (2 or 4): 64 weight rows per warpgroup, 16 per warp, one thread per row and K quarter.
template <int GROUPS>
struct WgTile {
  static constexpr int kThreads = 128 * GROUPS;
  static constexpr int kRows = 64 * GROUPS;
  static constexpr int kWBytes = kRows * kMidK / 2;   // FP4 bytes of a stage
  static constexpr int kSBytes = kRows * kMidK / 16;  // scale bytes of a stage
};

__host__ __device__ constexpr int wg_xbuf_bytes(int ntok) { return ntok * kMidK * 2; }
template <int GROUPS>
__host__ __device__ constexpr int wg_smem_bytes(int ntok, bool pipe) {
  return kWgRing * (WgTile<GROUPS>::kWBytes + WgTile<GROUPS>::kSBytes) + wg_xbufs(pipe) * wg_xbuf_bytes(ntok);
}
// CTAs per SM the launch bounds ask for: registers and shared memory allow 2 of 2 warpgroups up to 64 tokens.
__host__ __device__ constexpr int wg_min_blocks(int groups, int ntok) { return groups == 2 && ntok <= 64 ? 2 : 1; }
// Hopper: 227 KiB of shared memory per CTA, 228 KiB per SM with 1 KiB reserved per CTA.
static_assert(wg_smem_bytes<4>(128, true) <= 227 * 1024 && wg_smem_bytes<2>(128, true) <= 227 * 1024, "CTA smem");
static_assert(2 * (wg_smem_bytes<2>(64, true) + 1024) <= 228 * 1024, "two wgmma CTAs of 64 tokens per SM");

// x of one stage in flight through registers: units (token n, i), each the four 8-value pieces 32t + 8i (t = 0..3)
// of the token's stage. Unit u = tid + THREADS * q: lane bits 3-4 give i and bits 0-2 the token within the warp's 8,
// so that a warp's loads cover 64 contiguous bytes of 8 tokens and each 8-lane phase of its 16-byte stores writes 8
// consecutive B rows (conflict-free). (Tokens fastest across all 32 lanes made every load touch 32 lines: the L1
// was 85% busy, session 28 call 3.)
template <int NTOK, int THREADS>
struct WgXRegs {
  static constexpr int kUnits = 4 * NTOK;
  static constexpr int kPer = (kUnits + THREADS - 1) / THREADS;
  uint4 v[kPer][4];
  static __device__ __forceinline__ int unit(int q) { return int(threadIdx.x) + THREADS * q; }
  static __device__ __forceinline__ int token(int u) { return (u >> 5) * 8 + (u & 7); }
  static __device__ __forceinline__ int piece(int u) { return (u >> 3) & 3; }
};

template <int NTOK, int THREADS>
__device__ __forceinline__ void wg_load_x(const MidParams& p, int tok0, int stage, WgXRegs<NTOK, THREADS>& r) {
  using R = WgXRegs<NTOK, THREADS>;
#pragma unroll
  for (int q = 0; q < R::kPer; ++q) {
    const int u = R::unit(q), i = R::piece(u), tok = tok0 + R::token(u);
#pragma unroll
    for (int t = 0; t < 4; ++t) {
      r.v[q][t] = make_uint4(0, 0, 0, 0);
      if (u < R::kUnits && tok < p.m) {
        const auto* src =
            static_cast<const uint16_t*>(p.x) + int64_t(tok) * p.k + int64_t(stage) * kMidK + 32 * t + 8 * i;
        r.v[q][t] = __ldg(reinterpret_cast<const uint4*>(src));
      }
    }
  }
}

// Byte offset of the 16-byte chunk (step q, K half kc) of token n in a stage's B layout (header comment).
template <int NTOK>
__device__ __forceinline__ int wg_b_offset(int q, int kc, int n) { return q * NTOK * 32 + kc * NTOK * 16 + n * 16; }

// Descriptor of step q's B operand in the stage buffer at shared address xb.
template <int NTOK>
__device__ __forceinline__ uint64_t wg_b_desc(uint32_t xb, int q) {
  return wgmma_desc(xb + q * NTOK * 32, NTOK * 16, 128);
}

// Stores the units into B layout: step q = 2i + h, K half kc holds pair 2h + kc of the pieces t = 0..3.
template <int NTOK, int THREADS>
__device__ __forceinline__ void wg_store_x(const WgXRegs<NTOK, THREADS>& r, uint8_t* xb) {
  using R = WgXRegs<NTOK, THREADS>;
#pragma unroll
  for (int q = 0; q < R::kPer; ++q) {
    const int u = R::unit(q), n = R::token(u), i = R::piece(u);
    if (u >= R::kUnits) continue;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
#pragma unroll
      for (int kc = 0; kc < 2; ++kc) {
        const int e = 2 * h + kc;
        const uint4 o = make_uint4(x_pair(r.v[q][0], e), x_pair(r.v[q][1], e), x_pair(r.v[q][2], e),
                                   x_pair(r.v[q][3], e));
        *reinterpret_cast<uint4*>(xb + wg_b_offset<NTOK>(2 * i + h, kc, n)) = o;
      }
    }
  }
  fence_proxy_async_smem();  // the wgmmas read these through the async proxy
}

// One stage of this warp's 16 rows (CTA rows 16 * warp ..; warpgroup g's 4 warps cover its 64), read from the ring
// slot into registers at the stage's start (so the slot is free for its refill after the next CTA barrier): the FP4
// words of rows g and g + 8 and their block-scale words.
struct WgStageWords {
  uint4 w[2];
  uint32_t s[2];
};

template <bool BF16>
__device__ __forceinline__ void wg_stage_words(const uint8_t* w_slot, const uint8_t* s_slot, WgStageWords& st) {
  const int lane = threadIdx.x & 31, warp = int(threadIdx.x) >> 5, g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int rl = warp * 16 + h * 8 + g;
    st.w[h] = *reinterpret_cast<const uint4*>(w_slot + rl * (kMidK / 2) + t * 16);
    st.s[h] = scale_word<BF16>(*reinterpret_cast<const uint16_t*>(s_slot + rl * (kMidK / 16) + t * 2));
  }
}

// Decodes word i (elements 32t + 8i .. 32t + 8i + 7 of the stage; block 2t + i / 2) of both rows into the A
// fragments of wgmma steps 2i and 2i + 1 (a[q][0..3]), the block scales multiplied in exactly.
template <bool BF16>
__device__ __forceinline__ void wg_decode_word(const WgStageWords& st, int i, uint32_t (&a)[8][4]) {
  uint32_t d[2][4];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const uint32_t w = i == 0 ? st.w[h].x : i == 1 ? st.w[h].y : i == 2 ? st.w[h].z : st.w[h].w;
    if constexpr (BF16) {
      fp4_word_bf16_select2(w, d[h]);
    } else {
      fp4_word<false>(w, d[h]);
    }
#pragma unroll
    for (int e = 0; e < 4; ++e) d[h][e] = mul_pair_half(d[h][e], st.s[h], i >= 2, BF16);
  }
  // Rows g (h = 0) and g + 8 (h = 1); pairs 0, 1 feed step 2i, pairs 2, 3 step 2i + 1.
  a[2 * i][0] = d[0][0], a[2 * i][1] = d[1][0], a[2 * i][2] = d[0][1], a[2 * i][3] = d[1][1];
  a[2 * i + 1][0] = d[0][2], a[2 * i + 1][1] = d[1][2], a[2 * i + 1][2] = d[0][3], a[2 * i + 1][3] = d[1][3];
}

// The pipelined stage of the wgmma kernels (gemm_ws_kernel.cuh too), word 0 already decoded into frag: word i's two
// wgmma steps run while word i + 1 is decoded. Each group has its own fence (the registers it reads are written before
// it), and a group's A registers are rewritten only after wgmma_wait<3> has retired the group that read them last (the
// same word one stage earlier: 3 groups were issued after it). after_third() runs once the third group is committed
// and that wait has retired the previous stage's last group. `first` = 0 on the stage whose first wgmma defines acc.
template <int NTOK, bool BF16, class AfterThird>
__device__ __forceinline__ void wg_pipelined_stage(float (&acc)[NTOK / 2], uint32_t (&frag)[8][4],
                                                   const WgStageWords& st, uint32_t xb, int first,
                                                   AfterThird after_third) {
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    wgmma_fence();
    Wgmma<NTOK, BF16>::run(acc, frag[2 * i], wg_b_desc<NTOK>(xb, 2 * i), first | i);
    Wgmma<NTOK, BF16>::run(acc, frag[2 * i + 1], wg_b_desc<NTOK>(xb, 2 * i + 1), 1);
    wgmma_commit();
    if (i < 3) {
      wgmma_wait<3>();
      if (i == 2) after_third();
      wg_decode_word<BF16>(st, i + 1, frag);
    }
  }
}

// The epilogue of the wgmma kernels (gemm_ws_kernel.cuh too), for warp `warp` (its 16 rows at row0 + 16 warp) once
// every wgmma has retired: acc[4j + e] holds rows g (e = 0, 1) and g + 8 (e = 2, 3), tokens 8j + 2t (+1 for odd e).
// With a K split the fp32 sums go to the workspace (mid_finish_kernel adds them); else every step is rounded on its
// own (__fmul_rn / __fadd_rn), as in the mma.sync kernel: the same bits per sum.
template <int XDT, int NTOK>
__device__ __forceinline__ void wg_store(const MidParams& p, const float (&acc)[NTOK / 2], int row0, int tok0,
                                         int split, int warp, int lane) {
  using E = Elem<XDT>;
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int j = 0; j < NTOK / 8; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int row = row0 + warp * 16 + g + (e >= 2 ? 8 : 0);
      const int tok = tok0 + 8 * j + 2 * t + (e & 1);
      if (row >= p.n || tok >= p.m) continue;
      const int64_t at = int64_t(tok) * p.n + row;
      if (gridDim.z > 1) {
        p.ws[int64_t(split) * p.m * p.n + at] = acc[4 * j + e];
      } else {
        float y = __fmul_rn(__fmul_rn(acc[4 * j + e], kDecodeBias), p.gs);
        if (p.bias != nullptr) y = __fadd_rn(y, E::to_float(static_cast<const typename E::T*>(p.bias)[row]));
        static_cast<typename E::T*>(p.out)[at] = E::from_float(y);
      }
    }
  }
}

// PIPE: the pipelined loop (header comment); else the serial one (decode the whole stage, then its 8 wgmmas, wait
// for them): 128 tokens on 4 warpgroups run the serial loop faster (the pipelined one spills there; session 29).
template <int XDT, int NTOK, int GROUPS, bool PIPE>
__global__ void __launch_bounds__(WgTile<GROUPS>::kThreads, wg_min_blocks(GROUPS, NTOK)) gemm_wg_kernel(MidParams p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  constexpr bool kIsBF16 = XDT == kBF16;
  constexpr int kXBytes = wg_xbuf_bytes(NTOK), kXBufs = wg_xbufs(PIPE);
  constexpr int kThreads = WgTile<GROUPS>::kThreads, kRows = WgTile<GROUPS>::kRows;
  constexpr int kWBytes = WgTile<GROUPS>::kWBytes, kSBytes = WgTile<GROUPS>::kSBytes;
  extern __shared__ __align__(16) uint8_t smem[];
  uint8_t* w_ring = smem;
  uint8_t* s_ring = w_ring + kWgRing * kWBytes;
  uint8_t* x_buf = s_ring + kWgRing * kSBytes;  // [kXBufs][B layout]
  const uint32_t x_addr = uint32_t(__cvta_generic_to_shared(x_buf));

  const int row0 = blockIdx.y * kRows, tok0 = blockIdx.x * NTOK;
  const int split = blockIdx.z, total = p.k / kMidK;
  const int first = split * p.stages_per_split;
  const int stages = min(p.stages_per_split, total - first);

  // No zero fill: the CTA's first wgmma defines the accumulators (scale_d = 0). Zeros written by other instructions
  // would stand at the loop head that in-flight wgmmas cross, and ptxas then serialises every wgmma (C7515).
  float acc[NTOK / 2];

#pragma unroll
  for (int s = 0; s < kWgRing - 1; ++s) {  // one commit group per stage, empty past the end
    if (s < stages) {
      mid_load_weights<kThreads, kRows>(p, row0, first + s, w_ring + s * kWBytes, s_ring + s * kSBytes);
    }
    cp_async_commit();
  }
  WgXRegs<NTOK, kThreads> xr;
  wg_load_x(p, tok0, first, xr);
  wg_store_x(xr, x_buf);
  if (stages > 1) wg_load_x(p, tok0, first + 1, xr);

  // Stage c: its weights have landed (and x, staged a stage earlier); refill the ring, stage the next x, decode and
  // run the wgmmas.
  WgStageWords st;
  uint32_t frag[8][4];
  for (int c = 0; c < stages; ++c) {
    // Up to 3 wgmma groups stay in flight across the stage boundary: this wait retires stage c - 1's first (its A
    // registers, frag[0..1], are decoded next) and with the barrier every wgmma of stage c - 2 in the CTA, which
    // read the x buffer the next x goes to (3 buffers).
    if constexpr (PIPE) wgmma_wait<3>();
    cp_async_wait<kWgRing - 2>();
    __syncthreads();
    const int refill = c + kWgRing - 1;
    if (refill < stages) {
      const int slot = refill % kWgRing;
      mid_load_weights<kThreads, kRows>(p, row0, first + refill, w_ring + slot * kWBytes,
                                      s_ring + slot * kSBytes);
    }
    cp_async_commit();
    if (c + 1 < stages) wg_store_x(xr, x_buf + ((c + 1) % kXBufs) * kXBytes);
    if (c + 2 < stages) wg_load_x(p, tok0, first + c + 2, xr);
    const int slot = c % kWgRing;
    wg_stage_words<kIsBF16>(w_ring + slot * kWBytes, s_ring + slot * kSBytes, st);
    wg_decode_word<kIsBF16>(st, 0, frag);
    const uint32_t xb = x_addr + (c % kXBufs) * kXBytes;
    if constexpr (PIPE) {
      wg_pipelined_stage<NTOK, kIsBF16>(acc, frag, st, xb, c, [] {});
    } else {
#pragma unroll
      for (int i = 1; i < 4; ++i) wg_decode_word<kIsBF16>(st, i, frag);
      wgmma_fence();
#pragma unroll
      for (int q = 0; q < 8; ++q) Wgmma<NTOK, kIsBF16>::run(acc, frag[q], wg_b_desc<NTOK>(xb, q), c | q);
      wgmma_commit();
      wgmma_wait<0>();
    }
  }
  wgmma_wait<0>();
  cp_async_wait<0>();  // no copy may still target shared memory when the CTA exits

  wg_store<XDT, NTOK>(p, acc, row0, tok0, split, int(threadIdx.x) >> 5, int(threadIdx.x) & 31);
#else
  __trap();  // built without sm_90a: the launcher never picks this kernel (gemm_wg_available)
#endif
}

}  // namespace reset_native::nvfp4_cuda::detail
