// The NVFP4 small-M GEMV kernel for Hopper (templates; instantiated per x dtype in gemv_<dtype>.cu): y[m, n] = x[m, k] @ dequantize(w)[n, k]^T (+ bias), m <= 16.
//
// Memory bound: every weight byte is read from HBM once per call, whatever m is. Each warp streams 16-byte
// weight fragments (ld.global.nc.L1::no_allocate) for 16*MT rows, decodes FP4 in registers into fp16/bf16
// pairs already multiplied by their E4M3 block scale (exact), and feeds them to mma.sync m16n8k16 as the
// A operand (weights on the m side). The tokens are the n side (padded to 8 or 16), read from a shared-
// memory copy of x that the CTA (or its whole thread-block cluster) stages once per 1024-wide K chunk,
// already permuted into the B-fragment order. Accumulation is fp32 throughout; the weight global scale,
// the 2^7 decode bias and (W4A4) the activation global scale are applied once in the epilogue.
// The dot product does not care about the order along K, so a thread's k-slots are simply the
// nibble pairs (j, j+4) of its own 16-byte load: no shuffles, no repacked weight layout.
// See docs/nvfp4_cuda.md for the tile choices and measured numbers.
#pragma once
#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include "nvfp4/nvfp4_device.cuh"
#include "nvfp4/launch_check.hpp"
#include "reset_native/nvfp4_cuda.hpp"

namespace reset_native::nvfp4_cuda {
namespace detail {
namespace cg = cooperative_groups;

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kKStep = 128;                 // K per warp per chunk (4 threads x 32 elements per row)
constexpr int kChunk = kWarps * kKStep;     // K staged per iteration
constexpr int kTokStride = kChunk + 32;     // u16 per staged token row; +64 B keeps LDS.128 conflict-free
constexpr int kPlane = kChunk / 4;          // u16 per "word plane" of a token row
constexpr int kUnitsPerToken = kChunk / 16; // staging unit = one 16-element block of one token
constexpr float kDecodeBias = 128.0f;       // A operand holds e2m1 * e4m3 * 2^-7; the epilogue multiplies 2^7

struct GemvParams {
  const uint8_t* packed;
  const uint8_t* scales;
  const void* x;
  const void* bias;
  void* out;
  const float* act_amax;  // W4A4 with a device-computed activation scale, else nullptr
  float act_gs;           // W4A4 static activation scale
  float w_gs;             // weight global scale
  int n, k, m;
  int x_aligned;          // x is 16-byte aligned (k % 16 == 0 keeps every block aligned then)
};

template <int XDT, bool W4A4>
struct Mode {
  static constexpr bool kABf16 = !W4A4 && XDT != kF16;            // A/B fragments in bf16 (else fp16)
  static constexpr int kSplits = (!W4A4 && XDT == kF32) ? 3 : 1;  // fp32 x = sum of 3 bf16 parts (exact)
};

// Raw bits of 16 consecutive elements of one token row (a staging unit), zero outside x.
template <int XDT>
struct RawUnit {
  static constexpr int kVec = int(sizeof(typename Elem<XDT>::T));  // uint4s per 16 elements
  uint4 r[kVec];
};

template <int XDT>
__device__ __forceinline__ void load_unit(const GemvParams& p, int tok, int kidx, RawUnit<XDT>& u) {
  using T = typename Elem<XDT>::T;
  if (tok >= p.m || kidx >= p.k) {
#pragma unroll
    for (int i = 0; i < RawUnit<XDT>::kVec; ++i) u.r[i] = make_uint4(0, 0, 0, 0);
    return;
  }
  const T* x = static_cast<const T*>(p.x) + int64_t(tok) * p.k + kidx;
  if (p.x_aligned) {
#pragma unroll
    for (int i = 0; i < RawUnit<XDT>::kVec; ++i) u.r[i] = __ldg(reinterpret_cast<const uint4*>(x) + i);
  } else {
    T* e = reinterpret_cast<T*>(u.r);
#pragma unroll
    for (int i = 0; i < 16; ++i) e[i] = x[i];
  }
}

__device__ __forceinline__ uint32_t pack_pair(float lo, float hi, bool bf16) {
  if (bf16) {
    const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&h);
  }
  const __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&h);
}

