// AVX2 + FMA GEMV kernels (W4A16 sums straight from the packed weights) and the activation layout they
// read. Compiled with function-level target attributes; resolve_kernel() selects them only on CPUs that
// have the features.
//
// Decoding, shared by every kernel: a vpshufb table maps E2M1 codes to int8 values of 2 * e2m1 (sign
// included), a second vpshufb moves four of those bytes into the top bytes of four int32 lanes (value
// 2 * e2m1 * 2^24, the lower bytes zero) and vcvtdq2ps converts exactly. The 2^25 factor is folded into a
// table of block scales times 2^-25. Per 8 weights that is one shuffle, one conversion and one FMA; on Zen 3
// vcvtph2ps (one per cycle, competing with the FMAs) was slower, and the FP pipes' micro-op count is what
// limits the M = 1 kernel (docs/nvfp4.md, "CPU performance").
#include "internal.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <vector>

#define RN_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace reset_native::nvfp4::detail {

namespace {

// 2^-25: decoded weights are 2 * e2m1 * 2^24; the block scales undo it.
constexpr float kUnscale = 1.0f / 33554432.0f;

// e4m3 values times 2^-25, built once (exact: every e4m3 value stays a normal float).
const float* e4m3_unscaled_table() {
  static const auto table = [] {
    std::array<float, 256> t{};
    const float* e4m3 = e4m3_table();
    for (int i = 0; i < 256; ++i) t[static_cast<size_t>(i)] = e4m3[i] * kUnscale;
    return t;
  }();
  return table.data();
}

// Software prefetch distance of the M = 1 kernel (one prefetch per 64-byte line; may run past the matrix:
// prefetches never fault). Measured from DRAM with one thread: no prefetch is 5-10 % slower, 512 B to 4 KiB
// are within noise of each other (bench/RESULTS-nvfp4-cpu.md).
constexpr int64_t kPrefetchBytes = 2048;

RN_AVX2 inline float horizontal_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// E2M1 code (low 4 bits of each byte) -> int8 2 * e2m1, in both 128-bit lanes.
RN_AVX2 inline __m256i e2m1_table() {
  return _mm256_broadcastsi128_si256(_mm_setr_epi8(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12));
}

// vpshufb control: int32 lane j of each 128-bit lane gets byte 4i + j of that lane in its top byte, zeros
// below (bit 7 set: zero).
RN_AVX2 inline __m256i top_bytes(int i) {
  const char z = static_cast<char>(0x80);
  const auto at = [i](int j) { return static_cast<char>(4 * i + j); };
  return _mm256_broadcastsi128_si256(
      _mm_setr_epi8(z, z, z, at(0), z, z, z, at(1), z, z, z, at(2), z, z, z, at(3)));
}

// The four top_bytes patterns, built once per kernel call.
struct TopBytes {
  __m256i p[4];
  RN_AVX2 TopBytes() : p{top_bytes(0), top_bytes(1), top_bytes(2), top_bytes(3)} {}
};

// 16 packed bytes (32 codes) -> 32 int8 2 * e2m1: the low nibbles' values in the low lane, the high
// nibbles' in the high lane. From an 8-byte load: 16 values in bytes 0-7 of each lane.
RN_AVX2 inline __m256i twice_e2m1_halves(__m128i v, __m256i table) {
  const __m256i both = _mm256_broadcastsi128_si256(v);
  const __m256i nibbles = _mm256_srlv_epi32(both, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4));
  return _mm256_shuffle_epi8(table, _mm256_and_si256(nibbles, _mm256_set1_epi8(0x0F)));
}

// int8 values -> float: top_bytes pattern i selects which four bytes of each lane.
RN_AVX2 inline __m256 widen(__m256i q, __m256i pattern) {
  return _mm256_cvtepi32_ps(_mm256_shuffle_epi8(q, pattern));
}

