// The NVFP4 GEMM for medium token counts on mma.sync (the route sends 17..128 tokens to the launcher, up to 1024 when
// forced: batched decode, short prompts; the launcher takes this kernel where the build or the GPU has no wgmma
// kernel, gemm_ws_kernel.cuh / gemm_wg_kernel.cuh, or when RESET_NATIVE_GEMM_MID asks for it) on Hopper:
// y[m, n] = x[m, k] @ dequantize(w)[n, k]^T (+ bias), W4A16 with 16-bit x, fp32 accumulation, one rounding.
//
// Why a kernel of its own: the GEMV (gemv_kernel.cuh) takes at most 16 tokens per launch, so 64 tokens read the
// weights 4 times, and dequantize + cuBLAS (the prefill route) writes and reads the weights expanded to 16 bits
// (4.6x the NVFP4 bytes). Here every weight byte is read from HBM once per 32 or 64 tokens and decoded in registers.
// Measured and not at the floor yet: docs/nvfp4_cuda.md "Medium M".
//
// Tiles: a CTA owns kMidRows = 256 weight rows (8 warps x 2 row tiles of 16) and up to 8 * NTT tokens, and walks
// its K range in stages of kMidK = 128. Weights and block scales stream through a cp.async ring (mid_ring) in
// shared memory (no registers held in flight); x is staged per stage through registers into a double buffer,
// permuted into the B-fragment order. A warp decodes the FP4 words of its 2 x 16 rows (the GEMV's decode,
// fp4_fragments.cuh), multiplies them by their E4M3 block scales (exact in 16 bits) and runs mma.sync m16n8k16
// against every 8-token column tile: one decode per weight serves all tokens, one B fragment both row tiles.
// K order: a thread's k-slots are the nibble pairs (j, j+4) of its own 32-bit word, as in the GEMV; x is staged in
// that permutation (pairs (v0, v4), (v1, v5), (v2, v6), (v3, v7) of each 8 values) with an XOR swizzle of its
// 16-byte units that makes the B-fragment loads conflict-free.
// Few row blocks (small N) split K over CTAs (gridDim.z): each split writes fp32 partial sums to a workspace and
// mid_finish_kernel adds them in split order (deterministic), scales, adds the bias and rounds once.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "nvfp4/fp4_fragments.cuh"
#include "nvfp4/nvfp4_device.cuh"

namespace reset_native::nvfp4_cuda::detail {

constexpr int kMidWarps = 8;
constexpr int kMidThreads = kMidWarps * 32;
constexpr int kMidRows = kMidWarps * 32;            // weight rows per CTA (2 row tiles of 16 per warp)
constexpr int kMidK = 128;                          // K per stage
constexpr int kMidWBytes = kMidRows * kMidK / 2;    // FP4 bytes of a stage (16 KiB)
constexpr int kMidSBytes = kMidRows * kMidK / 16;   // scale bytes of a stage (2 KiB)
constexpr int kMidUnits = kMidK / 8;                // 16-byte x units (8 values) per token and stage
constexpr int kMidXRowBytes = kMidUnits * 16;       // staged bytes per token and stage (256)

struct MidParams {
  const uint8_t* packed;  // [n, k/2], 16-byte aligned
  const uint8_t* scales;  // [n, k/16], 8-byte aligned
  const void* x;          // [m, k], 16-byte aligned
  const void* bias;       // [n] or nullptr
  void* out;              // [m, n]
  float* ws;              // [splits, m, n] fp32 partial sums when gridDim.z > 1, else unused
  float gs;               // weight global scale
  int n, k, m;
  int stages_per_split;   // K stages (of kMidK) per split; the last split may have fewer
  const uint8_t* xp = nullptr;  // x in B layout (gemm_ws_kernel.cuh), 16-byte aligned; only the ws kernel reads it
  // Stream-K of the ws kernel (gemm_ws_kernel.cuh, gridDim.x CTAs share sk_work stages): row blocks per token block,
  // all stages of the call, the CTAs' published partial sums and their flags (zeroed by ws_permute_x_kernel).
  int sk_row_blocks = 0;
  int sk_work = 0;  // < 2^31 (the launcher's condition for stream-K)
  float* sk_part = nullptr;
  unsigned* sk_flags = nullptr;
};

// 16-byte unit q of a staged token row n lands at unit mid_swizzle(q, n): a thread of a B-fragment load reads unit
// 4t + i of token 8j + g, and the XOR with t and g's parity spreads each 8-lane phase over all 8 bank groups.
__device__ __forceinline__ int mid_swizzle(int q, int n) { return q ^ ((q >> 2) & 3) ^ (n & 1); }

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(uint32_t(__cvta_generic_to_shared(smem))),
               "l"(gmem));
}
__device__ __forceinline__ void cp_async8(void* smem, const void* gmem) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 8;" ::"r"(uint32_t(__cvta_generic_to_shared(smem))),
               "l"(gmem));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;"); }