// Converts one staged unit (16 elements of a token row) into the B operand values for each split and
// stores them, permuted (pairs (j, j+4) of every 8 elements), into the staging buffer `dst`
// (this CTA's or a cluster peer's). W4A4 quantizes the block here (SPEC section 2 steps 2-5).
template <int XDT, bool W4A4>
__device__ __forceinline__ void store_unit(uint16_t* dst, int tok, int kk, const RawUnit<XDT>& u, float act_gs,
                                           float act_d) {
  using M = Mode<XDT, W4A4>;
  using E = Elem<XDT>;
  if constexpr (!W4A4 && XDT != kF32) {
    // 16-bit x passes through: only the pair permutation (j, j+4) of every 8 elements.
    uint16_t* row = dst + tok * kTokStride;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const uint4 q = u.r[h];
      const int e0 = kk + 8 * h;
      const uint4 o = make_uint4(__byte_perm(q.x, q.z, 0x5410), __byte_perm(q.x, q.z, 0x7632),
                                 __byte_perm(q.y, q.w, 0x5410), __byte_perm(q.y, q.w, 0x7632));
      *reinterpret_cast<uint4*>(row + ((e0 % 32) / 8) * kPlane + (e0 / 32) * 8) = o;
    }
    return;
  }
  float v[16];
  const auto* e = reinterpret_cast<const typename E::T*>(u.r);
#pragma unroll
  for (int i = 0; i < 16; ++i) v[i] = E::to_float(e[i]);
  float part[M::kSplits][16];
  if constexpr (W4A4) {
    float amax_b = 0.0f;
#pragma unroll
    for (int i = 0; i < 16; ++i) amax_b = fmaxf(amax_b, fabsf(v[i]));
    const uint32_t sb = e4m3_encode_scale(__fdiv_rn(amax_b, act_d));
    const float sdec = e4m3_decode(sb);
    const float s = __fmul_rn(sdec, act_gs);
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const float q = e2m1_magnitude_value(e2m1_round_magnitude(__fdiv_rn(fabsf(v[i]), s))) * sdec;
      part[0][i] = copysignf(q, v[i]);  // exact: e2m1 * e4m3 has <= 6 significant bits, fits fp16
    }
  } else if constexpr (M::kSplits == 3) {
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const float hi = __bfloat162float(__float2bfloat16_rn(v[i]));
      const float r1 = v[i] - hi;
      const float mid = __bfloat162float(__float2bfloat16_rn(r1));
      part[0][i] = hi;
      part[1][i] = mid;
      part[2][i] = r1 - mid;
    }
  } else {
#pragma unroll
    for (int i = 0; i < 16; ++i) part[0][i] = v[i];
  }
#pragma unroll
  for (int s = 0; s < M::kSplits; ++s) {
    uint16_t* row = dst + (s * 16 + tok) * kTokStride;  // split-major; tokens padded to 16 per split
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int e0 = kk + 8 * h;  // first element of these 8, a multiple of 8
      uint4 o;
      const float* f = &part[s][8 * h];
      o.x = pack_pair(f[0], f[4], M::kABf16);
      o.y = pack_pair(f[1], f[5], M::kABf16);
      o.z = pack_pair(f[2], f[6], M::kABf16);
      o.w = pack_pair(f[3], f[7], M::kABf16);
      *reinterpret_cast<uint4*>(row + ((e0 % 32) / 8) * kPlane + (e0 / 32) * 8) = o;
    }
  }
}

template <int MT, bool FAST>
__device__ __forceinline__ void load_weights(const GemvParams& p, int row0, int g, int kbase,
                                             uint32_t (&wv)[MT][2][4], uint32_t (&sc)[MT][2]) {
  const int64_t half_k = p.k / 2, sixteenth_k = p.k / 16;
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      const int row = min(row0 + mt * 16 + hr * 8 + g, p.n - 1);  // rows past n: valid memory, unused
      const uint8_t* wp = p.packed + row * half_k + kbase / 2;
      const uint8_t* sp = p.scales + row * sixteenth_k + kbase / 16;
      if constexpr (FAST) {
        const uint4 v = ld_stream_v4(wp);
        wv[mt][hr][0] = v.x, wv[mt][hr][1] = v.y, wv[mt][hr][2] = v.z, wv[mt][hr][3] = v.w;
        sc[mt][hr] = __ldg(reinterpret_cast<const uint16_t*>(sp));
      } else {
        uint2 a = make_uint2(0, 0), b = make_uint2(0, 0);
        uint32_t s0 = 0, s1 = 0;  // scale 0 => exact zeros beyond k
        if (kbase + 16 <= p.k) a = ld_stream_v2(wp), s0 = __ldg(sp);
        if (kbase + 32 <= p.k) b = ld_stream_v2(wp + 8), s1 = __ldg(sp + 1);
        wv[mt][hr][0] = a.x, wv[mt][hr][1] = a.y, wv[mt][hr][2] = b.x, wv[mt][hr][3] = b.y;
        sc[mt][hr] = s0 | (s1 << 8);
      }
    }
  }
}

