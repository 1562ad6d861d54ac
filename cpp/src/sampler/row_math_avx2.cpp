// AVX2+FMA versions of the row kernels, written with intrinsics because compilers keep the guarded
// exp loop scalar. Only called when the CPU reports AVX2 and FMA; the rest of the library stays
// baseline x86-64.
#include "sampler/row_math.hpp"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#include <cmath>

#define RN_AVX2 __attribute__((target("avx2,fma")))

namespace reset_native::sampler::detail::avx2 {

namespace {

// Eight lanes of exp_nonpositive (same constants and polynomial); lanes below -87 give 0.
RN_AVX2 inline __m256 exp8(__m256 d) {
  const __m256 lower = _mm256_set1_ps(-87.0f), shift = _mm256_set1_ps(12582912.0f);
  const __m256 dc = _mm256_max_ps(d, lower);
  const __m256 t = _mm256_fmadd_ps(dc, _mm256_set1_ps(1.44269504f), shift);
  const __m256 n = _mm256_sub_ps(t, shift);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145752f), dc);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.42860677e-06f), r);
  __m256 p = _mm256_set1_ps(1.0f / 720.0f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i scale = _mm256_slli_epi32(_mm256_sub_epi32(_mm256_castps_si256(t), _mm256_castps_si256(shift)), 23);
  const __m256 e = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), scale));
  return _mm256_andnot_ps(_mm256_cmp_ps(d, lower, _CMP_LT_OQ), e);
}

// 2^y and y for eight lanes of y = max((x - m) log2(e), -125), the terms of the entropy sums
// (sum 2^y, sum y 2^y). Estrin's scheme keeps the dependency chain short. Lanes further than 125
// bits (87 nats) below m give 2^-125 instead of 0: at most V * 2.4e-38 of the row's mass. A NaN x
// gives NaN (max(lo, NaN) is NaN), so the sums reveal it. Degree-5 fit of 2^f on [-1/2, 1/2]
// (relative error 1.2e-7). Lanes with x > m give meaningless values that the caller discards.
struct Exp2 {
  __m256 value;
  __m256 y;
};

RN_AVX2 inline Exp2 exp2_of_gap(__m256 x, __m256 m) {
  const __m256 lowest = _mm256_set1_ps(-125.0f);
  const __m256 y = _mm256_max_ps(lowest, _mm256_mul_ps(_mm256_sub_ps(x, m), _mm256_set1_ps(1.44269504f)));
  const __m256 n = _mm256_round_ps(y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 f = _mm256_sub_ps(y, n);  // exact, in [-1/2, 1/2]
  const __m256 f2 = _mm256_mul_ps(f, f);
  const __m256 a = _mm256_fmadd_ps(f, _mm256_set1_ps(0.693147004f), _mm256_set1_ps(1.0f));
  const __m256 b = _mm256_fmadd_ps(f, _mm256_set1_ps(0.0555073358f), _mm256_set1_ps(0.240222424f));
  const __m256 c = _mm256_fmadd_ps(f, _mm256_set1_ps(0.00132647273f), _mm256_set1_ps(0.00967151299f));
  const __m256 p = _mm256_fmadd_ps(_mm256_fmadd_ps(c, f2, b), f2, a);
  // p in [2^-1/2, 2^1/2] and n >= -125: adding n to the exponent field keeps the result normal.
  const __m256i scale = _mm256_slli_epi32(_mm256_cvtps_epi32(n), 23);
  return Exp2{_mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), scale)), y};
}

RN_AVX2 inline float sum8(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 h = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(h, _mm_shuffle_ps(h, h, 1)));
}

RN_AVX2 inline float max8(__m256 v) {
  const __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 h = _mm_max_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_max_ss(h, _mm_shuffle_ps(h, h, 1)));
}

}  // namespace

bool available() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }

