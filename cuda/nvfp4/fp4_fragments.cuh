// The software FP4 decode of the NVFP4 tensor-core kernels (Hopper has no e2m1 conversion instruction): a 32-bit
// word of 8 FP4 codes -> 4 fp16 / bf16 A-operand pairs, and the E4M3 block scales that multiply them (exactly), as
// the GEMV (gemv_kernel.cuh, gemv_bd_kernel.cuh) and the medium-M GEMM (gemm_mid.cu) use them.
#pragma once
#include <cstdint>

#include "nvfp4/gemv_params.cuh"
#include "nvfp4/nvfp4_device.cuh"

namespace reset_native::nvfp4_cuda::detail {

// kForm16Scale: the two block scales of one row and step as one word of 16-bit values (low half: the first block),
// times 2^7 like scale_pairs; the MMA operand multiply (mul_pair_half) takes its half in the HMUL2's .H0_H0 / .H1_H1
// operand swizzle, so no pair is built (scale_pairs' two PRMTs). bf16: a byte b of E4M3 shifted 4 up (its exponent onto
// bf16's, its 3 mantissa bits onto bf16's top ones) is the bf16 of e4m3(b) * 2^-120 exactly, subnormal scales and zero
// included (both land on bf16 subnormals / zero), so two exact multiplies by 2^120 and 2^119 give e4m3 * 2^119:
// 2 shifts, 1 LOP3 (which also drops the sign bits, as e4m3x2_to_half2 does) and 2 HMUL2 instead of scale_pairs' 9
// (the mask, cvt, 2 HADD2.F32, 2 FMUL, F2FP, 2 PRMT). The same value for every byte but NaN (0x7F / 0xFF, which the
// quantizer never writes, SPEC: scales <= 448): 480 * 2^119 here, NaN there. fp16: scale_pairs without the PRMTs.
template <bool BF16>
__device__ __forceinline__ uint32_t scale_word(uint32_t two_bytes) {
  if constexpr (BF16) {
    uint32_t s = ((two_bytes << 4) | (two_bytes << 12)) & 0x07F007F0u;  // bytes 0 / 1 -> bits 4..10 / 20..26
    s = mul_pair(s, 0x7B807B80u, true);                                // * 2^120: e4m3 (exact)
    return mul_pair(s, 0x7B007B00u, true);                             // * 2^119 (exact, < 2^128)
  } else {
    const uint32_t h = e4m3x2_to_half2(two_bytes);
    const __half2 r = __hmul2(*reinterpret_cast<const __half2*>(&h), __float2half2_rn(kDecodeBias));
    return *reinterpret_cast<const uint32_t*>(&r);
  }
}

// a * (h, h) with h the low (hi = false) or high half of s, 16-bit pairs: one HMUL2, the broadcast folded into its
// .H0_H0 / .H1_H1 operand swizzle. hi must be known at compile time (unrolled loops).
__device__ __forceinline__ uint32_t mul_pair_half(uint32_t a, uint32_t s, bool hi, bool bf16) {
#define GEMV_MUL_HALF(H, T)                                                                                   \
  asm("{.reg .b16 l, h; .reg .b32 q; mov.b32 {l, h}, %2; mov.b32 q, {" H ", " H "}; mul.rn." T " %0, %1, q;}" \
      : "=r"(d)                                                                                               \
      : "r"(a), "r"(s))
  uint32_t d;
  if (bf16) {
    if (hi) GEMV_MUL_HALF("h", "bf16x2"); else GEMV_MUL_HALF("l", "bf16x2");
  } else {
    if (hi) GEMV_MUL_HALF("h", "f16x2"); else GEMV_MUL_HALF("l", "f16x2");
  }
#undef GEMV_MUL_HALF
  return d;
}

// Bitwise select: bits of a where mask is set, else bits of b (one LOP3).
__host__ __device__ __forceinline__ uint32_t select_bits(uint32_t a, uint32_t b, uint32_t mask) {
  return (a & mask) | (b & ~mask);
}

// The 8 nibbles of w as 4 fp16/bf16 pairs (nibbles j, j+4): pair_J of nvfp4_device.cuh, bit for bit (checked
// over all 2^32 words by the slow test of tests/test_nvfp4_decode.py, over a stride by its fast tests; the GEMV
// tests against fp64 cover every code). Each pair needs its sign 6 (fp16) or 9 (bf16) bits above its magnitude
// instead of 3, so shifted copies of w supply the signs (or the magnitudes) and one select + shift + mask
// places both. fp16 (both GEMV kernels' hot path), 11 instructions per word (ptxas made 13.5 of the C form,
// splitting each select into two LOP3s, hence the PTX lop3):
//   even = nibbles 0, 2, 4, 6 with their signs 6 bits up (from w << 3): pairs 0 and 2 by a shift and a mask;
//   odd = bit 7 of each byte from w (signs of nibbles 1, 3, 5, 7), bits 1-3 from w >> 3 (their magnitudes):
//   pair 3 is odd masked, pair 1 the same shifted by a byte.
template <bool BF16>
__host__ __device__ __forceinline__ void fp4_word(uint32_t w, uint32_t (&o)[4]) {
  if constexpr (BF16) {
    constexpr uint32_t kMask = 0x81C081C0u;  // sign and the 3 bits below the exponent's top, both halves
    const uint32_t up = w << 6, down = w >> 6;
    o[0] = (select_bits(w, up, 0x00070007u) << 6) & kMask;
    o[1] = (select_bits(w, up, 0x00700070u) << 2) & kMask;
    o[2] = (select_bits(w, down, 0x08000800u) << 4) & kMask;
    o[3] = select_bits(w, down, 0x80008000u) & kMask;
  } else {
    constexpr uint32_t kMask = 0x8E008E00u;
    const uint32_t even = lop3<kLutSelect>(w, w << 3, 0x07070707u);
    const uint32_t odd = lop3<kLutSelect>(w, w >> 3, 0x80808080u);
    o[0] = lop3<kLutAnd>(even << 9, 0, kMask);
    o[1] = lop3<kLutAnd>(odd << 8, 0, kMask);
    o[2] = lop3<kLutAnd>(even << 1, 0, kMask);
    o[3] = lop3<kLutAnd>(odd, 0, kMask);
  }
}

// fp4_word<true> (bf16 pairs) in 11 instructions instead of 13, the same bits (kForm16Decode; checked like fp4_word):
// one select places two pairs at once.
//   lo = magnitudes of nibbles 0, 1, 4, 5 from w, their signs 6 bits up (from w << 6): pair 0 is lo << 6 masked,
//   pair 1 lo << 2 masked;
//   hi = magnitudes of nibbles 2, 3, 6, 7 from w >> 6, their signs from w: pair 2 is hi << 4 masked, pair 3 hi masked.
__host__ __device__ __forceinline__ void fp4_word_bf16_select2(uint32_t w, uint32_t (&o)[4]) {
  constexpr uint32_t kMask = 0x81C081C0u;
  const uint32_t lo = lop3<kLutSelect>(w, w << 6, 0x00770077u);
  const uint32_t hi = lop3<kLutSelect>(w >> 6, w, 0x01DC01DCu);
  o[0] = lop3<kLutAnd>(lo << 6, 0, kMask);
  o[1] = lop3<kLutAnd>(lo << 2, 0, kMask);
  o[2] = lop3<kLutAnd>(hi << 4, 0, kMask);
  o[3] = lop3<kLutAnd>(hi, 0, kMask);
}

}  // namespace reset_native::nvfp4_cuda::detail
