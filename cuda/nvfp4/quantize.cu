// NVFP4 quantize / dequantize / amax kernels (SPEC-nvfp4 section 2). Quantize is offline-speed, exactness first: one
// thread per 16-element block, IEEE division (__fdiv_rn), no fast-math, so the bytes match the CPU reference.
// Dequantize streams (prefill expands layers with it; see dequantize_kernel); quantize_values is the prefill W4A4
// route's x: quantize and expand in one launch.
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "nvfp4/gemv_w4a4_quant.cuh"
#include "nvfp4/launch_check.hpp"
#include "nvfp4/nvfp4_device.cuh"
#include "reset_native/error.hpp"
#include "reset_native/nvfp4_cuda.hpp"

namespace reset_native::nvfp4_cuda {
namespace detail {

constexpr int kBlockThreads = 256;

template <int DT>
__global__ void amax_kernel(const typename Elem<DT>::T* __restrict__ x, int64_t count, float* amax_out,
                            unsigned long long* first_nonfinite) {
  float amax = 0.0f;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    const float v = Elem<DT>::to_float(x[i]);
    if (first_nonfinite != nullptr && !isfinite(v)) atomicMin(first_nonfinite, (unsigned long long)i);
    amax = fmaxf(amax, fabsf(v));
  }
  // fmaxf drops NaN; an Inf survives and poisons the scale, which callers that care detect via first_nonfinite.
#pragma unroll
  for (int off = 16; off > 0; off /= 2) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
  __shared__ float warp_max[kBlockThreads / 32];
  if (threadIdx.x % 32 == 0) warp_max[threadIdx.x / 32] = amax;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < int(blockDim.x / 32); ++w) amax = fmaxf(amax, warp_max[w]);
    // Non-negative floats order like their bit patterns.
    atomicMax(reinterpret_cast<unsigned int*>(amax_out), __float_as_uint(amax));
  }
}

template <int DT>
__global__ void quantize_kernel(const typename Elem<DT>::T* __restrict__ w, int64_t blocks, float global_scale,
                                uint8_t* __restrict__ packed, uint8_t* __restrict__ scales) {
  const float d = __fmul_rn(6.0f, global_scale);
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t b = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; b < blocks; b += stride) {
    float v[16];
#pragma unroll
    for (int i = 0; i < 16; ++i) v[i] = Elem<DT>::to_float(w[b * 16 + i]);
    uint32_t q[2];
    scales[b] = uint8_t(quantize_block16(v, global_scale, d, q));
#pragma unroll
    for (int i = 0; i < 8; ++i) packed[b * 8 + i] = uint8_t(q[i / 4] >> (8 * (i % 4)));
  }
}

__device__ __forceinline__ uint32_t value_bits(float v) { return __float_as_uint(v); }
__device__ __forceinline__ uint16_t value_bits(__half v) { return __half_as_ushort(v); }
__device__ __forceinline__ uint16_t value_bits(__nv_bfloat16 v) { return __bfloat16_as_ushort(v); }

// The 16 codes of one block: one 8-byte load when packed is 8-byte aligned, else byte loads (odd views).
__device__ __forceinline__ uint2 block_codes(const uint8_t* __restrict__ packed, int64_t b, bool vec) {
  if (vec) return reinterpret_cast<const uint2*>(packed)[b];
  const uint8_t* p = packed + b * 8;
  return make_uint2(uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24,
                    uint32_t(p[4]) | uint32_t(p[5]) << 8 | uint32_t(p[6]) << 16 | uint32_t(p[7]) << 24);
}

// Stores one block's 16 values (bit patterns in bits; 16-bit types in the low halves) to o: 16-byte stores built in
// registers when o is 16-byte aligned (vec), else element stores.
template <typename Bits>
__device__ __forceinline__ void store_block16(Bits* o, const uint32_t (&bits)[16], bool vec) {
  if (!vec) {
#pragma unroll
    for (int i = 0; i < 16; ++i) o[i] = Bits(bits[i]);
  } else if (sizeof(Bits) == 2) {
#pragma unroll
    for (int q = 0; q < 2; ++q)
      reinterpret_cast<uint4*>(o)[q] = make_uint4(bits[8 * q] | bits[8 * q + 1] << 16,
                                                  bits[8 * q + 2] | bits[8 * q + 3] << 16,
                                                  bits[8 * q + 4] | bits[8 * q + 5] << 16,
                                                  bits[8 * q + 6] | bits[8 * q + 7] << 16);
  } else {
#pragma unroll
    for (int q = 0; q < 4; ++q)
      reinterpret_cast<uint4*>(o)[q] = make_uint4(bits[4 * q], bits[4 * q + 1], bits[4 * q + 2], bits[4 * q + 3]);
  }
}