template <int PENDING>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;" ::"n"(PENDING));
}

// Copies K stage `stage` of the CTA's ROWS rows into ring slot `slot` (THREADS threads): 4 x 16 bytes of FP4 per row
// and 8 bytes of scales per row. Rows past n read the last row (valid memory; their results are never stored).
template <int THREADS = kMidThreads, int ROWS = kMidRows>
__device__ __forceinline__ void mid_load_weights(const MidParams& p, int row0, int stage, uint8_t* w_slot,
                                                 uint8_t* s_slot) {
  static_assert(ROWS * 4 % THREADS == 0 && ROWS <= THREADS, "whole 16-byte chunks per thread, one scale row each");
  const int tid = int(threadIdx.x);
  const int64_t half_k = p.k / 2, sixteenth_k = p.k / 16;
#pragma unroll
  for (int i = 0; i < ROWS * 4 / THREADS; ++i) {
    const int u = tid + THREADS * i, rl = u >> 2, part = u & 3;
    const int64_t row = min(row0 + rl, p.n - 1);
    const uint8_t* src = p.packed + row * half_k + int64_t(stage) * (kMidK / 2) + part * 16;
    cp_async16(w_slot + rl * (kMidK / 2) + part * 16, src);
  }
  if (tid < ROWS) {
    const int64_t row = min(row0 + tid, p.n - 1);
    cp_async8(s_slot + tid * (kMidK / 16), p.scales + row * sixteenth_k + int64_t(stage) * (kMidK / 16));
  }
}

// x units of K stage `stage` for this thread: kPer units (token, q) = (u / 16, u % 16), u = tid + 256 * i; tokens
// past m are zero.
template <int NTT>
struct MidXRegs {
  static constexpr int kPer = 8 * NTT * kMidUnits / kMidThreads;
  uint4 v[kPer];
};

template <int NTT>
__device__ __forceinline__ void mid_load_x(const MidParams& p, int tok0, int stage, MidXRegs<NTT>& r) {
#pragma unroll
  for (int i = 0; i < MidXRegs<NTT>::kPer; ++i) {
    const int u = int(threadIdx.x) + kMidThreads * i, tok = tok0 + u / kMidUnits, q = u % kMidUnits;
    r.v[i] = make_uint4(0, 0, 0, 0);
    if (tok < p.m) {
      const auto* src = static_cast<const uint16_t*>(p.x) + int64_t(tok) * p.k + int64_t(stage) * kMidK + q * 8;
      r.v[i] = __ldg(reinterpret_cast<const uint4*>(src));
    }
  }
}

// Pair e (0..3) of 8 16-bit values (words (v0 v1) (v2 v3) (v4 v5) (v6 v7)): values (e, e + 4), the k order of a
// thread's A pairs (fp4_word's nibbles j, j + 4).
__device__ __forceinline__ uint32_t x_pair(const uint4& v, int e) {
  return e == 0 ? __byte_perm(v.x, v.z, 0x5410) : e == 1 ? __byte_perm(v.x, v.z, 0x7632)
       : e == 2 ? __byte_perm(v.y, v.w, 0x5410) : __byte_perm(v.y, v.w, 0x7632);
}

// Stores the loaded units permuted: pairs (v0 v4) (v1 v5) (v2 v6) (v3 v7).
template <int NTT>
__device__ __forceinline__ void mid_store_x(const MidXRegs<NTT>& r, uint8_t* xs) {
#pragma unroll
  for (int i = 0; i < MidXRegs<NTT>::kPer; ++i) {
    const int u = int(threadIdx.x) + kMidThreads * i, n = u / kMidUnits, q = u % kMidUnits;
    const uint4 v = r.v[i];
    const uint4 o = make_uint4(x_pair(v, 0), x_pair(v, 1), x_pair(v, 2), x_pair(v, 3));
    *reinterpret_cast<uint4*>(xs + n * kMidXRowBytes + mid_swizzle(q, n) * 16) = o;
  }
}