// Block-scale pair (s, s) for the A operand, times 2^7: fp16 or bf16 bits.
template <bool BF16>
__device__ __forceinline__ void scale_pairs(uint32_t two_bytes, uint32_t& s0, uint32_t& s1) {
  uint32_t h = e4m3x2_to_half2(two_bytes);
  if constexpr (BF16) {
    const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&h));
    // fp4 pairs decode as e2m1 * 2^-126 in bf16: bring the scale to e4m3 * 2^119 (exact, < 2^128).
    constexpr float kBias = 6.6461399789245794e35f;  // 2^119
    h = pack_pair(f.x * kBias, f.y * kBias, true);
  } else {
    // fp4 pairs decode as e2m1 * 2^-14 in fp16: scale by e4m3 * 2^7 (<= 57344, exact).
    const __half2 b = __float2half2_rn(kDecodeBias);
    const __half2 r = __hmul2(*reinterpret_cast<const __half2*>(&h), b);
    h = *reinterpret_cast<const uint32_t*>(&r);
  }
  s0 = __byte_perm(h, 0, 0x1010);
  s1 = __byte_perm(h, 0, 0x3232);
}

template <bool BF16>
__device__ __forceinline__ void fp4_word(uint32_t w, uint32_t (&o)[4]) {
  o[0] = fp4_pair<0, BF16>(w);
  o[1] = fp4_pair<1, BF16>(w);
  o[2] = fp4_pair<2, BF16>(w);
  o[3] = fp4_pair<3, BF16>(w);
}

template <int XDT, bool W4A4, int NT, int MT, bool FAST, int CLUSTER>
__global__ void __launch_bounds__(kThreads, 2) gemv_kernel(const GemvParams p) {
  using M = Mode<XDT, W4A4>;
  constexpr bool kBf = M::kABf16;
  constexpr int kSplits = M::kSplits;
  constexpr int kRows = 16 * MT;
  constexpr int kTok = 8 * NT;
  constexpr int kBufU16 = kSplits * 16 * kTokStride;  // one staging buffer
  constexpr int kUnits = kTok * kUnitsPerToken;
  constexpr int kUnitsPerThread = (kUnits + CLUSTER * kThreads - 1) / (CLUSTER * kThreads);

  extern __shared__ uint4 smem_raw[];
  uint16_t* xs = reinterpret_cast<uint16_t*>(smem_raw);

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
  const int row0 = blockIdx.x * kRows;
  const int nchunks = (p.k + kChunk - 1) / kChunk;
  int crank = 0;
  if constexpr (CLUSTER > 1) crank = int(cg::this_cluster().block_rank());

  float act_gs = 1.0f, act_d = 6.0f;
  if constexpr (W4A4) {
    if (p.act_amax != nullptr) {
      const float amax = *p.act_amax;
      act_gs = amax == 0.0f ? 1.0f : __fdiv_rn(amax, kAmaxToGlobal);
    } else {
      act_gs = p.act_gs;
    }
    act_d = __fmul_rn(6.0f, act_gs);
  }

  auto barrier = [] {
    if constexpr (CLUSTER > 1) {
      cg::this_cluster().sync();
    } else {
      __syncthreads();
    }
  };
  // Loads this thread's share of chunk c of x (one unit = 16 elements of a token).
  auto load_x = [&](int c, RawUnit<XDT> (&v)[kUnitsPerThread]) {
#pragma unroll
    for (int u = 0; u < kUnitsPerThread; ++u) {
      const int unit = (u * CLUSTER + crank) * kThreads + tid;
      const int tok = unit / kUnitsPerToken;
      load_unit<XDT>(p, unit < kUnits ? tok : p.m, c * kChunk + (unit % kUnitsPerToken) * 16, v[u]);
    }
  };
  auto store_x = [&](int buf, const RawUnit<XDT> (&v)[kUnitsPerThread]) {
#pragma unroll
    for (int u = 0; u < kUnitsPerThread; ++u) {
      const int unit = (u * CLUSTER + crank) * kThreads + tid;
      if (unit >= kUnits) continue;
      const int tok = unit / kUnitsPerToken, kk = (unit % kUnitsPerToken) * 16;
      if constexpr (CLUSTER > 1) {
        cg::cluster_group cluster = cg::this_cluster();
#pragma unroll
        for (int r = 0; r < CLUSTER; ++r) {
          uint16_t* dst = cluster.map_shared_rank(xs, r) + buf * kBufU16;
          store_unit<XDT, W4A4>(dst, tok, kk, v[u], act_gs, act_d);
        }
      } else {
        store_unit<XDT, W4A4>(xs + buf * kBufU16, tok, kk, v[u], act_gs, act_d);
      }
    }
  };

  float acc[MT][NT][4];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) acc[mt][nt][0] = acc[mt][nt][1] = acc[mt][nt][2] = acc[mt][nt][3] = 0.0f;

  // Weight prefetch depth in chunks: 64 bytes of weights in flight per thread whatever the row tile.
  constexpr int kDepth = MT == 1 ? 2 : 1;
  uint32_t wv[kDepth][MT][2][4], sc[kDepth][MT][2];
  const int kwarp = warp * kKStep + t * 32;  // this thread's K offset inside a chunk
