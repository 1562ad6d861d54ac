// AVX-512F GEMV kernels (W4A16 sums straight from the packed weights) and the activation layout they read.
// Compiled with function-level target attributes (only AVX-512F instructions are used, plus FMA); the
// dispatcher selects them only on CPUs that report AVX-512F.
//
// Layout: weights are taken in groups of 16 blocks (256 weights, 128 packed bytes, 16 scale bytes), and
// lane j of every zmm belongs to block j of the group. Two vpermt2d turn the group's 16 qwords into
// `lo` (dword j = block j's elements 0-7) and `hi` (elements 8-15); for element position p, vpermps of a
// constant 16-entry table by (lo >> 4p) gives element p of all 16 blocks as floats (vpermps reads only the
// low 4 bits of each index, so no mask is needed). The 16 block scales of the group decode to one zmm,
// which multiplies the 16 per-block partial sums once per group (M = 1) or the decoded weights (M > 1).
// Per 16 weights the M = 1 loop issues one shift, one vpermps and one FMA (about 3 micro-ops, half the AVX2
// kernel's), plus ~1 per 16 for the group's transposes and scale decode.
//
// Activations are rearranged once per call to match: within each group, xd[16 p + j] = x[block j, elt p],
// each row padded with zeros to a whole number of groups (arranged_stride_avx512), so a partial last group
// reads zero activations for its missing blocks.
#include "internal.hpp"

#if defined(__x86_64__) || defined(__i386__)
// GCC 12's AVX-512 headers trip -Wmaybe-uninitialized on their own _mm512_undefined_* placeholders when
// inlined into target("avx512f") functions (a header false positive, GCC bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#include <cstring>
#include <limits>

// Overridable so the kernels can be compiled without the target attribute (e.g. against an emulation of the
// intrinsics, to check the layout on a machine without AVX-512).
#ifndef RN_AVX512
#define RN_AVX512 __attribute__((target("avx512f,avx2,fma")))
#endif

namespace reset_native::nvfp4::detail {

namespace {

constexpr int64_t kGroupBlocks = 16;
constexpr int64_t kGroupBytes = kGroupBlocks * kBlockSize / 2;       // 128 packed bytes
constexpr int64_t kGroupFloats = kGroupBlocks * kBlockSize;         // 256 activations
constexpr int kMaxTile = 16;                                        // activation rows per pass (M > 1)

// Software prefetch distance of the M = 1 loop (bytes of packed codes ahead), as in the AVX2 kernel.
constexpr int64_t kPrefetchBytes = 2048;

struct Constants {
  __m512 table;     // E2M1 code -> float
  __m512i pick_lo;  // vpermt2d indices: even dwords of two zmm (each block's first 4 bytes)
  __m512i pick_hi;  // odd dwords (each block's last 4 bytes)
  RN_AVX512 Constants()
      : table(_mm512_setr_ps(0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f, -0.0f, -0.5f, -1.0f, -1.5f, -2.0f,
                             -3.0f, -4.0f, -6.0f)),
        pick_lo(_mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)),
        pick_hi(_mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31)) {}
};

// 16 E4M3 bytes -> 16 floats, exact for all 256 bytes (same values as e4m3_table(), NaN for 0x7F / 0xFF).
// Normal numbers move their exponent and mantissa fields into the float's and re-bias (7 -> 127);
// subnormals (exponent 0) are mantissa * 2^-9, converted from the integer.
RN_AVX512 inline __m512 decode_scales(const uint8_t* bytes16) {
  const __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes16)));
  const __m512i mag = _mm512_and_si512(b, _mm512_set1_epi32(0x7F));
  const __m512 normal =
      _mm512_castsi512_ps(_mm512_add_epi32(_mm512_slli_epi32(mag, 20), _mm512_set1_epi32(120 << 23)));
  const __m512 subnormal = _mm512_mul_ps(_mm512_cvtepi32_ps(mag), _mm512_set1_ps(1.0f / 512.0f));
  __m512 v = _mm512_mask_mov_ps(normal, _mm512_cmplt_epi32_mask(mag, _mm512_set1_epi32(8)), subnormal);
  v = _mm512_mask_mov_ps(v, _mm512_cmpeq_epi32_mask(mag, _mm512_set1_epi32(0x7F)),
                         _mm512_set1_ps(std::numeric_limits<float>::quiet_NaN()));
  const __m512i sign = _mm512_slli_epi32(_mm512_and_si512(b, _mm512_set1_epi32(0x80)), 24);
  return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(v), sign));
}

// One group of a weight row: its codes as lo / hi (see the file comment) and its 16 scales.
struct Group {
  __m512i lo, hi;
  __m512 scale;
};

RN_AVX512 inline Group load_group(const uint8_t* codes, const uint8_t* scales, const Constants& c) {
  const __m512i z0 = _mm512_loadu_si512(codes);        // blocks 0-7, one qword each
  const __m512i z1 = _mm512_loadu_si512(codes + 64);   // blocks 8-15
  return {_mm512_permutex2var_epi32(z0, c.pick_lo, z1), _mm512_permutex2var_epi32(z0, c.pick_hi, z1),
          decode_scales(scales)};
}

