// The medium-M NVFP4 GEMM on wgmma with warp specialisation (sm_90a): the math, K order, A-fragment decode, B layout,
// split K and epilogue of gemm_wg_kernel.cuh, with the loads taken off the MMA warps.
//
// Why (session 28 profile, docs/nvfp4_cuda.md "wgmma kernel"): in gemm_wg_kernel every warp also copies weights and
// stages x through its registers, and a CTA barrier per K stage keeps the warpgroups in step, so one warpgroup's
// decode (issue) and another's wgmmas (tensor pipe) hardly overlap: nothing was saturated (tensor pipe ~31% busy).
//
// Here a CTA holds CG consumer warpgroups (64 weight rows each) and two producer warps, and two rings of K stages in
// shared memory: x of a stage in B layout, and the FP4 words and block scales of the CTA's rows.
//  * The weight producer waits for a weight slot to be empty and fills it with cp.async (its addresses computed once
//    per CTA); the copies complete on the slot's full barrier, one arrival per lane (cp.async.mbarrier.arrive).
//  * The x producer (one lane) waits for an x slot to be empty and fills it with one bulk copy (TMA) from a copy of x
//    that ws_permute_x_kernel wrote in B layout before the GEMM (x is read by every row block: permuting it once per
//    call is cheaper than once per CTA), completing on the slot's full barrier by its bytes.
//  * Each consumer warpgroup waits for stage c's weights, reads its words into registers and releases the weight slot
//    at once (so the HBM stream runs as far ahead as the weight ring allows), then waits for x and runs the pipelined
//    loop of gemm_wg_kernel (each FP4 word's two wgmmas in their own commit group, the next word decoded while they
//    run, up to 3 groups in flight); once stage c's last group has retired (during stage c + 1) each warp releases
//    the x slot. No CTA barrier in the K loop: the warpgroups drift apart and share the tensor pipe.
// Programmatic dependent launch (core/pdl.cuh): both kernels are launched with it. The permutation waits for the
// previous kernel (which may write x) before anything else, then lets the GEMM launch; the GEMM's weight producer
// starts streaming at once (nothing the permutation writes), only the x producer waits for the permutation, and every
// output is written after that (the consumers need x), so no earlier kernel's buffers are touched before it completes.
// The two streams have rings of their own: x slots are held until the wgmmas retire and are large (NTOK x 256 bytes),
// weight slots are held only until they are read, and the weights (from HBM) need the deeper ring.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "core/mbarrier.cuh"
#include "core/pdl.cuh"
#include "nvfp4/gemm_wg_kernel.cuh"
#include "nvfp4/gemm_ws_trace.cuh"