// One 16-byte step (two blocks, b and b + 1) of a single row against the "halves" layout: adds the blocks'
// raw sums to acc0 / acc1. Used for the 1-3 blocks after the last group of 4 in the M = 1 kernel.
RN_AVX2 inline void single_two_blocks(const uint8_t* codes, const uint8_t* sc, const float* scale, const float* x,
                                      __m256i table, const TopBytes& top, __m256& acc0, __m256& acc1) {
  const __m256i q = twice_e2m1_halves(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes)), table);
  __m256 t0 = _mm256_mul_ps(widen(q, top.p[0]), _mm256_loadu_ps(x));
  __m256 t1 = _mm256_mul_ps(widen(q, top.p[2]), _mm256_loadu_ps(x + 16));
  t0 = _mm256_fmadd_ps(widen(q, top.p[1]), _mm256_loadu_ps(x + 8), t0);
  t1 = _mm256_fmadd_ps(widen(q, top.p[3]), _mm256_loadu_ps(x + 24), t1);
  acc0 = _mm256_fmadd_ps(t0, _mm256_broadcast_ss(scale + sc[0]), acc0);
  acc1 = _mm256_fmadd_ps(t1, _mm256_broadcast_ss(scale + sc[1]), acc1);
}

// The same for one block (8 bytes).
RN_AVX2 inline void single_one_block(const uint8_t* codes, const uint8_t* sc, const float* scale, const float* x,
                                     __m256i table, const TopBytes& top, __m256& acc) {
  const __m256i q = twice_e2m1_halves(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes)), table);
  __m256 t = _mm256_mul_ps(widen(q, top.p[0]), _mm256_loadu_ps(x));
  t = _mm256_fmadd_ps(widen(q, top.p[1]), _mm256_loadu_ps(x + 8), t);
  acc = _mm256_fmadd_ps(t, _mm256_broadcast_ss(scale + sc[0]), acc);
}

// One activation row, four blocks (32 bytes) per step. The low and high nibbles of all 64 codes are split
// with one AND and one shift + AND (cheaper per code than broadcasting 16 bytes into both lanes) and mapped
// by one vpshufb each; a 256-bit register then holds blocks b, b + 1 in its low lane and b + 2, b + 3 in its
// high lane, so each decoded 8-float vector covers two blocks (b | b + 2 or b + 1 | b + 3) and takes a
// block-scale vector blended from two broadcasts. Per 16 weights: 2 shuffles + 2 conversions + 2 FMAs for the
// products, plus ~2.25 micro-ops of nibble split, table lookup and scaling (the previous two-block step
// needed ~3). Blocks after the last group of 4 use the two- and one-block steps.
RN_AVX2 void rows_single(const uint8_t* packed, const uint8_t* scales, int64_t k, const float* xd, int64_t n0,
                         int64_t n1, float* out) {
  const TopBytes top;
  const __m256i table = e2m1_table();
  const __m256i low = _mm256_set1_epi8(0x0F);
  const float* scale = e4m3_unscaled_table();
  const int64_t blocks = k / kBlockSize;
  const int64_t grouped = blocks / 4 * 4;
  for (int64_t r = n0; r < n1; ++r) {
    const uint8_t* codes = packed + r * (k / 2);
    const uint8_t* sc = scales + r * blocks;
    __m256 acc_a = _mm256_setzero_ps();
    __m256 acc_b = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b < grouped; b += 4) {
      if ((b & 7) == 0) _mm_prefetch(reinterpret_cast<const char*>(codes + 8 * b + kPrefetchBytes), _MM_HINT_T0);
      if ((b & 63) == 0) _mm_prefetch(reinterpret_cast<const char*>(sc + b + kPrefetchBytes / 8), _MM_HINT_T0);
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + 8 * b));
      const __m256i lo = _mm256_shuffle_epi8(table, _mm256_and_si256(v, low));
      const __m256i hi = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(v, 4), low));
      const float* x = xd + 16 * b;
      // a: blocks b | b + 2 (bytes 0-7 of each lane), b: blocks b + 1 | b + 3 (bytes 8-15).
      __m256 ta = _mm256_mul_ps(widen(lo, top.p[0]), _mm256_loadu_ps(x));
      __m256 tb = _mm256_mul_ps(widen(lo, top.p[2]), _mm256_loadu_ps(x + 32));
      ta = _mm256_fmadd_ps(widen(lo, top.p[1]), _mm256_loadu_ps(x + 8), ta);
      tb = _mm256_fmadd_ps(widen(lo, top.p[3]), _mm256_loadu_ps(x + 40), tb);
      ta = _mm256_fmadd_ps(widen(hi, top.p[0]), _mm256_loadu_ps(x + 16), ta);
      tb = _mm256_fmadd_ps(widen(hi, top.p[2]), _mm256_loadu_ps(x + 48), tb);
      ta = _mm256_fmadd_ps(widen(hi, top.p[1]), _mm256_loadu_ps(x + 24), ta);
      tb = _mm256_fmadd_ps(widen(hi, top.p[3]), _mm256_loadu_ps(x + 56), tb);
      const __m256 sa =
          _mm256_blend_ps(_mm256_broadcast_ss(scale + sc[b]), _mm256_broadcast_ss(scale + sc[b + 2]), 0xF0);
      const __m256 sb =
          _mm256_blend_ps(_mm256_broadcast_ss(scale + sc[b + 1]), _mm256_broadcast_ss(scale + sc[b + 3]), 0xF0);
      acc_a = _mm256_fmadd_ps(ta, sa, acc_a);
      acc_b = _mm256_fmadd_ps(tb, sb, acc_b);
    }
    if (b + 1 < blocks) {
      single_two_blocks(codes + 8 * b, sc + b, scale, xd + 16 * b, table, top, acc_a, acc_b);
      b += 2;
    }
    if (b < blocks) single_one_block(codes + 8 * b, sc + b, scale, xd + 16 * b, table, top, acc_a);
    out[r] = horizontal_sum(_mm256_add_ps(acc_a, acc_b));
  }
}

