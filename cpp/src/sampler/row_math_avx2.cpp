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

RN_AVX2 void chunk_sums(const float* z, std::int64_t n, float m, float* s_out, float* t_out) {
  const __m256 mv = _mm256_set1_ps(m), lower = _mm256_set1_ps(-87.0f);
  __m256 s = _mm256_setzero_ps(), t = _mm256_setzero_ps();
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(z + i), mv);
    const __m256 e = exp8(d);
    s = _mm256_add_ps(s, e);
    // d * e is -inf * 0 = NaN for -inf entries: masked to 0 like the scalar code
    t = _mm256_add_ps(t, _mm256_andnot_ps(_mm256_cmp_ps(d, lower, _CMP_LT_OQ), _mm256_mul_ps(d, e)));
  }
  float ss = sum8(s), tt = sum8(t);
  for (; i < n; ++i) {
    const float d = z[i] - m;
    const float e = exp_nonpositive(d);
    ss += e;
    tt += d < -87.0f ? 0.0f : d * e;
  }
  *s_out = ss;
  *t_out = tt;
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
void chunk_sums(const float*, std::int64_t, float, float*, float*) {}
float weights_chunk(const float*, std::int64_t, float, float, float, float*) { return 0.0f; }
}  // namespace reset_native::sampler::detail::avx2

#endif