// One thread per 16-value block: an 8-byte load of its codes and 16-byte stores of its values (32 bytes side by side
// for 16-bit out). Of the layouts timed in session 25 (bench/probes/dequant_variants.cu: 8, 16 or 32 codes per
// thread), this one streams fastest there, 83-84% of a bf16 copy's rate on an H200 (less through the package's op:
// docs/nvfp4_cuda.md "Prefill"); prefill expands whole layers with it (nvfp4.gemv, M > 16), so it matters.
// vec: packed 8-byte and out 16-byte aligned (the usual case; odd views take byte loads and element stores, the
// same values).
template <int DT>
__global__ void dequantize_kernel(const uint8_t* __restrict__ packed, const uint8_t* __restrict__ scales,
                                  int64_t blocks, float global_scale, bool vec,
                                  typename Elem<DT>::T* __restrict__ out) {
  using Bits = decltype(value_bits(typename Elem<DT>::T()));
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t b = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; b < blocks; b += stride) {
    const uint2 codes = block_codes(packed, b, vec);
    const float s = e4m3_decode(scales[b]);
    uint32_t bits[16];  // the values' bit patterns, so the stores below build uint4 words in registers
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const uint32_t code = ((i < 8 ? codes.x : codes.y) >> (4 * (i % 8))) & 0xFu;
      // e2m1 * e4m3 is exact; the product with the global scale is the one fp32 rounding.
      const float mag = __fmul_rn(__fmul_rn(e2m1_magnitude_value(code & 7u), s), global_scale);
      bits[i] = value_bits(Elem<DT>::from_float(code & 8u ? -mag : mag));
    }
    store_block16(reinterpret_cast<Bits*>(out + b * 16), bits, vec);
  }
}

// The 16 values of block b of x, widened to fp32: 16-byte loads where x is 16-byte aligned (vec), else element loads.
template <int DT>
__device__ __forceinline__ void load_block16(const typename Elem<DT>::T* __restrict__ x, int64_t b, bool vec,
                                             float (&v)[16]) {
  using T = typename Elem<DT>::T;
  if (vec) {
    constexpr int kWords = 16 * sizeof(T) / 16;  // uint4 words per block: 2 (16-bit) or 4 (fp32)
    T e[16];
#pragma unroll
    for (int w = 0; w < kWords; ++w) reinterpret_cast<uint4*>(e)[w] = reinterpret_cast<const uint4*>(x + b * 16)[w];
#pragma unroll
    for (int i = 0; i < 16; ++i) v[i] = Elem<DT>::to_float(e[i]);
  } else {
#pragma unroll
    for (int i = 0; i < 16; ++i) v[i] = Elem<DT>::to_float(x[b * 16 + i]);
  }
}

// x [n, k] -> the values NVFP4 quantization with global_scale gives it, *without* the global scale: e2m1(code) *
// e4m3(scale) (exact in fp16 / bf16: at most 6 significant bits in [2^-10, 2688]). The prefill W4A4 route multiplies
// them on tensor cores (python/reset_native/_nvfp4_prefill.py) and applies the global scales as the GEMM's alpha; one
// launch in place of quantize + dequantize. Blocks in its range take the W4A4 GEMV's fast quantizer
// (quantize_activation_block_fast, gemv_w4a4_quant.cuh: the same bits in ~19 instead of ~50 instructions per
// element), the others quantize_block16. A NaN / Inf element becomes NaN (its codes would be finite), so the GEMM
// turns its whole output row NaN rather than a silent number. One thread per 16-element block, as quantize.
template <int DIN, int DOUT>
__global__ void quantize_values_kernel(const typename Elem<DIN>::T* __restrict__ x, int64_t blocks,
                                       float global_scale, bool vec_in, bool vec_out,
                                       typename Elem<DOUT>::T* __restrict__ out) {
  using Bits = decltype(value_bits(typename Elem<DOUT>::T()));
  const float d = __fmul_rn(6.0f, global_scale);
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t b = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; b < blocks; b += stride) {
    float v[16];
    load_block16<DIN>(x, b, vec_in, v);
    uint32_t bad = 0;  // the non-finite elements, which come out NaN
#pragma unroll
    for (int i = 0; i < 16; ++i) bad |= uint32_t(!isfinite(v[i])) << i;
    if (!quantize_activation_block_fast(v, global_scale, d)) {  // v untouched: the exact general path
      uint32_t q[2];
      const float s = e4m3_decode(quantize_block16(v, global_scale, d, q));
#pragma unroll
      for (int i = 0; i < 16; ++i) {
        const uint32_t code = (q[i / 8] >> (4 * (i % 8))) & 0xFu;
        const float mag = __fmul_rn(e2m1_magnitude_value(code & 7u), s);  // exact
        v[i] = code & 8u ? -mag : mag;
      }
    }
    uint32_t bits[16];
#pragma unroll
    for (int i = 0; i < 16; ++i)
      bits[i] = value_bits(Elem<DOUT>::from_float(bad >> i & 1u ? __int_as_float(0x7fc00000) : v[i]));
    store_block16(reinterpret_cast<Bits*>(out + b * 16), bits, vec_out);
  }
}