// Block b of two weight rows, decoded and scaled: w[0], w[1] row 0's two 8-element halves (each as 4 even
// then 4 odd elements, the "halves" layout), w[2], w[3] row 1's. One table lookup serves both rows.
RN_AVX2 inline void decode_pair(const uint8_t* c0, const uint8_t* c1, float s0, float s1, __m256i table,
                                const TopBytes& top, __m256 w[4]) {
  const __m128i v = _mm_unpacklo_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(c0)),
                                       _mm_loadl_epi64(reinterpret_cast<const __m128i*>(c1)));
  const __m256i q = twice_e2m1_halves(v, table);
  const __m256 sc0 = _mm256_set1_ps(s0);
  const __m256 sc1 = _mm256_set1_ps(s1);
  w[0] = _mm256_mul_ps(widen(q, top.p[0]), sc0);
  w[1] = _mm256_mul_ps(widen(q, top.p[1]), sc0);
  w[2] = _mm256_mul_ps(widen(q, top.p[2]), sc1);
  w[3] = _mm256_mul_ps(widen(q, top.p[3]), sc1);
}

// One weight row against MT activation rows (the lone last row of an odd group): each block is decoded once
// and its scale folded into the decoded weights.
template <int MT>
RN_AVX2 void rows_tile(const uint8_t* packed, const uint8_t* scales, int64_t k, const float* xd, int64_t n0,
                       int64_t n1, int64_t n_total, float* out) {
  const TopBytes top;
  const __m256i table = e2m1_table();
  const float* scale = e4m3_unscaled_table();
  const int64_t blocks = k / kBlockSize;
  for (int64_t r = n0; r < n1; ++r) {
    const uint8_t* codes = packed + r * (k / 2);
    const uint8_t* sc = scales + r * blocks;
    __m256 acc[MT];
    for (int i = 0; i < MT; ++i) acc[i] = _mm256_setzero_ps();
    for (int64_t b = 0; b < blocks; ++b) {
      const __m256i q = twice_e2m1_halves(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + 8 * b)), table);
      const __m256 s = _mm256_broadcast_ss(scale + sc[b]);
      const __m256 w0 = _mm256_mul_ps(widen(q, top.p[0]), s);
      const __m256 w1 = _mm256_mul_ps(widen(q, top.p[1]), s);
      const float* xb = xd + 16 * b;
      for (int i = 0; i < MT; ++i) {
        acc[i] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xb + i * k), acc[i]);
        acc[i] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xb + i * k + 8), acc[i]);
      }
    }
    for (int i = 0; i < MT; ++i) out[i * n_total + r] = horizontal_sum(acc[i]);
  }
}