#pragma unroll
  for (int d = 0; d < kDepth; ++d)
    if (d < nchunks) load_weights<MT, FAST>(p, row0, g, d * kChunk + kwarp, wv[d], sc[d]);
  {
    RawUnit<XDT> v[kUnitsPerThread];
    load_x(0, v);
    store_x(0, v);
  }
  barrier();

  for (int c = 0; c < nchunks; ++c) {
    const bool more = c + 1 < nchunks;
    const bool fetch = c + kDepth < nchunks;
    uint32_t wn[MT][2][4], scn[MT][2];
    RawUnit<XDT> vn[kUnitsPerThread];
    if (fetch) load_weights<MT, FAST>(p, row0, g, (c + kDepth) * kChunk + kwarp, wn, scn);
    if (more) load_x(c + 1, vn);

    // ---- compute chunk c from registers (weights) and the staged buffer c & 1 (x)
    const uint16_t* xb = xs + (c & 1) * kBufU16 + (warp * 4 + t) * 8;
    uint32_t spair[MT][2][2];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int hr = 0; hr < 2; ++hr) scale_pairs<kBf>(sc[0][mt][hr], spair[mt][hr][0], spair[mt][hr][1]);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      uint4 bfr[kSplits][NT];
#pragma unroll
      for (int s = 0; s < kSplits; ++s)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
          bfr[s][nt] = *reinterpret_cast<const uint4*>(xb + (s * 16 + nt * 8 + g) * kTokStride + i * kPlane);
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        uint32_t d0[4], d1[4];
        fp4_word<kBf>(wv[0][mt][0][i], d0);
        fp4_word<kBf>(wv[0][mt][1][i], d1);
        const uint32_t s0 = spair[mt][0][i / 2], s1 = spair[mt][1][i / 2];
#pragma unroll
        for (int jj = 0; jj < 2; ++jj) {
          const uint32_t a[4] = {mul_pair(d0[2 * jj], s0, kBf), mul_pair(d1[2 * jj], s1, kBf),
                                 mul_pair(d0[2 * jj + 1], s0, kBf), mul_pair(d1[2 * jj + 1], s1, kBf)};
#pragma unroll
          for (int s = 0; s < kSplits; ++s)
#pragma unroll
            for (int nt = 0; nt < NT; ++nt) {
              const uint32_t* b = reinterpret_cast<const uint32_t*>(&bfr[s][nt]);
              mma16816<kBf>(acc[mt][nt], a, b[2 * jj], b[2 * jj + 1]);
            }
        }
      }
    }

    if (more) store_x((c + 1) & 1, vn);
    barrier();
    // Rotate the prefetched chunks (constant indices: stays in registers).
