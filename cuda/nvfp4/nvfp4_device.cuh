// Device helpers shared by the NVFP4 kernels: exact E4M3/E2M1 encode/decode (SPEC-nvfp4 sections 1-2),
// dtype loads, and the software FP4 decode used by the GEMV (Hopper has no e2m1 conversion instruction).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>

namespace reset_native::nvfp4_cuda::detail {

// Element dtypes as the launchers see them (matches nvfp4_cuda.hpp's DType values).
enum : int { kF32 = 0, kF16 = 1, kBF16 = 2 };

template <int DT>
struct Elem;
template <>
struct Elem<kF32> {
  using T = float;
  static __device__ __forceinline__ float to_float(T v) { return v; }
  static __device__ __forceinline__ T from_float(float v) { return v; }
};
template <>
struct Elem<kF16> {
  using T = __half;
  static __device__ __forceinline__ float to_float(T v) { return __half2float(v); }
  static __device__ __forceinline__ T from_float(float v) { return __float2half_rn(v); }
};
template <>
struct Elem<kBF16> {
  using T = __nv_bfloat16;
  static __device__ __forceinline__ float to_float(T v) { return __bfloat162float(v); }
  static __device__ __forceinline__ T from_float(float v) { return __float2bfloat16_rn(v); }
};

// The spec's constants: 2688 = 6 * 448; block scales are clamped to [2^-9, 448] before rounding.
constexpr float kAmaxToGlobal = 2688.0f;
constexpr float kMinScale = 0.001953125f;  // 2^-9
constexpr float kMaxScale = 448.0f;

// Exact E4M3 value of a scale byte (sign bit ignored: scales are never negative). 0x7F decodes to 480
// (E4M3 reserves it for NaN; no conforming quantizer writes it).
__device__ __forceinline__ float e4m3_decode(uint32_t byte) {
  const uint32_t e = (byte >> 3) & 0xFu, m = byte & 7u;
  return e == 0 ? float(m) * kMinScale : __uint_as_float(((e + 120u) << 23) | (m << 20));
}

// Positive finite (or +inf) block scale -> E4M3 byte, clamped to [2^-9, 448] then rounded to nearest even.
__device__ __forceinline__ uint32_t e4m3_encode_scale(float bs) {
  bs = fminf(fmaxf(bs, kMinScale), kMaxScale);
  return uint32_t(__nv_cvt_float_to_fp8(bs, __NV_SATFINITE, __NV_E4M3));
}

// |q| -> E2M1 magnitude code with the spec's round-to-nearest-even decision points, saturating at 6.
__device__ __forceinline__ uint32_t e2m1_round_magnitude(float a) {
  return uint32_t(a > 0.25f) + uint32_t(a >= 0.75f) + uint32_t(a > 1.25f) + uint32_t(a >= 1.75f) +
         uint32_t(a > 2.5f) + uint32_t(a >= 3.5f) + uint32_t(a > 5.0f);
}

// E2M1 magnitude code (0..7) -> value 0, .5, 1, 1.5, 2, 3, 4, 6 (exponent code>>1 with bias 1, mantissa code&1).
__device__ __forceinline__ float e2m1_magnitude_value(uint32_t code) {
  const uint32_t e = code >> 1, m = code & 1u;
  return e == 0 ? 0.5f * float(m) : __uint_as_float(((e + 126u) << 23) | (m << 22));
}

// One 16-element block of the quantizer (SPEC section 2, steps 2-5), in the exact fp32 operation order.
// v: the block widened to fp32; d = 6 * global_scale. Returns the scale byte and writes 8 packed bytes.
__device__ __forceinline__ uint32_t quantize_block16(const float (&v)[16], float global_scale, float d,
                                                     uint32_t (&packed)[2]) {
  float amax_b = 0.0f;
#pragma unroll
  for (int i = 0; i < 16; ++i) amax_b = fmaxf(amax_b, fabsf(v[i]));
  const uint32_t scale_byte = e4m3_encode_scale(__fdiv_rn(amax_b, d));
  const float s = __fmul_rn(e4m3_decode(scale_byte), global_scale);
  packed[0] = packed[1] = 0;
#pragma unroll
  for (int i = 0; i < 16; ++i) {
    const uint32_t code = e2m1_round_magnitude(__fdiv_rn(fabsf(v[i]), s)) | (__float_as_uint(v[i]) >> 31 << 3);
    packed[i / 8] |= code << (4 * (i % 8));
  }
  return scale_byte;
}

// ---------------------------------------------------------------- software FP4 decode for the GEMV
// Nibble J (0..3) of a 32-bit word and nibble J+4 become one half2/bfloat162 pair (lo, hi): the sign bit
// goes to bit 15, the three magnitude bits into the low exponent bits and the top mantissa bit. The pair
// then holds e2m1 * 2^-14 (fp16) or e2m1 * 2^-126 (bf16): code 1 (0.5) lands on the subnormal of the
// same exponent, so one multiply by the (pre-biased) block scale restores exact values. In a formula:
//   pair_J(w) = ((w << (12 - 4J)) & 0x80008000) | ((w << (9 - 4J)) & 0x0E000E00)   fp16 (bf16: 6 - 4J,
//   mask 0x01C001C0; negative counts shift right). fp4_word in gemv_kernel.cuh computes the same bits cheaper.
__device__ __forceinline__ uint32_t mul_pair(uint32_t a, uint32_t b, bool bf16) {
  uint32_t d;
  if (bf16) {
    asm("mul.rn.bf16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
  } else {
    asm("mul.rn.f16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
  }
  return d;
}

// d = LOP3(a, b, c) under the truth table LUT (PTX immLut convention: a = 0xF0, b = 0xCC, c = 0xAA). Written
// as one PTX lop3 so that ptxas keeps one SASS LOP3 per call instead of re-associating shared subexpressions
// (it split the C form of fp4_word's selects into two LOP3s each). The host path (tests) computes the same bits.
template <uint32_t LUT>
__host__ __device__ __forceinline__ uint32_t lop3(uint32_t a, uint32_t b, uint32_t c) {
#ifdef __CUDA_ARCH__
  uint32_t d;
  asm("lop3.b32 %0, %1, %2, %3, %4;" : "=r"(d) : "r"(a), "r"(b), "r"(c), "n"(LUT));
  return d;
#else
  uint32_t d = 0;
  for (int i = 0; i < 8; ++i)
    if ((LUT >> i) & 1u) d |= ((i & 4) ? a : ~a) & ((i & 2) ? b : ~b) & ((i & 1) ? c : ~c);
  return d;
#endif
}
constexpr uint32_t kLutSelect = 0xE4;  // (a & c) | (b & ~c): bits of a where the mask c is set, else b
constexpr uint32_t kLutAnd = 0xA0;     // a & c

// Two E4M3 scale bytes (low byte = first block) -> half2 of their exact values.
__device__ __forceinline__ uint32_t e4m3x2_to_half2(uint32_t two_bytes) {
  uint32_t d;
  const uint16_t in = uint16_t(two_bytes & 0x7F7Fu);  // scales are non-negative: drop sign bits
  asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(d) : "h"(in));
  return d;
}

// Streaming 16-byte weight load: read once, do not pollute L1. The L2::256B prefetch hint (the 8 warps of a
// CTA read a row's 512 contiguous bytes per step, 64 each) measured 1-5% faster on an H200 (8B gate_up and
// down, bench/RESULTS.md session 6); the values are the same.
__device__ __forceinline__ uint4 ld_stream_v4(const void* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0,%1,%2,%3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}
__device__ __forceinline__ uint2 ld_stream_v2(const void* p) {
  uint2 v;
  asm volatile("ld.global.nc.L1::no_allocate.v2.u32 {%0,%1}, [%2];" : "=r"(v.x), "=r"(v.y) : "l"(p));
  return v;
}

// m16n8k16 tensor-core MMA, fp32 accumulate; A/B are fp16 or bf16 pairs.
template <bool BF16>
__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  if constexpr (BF16) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

}  // namespace reset_native::nvfp4_cuda::detail