namespace reset_native::nvfp4_cuda::detail {

// CG consumer warpgroups (64 rows each) and two producer warps (the last, so that warpgroups stay aligned).
template <int CG>
struct WsTile {
  static constexpr int kConsumers = 128 * CG;
  static constexpr int kThreads = kConsumers + 64;
  static constexpr int kRows = 64 * CG;
  static constexpr int kWBytes = kRows * kMidK / 2;
  static constexpr int kSBytes = kRows * kMidK / 16;
};

__host__ __device__ constexpr int ws_x_bytes(int ntok) { return ntok * kMidK * 2; }     // x of one stage, B layout
__host__ __device__ constexpr int ws_w_bytes(int cg) { return 64 * cg * kMidK * 9 / 16; }  // FP4 words + scales
// Shared memory one CTA may use (227 KiB on Hopper; MINB = 2: half the SM's 228 KiB less the 1 KiB reserved per CTA),
// less room for the barriers.
__host__ __device__ constexpr int ws_budget(int minb) { return (minb == 1 ? 227 : 113) * 1024 - 256; }
// Weight ring: up to 8 slots, leaving room for 3 x slots; x ring: up to 6 slots in what is left.
__host__ __device__ constexpr int ws_wring(int cg, int ntok, int minb) {
  return (ws_budget(minb) - 3 * ws_x_bytes(ntok)) / ws_w_bytes(cg) < 8
             ? (ws_budget(minb) - 3 * ws_x_bytes(ntok)) / ws_w_bytes(cg)
             : 8;
}
__host__ __device__ constexpr int ws_xring(int cg, int ntok, int minb) {
  return (ws_budget(minb) - ws_wring(cg, ntok, minb) * ws_w_bytes(cg)) / ws_x_bytes(ntok) < 6
             ? (ws_budget(minb) - ws_wring(cg, ntok, minb) * ws_w_bytes(cg)) / ws_x_bytes(ntok)
             : 6;
}
__host__ __device__ constexpr int ws_smem_bytes(int cg, int ntok, int minb) {
  return ws_xring(cg, ntok, minb) * (ws_x_bytes(ntok) + 16) + ws_wring(cg, ntok, minb) * (ws_w_bytes(cg) + 16);
}
static_assert(ws_wring(2, 128, 1) >= 4 && ws_xring(2, 128, 1) >= 3 && ws_wring(4, 64, 1) >= 4 &&
                  ws_xring(4, 64, 1) >= 3 && ws_wring(2, 64, 2) >= 4 && ws_xring(2, 64, 2) >= 3,
              "ring depths");

// Bytes of x in B layout for m tokens in blocks of ntok and k: [token block][K stage][B layout of ntok tokens].
__host__ __device__ constexpr int64_t ws_permuted_x_bytes(int64_t m, int64_t k, int ntok) {
  return (m + ntok - 1) / ntok * ntok * k * 2;
}

// x [m, k] (16-bit) -> xp in the B layout of gemm_wg_kernel (wg_b_offset), tokens past m zero. One thread per
// (token block, stage, piece i, token n), n fastest so that a warp's 16-byte stores are contiguous.
// Also zeroes the GEMM's nflags stream-K flags (this call's workspace: the GEMM touches them only after x).
template <int NTOK>
__global__ void ws_permute_x_kernel(const uint16_t* __restrict__ x, int m, int k, int tok_blocks,
                                    uint8_t* __restrict__ xp, unsigned* __restrict__ flags, int nflags) {
  WS_PERM_TRACE(x, kWsPermEntry);
  cuda_core::pdl_wait();     // x may be the previous kernel's output; xp may still be read by the GEMM before it
  WS_PERM_TRACE(x, kWsPermWaited);
  cuda_core::pdl_trigger();  // the GEMM may launch: its weight loads need nothing from here
  for (int i = int(blockIdx.x * blockDim.x + threadIdx.x); i < nflags; i += int(gridDim.x * blockDim.x)) flags[i] = 0;
  const int stages = k / kMidK;
  const int64_t units = int64_t(tok_blocks) * stages * 4 * NTOK;
  for (int64_t u = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; u < units; u += int64_t(gridDim.x) * blockDim.x) {
    const int n = int(u % NTOK), i = int(u / NTOK % 4);
    const int64_t block_stage = u / (4 * NTOK);  // tb * stages + stage
    const int stage = int(block_stage % stages), tok = int(block_stage / stages) * NTOK + n;
    uint4 v[4];
#pragma unroll
    for (int t = 0; t < 4; ++t) {
      v[t] = make_uint4(0, 0, 0, 0);
      if (tok < m) v[t] = __ldg(reinterpret_cast<const uint4*>(x + int64_t(tok) * k + stage * kMidK + 32 * t + 8 * i));
    }
    uint8_t* dst = xp + block_stage * ws_x_bytes(NTOK);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
#pragma unroll
      for (int kc = 0; kc < 2; ++kc) {
        const int e = 2 * h + kc;
        *reinterpret_cast<uint4*>(dst + wg_b_offset<NTOK>(2 * i + h, kc, n)) =
            make_uint4(x_pair(v[0], e), x_pair(v[1], e), x_pair(v[2], e), x_pair(v[3], e));
      }
    }
  }
  WS_PERM_TRACE(x, kWsPermEnd);
}

// Arrives on `bar` once every cp.async this thread issued before has landed (the arrival is counted in the barrier's
// initial count: .noinc).
__device__ __forceinline__ void cp_async_arrive_noinc(uint64_t* bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];" ::"r"(cuda_core::smem_addr(bar)) : "memory");
}

// Stream-K (SK): the call's work is one line of stages, (token block, row block, K stage) with K fastest, cut into
// gridDim.x equal ranges, one per CTA (every CTA resident at once: the launcher never asks for more). A CTA walks the
// blocks its range touches from the last to the first, each as a segment of stages. Every block ends in exactly one
// CTA, its owner, which adds the pieces of the lower CTAs that started it and stores the block; a piece that does not
// end its block is published (fp32, this CTA's slot) and flagged per warp. Walking backwards, a CTA publishes its piece
// first and owns last, so an owner rarely waits, and only for lower CTAs (dispatched before it: no deadlock). The
// pieces are added in a fixed order: the same bits on every call. Without SK: one segment, the grid's K split.
struct WsSeg {
  int tb, rb, s0, s1;  // token block, row block, stages [s0, s1) of the block's `total`
};