#pragma unroll
    for (int d = 0; d + 1 < kDepth; ++d)
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int hr = 0; hr < 2; ++hr) {
          sc[d][mt][hr] = sc[d + 1][mt][hr];
#pragma unroll
          for (int i = 0; i < 4; ++i) wv[d][mt][hr][i] = wv[d + 1][mt][hr][i];
        }
    if (fetch) {
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int hr = 0; hr < 2; ++hr) {
          sc[kDepth - 1][mt][hr] = scn[mt][hr];
#pragma unroll
          for (int i = 0; i < 4; ++i) wv[kDepth - 1][mt][hr][i] = wn[mt][hr][i];
        }
    }
  }

  // ---- epilogue: reduce the warps' K slices through shared memory (the staging buffers are free now:
  // the last barrier ordered every read of them and no peer writes after it).
  float* red = reinterpret_cast<float*>(smem_raw);  // [kWarps][kRows][kTok]
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int rl = mt * 16 + g + (e / 2) * 8, tok = nt * 8 + 2 * t + (e % 2);
        red[(warp * kRows + rl) * kTok + tok] = acc[mt][nt][e];
      }
  __syncthreads();
  using E = Elem<XDT>;
  auto* out = static_cast<typename E::T*>(p.out);
  const auto* bias = static_cast<const typename E::T*>(p.bias);
  for (int idx = tid; idx < kRows * p.m; idx += kThreads) {
    const int rl = idx % kRows, tok = idx / kRows, row = row0 + rl;
    if (row >= p.n) continue;
    float sum = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) sum += red[(w * kRows + rl) * kTok + tok];
    float y = (sum * kDecodeBias) * p.w_gs;
    if constexpr (W4A4) y *= act_gs;
    if (bias != nullptr) y += E::to_float(bias[row]);
    out[int64_t(tok) * p.n + row] = E::from_float(y);
  }
}

template <int XDT, bool W4A4, int NT, int MT, bool FAST, int CLUSTER>
void launch_tile(const GemvParams& p, int grid, cudaStream_t stream) {
  using M = Mode<XDT, W4A4>;
  auto kernel = gemv_kernel<XDT, W4A4, NT, MT, FAST, CLUSTER>;
  const size_t stage = size_t(2) * M::kSplits * 16 * kTokStride * sizeof(uint16_t);
  const size_t reduce = size_t(kWarps) * 16 * MT * 8 * NT * sizeof(float);
  const size_t smem = stage > reduce ? stage : reduce;
  check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
             "nvfp4 gemv: cudaFuncSetAttribute");
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(unsigned(grid));
  cfg.blockDim = dim3(kThreads);
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = CLUSTER;
  attr[0].val.clusterDim.y = 1;
  attr[0].val.clusterDim.z = 1;
  cfg.attrs = attr;
  cfg.numAttrs = CLUSTER > 1 ? 1 : 0;
  check_cuda(cudaLaunchKernelEx(&cfg, kernel, p), "nvfp4 gemv: launch");
}

// Tile choice by shape (docs/nvfp4_cuda.md): 16 rows per CTA unless the layer is tall enough to fill the
// SMs twice with 32; tokens padded to 8 or 16; clusters of 4 CTAs share the staging of x when m > 2
// (any W4A4 m > 1), which divides the L2 traffic for x and the redundant activation quantization by 4.
template <int XDT, bool W4A4, int NT, int CLUSTER>
void dispatch_rows(const GemvParams& p, bool fast, int sms, cudaStream_t stream) {
  const bool tall = (p.n + 31) / 32 >= 2 * sms;
  const int rows = fast && tall ? 32 : 16;
  const int grid = ((p.n + rows - 1) / rows + CLUSTER - 1) / CLUSTER * CLUSTER;
  if (!fast) return launch_tile<XDT, W4A4, NT, 1, false, CLUSTER>(p, grid, stream);
  if (tall) return launch_tile<XDT, W4A4, NT, 2, true, CLUSTER>(p, grid, stream);
  return launch_tile<XDT, W4A4, NT, 1, true, CLUSTER>(p, grid, stream);
}

// Explicitly instantiated once per (x dtype, activation) in gemv_<dtype>_<act>.cu (parallel compilation).
template <int XDT, bool W4A4>
void dispatch_mode(const GemvParams& p, bool fast, int sms, cudaStream_t stream) {
  const bool cluster = W4A4 ? p.m > 1 : p.m > 2;
  if (p.m > 8) return dispatch_rows<XDT, W4A4, 2, 4>(p, fast, sms, stream);
  if (cluster) return dispatch_rows<XDT, W4A4, 1, 4>(p, fast, sms, stream);
  return dispatch_rows<XDT, W4A4, 1, 1>(p, fast, sms, stream);
}

}  // namespace detail
}  // namespace reset_native::nvfp4_cuda