// M = 2..4 (a single tile of activation rows, so every weight is decoded once anyway): two weight rows and
// all MT activation rows per step, decoded in registers; one decode serves both rows' blocks, and every
// activation load serves both rows. 2 x 4 accumulators + 4 decoded weights + the decode constants spill a
// little at MT = 4, but still beat decoding into memory first (measured 15-30 % faster at M = 2..4).
template <int MT>
RN_AVX2 void rows_in_registers(const uint8_t* packed, const uint8_t* scales, int64_t k, const float* xd,
                               int64_t n0, int64_t n1, int64_t n_total, float* out) {
  const TopBytes top;
  const __m256i table = e2m1_table();
  const float* scale = e4m3_unscaled_table();
  const int64_t blocks = k / kBlockSize;
  for (int64_t r = n0; r + 1 < n1; r += 2) {
    const uint8_t* c0 = packed + r * (k / 2);
    const uint8_t* c1 = c0 + k / 2;
    const uint8_t* s0 = scales + r * blocks;
    const uint8_t* s1 = s0 + blocks;
    __m256 acc0[MT], acc1[MT];
    for (int i = 0; i < MT; ++i) acc0[i] = acc1[i] = _mm256_setzero_ps();
    for (int64_t b = 0; b < blocks; ++b) {
      __m256 w[4];
      decode_pair(c0 + 8 * b, c1 + 8 * b, scale[s0[b]], scale[s1[b]], table, top, w);
      const float* xb = xd + 16 * b;
      for (int i = 0; i < MT; ++i) {
        const __m256 x0 = _mm256_loadu_ps(xb + i * k);
        const __m256 x1 = _mm256_loadu_ps(xb + i * k + 8);
        acc0[i] = _mm256_fmadd_ps(w[1], x1, _mm256_fmadd_ps(w[0], x0, acc0[i]));
        acc1[i] = _mm256_fmadd_ps(w[3], x1, _mm256_fmadd_ps(w[2], x0, acc1[i]));
      }
    }
    for (int i = 0; i < MT; ++i) {
      out[i * n_total + r] = horizontal_sum(acc0[i]);
      out[i * n_total + r + 1] = horizontal_sum(acc1[i]);
    }
  }
  if ((n1 - n0) % 2 != 0) rows_tile<MT>(packed, scales, k, xd, n1 - 1, n1, n_total, out);
}

// M > 4. Weight rows are processed in groups of kRowGroup and the reduction dimension in chunks of
// kChunkBlocks blocks: each chunk of a group is decoded once into a float scratch (block scales folded in),
// then every tile of up to kMaxTile activation rows streams over it. Decoding is thus paid once per weight
// whatever m is, the tiles' inner loop holds only accumulators, weights and activations (no decode
// constants, so no register spills), and a tile's activation chunk (4 rows x 2 KiB) and the scratch (16 KiB)
// stay in L1 while the group's row pairs pass over them.
constexpr int64_t kRowGroup = 8;
constexpr int64_t kChunkBlocks = 32;
// 2 weight rows x 4 activation rows = 8 accumulators, plus 4 weight and 2 activation registers.
constexpr int kMaxTile = 4;
constexpr int64_t kChunkFloats = kChunkBlocks * kBlockSize;

// Decodes blocks [b0, b0 + count) of one weight row into dst (16 floats per block, halves layout), times
// their block scales (and 2^-25).
RN_AVX2 void decode_row_chunk(const uint8_t* codes, const uint8_t* sc, const float* scale, int64_t b0,
                              int64_t count, __m256i table, const TopBytes& top, float* dst) {
  int64_t b = 0;
  for (; b + 1 < count; b += 2) {  // two blocks per 16-byte load
    const __m256i q = twice_e2m1_halves(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + 8 * (b0 + b))), table);
    const __m256 s0 = _mm256_broadcast_ss(scale + sc[b0 + b]);
    const __m256 s1 = _mm256_broadcast_ss(scale + sc[b0 + b + 1]);
    float* d = dst + 16 * b;
    _mm256_store_ps(d, _mm256_mul_ps(widen(q, top.p[0]), s0));
    _mm256_store_ps(d + 8, _mm256_mul_ps(widen(q, top.p[1]), s0));
    _mm256_store_ps(d + 16, _mm256_mul_ps(widen(q, top.p[2]), s1));
    _mm256_store_ps(d + 24, _mm256_mul_ps(widen(q, top.p[3]), s1));
  }
  if (b < count) {
    const __m256i q = twice_e2m1_halves(
        _mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + 8 * (b0 + b))), table);
    const __m256 s0 = _mm256_broadcast_ss(scale + sc[b0 + b]);
    _mm256_store_ps(dst + 16 * b, _mm256_mul_ps(widen(q, top.p[0]), s0));
    _mm256_store_ps(dst + 16 * b + 8, _mm256_mul_ps(widen(q, top.p[1]), s0));
  }
}