// The last, partial group of a row (1..15 blocks): copied into zeroed buffers (zero codes and zero scales
// for the missing blocks, whose activations are zero too), then loaded as a full group.
RN_AVX512 inline Group load_partial_group(const uint8_t* codes, const uint8_t* scales, int64_t blocks,
                                          const Constants& c) {
  alignas(64) uint8_t code_buf[kGroupBytes] = {};
  alignas(16) uint8_t scale_buf[kGroupBlocks] = {};
  std::memcpy(code_buf, codes, static_cast<size_t>(blocks * kBlockSize / 2));
  std::memcpy(scale_buf, scales, static_cast<size_t>(blocks));
  return load_group(code_buf, scale_buf, c);
}

// Element p (of all 16 blocks) for p = 0..7 is table[(lo >> 4p) & 15]; the caller shifts `codes` by 4
// between calls.
RN_AVX512 inline __m512 element(__m512i codes, const Constants& c) { return _mm512_permutexvar_ps(codes, c.table); }

// sum over the group's 256 weights of w * x, per block (lane j = block j), without the block scales. Four
// independent accumulators keep the FMA latency hidden. Written out: GCC keeps a t[p % 4] array in memory.
RN_AVX512 inline __m512 group_partial_sums(const Group& g, const float* x, const Constants& c) {
  __m512i v = g.lo;
  __m512 t0 = _mm512_mul_ps(element(v, c), _mm512_loadu_ps(x));
  v = _mm512_srli_epi32(v, 4);
  __m512 t1 = _mm512_mul_ps(element(v, c), _mm512_loadu_ps(x + 16));
  v = _mm512_srli_epi32(v, 4);
  __m512 t2 = _mm512_mul_ps(element(v, c), _mm512_loadu_ps(x + 32));
  v = _mm512_srli_epi32(v, 4);
  __m512 t3 = _mm512_mul_ps(element(v, c), _mm512_loadu_ps(x + 48));
  v = _mm512_srli_epi32(v, 4);
#pragma GCC unroll 3
  for (int p = 4; p < 16; p += 4) {
    if (p == 8) v = g.hi;
    t0 = _mm512_fmadd_ps(element(v, c), _mm512_loadu_ps(x + 16 * p), t0);
    v = _mm512_srli_epi32(v, 4);
    t1 = _mm512_fmadd_ps(element(v, c), _mm512_loadu_ps(x + 16 * p + 16), t1);
    v = _mm512_srli_epi32(v, 4);
    t2 = _mm512_fmadd_ps(element(v, c), _mm512_loadu_ps(x + 16 * p + 32), t2);
    v = _mm512_srli_epi32(v, 4);
    t3 = _mm512_fmadd_ps(element(v, c), _mm512_loadu_ps(x + 16 * p + 48), t3);
    v = _mm512_srli_epi32(v, 4);
  }
  return _mm512_add_ps(_mm512_add_ps(t0, t1), _mm512_add_ps(t2, t3));
}

// M = 1: per group, 16 per-block partial sums, then one FMA with the group's scales.
RN_AVX512 void rows_single(const uint8_t* packed, const uint8_t* scales, int64_t k, const float* xd, int64_t n0,
                           int64_t n1, float* out) {
  const Constants c;
  const int64_t blocks = k / kBlockSize;
  const int64_t groups = blocks / kGroupBlocks;
  const int64_t tail = blocks % kGroupBlocks;
  for (int64_t r = n0; r < n1; ++r) {
    const uint8_t* codes = packed + r * (k / 2);
    const uint8_t* sc = scales + r * blocks;
    __m512 acc = _mm512_setzero_ps();
    for (int64_t g = 0; g < groups; ++g) {
      const uint8_t* ahead = codes + g * kGroupBytes + kPrefetchBytes;
      _mm_prefetch(reinterpret_cast<const char*>(ahead), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(ahead + 64), _MM_HINT_T0);
      if ((g & 3) == 0) {
        _mm_prefetch(reinterpret_cast<const char*>(sc + g * kGroupBlocks + kPrefetchBytes / 8), _MM_HINT_T0);
      }
      const Group grp = load_group(codes + g * kGroupBytes, sc + g * kGroupBlocks, c);
      acc = _mm512_fmadd_ps(group_partial_sums(grp, xd + g * kGroupFloats, c), grp.scale, acc);
    }
    if (tail != 0) {
      const Group grp = load_partial_group(codes + groups * kGroupBytes, sc + groups * kGroupBlocks, tail, c);
      acc = _mm512_fmadd_ps(group_partial_sums(grp, xd + groups * kGroupFloats, c), grp.scale, acc);
    }
    out[r] = _mm512_reduce_add_ps(acc);
  }
}