// First stage of CTA `cta`'s range when `work` stages are cut into `ctas` near-equal ranges (the first work % ctas one
// stage longer); 32-bit throughout (the launcher keeps work < 2^31: 64-bit divisions cost ~40 registers here). Also
// the host's copy of the walk (bench/probes/ws_sk_trace.cu).
__host__ __device__ __forceinline__ int ws_sk_range_start(int work, int ctas, int cta) {
  const int per = work / ctas, extra = work % ctas;
  return cta * per + min(cta, extra);
}
__device__ __forceinline__ int ws_sk_start(const MidParams& p, int cta) {
  return ws_sk_range_start(p.sk_work, int(gridDim.x), cta);
}

template <bool SK>
struct WsWalk {
  int w0 = 0, w1 = 0, last = 0;
  int total = 0, nseg = 1, first = 0, stages = 0;
  __device__ explicit WsWalk(const MidParams& p) : total(p.k / kMidK) {
    if constexpr (SK) {
      w0 = ws_sk_start(p, int(blockIdx.x));
      w1 = ws_sk_start(p, int(blockIdx.x) + 1);
      last = (w1 - 1) / total;
      nseg = last - w0 / total + 1;
    } else {
      first = int(blockIdx.z) * p.stages_per_split;
      stages = min(p.stages_per_split, total - first);
    }
  }
  __device__ WsSeg seg(const MidParams& p, int i) const {
    if constexpr (SK) {
      const int b = last - i, base = b * total;
      return {b / p.sk_row_blocks, b % p.sk_row_blocks, max(w0, base) - base, min(w1, base + total) - base};
    } else {
      return {int(blockIdx.x), int(blockIdx.y), first, first + stages};
    }
  }
};

// Stream-K workspace per CTA (the host sizes it with these, gemm_mid.cu): its piece, NTOK / 8 float4 per consumer
// thread (NTOK / 2 fp32 accumulators), and one flag per consumer warp.
__host__ __device__ constexpr int64_t ws_sk_piece_float4s(int ntok, int cg) {
  return int64_t(ntok / 8) * (128 * cg);
}
__host__ __device__ constexpr int ws_sk_flags_per_cta(int cg) { return 4 * cg; }
static_assert(ws_sk_flags_per_cta(2) == WsTile<2>::kConsumers / 32, "one flag per consumer warp");
// CTA cta's piece and its consumer warp's flag in the workspace (ws_publish writes them, ws_add_piece reads them).
template <int NTOK, int CG>
__device__ __forceinline__ float4* ws_sk_piece(const MidParams& p, int64_t cta) {
  return reinterpret_cast<float4*>(p.sk_part) + cta * ws_sk_piece_float4s(NTOK, CG);
}
template <int CG>
__device__ __forceinline__ unsigned* ws_sk_flag(const MidParams& p, int64_t cta, int warp) {
  return p.sk_flags + cta * ws_sk_flags_per_cta(CG) + warp;
}

// A warp's piece: acc as float4 j of consumer thread t at [slot][j][t] (a warp's stores are 512 contiguous bytes),
// then, after a fence, its flag (one per warp and slot) set with release semantics.
template <int NTOK, int CG>
__device__ __forceinline__ void ws_publish(const MidParams& p, const float (&acc)[NTOK / 2], int warp, int lane) {
  float4* part = ws_sk_piece<NTOK, CG>(p, blockIdx.x);
#pragma unroll
  for (int j = 0; j < NTOK / 8; ++j) {
    __stcg(part + j * WsTile<CG>::kConsumers + threadIdx.x,
           make_float4(acc[4 * j], acc[4 * j + 1], acc[4 * j + 2], acc[4 * j + 3]));
  }
  __threadfence();
  __syncwarp();
  if (lane == 0) {
    asm volatile("st.release.gpu.global.u32 [%0], %1;" ::"l"(ws_sk_flag<CG>(p, blockIdx.x, warp)), "r"(1u)
                 : "memory");
  }
}

// The owner's side: waits for CTA q's piece (this warp's flag) and adds it.
template <int NTOK, int CG>
__device__ __forceinline__ void ws_add_piece(const MidParams& p, float (&acc)[NTOK / 2], int q, int warp,
                                             int lane) {
  if (lane == 0) {
    const unsigned* flag = ws_sk_flag<CG>(p, q, warp);
    unsigned v = 0;
    do {
      asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(flag) : "memory");
    } while (v == 0);
  }
  __syncwarp();
  const float4* part = ws_sk_piece<NTOK, CG>(p, q);