// R (1 or 2) decoded weight rows w (stride kChunkFloats) times MT activation rows x (stride k) over `count`
// blocks, added to the accumulators acc[i * R + j] (activation row i, weight row j; 8 floats each).
template <int R, int MT>
RN_AVX2 void tile_chunk(const float* w, const float* x, int64_t k, int64_t count, float* acc) {
  __m256 a[MT * R];
  for (int t = 0; t < MT * R; ++t) a[t] = _mm256_loadu_ps(acc + 8 * t);
  for (int64_t b = 0; b < count; ++b) {
    __m256 w0[R], w1[R];
    for (int j = 0; j < R; ++j) {
      w0[j] = _mm256_load_ps(w + j * kChunkFloats + 16 * b);
      w1[j] = _mm256_load_ps(w + j * kChunkFloats + 16 * b + 8);
    }
    for (int i = 0; i < MT; ++i) {
      __m256 x0 = _mm256_loadu_ps(x + i * k + 16 * b);
      __m256 x1 = _mm256_loadu_ps(x + i * k + 16 * b + 8);
      // Keeps each activation in a register for both weight rows: GCC otherwise folds the load into every
      // FMA, doubling the loads, and the load ports become the limit.
      asm("" : "+x"(x0), "+x"(x1));
      for (int j = 0; j < R; ++j) {
        a[i * R + j] = _mm256_fmadd_ps(w1[j], x1, _mm256_fmadd_ps(w0[j], x0, a[i * R + j]));
      }
    }
  }
  for (int t = 0; t < MT * R; ++t) _mm256_storeu_ps(acc + 8 * t, a[t]);
}

using ChunkFn = void (*)(const float*, const float*, int64_t, int64_t, float*);
constexpr ChunkFn kPairTiles[kMaxTile] = {tile_chunk<2, 1>, tile_chunk<2, 2>, tile_chunk<2, 3>,
                                         tile_chunk<2, 4>};
constexpr ChunkFn kRowTiles[kMaxTile] = {tile_chunk<1, 1>, tile_chunk<1, 2>, tile_chunk<1, 3>, tile_chunk<1, 4>};

RN_AVX2 void rows_multi(const uint8_t* packed, const uint8_t* scales, int64_t k, const float* xd, int64_t m,
                        int64_t n0, int64_t n1, int64_t n_total, float* out) {
  const TopBytes top;
  const __m256i table = e2m1_table();
  const float* scale = e4m3_unscaled_table();
  const int64_t blocks = k / kBlockSize;
  alignas(32) float w[kRowGroup * kChunkFloats];
  // Accumulators of a row group: [activation tile][row pair][tile row][pair row][8 floats].
  std::vector<float> acc(static_cast<size_t>(m * kRowGroup * 8));
  for (int64_t g = n0; g < n1; g += kRowGroup) {
    const int64_t rows = std::min(n1, g + kRowGroup) - g;
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (int64_t c = 0; c < blocks; c += kChunkBlocks) {
      const int64_t count = std::min(kChunkBlocks, blocks - c);
      for (int64_t j = 0; j < rows; ++j) {
        decode_row_chunk(packed + (g + j) * (k / 2), scales + (g + j) * blocks, scale, c, count, table, top,
                         w + j * kChunkFloats);
      }
      for (int64_t i = 0; i < m; i += kMaxTile) {
        const int64_t tile = std::min<int64_t>(kMaxTile, m - i);
        for (int64_t j = 0; j < rows; j += 2) {
          const int64_t pair = std::min<int64_t>(2, rows - j);
          float* a = acc.data() + (i * kRowGroup + tile * j) * 8;
          (pair == 2 ? kPairTiles : kRowTiles)[tile - 1](w + j * kChunkFloats, xd + i * k + c * kBlockSize, k,
                                                         count, a);
        }
      }
    }
    for (int64_t i = 0; i < m; i += kMaxTile) {
      const int64_t tile = std::min<int64_t>(kMaxTile, m - i);
      for (int64_t j = 0; j < rows; j += 2) {
        const int64_t pair = std::min<int64_t>(2, rows - j);
        const float* a = acc.data() + (i * kRowGroup + tile * j) * 8;
        for (int64_t ti = 0; ti < tile; ++ti) {
          for (int64_t pj = 0; pj < pair; ++pj) {
            out[(i + ti) * n_total + g + j + pj] = horizontal_sum(_mm256_loadu_ps(a + 8 * (ti * pair + pj)));
          }
        }
      }
    }
  }
}