RN_AVX2 ChunkMax chunk_max(const float* z, std::int64_t n) {
  __m256 m = _mm256_set1_ps(-INFINITY), unordered = _mm256_setzero_ps();
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(z + i);
    m = _mm256_max_ps(m, x);
    unordered = _mm256_or_ps(unordered, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
  }
  float mx = max8(m);
  bool nan = _mm256_movemask_ps(unordered) != 0;
  for (; i < n; ++i) {
    mx = z[i] > mx ? z[i] : mx;
    nan = nan || z[i] != z[i];
  }
  return ChunkMax{mx, nan};
}

RN_AVX2 ChunkSums chunk_sums(const float* z, std::int64_t n, float m) {
  const __m256 mv = _mm256_set1_ps(m);
  // Two independent accumulator sets: the exp chain is long, so more work in flight helps.
  __m256 mx0 = _mm256_set1_ps(-INFINITY), mx1 = mx0;
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, t0 = s0, t1 = s0;
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 x0 = _mm256_loadu_ps(z + i), x1 = _mm256_loadu_ps(z + i + 8);
    mx0 = _mm256_max_ps(x0, mx0);  // operand order: a NaN x leaves the running max as it was
    mx1 = _mm256_max_ps(x1, mx1);
    const Exp2 e0 = exp2_of_gap(x0, mv), e1 = exp2_of_gap(x1, mv);
    s0 = _mm256_add_ps(s0, e0.value);
    s1 = _mm256_add_ps(s1, e1.value);
    t0 = _mm256_fmadd_ps(e0.y, e0.value, t0);
    t1 = _mm256_fmadd_ps(e1.y, e1.value, t1);
  }
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(z + i);
    mx0 = _mm256_max_ps(x, mx0);
    const Exp2 e = exp2_of_gap(x, mv);
    s0 = _mm256_add_ps(s0, e.value);
    t0 = _mm256_fmadd_ps(e.y, e.value, t0);
  }
  float mx = max8(_mm256_max_ps(mx0, mx1)), ss = sum8(_mm256_add_ps(s0, s1));
  float tt = sum8(_mm256_add_ps(t0, t1)) * 0.693147181f;  // log2 units -> nats
  for (; i < n; ++i) {  // tail of the row (< 8 elements), scalar
    const float x = z[i];
    if (x != x) return ChunkSums{mx, NAN, NAN};
    mx = x > mx ? x : mx;
    const float d = x - m;
    if (d <= 0.0f) {  // d > 0 means the caller sums the chunk again against the new maximum
      const float e = exp_nonpositive(d);
      ss += e;
      tt += d < -87.0f ? 0.0f : d * e;
    }
  }
  return ChunkSums{mx, ss, tt};
}

RN_AVX2 float weights_chunk(const float* z, std::int64_t n, float zmax, float inv_t, float keep_from, float* out) {
  const __m256 zm = _mm256_set1_ps(zmax), it = _mm256_set1_ps(inv_t), keep = _mm256_set1_ps(keep_from);
  __m256 s = _mm256_setzero_ps();
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(z + i);
    const __m256 e = exp8(_mm256_mul_ps(_mm256_sub_ps(x, zm), it));
    const __m256 w = _mm256_and_ps(_mm256_cmp_ps(x, keep, _CMP_GE_OQ), e);
    _mm256_storeu_ps(out + i, w);
    s = _mm256_add_ps(s, w);
  }
  float total = sum8(s);
  for (; i < n; ++i) {
    const float e = exp_nonpositive((z[i] - zmax) * inv_t);
    out[i] = z[i] >= keep_from ? e : 0.0f;
    total += out[i];
  }
  return total;
}

}  // namespace reset_native::sampler::detail::avx2

#else  // not x86-64 with GCC/Clang: the portable kernels are used

namespace reset_native::sampler::detail::avx2 {
// available() is false here, so row_math.cpp never calls the three kernels below.
bool available() { return false; }
ChunkMax chunk_max(const float*, std::int64_t) { return ChunkMax{0.0f, true}; }
ChunkSums chunk_sums(const float*, std::int64_t, float) { return ChunkSums{0.0f, 0.0f, 0.0f}; }
float weights_chunk(const float*, std::int64_t, float, float, float, float*) { return 0.0f; }
}  // namespace reset_native::sampler::detail::avx2

#endif
