// Attention of one new token per sequence over a static KV cache (decode), grouped-query heads, in one kernel
// (reset_native/ops_cuda.hpp): SDPA's result for q_len = 1 without the separate mask memset and the
// general-purpose kernel's setup. One block per (sequence, kv head) computes the kv head's G query heads:
// groups of D/8 lanes take one cache position each (8 elements per lane), keep an online softmax per head
// in fp32, and the groups' partial results are merged at the end (exact rescaling by exp(m_i - m)).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <string>

#include "core/pdl.cuh"
#include "ops/dtype_conv.cuh"
#include "reset_native/error.hpp"
#include "reset_native/ops_cuda.hpp"

namespace reset_native::ops_cuda {
namespace {

constexpr int kPerLane = 8;  // head-dim elements per lane

// Warps per block: 16 (more positions in flight), 8 for 8 query heads per kv head (their q and accumulators
// need more than the 128 registers a thread of a 512-thread block may have).
template <int G>
constexpr int warps_for() {
  return G >= 8 ? 8 : 16;
}

// 8 consecutive elements of a row -> fp32.
template <class T>
__device__ __forceinline__ void load8(const T* p, float (&v)[kPerLane]) {
  if constexpr (sizeof(T) == 2) {
    const uint4 raw = *reinterpret_cast<const uint4*>(p);
    const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) v[i] = Conv<T>::to_float(e[i]);
  } else {
    const float4 a = reinterpret_cast<const float4*>(p)[0], b = reinterpret_cast<const float4*>(p)[1];
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
  }
}

template <class T, int D, int G>
__global__ void __launch_bounds__(warps_for<G>() * 32) decode_attention_kernel(const DecodeAttentionArgs a) {
  constexpr int kWarps = warps_for<G>();
  constexpr int kThreads = kWarps * 32;
  constexpr int kLanes = D / kPerLane;   // lanes per cache position
  constexpr int kGroups = 32 / kLanes;   // positions a warp works on at once
  constexpr int kStride = kWarps * kGroups;
  extern __shared__ float smem[];        // [kWarps][G] m, [kWarps][G] l, [kWarps][G][D] acc
  float* m_s = smem;
  float* l_s = m_s + kWarps * G;
  float* acc_s = l_s + kWarps * G;

  const int hkv = blockIdx.x, b = blockIdx.y;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, grp = lane / kLanes, sub = lane % kLanes;
  const T* k_row = static_cast<const T*>(a.k_cache) + (std::int64_t(b) * a.hk + hkv) * a.len * D + sub * kPerLane;
  const T* v_row = static_cast<const T*>(a.v_cache) + (std::int64_t(b) * a.hk + hkv) * a.len * D + sub * kPerLane;
  constexpr float kLog2e = 1.4426950408889634f;
  const auto* mask = a.mask == nullptr ? nullptr
                                        : static_cast<const unsigned char*>(a.mask) +
                                              std::int64_t(b) * a.m_sb * std::int64_t(a.mask_additive ? sizeof(T) : 1);
  const float qscale = a.scale * kLog2e;  // scores in log2 units: exp2 below

  cuda_core::pdl_wait();  // q and the cache come from the previous kernels
  cuda_core::pdl_trigger();
  // Nothing in this kernel reads the counter; the cache write that used it has completed (pdl_wait).
  if (a.advance != nullptr && blockIdx.x == 0 && blockIdx.y == 0 && threadIdx.x == 0) *a.advance += 1;

  float q[G][kPerLane];
#pragma unroll
  for (int g = 0; g < G; ++g) {
    load8(static_cast<const T*>(a.q) + std::int64_t(b) * a.q_sb + std::int64_t(hkv * G + g) * a.q_sh + sub * kPerLane,
          q[g]);
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) q[g][i] *= qscale;
  }
  float m[G], l[G], acc[G][kPerLane];
#pragma unroll
  for (int g = 0; g < G; ++g) {
    m[g] = -INFINITY, l[g] = 0.0f;
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) acc[g][i] = 0.0f;
  }

  // Group grp of warp w takes positions j = j0 + grp for j0 = w * kGroups, + kStride, ...: the loop bounds are
  // the warp's (its lanes meet in the shuffles); the next position's rows are loaded before the current ones
  // are used.
  const int first = warp * kGroups + grp;
  float kv[kPerLane], vv[kPerLane];
  if (first < a.len) load8(k_row + std::int64_t(first) * D, kv), load8(v_row + std::int64_t(first) * D, vv);
  for (int j0 = warp * kGroups; j0 < a.len; j0 += kStride) {
    const int j = j0 + grp, jn = j + kStride;
    float kc[kPerLane], vc[kPerLane];
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) kc[i] = kv[i], vc[i] = vv[i];
    if (jn < a.len) load8(k_row + std::int64_t(jn) * D, kv), load8(v_row + std::int64_t(jn) * D, vv);
    bool allowed = j < a.len;
    float bias = 0.0f;  // additive mask, in log2 units
    if (allowed && mask != nullptr) {
      if (a.mask_additive) {
        bias = Conv<T>::to_float(reinterpret_cast<const T*>(mask)[std::int64_t(j) * a.m_sl]) * kLog2e;
        allowed = bias != -INFINITY;
      } else {
        allowed = mask[std::int64_t(j) * a.m_sl] != 0;
      }
    }
