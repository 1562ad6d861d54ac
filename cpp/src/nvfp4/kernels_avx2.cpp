// AVX2 + FMA + F16C kernels, compiled with function-level target attributes so the library stays
// portable; resolve_kernel() only selects them when __builtin_cpu_supports says the CPU has the features.
#include "internal.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include <array>
#include <cstring>

#define RN_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace reset_native::nvfp4::detail {

namespace {

// vpermps looks up the low 3 bits of each lane; the sign must come from bit 3. XOR-ing the lane shifted
// left by 28 moves bit 3 into the sign bit but also flips bits 28..30 by the magnitude code, so the table
// holds each magnitude's bits pre-XORed with (code << 28): the second XOR restores them.
RN_AVX2 __m256 decode_table() {
  static constexpr float kMagnitude[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  alignas(32) uint32_t t[8];
  for (uint32_t c = 0; c < 8; ++c) {
    std::memcpy(&t[c], &kMagnitude[c], sizeof(float));
    t[c] ^= c << 28;
  }
  return _mm256_castsi256_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(t)));
}

// 8 packed bytes (16 E2M1 codes) -> the 8 even-index values and the 8 odd-index values as floats.
RN_AVX2 inline void decode_block(const uint8_t* codes, __m256 table, __m256& even, __m256& odd) {
  const __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes)));
  const __m256i h = _mm256_srli_epi32(b, 4);
  even = _mm256_castsi256_ps(
      _mm256_xor_si256(_mm256_castps_si256(_mm256_permutevar8x32_ps(table, b)), _mm256_slli_epi32(b, 28)));
  odd = _mm256_castsi256_ps(
      _mm256_xor_si256(_mm256_castps_si256(_mm256_permutevar8x32_ps(table, h)), _mm256_slli_epi32(h, 28)));
}

// vpshufb table: E2M1 code -> high byte of the value as fp16 (the low byte is 0 for all 16 values), so
// interleaving zero bytes below these gives fp16 numbers that vcvtph2ps widens exactly.
RN_AVX2 inline __m128i fp16_high_bytes() {
  return _mm_setr_epi8(0x00, 0x38, 0x3C, 0x3E, 0x40, 0x42, 0x44, 0x46, static_cast<char>(0x80),
                       static_cast<char>(0xB8), static_cast<char>(0xBC), static_cast<char>(0xBE),
                       static_cast<char>(0xC0), static_cast<char>(0xC2), static_cast<char>(0xC4),
                       static_cast<char>(0xC6));
}

RN_AVX2 inline float horizontal_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Software prefetch distance of the M = 1 kernel: measured 5-15 % faster from DRAM than none or 512 with the
// fp16 decode; with the faster int8 decode 2 KiB beats 1 KiB by ~4 % (4 KiB: no better).
constexpr int64_t kPrefetchBytes = 2048;

// 2^-25: the M = 1 kernel's decoded weights are 2 * e2m1 * 2^24 (see rows_single); its block scales undo it.
constexpr float kSingleUnscale = 1.0f / 33554432.0f;

// e4m3 values times 2^-25, built once (exact: every e4m3 value stays a normal float).
const float* e4m3_unscaled_table() {
  static const auto table = [] {
    std::array<float, 256> t{};
    const float* e4m3 = e4m3_table();
    for (int i = 0; i < 256; ++i) t[static_cast<size_t>(i)] = e4m3[i] * kSingleUnscale;
    return t;
  }();
  return table.data();
}

// 16 packed bytes (32 codes) -> 32 int8 2 * e2m1: the low nibbles' values in the low lane, the high
// nibbles' in the high lane (from 8 bytes: 16 values in bytes 0-7 of each lane).
RN_AVX2 inline __m256i twice_e2m1(__m128i v) {
  const __m256i table =
      _mm256_broadcastsi128_si256(_mm_setr_epi8(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12));
  const __m256i both = _mm256_broadcastsi128_si256(v);
  const __m256i nibbles = _mm256_srlv_epi32(both, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4));
  return _mm256_shuffle_epi8(table, _mm256_and_si256(nibbles, _mm256_set1_epi8(0x0F)));
}

// vpshufb control: int32 lane j gets byte 4i + j in its top byte and zeros below.
RN_AVX2 inline __m128i top_byte_pattern(int i) {
  const char z = static_cast<char>(0x80);
  const auto at = [i](int j) { return static_cast<char>(4 * i + j); };
  return _mm_setr_epi8(z, z, z, at(0), z, z, z, at(1), z, z, z, at(2), z, z, z, at(3));
}