// One K stage of this warp: 2 row tiles x ntt token tiles x 8 MMAs (k = 16 each).
template <bool BF16, int NTT>
__device__ __forceinline__ void mid_compute(const uint8_t* w_slot, const uint8_t* s_slot, const uint8_t* xs, int ntt,
                                            float (&acc)[2][NTT][4]) {
  const int lane = threadIdx.x & 31, warp = int(threadIdx.x) >> 5, g = lane >> 2, t = lane & 3;
  uint4 wv[2][2];
  uint32_t sw[2][2];
#pragma unroll
  for (int rt = 0; rt < 2; ++rt) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int rl = warp * 32 + rt * 16 + h * 8 + g;
      wv[rt][h] = *reinterpret_cast<const uint4*>(w_slot + rl * (kMidK / 2) + t * 16);
      sw[rt][h] = scale_word<BF16>(*reinterpret_cast<const uint16_t*>(s_slot + rl * (kMidK / 16) + t * 2));
    }
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {  // word i: elements 32t + 8i .. 32t + 8i + 7 of the stage; block 2t + i / 2
    uint32_t a[2][2][4];           // [row tile][MMA 2i, 2i + 1][A registers]
#pragma unroll
    for (int rt = 0; rt < 2; ++rt) {
      uint32_t d[2][4];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const uint32_t w = i == 0 ? wv[rt][h].x : i == 1 ? wv[rt][h].y : i == 2 ? wv[rt][h].z : wv[rt][h].w;
        if constexpr (BF16) {
          fp4_word_bf16_select2(w, d[h]);
        } else {
          fp4_word<false>(w, d[h]);
        }
#pragma unroll
        for (int e = 0; e < 4; ++e) d[h][e] = mul_pair_half(d[h][e], sw[rt][h], i >= 2, BF16);
      }
      // A rows g (h = 0) and g + 8 (h = 1); pairs 0, 1 feed MMA 2i, pairs 2, 3 MMA 2i + 1.
      a[rt][0][0] = d[0][0], a[rt][0][1] = d[1][0], a[rt][0][2] = d[0][1], a[rt][0][3] = d[1][1];
      a[rt][1][0] = d[0][2], a[rt][1][1] = d[1][2], a[rt][1][2] = d[0][3], a[rt][1][3] = d[1][3];
    }
    uint4 b[NTT];  // B fragments of MMA 2i (.x, .y) and 2i + 1 (.z, .w) for every token tile
#pragma unroll
    for (int j = 0; j < NTT; ++j) {
      const int n = 8 * j + g;
      if (j < ntt) b[j] = *reinterpret_cast<const uint4*>(xs + n * kMidXRowBytes + mid_swizzle(4 * t + i, n) * 16);
    }
    // MMA 2i on every (row tile, token tile) first, then 2i + 1: 2 * ntt independent MMAs between the two that
    // accumulate into the same registers (mma16816 is asm volatile: the compiler keeps this order).
#pragma unroll
    for (int half = 0; half < 2; ++half) {
#pragma unroll
      for (int j = 0; j < NTT; ++j) {
        if (j < ntt) {  // warp-uniform: token tiles past the CTA's last real token are skipped
#pragma unroll
          for (int rt = 0; rt < 2; ++rt)
            mma16816<BF16>(acc[rt][j], a[rt][half], half ? b[j].z : b[j].x, half ? b[j].w : b[j].y);
        }
      }
    }
  }
}

// Weight stages in the ring: 5 with one CTA per SM (4 in flight while one computes), 3 with two (shared memory).
__host__ __device__ constexpr int mid_ring(int minb) { return minb == 2 ? 3 : 5; }

// Shared memory of one CTA: its weight ring and x double buffer.
__host__ __device__ constexpr int mid_smem_bytes(int ntt, int minb) {
  return mid_ring(minb) * (kMidWBytes + kMidSBytes) + 2 * 8 * ntt * kMidXRowBytes;
}