#pragma unroll
    for (int g = 0; g < G; ++g) {
      float s = 0.0f;
#pragma unroll
      for (int i = 0; i < kPerLane; ++i) s = fmaf(q[g][i], kc[i], s);
#pragma unroll
      for (int off = kLanes / 2; off > 0; off /= 2) s += __shfl_xor_sync(0xFFFFFFFFu, s, off);
      if (!allowed) continue;  // the same for every lane of the group (same j)
      s += bias;
      const float mn = fmaxf(m[g], s);
      const float corr = exp2f(m[g] - mn);  // m = -inf the first time: 0
      const float p = exp2f(s - mn);
      l[g] = fmaf(l[g], corr, p);
#pragma unroll
      for (int i = 0; i < kPerLane; ++i) acc[g][i] = fmaf(acc[g][i], corr, p * vc[i]);
      m[g] = mn;
    }
  }

  // Merge the warp's groups (lanes sub of every group hold the same dims), then the warps through shared memory.
#pragma unroll
  for (int off = kLanes; off < 32; off *= 2) {
#pragma unroll
    for (int g = 0; g < G; ++g) {
      const float mo = __shfl_xor_sync(0xFFFFFFFFu, m[g], off), lo = __shfl_xor_sync(0xFFFFFFFFu, l[g], off);
      const float mn = fmaxf(m[g], mo);
      const float c0 = mn == -INFINITY ? 0.0f : exp2f(m[g] - mn), c1 = mn == -INFINITY ? 0.0f : exp2f(mo - mn);
      l[g] = l[g] * c0 + lo * c1;
#pragma unroll
      for (int i = 0; i < kPerLane; ++i) {
        const float ao = __shfl_xor_sync(0xFFFFFFFFu, acc[g][i], off);
        acc[g][i] = acc[g][i] * c0 + ao * c1;
      }
      m[g] = mn;
    }
  }
  if (grp == 0) {
#pragma unroll
    for (int g = 0; g < G; ++g) {
      if (sub == 0) m_s[warp * G + g] = m[g], l_s[warp * G + g] = l[g];
#pragma unroll
      for (int i = 0; i < kPerLane; ++i) acc_s[(warp * G + g) * D + sub * kPerLane + i] = acc[g][i];
    }
  }
  __syncthreads();
  T* out = static_cast<T*>(a.out) + (std::int64_t(b) * a.hq + std::int64_t(hkv) * G) * D;
  for (int idx = threadIdx.x; idx < G * D; idx += kThreads) {
    const int g = idx / D, dim = idx % D;
    float mx = -INFINITY;
    for (int w = 0; w < kWarps; ++w) mx = fmaxf(mx, m_s[w * G + g]);
    float num = 0.0f, den = 0.0f;
    if (mx != -INFINITY) {
      for (int w = 0; w < kWarps; ++w) {
        const float c = exp2f(m_s[w * G + g] - mx);
        num = fmaf(acc_s[(w * G + g) * D + dim], c, num);
        den = fmaf(l_s[w * G + g], c, den);
      }
    }
    out[idx] = Conv<T>::from_float(den > 0.0f ? num / den : 0.0f);  // every position masked: zeros
  }
}

template <class T, int D, int G>
void launch_dg(const DecodeAttentionArgs& a, cudaStream_t s) {
  auto kernel = decode_attention_kernel<T, D, G>;
  constexpr int kWarps = warps_for<G>();
  const size_t smem = sizeof(float) * size_t(kWarps) * G * (2 + D);
  cudaError_t status = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
  if (status == cudaSuccess)
    status = cuda_core::launch_pdl(kernel, dim3(unsigned(a.hk), unsigned(a.batch)), dim3(kWarps * 32), smem, s, a);
  if (status != cudaSuccess) {
    (void)cudaGetLastError();
    throw Error(std::string("decode_attention: launch: ") + cudaGetErrorString(status));
  }
}

template <class T, int D>
void launch_d(const DecodeAttentionArgs& a, cudaStream_t s) {
  switch (a.hq / a.hk) {
    case 1: return launch_dg<T, D, 1>(a, s);
    case 2: return launch_dg<T, D, 2>(a, s);
    case 4: return launch_dg<T, D, 4>(a, s);
    case 8: return launch_dg<T, D, 8>(a, s);
    default: throw InvalidArgument("decode_attention: query heads per kv head must be 1, 2, 4 or 8");
  }
}

template <class T>
void launch_t(const DecodeAttentionArgs& a, cudaStream_t s) {
  if (a.d == 64) return launch_d<T, 64>(a, s);
  if (a.d == 128) return launch_d<T, 128>(a, s);
  throw InvalidArgument("decode_attention: head dim must be 64 or 128, got " + std::to_string(a.d));
}

}  // namespace

bool decode_attention_supported(int hq, int hk, int d) {
  if (hk <= 0 || hq <= 0 || hq % hk != 0) return false;
  const int g = hq / hk;
  return (d == 64 || d == 128) && (g == 1 || g == 2 || g == 4 || g == 8);
}

void launch_decode_attention(const DecodeAttentionArgs& a, DType dtype, void* stream) {
  require(a.batch >= 0 && a.len >= 0, "decode_attention: batch and len must be >= 0");
  require(decode_attention_supported(a.hq, a.hk, a.d),
          "decode_attention: need hq % hk == 0 with hq / hk in {1, 2, 4, 8} and head dim 64 or 128, got hq=" +
              std::to_string(a.hq) + " hk=" + std::to_string(a.hk) + " d=" + std::to_string(a.d));
  if (a.batch == 0) return;
  require(a.q != nullptr && a.k_cache != nullptr && a.v_cache != nullptr && a.out != nullptr,
          "decode_attention: null pointer");
  require(a.batch < 65536, "decode_attention: batch must be < 65536");
  const auto s = static_cast<cudaStream_t>(stream);
  switch (dtype) {
    case DType::F32: return launch_t<float>(a, s);
    case DType::F16: return launch_t<__half>(a, s);
    case DType::BF16: return launch_t<__nv_bfloat16>(a, s);
  }
  throw InvalidType("decode_attention: dtype must be F32, F16 or BF16");
}

}  // namespace reset_native::ops_cuda
