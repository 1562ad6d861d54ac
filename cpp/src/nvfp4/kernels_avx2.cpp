// AVX2 + FMA + F16C kernels for quantize and the fp16 widening (the GEMV's are in gemv_avx2.cpp), compiled
// with function-level target attributes so the library stays portable; resolve_kernel() only selects them
// when __builtin_cpu_supports says the CPU has the features.
#include "internal.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define RN_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace reset_native::nvfp4::detail {

namespace {

// 16 floats -> 8 packed bytes: code i = RNE_E2M1(x[i] / scale) with the sign bit of x[i].
RN_AVX2 inline void encode_block(const float* x, float scale, uint8_t* out) {
  const __m256 s = _mm256_set1_ps(scale);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  __m256i code[2];
  for (int h = 0; h < 2; ++h) {
    const __m256 v = _mm256_loadu_ps(x + 8 * h);
    const __m256 m = _mm256_and_ps(_mm256_div_ps(v, s), abs_mask);  // true IEEE division, as the spec says
    // Each comparison is all-ones (-1) when m lies beyond that RNE decision point; ordered compares are
    // false for NaN. Subtracting the masks counts the points passed, which is the magnitude code.
    __m256i n = _mm256_setzero_si256();
    n = _mm256_sub_epi32(n, _mm256_castps_si256(_mm256_cmp_ps(m, _mm256_set1_ps(0.25f), _CMP_GT_OQ)));
    n = _mm256_sub_epi32(n, _mm256_castps_si256(_mm256_cmp_ps(m, _mm256_set1_ps(0.75f), _CMP_GE_OQ)));
    n = _mm256_sub_epi32(n, _mm256_castps_si256(_mm256_cmp_ps(m, _mm256_set1_ps(1.25f), _CMP_GT_OQ)));
    n = _mm256_sub_epi32(n, _mm256_castps_si256(_mm256_cmp_ps(m, _mm256_set1_ps(1.75f), _CMP_GE_OQ)));
    n = _mm256_sub_epi32(n, _mm256_castps_si256(_mm256_cmp_ps(m, _mm256_set1_ps(2.5f), _CMP_GT_OQ)));
    n = _mm256_sub_epi32(n, _mm256_castps_si256(_mm256_cmp_ps(m, _mm256_set1_ps(3.5f), _CMP_GE_OQ)));
    n = _mm256_sub_epi32(n, _mm256_castps_si256(_mm256_cmp_ps(m, _mm256_set1_ps(5.0f), _CMP_GT_OQ)));
    const __m256i sign = _mm256_slli_epi32(_mm256_srli_epi32(_mm256_castps_si256(v), 31), 3);
    code[h] = _mm256_or_si256(n, sign);
  }
  // 16 int32 codes -> 16 bytes in order (packus interleaves the 128-bit lanes; the permute undoes it), then
  // maddubs forms code[2i] * 1 + code[2i + 1] * 16 per byte pair.
  const __m256i words = _mm256_permute4x64_epi64(_mm256_packus_epi32(code[0], code[1]), 0xD8);
  const __m128i bytes = _mm_packus_epi16(_mm256_castsi256_si128(words), _mm256_extracti128_si256(words, 1));
  const __m128i pairs = _mm_maddubs_epi16(bytes, _mm_set1_epi16(0x1001));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm_packus_epi16(pairs, pairs));
}

}  // namespace

RN_AVX2 void half_to_float_f16c(const uint16_t* in, float* out, int64_t count) {
  int64_t i = 0;
  for (; i + 8 <= count; i += 8) {
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i))));
  }
  for (; i < count; ++i) out[i] = half_to_float(in[i]);
}

RN_AVX2 float scan_amax_avx2(const float* x, int64_t count, int64_t* first_bad) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  const __m256 largest = _mm256_set1_ps(3.4028234663852886e38f);
  __m256 m = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= count; i += 8) {
    const __m256 a = _mm256_and_ps(_mm256_loadu_ps(x + i), abs_mask);
    if (_mm256_movemask_ps(_mm256_cmp_ps(a, largest, _CMP_NLE_UQ)) != 0) break;  // NaN or Inf in these 8
    m = _mm256_max_ps(m, a);
  }
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_movehdup_ps(h));
  const float head = _mm_cvtss_f32(h);
  int64_t bad = -1;
  const float tail = scan_amax_scalar(x + i, count - i, &bad);  // the rest, or the 8 holding the first bad
  *first_bad = bad < 0 ? -1 : i + bad;
  return head > tail ? head : tail;
}

RN_AVX2 void quantize_row_avx2(const float* x, int64_t cols, float gs, uint8_t* packed, uint8_t* scales) {
  const float* e4m3 = e4m3_table();
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  for (int64_t b = 0; b < cols / kBlockSize; ++b) {
    const float* xb = x + b * kBlockSize;
    __m256 m = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(xb), abs_mask),
                             _mm256_and_ps(_mm256_loadu_ps(xb + 8), abs_mask));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    const uint8_t byte = block_scale_byte(_mm_cvtss_f32(h), gs);
    scales[b] = byte;
    encode_block(xb, e4m3[byte] * gs, packed + b * 8);
  }
}

}  // namespace reset_native::nvfp4::detail

#else  // not x86: resolve_kernel never selects these

namespace reset_native::nvfp4::detail {
float scan_amax_avx2(const float* x, int64_t count, int64_t* first_bad) {
  return scan_amax_scalar(x, count, first_bad);
}
void quantize_row_avx2(const float* x, int64_t cols, float gs, uint8_t* packed, uint8_t* scales) {
  quantize_row_scalar(x, cols, gs, packed, scales);
}
void half_to_float_f16c(const uint16_t* in, float* out, int64_t count) { half_to_float_scalar(in, out, count); }
}  // namespace reset_native::nvfp4::detail

#endif