template <int DIN>
void launch_quantize_values_from(const void* x, int64_t blocks, float global_scale, bool vec_out, void* out,
                                 DType out_dtype, cudaStream_t stream) {
  const int64_t ctas = (blocks + kBlockThreads - 1) / kBlockThreads;
  const int grid = int(ctas < (1 << 20) ? ctas : (1 << 20));
  const auto* in = static_cast<const typename Elem<DIN>::T*>(x);
  const bool vec_in = reinterpret_cast<std::uintptr_t>(x) % 16 == 0;
  if (out_dtype == DType::F16) {
    quantize_values_kernel<DIN, kF16><<<grid, kBlockThreads, 0, stream>>>(in, blocks, global_scale, vec_in, vec_out,
                                                                          static_cast<__half*>(out));
  } else {
    quantize_values_kernel<DIN, kBF16><<<grid, kBlockThreads, 0, stream>>>(in, blocks, global_scale, vec_in,
                                                                           vec_out, static_cast<__nv_bfloat16*>(out));
  }
}

int grid_for(int64_t work) {
  const int64_t blocks = (work + kBlockThreads - 1) / kBlockThreads;
  return int(blocks < 4096 ? (blocks > 0 ? blocks : 1) : 4096);
}

void require_shape(std::int64_t n, std::int64_t k, const char* who) {
  require(n > 0 && k > 0 && k % 16 == 0, std::string(who) + ": need n > 0 and k > 0 with k % 16 == 0, got n=" +
                                             std::to_string(n) + " k=" + std::to_string(k));
}

}  // namespace detail

void launch_amax(const void* x, DType dtype, std::int64_t count, float* amax_out,
                 unsigned long long* first_nonfinite, void* stream_ptr) {
  using namespace detail;
  require(count > 0, "nvfp4 amax: count must be > 0, got " + std::to_string(count));
  require(x != nullptr && amax_out != nullptr, "nvfp4 amax: null pointer");
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  const int grid = grid_for((count + 7) / 8) < 264 ? grid_for((count + 7) / 8) : 264;
  switch (dtype) {
    case DType::F32:
      amax_kernel<kF32><<<grid, kBlockThreads, 0, stream>>>(static_cast<const float*>(x), count, amax_out,
                                                            first_nonfinite);
      break;
    case DType::F16:
      amax_kernel<kF16><<<grid, kBlockThreads, 0, stream>>>(static_cast<const __half*>(x), count, amax_out,
                                                            first_nonfinite);
      break;
    case DType::BF16:
      amax_kernel<kBF16><<<grid, kBlockThreads, 0, stream>>>(static_cast<const __nv_bfloat16*>(x), count,
                                                             amax_out, first_nonfinite);
      break;
    default:
      throw InvalidType("nvfp4 amax: unknown dtype");
  }
  check_launch("nvfp4 amax: launch");
}

