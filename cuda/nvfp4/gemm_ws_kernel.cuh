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
template <int NTOK>
__global__ void ws_permute_x_kernel(const uint16_t* __restrict__ x, int m, int k, int tok_blocks,
                                    uint8_t* __restrict__ xp) {
  cuda_core::pdl_wait();     // x may be the previous kernel's output; xp may still be read by the GEMM before it
  cuda_core::pdl_trigger();  // the GEMM may launch: its weight loads need nothing from here
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
}

// Arrives on `bar` once every cp.async this thread issued before has landed (the arrival is counted in the barrier's
// initial count: .noinc).
__device__ __forceinline__ void cp_async_arrive_noinc(uint64_t* bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];" ::"r"(cuda_core::smem_addr(bar)) : "memory");
}

template <int XDT, int NTOK, int CG, int MINB>
__global__ void __launch_bounds__(WsTile<CG>::kThreads, MINB) gemm_ws_kernel(MidParams p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using cuda_core::mbar_arrive;
  using cuda_core::mbar_init;
  using cuda_core::mbar_wait;
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

  const int row0 = blockIdx.y * T::kRows;
  const int split = blockIdx.z, total = p.k / kMidK;
  const int first = split * p.stages_per_split;
  const int stages = min(p.stages_per_split, total - first);

  // Producers. A fresh empty barrier passes parity 1 at once, so the first ring's worth of stages does not wait.
  if (warp == 4 * CG) {  // weights: lane -> rows lane / 4 + 8j (16 bytes at lane % 4), scales rows lane + 32j
    const int64_t half_k = p.k / 2, sixteenth_k = p.k / 16;
    const uint8_t* wsrc[T::kRows / 8];
    const uint8_t* ssrc[T::kRows / 32];
#pragma unroll
    for (int j = 0; j < T::kRows / 8; ++j) {  // rows past n read the last row (valid memory, never stored)
      const int64_t row = min(row0 + (lane >> 2) + 8 * j, p.n - 1);
      wsrc[j] = p.packed + row * half_k + int64_t(first) * (kMidK / 2) + (lane & 3) * 16;
    }
#pragma unroll
    for (int j = 0; j < T::kRows / 32; ++j) {
      const int64_t row = min(row0 + lane + 32 * j, p.n - 1);
      ssrc[j] = p.scales + row * sixteenth_k + int64_t(first) * (kMidK / 16);
    }
    for (int c = 0; c < stages; ++c) {
      const int slot = c % kWRing;
      mbar_wait(&w_empty[slot], ((c / kWRing) & 1) ^ 1);
      uint8_t* ws = w_ring + slot * kWSlot;
#pragma unroll
      for (int j = 0; j < T::kRows / 8; ++j) {
        cp_async16(ws + ((lane >> 2) + 8 * j) * (kMidK / 2) + (lane & 3) * 16, wsrc[j] + c * (kMidK / 2));
      }
#pragma unroll
      for (int j = 0; j < T::kRows / 32; ++j) {
        cp_async8(ws + T::kWBytes + (lane + 32 * j) * (kMidK / 16), ssrc[j] + c * (kMidK / 16));
      }
      cp_async_arrive_noinc(&w_full[slot]);
    }
    return;  // every copy lands before the CTA can exit: the consumers wait on every stage's w_full
  }
  if (warp == 4 * CG + 1) {  // x: one bulk copy per stage
    if (lane == 0) {
      cuda_core::pdl_wait();  // the permutation kernel has written p.xp
      cuda_core::pdl_trigger();
      const uint8_t* xsrc = p.xp + (int64_t(blockIdx.x) * total + first) * kXBytes;
      for (int c = 0; c < stages; ++c) {
        const int slot = c % kXRing;
        mbar_wait(&x_empty[slot], ((c / kXRing) & 1) ^ 1);
        cuda_core::mbar_arrive_expect_tx(&x_full[slot], kXBytes);
        cuda_core::bulk_copy_g2s(x_ring + slot * kXBytes, xsrc + int64_t(c) * kXBytes, kXBytes, &x_full[slot]);
      }
    }
    return;
  }

  // Consumers. No zero fill: the CTA's first wgmma defines the accumulators (scale_d = 0; gemm_wg_kernel.cuh).
  float acc[NTOK / 2];
  WgStageWords st;
  uint32_t frag[8][4];
  const uint32_t x_addr = cuda_core::smem_addr(x_ring);
  for (int c = 0; c < stages; ++c) {
    const int wslot = c % kWRing, xslot = c % kXRing;
    mbar_wait(&w_full[wslot], (c / kWRing) & 1);
    const uint8_t* ws = w_ring + wslot * kWSlot;
    wg_stage_words<kIsBF16>(ws, ws + T::kWBytes, st);
    __syncwarp();  // every lane's reads of the slot are done before lane 0 releases it
    if (lane == 0) mbar_arrive(&w_empty[wslot]);
    mbar_wait(&x_full[xslot], (c / kXRing) & 1);
    wgmma_wait<3>();  // retires stage c - 1's first group: its A registers (frag[0..1]) are decoded next
    wg_decode_word<kIsBF16>(st, 0, frag);
    const uint32_t xb = x_addr + xslot * kXBytes;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      wgmma_fence();
      Wgmma<NTOK, kIsBF16>::run(acc, frag[2 * i], wg_b_desc<NTOK>(xb, 2 * i), c | i);
      Wgmma<NTOK, kIsBF16>::run(acc, frag[2 * i + 1], wg_b_desc<NTOK>(xb, 2 * i + 1), 1);
      wgmma_commit();
      if (i < 3) {
        wgmma_wait<3>();
        // After stage c's third group, 3 groups are in flight at most: stage c - 1's last has retired, so its x
        // slot goes back to the producer.
        if (i == 2 && c > 0 && lane == 0) mbar_arrive(&x_empty[(c - 1) % kXRing]);
        wg_decode_word<kIsBF16>(st, i + 1, frag);
      }
    }
  }
  wgmma_wait<0>();

  wg_store<XDT, NTOK>(p, acc, row0, blockIdx.x * NTOK, split, warp, lane);  // gemm_wg_kernel's epilogue
#else
  __trap();  // built without sm_90a: the launcher never picks this kernel
#endif
}

}  // namespace reset_native::nvfp4_cuda::detail