#pragma unroll
  for (int j = 0; j < NTOK / 8; ++j) {
    const float4 v = __ldcg(part + j * WsTile<CG>::kConsumers + threadIdx.x);
    acc[4 * j] += v.x;
    acc[4 * j + 1] += v.y;
    acc[4 * j + 2] += v.z;
    acc[4 * j + 3] += v.w;
  }
}

template <int XDT, int NTOK, int CG, int MINB, bool SK>
__global__ void __launch_bounds__(WsTile<CG>::kThreads, MINB) gemm_ws_kernel(MidParams p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using cuda_core::mbar_arrive;
  using cuda_core::mbar_init;
  using cuda_core::mbar_wait;
  WS_TRACE_BEGIN(p.x);
  WS_TRACE(kWsEntry);
  constexpr bool kIsBF16 = XDT == kBF16;
  using T = WsTile<CG>;
  constexpr int kXRing = ws_xring(CG, NTOK, MINB), kWRing = ws_wring(CG, NTOK, MINB);
  constexpr int kXBytes = ws_x_bytes(NTOK), kWSlot = ws_w_bytes(CG);
  // x slot c - 1 is released during stage c: fewer than 2 x slots would deadlock; 3 and 4 keep the streams ahead.
  static_assert(kXRing >= 3 && kWRing >= 4, "ring depths");
  extern __shared__ __align__(16) uint8_t smem[];
  uint8_t* x_ring = smem;                              // [kXRing][B layout]
  uint8_t* w_ring = x_ring + kXRing * kXBytes;         // [kWRing][FP4 words kWBytes][scales kSBytes]
  uint64_t* x_full = reinterpret_cast<uint64_t*>(w_ring + kWRing * kWSlot);
  uint64_t* x_empty = x_full + kXRing;
  uint64_t* w_full = x_empty + kXRing;
  uint64_t* w_empty = w_full + kWRing;
  const int warp = int(threadIdx.x) >> 5, lane = int(threadIdx.x) & 31;
  if (threadIdx.x == 0) {
    for (int s = 0; s < kXRing; ++s) mbar_init(&x_full[s], 1), mbar_init(&x_empty[s], 4 * CG);
    for (int s = 0; s < kWRing; ++s) mbar_init(&w_full[s], 32), mbar_init(&w_empty[s], 4 * CG);
    cuda_core::mbar_init_fence();
  }
  __syncthreads();

  const WsWalk<SK> walk(p);
  const int total = walk.total;

  // Producers. A fresh empty barrier passes parity 1 at once, so the first ring's worth of stages does not wait. gc
  // counts the CTA's stages over all its segments (ring slot and parity).
  if (warp == 4 * CG) {  // weights: lane -> rows lane / 4 + 8j (16 bytes at lane % 4), scales rows lane + 32j
    // (Row addresses are recomputed per copy: arrays of them held 2 registers per row across the loop.)
    const int64_t half_k = p.k / 2, sixteenth_k = p.k / 16;
    int gc = 0;
    for (int i = 0; i < walk.nseg; ++i) {
      const WsSeg sg = walk.seg(p, i);
      const int row0 = sg.rb * T::kRows;
      for (int c = sg.s0; c < sg.s1; ++c, ++gc) {
        const int slot = gc % kWRing;
        mbar_wait(&w_empty[slot], ((gc / kWRing) & 1) ^ 1);
        uint8_t* ws = w_ring + slot * kWSlot;
        const uint8_t* wsrc = p.packed + int64_t(c) * (kMidK / 2) + (lane & 3) * 16;
        const uint8_t* ssrc = p.scales + int64_t(c) * (kMidK / 16);
#pragma unroll
        for (int j = 0; j < T::kRows / 8; ++j) {  // rows past n read the last row (valid memory, never stored)
          const int row = min(row0 + (lane >> 2) + 8 * j, p.n - 1);
          cp_async16(ws + ((lane >> 2) + 8 * j) * (kMidK / 2) + (lane & 3) * 16, wsrc + row * half_k);
        }
#pragma unroll
        for (int j = 0; j < T::kRows / 32; ++j) {
          const int row = min(row0 + lane + 32 * j, p.n - 1);
          cp_async8(ws + T::kWBytes + (lane + 32 * j) * (kMidK / 16), ssrc + row * sixteenth_k);
        }
        cp_async_arrive_noinc(&w_full[slot]);
      }
    }
    return;  // every copy lands before the CTA can exit: the consumers wait on every stage's w_full
  }
  if (warp == 4 * CG + 1) {  // x: one bulk copy per stage
    if (lane == 0) {
      cuda_core::pdl_wait();  // the permutation kernel has written p.xp
      cuda_core::pdl_trigger();
      int gc = 0;
      for (int i = 0; i < walk.nseg; ++i) {
        const WsSeg sg = walk.seg(p, i);
        const uint8_t* xsrc = p.xp + (int64_t(sg.tb) * total + sg.s0) * kXBytes;
        for (int c = 0; c < sg.s1 - sg.s0; ++c, ++gc) {
          const int slot = gc % kXRing;
          mbar_wait(&x_empty[slot], ((gc / kXRing) & 1) ^ 1);
          cuda_core::mbar_arrive_expect_tx(&x_full[slot], kXBytes);
          cuda_core::bulk_copy_g2s(x_ring + slot * kXBytes, xsrc + int64_t(c) * kXBytes, kXBytes, &x_full[slot]);
        }
      }
    }
    return;
  }

  // Consumers. No zero fill: a segment's first wgmma defines the accumulators (scale_d = 0; gemm_wg_kernel.cuh).
  float acc[NTOK / 2];
  WgStageWords st;
  uint32_t frag[8][4];
  const uint32_t x_addr = cuda_core::smem_addr(x_ring);
  int gc = 0;
  for (int si = 0; si < walk.nseg; ++si) {
    const WsSeg sg = walk.seg(p, si);
    for (int c = 0; c < sg.s1 - sg.s0; ++c, ++gc) {
      const int wslot = gc % kWRing, xslot = gc % kXRing;
      mbar_wait(&w_full[wslot], (gc / kWRing) & 1);
      WS_TRACE_IF(gc == 0, kWsFirstW);
      const uint8_t* ws = w_ring + wslot * kWSlot;
      wg_stage_words<kIsBF16>(ws, ws + T::kWBytes, st);
      __syncwarp();  // every lane's reads of the slot are done before lane 0 releases it
      if (lane == 0) mbar_arrive(&w_empty[wslot]);
      mbar_wait(&x_full[xslot], (gc / kXRing) & 1);
      WS_TRACE_IF(gc == 0, kWsFirstX);
      wgmma_wait<3>();  // retires stage gc - 1's first group: its A registers (frag[0..1]) are decoded next
      wg_decode_word<kIsBF16>(st, 0, frag);
      const uint32_t xb = x_addr + xslot * kXBytes;
      // After stage gc's third group, 3 groups are in flight at most: stage gc - 1's last has retired, so its x slot
      // goes back to the producer.
      wg_pipelined_stage<NTOK, kIsBF16>(acc, frag, st, xb, c, [&] {
        if (gc > 0 && lane == 0) mbar_arrive(&x_empty[(gc - 1) % kXRing]);
      });
    }
    wgmma_wait<0>();
    WS_TRACE(si == 0 ? kWsSeg0Done : kWsLastDone);
    const int row0 = sg.rb * T::kRows, tok0 = sg.tb * NTOK;
    if constexpr (SK) {
      if (sg.s1 < total) {  // the block goes on in the next CTA: publish (only a CTA's first segment)
        ws_publish<NTOK, CG>(p, acc, warp, lane);
        WS_TRACE(kWsSeg0Out);
        continue;
      }
      if (sg.s0 > 0) {  // the block started in lower CTAs: add their pieces, the nearest first
        const int base = (walk.last - si) * total;
        for (int q = int(blockIdx.x) - 1;; --q) {
          ws_add_piece<NTOK, CG>(p, acc, q, warp, lane);
          if (ws_sk_start(p, q) <= base) break;
        }
      }
      WS_TRACE_IF(si > 0, kWsLastAdded);
    }
    wg_store<XDT, NTOK>(p, acc, row0, tok0, SK ? 0 : int(blockIdx.z), warp, lane);  // gemm_wg_kernel's epilogue
    WS_TRACE_IF(si == 0, kWsSeg0Out);
  }
  WS_TRACE(kWsEnd);
#else
  __trap();  // built without sm_90a: the launcher never picks this kernel
#endif
}

}  // namespace reset_native::nvfp4_cuda::detail