template <int XDT, int NTT, int MINB>
__global__ void __launch_bounds__(kMidThreads, MINB) gemm_mid_kernel(MidParams p) {
  constexpr bool kIsBF16 = XDT == kBF16;
  using E = Elem<XDT>;
  extern __shared__ __align__(16) uint8_t smem[];
  constexpr int kRing = mid_ring(MINB);
  constexpr int kXBufBytes = 8 * NTT * kMidXRowBytes;
  uint8_t* w_ring = smem;
  uint8_t* s_ring = w_ring + kRing * kMidWBytes;
  uint8_t* x_buf = s_ring + kRing * kMidSBytes;  // [2][8 * NTT tokens][kMidXRowBytes]

  // Token blocks vary fastest: the CTAs of one row block run together, so all but the first read its weights from L2.
  const int row0 = blockIdx.y * kMidRows, tok0 = blockIdx.x * 8 * NTT;
  const int split = blockIdx.z, total = p.k / kMidK;
  const int first = split * p.stages_per_split;
  const int stages = min(p.stages_per_split, total - first);
  const int ntt = min(NTT, (p.m - tok0 + 7) / 8);

  float acc[2][NTT][4];
#pragma unroll
  for (int rt = 0; rt < 2; ++rt)
#pragma unroll
    for (int j = 0; j < NTT; ++j) acc[rt][j][0] = acc[rt][j][1] = acc[rt][j][2] = acc[rt][j][3] = 0.0f;

#pragma unroll
  for (int s = 0; s < kRing - 1; ++s) {  // one commit group per stage, empty past the end
    if (s < stages) mid_load_weights(p, row0, first + s, w_ring + s * kMidWBytes, s_ring + s * kMidSBytes);
    cp_async_commit();
  }
  MidXRegs<NTT> xr;
  mid_load_x<NTT>(p, tok0, first, xr);
  mid_store_x<NTT>(xr, x_buf);
  if (stages > 1) mid_load_x<NTT>(p, tok0, first + 1, xr);

  for (int c = 0; c < stages; ++c) {
    cp_async_wait<kRing - 2>();  // stage c's copies (this thread's) have landed
    __syncthreads();             // everyone's have, x of stage c is staged, slot (c - 1) and x[c + 1] are free
    const int refill = c + kRing - 1;
    if (refill < stages) {
      const int slot = refill % kRing;
      mid_load_weights(p, row0, first + refill, w_ring + slot * kMidWBytes, s_ring + slot * kMidSBytes);
    }
    cp_async_commit();
    if (c + 1 < stages) mid_store_x<NTT>(xr, x_buf + ((c + 1) & 1) * kXBufBytes);
    if (c + 2 < stages) mid_load_x<NTT>(p, tok0, first + c + 2, xr);
    const int slot = c % kRing;
    mid_compute<kIsBF16, NTT>(w_ring + slot * kMidWBytes, s_ring + slot * kMidSBytes, x_buf + (c & 1) * kXBufBytes,
                              ntt, acc);
  }
  cp_async_wait<0>();  // no copy may still target shared memory when the CTA exits

  // acc[rt][j]: rows g (c = 0, 1) and g + 8 (c = 2, 3), tokens 8j + 2t (+1 for odd c).
  const int lane = threadIdx.x & 31, warp = int(threadIdx.x) >> 5, g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int rt = 0; rt < 2; ++rt) {
#pragma unroll
    for (int j = 0; j < NTT; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int row = row0 + warp * 32 + rt * 16 + g + (e >= 2 ? 8 : 0);
        const int tok = tok0 + 8 * j + 2 * t + (e & 1);
        if (row >= p.n || tok >= p.m) continue;
        const int64_t at = int64_t(tok) * p.n + row;
        if (gridDim.z > 1) {
          p.ws[int64_t(split) * p.m * p.n + at] = acc[rt][j][e];
        } else {
          // Every step rounded on its own (__fmul_rn / __fadd_rn), as in the GEMV epilogue: no contraction.
          float y = __fmul_rn(__fmul_rn(acc[rt][j][e], kDecodeBias), p.gs);
          if (p.bias != nullptr) y = __fadd_rn(y, E::to_float(static_cast<const typename E::T*>(p.bias)[row]));
          static_cast<typename E::T*>(p.out)[at] = E::from_float(y);
        }
      }
    }
  }
}

// Split K: out = round(sum over splits, in split order, of the partial sums * 2^7 * gs + bias).
template <int XDT>
__global__ void mid_finish_kernel(const float* __restrict__ ws, int splits, int m, int n, float gs, const void* bias,
                                  void* out) {
  using E = Elem<XDT>;
  const int64_t count = int64_t(m) * n;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x) {
    float sum = ws[i];
    for (int s = 1; s < splits; ++s) sum = __fadd_rn(sum, ws[int64_t(s) * count + i]);
    float y = __fmul_rn(__fmul_rn(sum, kDecodeBias), gs);
    if (bias != nullptr) y = __fadd_rn(y, E::to_float(static_cast<const typename E::T*>(bias)[i % n]));
    static_cast<typename E::T*>(out)[i] = E::from_float(y);
  }
}

}  // namespace reset_native::nvfp4_cuda::detail