void launch_quantize(const void* w, DType dtype, std::int64_t n, std::int64_t k, float global_scale,
                     std::uint8_t* packed, std::uint8_t* block_scales, void* stream_ptr) {
  using namespace detail;
  require_shape(n, k, "nvfp4 quantize");
  require(w && packed && block_scales, "nvfp4 quantize: null pointer");
  require(global_scale > 0.0f && global_scale <= 3.4028234663852886e38f,
          "nvfp4 quantize: global_scale must be finite and > 0, got " + std::to_string(global_scale));
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  const int64_t blocks = n * (k / 16);
  const int grid = grid_for(blocks);
  switch (dtype) {
    case DType::F32:
      quantize_kernel<kF32><<<grid, kBlockThreads, 0, stream>>>(static_cast<const float*>(w), blocks,
                                                                global_scale, packed, block_scales);
      break;
    case DType::F16:
      quantize_kernel<kF16><<<grid, kBlockThreads, 0, stream>>>(static_cast<const __half*>(w), blocks,
                                                                global_scale, packed, block_scales);
      break;
    case DType::BF16:
      quantize_kernel<kBF16><<<grid, kBlockThreads, 0, stream>>>(static_cast<const __nv_bfloat16*>(w), blocks,
                                                                 global_scale, packed, block_scales);
      break;
    default:
      throw InvalidType("nvfp4 quantize: unknown dtype");
  }
  check_launch("nvfp4 quantize: launch");
}

void launch_dequantize(const std::uint8_t* packed, const std::uint8_t* block_scales, float global_scale,
                       std::int64_t n, std::int64_t k, void* out, DType out_dtype, void* stream_ptr) {
  using namespace detail;
  require_shape(n, k, "nvfp4 dequantize");
  require(packed && block_scales && out, "nvfp4 dequantize: null pointer");
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  const int64_t blocks = n * (k / 16);
  // One thread per block (the loop only runs again past 2^28 blocks).
  const int64_t ctas = (blocks + kBlockThreads - 1) / kBlockThreads;
  const int grid = int(ctas < (1 << 20) ? ctas : (1 << 20));
  const bool vec =
      reinterpret_cast<std::uintptr_t>(packed) % 8 == 0 && reinterpret_cast<std::uintptr_t>(out) % 16 == 0;
  switch (out_dtype) {
    case DType::F32:
      dequantize_kernel<kF32><<<grid, kBlockThreads, 0, stream>>>(packed, block_scales, blocks, global_scale, vec,
                                                                  static_cast<float*>(out));
      break;
    case DType::F16:
      dequantize_kernel<kF16><<<grid, kBlockThreads, 0, stream>>>(packed, block_scales, blocks, global_scale, vec,
                                                                  static_cast<__half*>(out));
      break;
    case DType::BF16:
      dequantize_kernel<kBF16><<<grid, kBlockThreads, 0, stream>>>(packed, block_scales, blocks, global_scale, vec,
                                                                   static_cast<__nv_bfloat16*>(out));
      break;
    default:
      throw InvalidType("nvfp4 dequantize: unknown dtype");
  }
  check_launch("nvfp4 dequantize: launch");
}

void launch_quantize_values(const void* x, DType dtype, std::int64_t n, std::int64_t k, float global_scale, void* out,
                            DType out_dtype, void* stream_ptr) {
  using namespace detail;
  require_shape(n, k, "nvfp4 quantize_values");
  require(x && out, "nvfp4 quantize_values: null pointer");
  require(global_scale > 0.0f && global_scale <= 3.4028234663852886e38f,
          "nvfp4 quantize_values: global_scale must be finite and > 0, got " + std::to_string(global_scale));
  require(out_dtype == DType::F16 || out_dtype == DType::BF16,
          "nvfp4 quantize_values: out_dtype must be float16 or bfloat16");
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  const int64_t blocks = n * (k / 16);
  const bool vec = reinterpret_cast<std::uintptr_t>(out) % 16 == 0;
  switch (dtype) {
    case DType::F32:
      launch_quantize_values_from<kF32>(x, blocks, global_scale, vec, out, out_dtype, stream);
      break;
    case DType::F16:
      launch_quantize_values_from<kF16>(x, blocks, global_scale, vec, out, out_dtype, stream);
      break;
    case DType::BF16:
      launch_quantize_values_from<kBF16>(x, blocks, global_scale, vec, out, out_dtype, stream);
      break;
    default:
      throw InvalidType("nvfp4 quantize_values: unknown dtype");
  }
  check_launch("nvfp4 quantize_values: launch");
}

}  // namespace reset_native::nvfp4_cuda