// One activation row, two blocks (16 bytes) per step. vcvtph2ps (one per cycle on Zen 3, sharing the FMA
// pipes) was the bottleneck, so decoding avoids it: one 256-bit vpshufb maps the low nibbles (low lane) and
// high nibbles (high lane) of all 32 codes to int8 2 * e2m1, a second vpshufb per 8 values puts each
// int8 in the top byte of an int32 lane (value 2 * e2m1 * 2^24, sign included) and vcvtdq2ps converts
// exactly; the 2^25 factor is folded into the block scales. Each 8-float vector holds one block's elements
// 4j..4j+3 of its even and odd halves, the order gemv() lays xd out in for this kernel.
RN_AVX2 void rows_single(const uint8_t* packed, const uint8_t* scales, int64_t k, const float* xd, int64_t n0,
                         int64_t n1, float* out) {
  // vpshufb patterns moving bytes 4i..4i+3 of each lane into the top bytes of its four int32 lanes (bit 7
  // set: zero): one shuffle per 8 values instead of two unpacks.
  const __m256i top0 = _mm256_broadcastsi128_si256(top_byte_pattern(0));
  const __m256i top1 = _mm256_broadcastsi128_si256(top_byte_pattern(1));
  const __m256i top2 = _mm256_broadcastsi128_si256(top_byte_pattern(2));
  const __m256i top3 = _mm256_broadcastsi128_si256(top_byte_pattern(3));
  const float* scale = e4m3_unscaled_table();
  const int64_t blocks = k / kBlockSize;
  for (int64_t r = n0; r < n1; ++r) {
    const uint8_t* codes = packed + r * (k / 2);
    const uint8_t* sc = scales + r * blocks;
    __m256 acc0 = _mm256_setzero_ps();
    __m256 acc1 = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 1 < blocks; b += 2) {
      // One prefetch per 64-byte line, 2 KiB ahead (may run past the row: prefetches never fault).
      if ((b & 7) == 0) _mm_prefetch(reinterpret_cast<const char*>(codes + 8 * b + kPrefetchBytes), _MM_HINT_T0);
      const __m256i q = twice_e2m1(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + 8 * b)));
      const float* x = xd + 16 * b;
      __m256 t0 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_shuffle_epi8(q, top0)), _mm256_loadu_ps(x));
      __m256 t1 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_shuffle_epi8(q, top2)), _mm256_loadu_ps(x + 16));
      t0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_shuffle_epi8(q, top1)), _mm256_loadu_ps(x + 8), t0);
      t1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_shuffle_epi8(q, top3)), _mm256_loadu_ps(x + 24), t1);
      acc0 = _mm256_fmadd_ps(t0, _mm256_broadcast_ss(scale + sc[b]), acc0);
      acc1 = _mm256_fmadd_ps(t1, _mm256_broadcast_ss(scale + sc[b + 1]), acc1);
    }
    if (b < blocks) {  // an odd number of blocks: the last one alone, from an 8-byte load
      const __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + 8 * b));
      const __m256i q = twice_e2m1(v);
      const float* x = xd + 16 * b;
      __m256 t0 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_shuffle_epi8(q, top0)), _mm256_loadu_ps(x));
      t0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_shuffle_epi8(q, top1)), _mm256_loadu_ps(x + 8), t0);
      acc0 = _mm256_fmadd_ps(t0, _mm256_broadcast_ss(scale + sc[b]), acc0);
    }
    out[r] = horizontal_sum(_mm256_add_ps(acc0, acc1));
  }
}

// One weight row against MT activation rows (the lone last row of an odd group): each block is decoded once
// and its scale folded into the decoded weights.
template <int MT>
RN_AVX2 void rows_tile(const uint8_t* packed, const uint8_t* scales, int64_t k, const float* xd, int64_t n0,
                       int64_t n1, int64_t n_total, float* out) {
  const __m256 table = decode_table();
  const float* e4m3 = e4m3_table();
  const int64_t blocks = k / kBlockSize;
  for (int64_t r = n0; r < n1; ++r) {
    const uint8_t* codes = packed + r * (k / 2);
    const uint8_t* sc = scales + r * blocks;
    __m256 acc[MT];
    for (int i = 0; i < MT; ++i) acc[i] = _mm256_setzero_ps();
    for (int64_t b = 0; b < blocks; ++b) {
      __m256 e, o;
      decode_block(codes + 8 * b, table, e, o);
      const __m256 s = _mm256_broadcast_ss(e4m3 + sc[b]);
      e = _mm256_mul_ps(e, s);
      o = _mm256_mul_ps(o, s);
      const float* xb = xd + 16 * b;
      for (int i = 0; i < MT; ++i) {
        acc[i] = _mm256_fmadd_ps(e, _mm256_loadu_ps(xb + i * k), acc[i]);
        acc[i] = _mm256_fmadd_ps(o, _mm256_loadu_ps(xb + i * k + 8), acc[i]);
      }
    }
    for (int i = 0; i < MT; ++i) out[i * n_total + r] = horizontal_sum(acc[i]);
  }
}

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