// MT activation rows (x stride `stride`): each group's weights are decoded once, their block scales folded
// in (e2m1 * e4m3 is exact in float), and each decoded vector feeds MT FMAs.
template <int MT>
RN_AVX512 inline void accumulate_group(const Group& g, const float* x, int64_t stride, const Constants& c,
                                       __m512 acc[MT]) {
  __m512i v = g.lo;
#pragma GCC unroll 16
  for (int p = 0; p < 16; ++p) {
    if (p == 8) v = g.hi;
    const __m512 w = _mm512_mul_ps(element(v, c), g.scale);
    v = _mm512_srli_epi32(v, 4);
#pragma GCC unroll 16
    for (int i = 0; i < MT; ++i) acc[i] = _mm512_fmadd_ps(w, _mm512_loadu_ps(x + i * stride + 16 * p), acc[i]);
  }
}

template <int MT>
RN_AVX512 void rows_tile(const uint8_t* packed, const uint8_t* scales, int64_t k, const float* xd, int64_t stride,
                         int64_t n0, int64_t n1, int64_t n_total, float* out) {
  const Constants c;
  const int64_t blocks = k / kBlockSize;
  const int64_t groups = blocks / kGroupBlocks;
  const int64_t tail = blocks % kGroupBlocks;
  for (int64_t r = n0; r < n1; ++r) {
    const uint8_t* codes = packed + r * (k / 2);
    const uint8_t* sc = scales + r * blocks;
    __m512 acc[MT];
#pragma GCC unroll 16
    for (int i = 0; i < MT; ++i) acc[i] = _mm512_setzero_ps();
    for (int64_t g = 0; g < groups; ++g) {
      const Group grp = load_group(codes + g * kGroupBytes, sc + g * kGroupBlocks, c);
      accumulate_group<MT>(grp, xd + g * kGroupFloats, stride, c, acc);
    }
    if (tail != 0) {
      const Group grp = load_partial_group(codes + groups * kGroupBytes, sc + groups * kGroupBlocks, tail, c);
      accumulate_group<MT>(grp, xd + groups * kGroupFloats, stride, c, acc);
    }
    for (int i = 0; i < MT; ++i) out[i * n_total + r] = _mm512_reduce_add_ps(acc[i]);
  }
}

using TileFn = void (*)(const uint8_t*, const uint8_t*, int64_t, const float*, int64_t, int64_t, int64_t, int64_t,
                        float*);
constexpr TileFn kTiles[kMaxTile + 1] = {
    nullptr,       rows_tile<1>,  rows_tile<2>,  rows_tile<3>,  rows_tile<4>,  rows_tile<5>,
    rows_tile<6>,  rows_tile<7>,  rows_tile<8>,  rows_tile<9>,  rows_tile<10>, rows_tile<11>,
    rows_tile<12>, rows_tile<13>, rows_tile<14>, rows_tile<15>, rows_tile<16>};

}  // namespace

int64_t arranged_stride_avx512(int64_t k) {
  const int64_t blocks = k / kBlockSize;
  return (blocks + kGroupBlocks - 1) / kGroupBlocks * kGroupFloats;
}

void arrange_activations_avx512(const float* x, int64_t m, int64_t k, float* xd) {
  const int64_t blocks = k / kBlockSize;
  const int64_t stride = arranged_stride_avx512(k);
  for (int64_t i = 0; i < m; ++i) {
    const float* row = x + i * k;
    float* dst = xd + i * stride;
    std::fill(dst, dst + stride, 0.0f);
    for (int64_t b = 0; b < blocks; ++b) {
      float* group = dst + b / kGroupBlocks * kGroupFloats;
      const int64_t j = b % kGroupBlocks;
      for (int64_t p = 0; p < kBlockSize; ++p) group[16 * p + j] = row[b * kBlockSize + p];
    }
  }
}

void gemv_rows_avx512(const uint8_t* packed, const uint8_t* scales, int64_t k, const float* xd, int64_t m,
                      int64_t n0, int64_t n1, int64_t n_total, float* out) {
  if (m == 1) {
    rows_single(packed, scales, k, xd, n0, n1, out);
    return;
  }
  const int64_t stride = arranged_stride_avx512(k);
  for (int64_t i = 0; i < m; i += kMaxTile) {  // M > 16: tiles of 16 rows, each re-decoding the weights
    const int64_t tile = std::min<int64_t>(kMaxTile, m - i);
    kTiles[tile](packed, scales, k, xd + i * stride, stride, n0, n1, n_total, out + i * n_total);
  }
}

}  // namespace reset_native::nvfp4::detail

#else  // not x86: resolve_kernel never selects these

namespace reset_native::nvfp4::detail {
int64_t arranged_stride_avx512(int64_t k) { return k; }
void arrange_activations_avx512(const float* x, int64_t m, int64_t k, float* xd) {
  arrange_activations_scalar(x, m, k, xd);
}
void gemv_rows_avx512(const uint8_t* packed, const uint8_t* scales, int64_t k, const float* xd, int64_t m,
                      int64_t n0, int64_t n1, int64_t n_total, float* out) {
  gemv_rows_scalar(packed, scales, k, xd, m, n0, n1, n_total, out);
}
}  // namespace reset_native::nvfp4::detail

#endif