// "Halves" layout of one 16-block: each 8-element half as its 4 even elements, then its 4 odd ones (the
// order in which top_bytes patterns 0, 1 take a block's low and high nibbles).
void arrange_halves(const float* x, float* out) {
  for (int h = 0; h < 16; h += 8) {
    for (int j = 0; j < 4; ++j) {
      out[h + j] = x[h + 2 * j];
      out[h + 4 + j] = x[h + 2 * j + 1];
    }
  }
}

// "Groups of 4" layout of blocks b..b+3 (rows_single): 8 vectors, first for blocks b | b + 2, then for
// b + 1 | b + 3; for each pair: even elements 0-6, even 8-14, odd 1-7, odd 9-15, each as 4 floats of the
// first block then 4 of the second.
void arrange_group_of_4(const float* x, float* out) {
  for (int pair = 0; pair < 2; ++pair) {
    const float* first = x + 16 * pair;
    const float* second = x + 16 * (pair + 2);
    for (int parity = 0; parity < 2; ++parity) {
      for (int half = 0; half < 2; ++half) {
        for (int j = 0; j < 4; ++j) *out++ = first[8 * half + 2 * j + parity];
        for (int j = 0; j < 4; ++j) *out++ = second[8 * half + 2 * j + parity];
      }
    }
  }
}

}  // namespace

void arrange_activations_avx2(const float* x, int64_t m, int64_t k, float* xd) {
  const int64_t blocks = k / kBlockSize;
  const int64_t grouped = m == 1 ? blocks / 4 * 4 : 0;  // only rows_single reads groups of 4
  for (int64_t i = 0; i < m; ++i) {
    const float* row = x + i * k;
    float* dst = xd + i * k;
    int64_t b = 0;
    for (; b < grouped; b += 4) arrange_group_of_4(row + 16 * b, dst + 16 * b);
    for (; b < blocks; ++b) arrange_halves(row + 16 * b, dst + 16 * b);
  }
}

void gemv_rows_avx2(const uint8_t* packed, const uint8_t* scales, int64_t k, const float* xd, int64_t m,
                    int64_t n0, int64_t n1, int64_t n_total, float* out) {
  if (m == 1) {
    rows_single(packed, scales, k, xd, n0, n1, out);
    return;
  }
  switch (m) {
    case 2: rows_in_registers<2>(packed, scales, k, xd, n0, n1, n_total, out); return;
    case 3: rows_in_registers<3>(packed, scales, k, xd, n0, n1, n_total, out); return;
    case 4: rows_in_registers<4>(packed, scales, k, xd, n0, n1, n_total, out); return;
    default: rows_multi(packed, scales, k, xd, m, n0, n1, n_total, out);
  }
}

}  // namespace reset_native::nvfp4::detail

#else  // not x86: resolve_kernel never selects these

namespace reset_native::nvfp4::detail {
void arrange_activations_avx2(const float* x, int64_t m, int64_t k, float* xd) {
  arrange_activations_scalar(x, m, k, xd);
}
void gemv_rows_avx2(const uint8_t* packed, const uint8_t* scales, int64_t k, const float* xd, int64_t m,
                    int64_t n0, int64_t n1, int64_t n_total, float* out) {
  gemv_rows_scalar(packed, scales, k, xd, m, n0, n1, n_total, out);
}
}  // namespace reset_native::nvfp4::detail

#endif