// Two weight rows and MT activation rows per step: one vpshufb decode (as in rows_single) serves both rows'
// blocks (8 bytes each), and every activation load serves both rows.
template <int MT>
RN_AVX2 void row_pairs_tile(const uint8_t* packed, const uint8_t* scales, int64_t k, const float* xd, int64_t n0,
                            int64_t n1, int64_t n_total, float* out) {
  const __m128i high_bytes = fp16_high_bytes();
  const __m128i low_nibble = _mm_set1_epi8(0x0F);
  const __m128i zero = _mm_setzero_si128();
  const float* e4m3 = e4m3_table();
  const int64_t blocks = k / kBlockSize;
  for (int64_t r = n0; r + 1 < n1; r += 2) {
    const uint8_t* c0 = packed + r * (k / 2);
    const uint8_t* c1 = c0 + k / 2;
    const uint8_t* s0 = scales + r * blocks;
    const uint8_t* s1 = s0 + blocks;
    __m256 acc0[MT], acc1[MT];
    for (int i = 0; i < MT; ++i) acc0[i] = acc1[i] = _mm256_setzero_ps();
    for (int64_t b = 0; b < blocks; ++b) {
      const __m128i v = _mm_unpacklo_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(c0 + 8 * b)),
                                           _mm_loadl_epi64(reinterpret_cast<const __m128i*>(c1 + 8 * b)));
      const __m128i even = _mm_shuffle_epi8(high_bytes, _mm_and_si128(v, low_nibble));
      const __m128i odd = _mm_shuffle_epi8(high_bytes, _mm_and_si128(_mm_srli_epi16(v, 4), low_nibble));
      const __m256 sc0 = _mm256_broadcast_ss(e4m3 + s0[b]);
      const __m256 sc1 = _mm256_broadcast_ss(e4m3 + s1[b]);
      const __m256 e0 = _mm256_mul_ps(_mm256_cvtph_ps(_mm_unpacklo_epi8(zero, even)), sc0);
      const __m256 o0 = _mm256_mul_ps(_mm256_cvtph_ps(_mm_unpacklo_epi8(zero, odd)), sc0);
      const __m256 e1 = _mm256_mul_ps(_mm256_cvtph_ps(_mm_unpackhi_epi8(zero, even)), sc1);
      const __m256 o1 = _mm256_mul_ps(_mm256_cvtph_ps(_mm_unpackhi_epi8(zero, odd)), sc1);
      const float* xb = xd + 16 * b;
      for (int i = 0; i < MT; ++i) {
        const __m256 xe = _mm256_loadu_ps(xb + i * k);
        const __m256 xo = _mm256_loadu_ps(xb + i * k + 8);
        acc0[i] = _mm256_fmadd_ps(o0, xo, _mm256_fmadd_ps(e0, xe, acc0[i]));
        acc1[i] = _mm256_fmadd_ps(o1, xo, _mm256_fmadd_ps(e1, xe, acc1[i]));
      }
    }
    for (int i = 0; i < MT; ++i) {
      out[i * n_total + r] = horizontal_sum(acc0[i]);
      out[i * n_total + r + 1] = horizontal_sum(acc1[i]);
    }
  }
  if ((n1 - n0) % 2 != 0) rows_tile<MT>(packed, scales, k, xd, n1 - 1, n1, n_total, out);
}

using TileFn = void (*)(const uint8_t*, const uint8_t*, int64_t, const float*, int64_t, int64_t, int64_t,
                        float*);
constexpr TileFn kTiles[4] = {row_pairs_tile<1>, row_pairs_tile<2>, row_pairs_tile<3>, row_pairs_tile<4>};
// Up to 4 activation rows per pass: 2 weight rows x 4 activation rows of accumulators plus the decoded
// weights fill the 16 AVX2 registers; more would spill.
constexpr int kMaxTile = 4;
// Weight rows per group: small enough that a group's packed bytes stay in L2 while every activation tile
// passes over them, so each weight byte comes from memory once whatever m is.
constexpr int64_t kRowGroup = 8;

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

void gemv_rows_avx2(const uint8_t* packed, const uint8_t* scales, int64_t k, const float* xd, int64_t m,
                    int64_t n0, int64_t n1, int64_t n_total, float* out) {
  if (m == 1) {
    rows_single(packed, scales, k, xd, n0, n1, out);
    return;
  }
  for (int64_t g = n0; g < n1; g += kRowGroup) {
    const int64_t g1 = std::min(n1, g + kRowGroup);
    for (int64_t i = 0; i < m; i += kMaxTile) {
      const int64_t tile = std::min<int64_t>(kMaxTile, m - i);
      kTiles[tile - 1](packed, scales, k, xd + i * k, g, g1, n_total, out + i * n_total);
    }
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
void gemv_rows_avx2(const uint8_t* packed, const uint8_t* scales, int64_t k, const float* xd, int64_t m,
                    int64_t n0, int64_t n1, int64_t n_total, float* out) {
  gemv_rows_scalar(packed, scales, k, xd, m, n0, n1, n_total, out);
}
}  // namespace reset_native::nvfp4::detail

#endif
