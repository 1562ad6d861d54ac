#include "dram/frfcfs_scan.hpp"

#include <algorithm>
#include <limits>

#if defined(__x86_64__)
#include <immintrin.h>

namespace reset_native::dram {

#define RN_AVX2 __attribute__((target("avx2")))

namespace {
RN_AVX2 inline __m256i max64(__m256i a, __m256i b) { return _mm256_blendv_epi8(b, a, _mm256_cmpgt_epi64(a, b)); }
RN_AVX2 inline __m256i min64(__m256i a, __m256i b) { return _mm256_blendv_epi8(a, b, _mm256_cmpgt_epi64(a, b)); }
RN_AVX2 inline __m256i load(const int64_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
RN_AVX2 inline int64_t horizontal_min(__m256i v) {
  const __m128i lo = _mm256_castsi256_si128(v), hi = _mm256_extracti128_si256(v, 1);
  const __m128i m = _mm_blendv_epi8(lo, hi, _mm_cmpgt_epi64(lo, hi));
  return std::min(_mm_cvtsi128_si64(m), _mm_extract_epi64(m, 1));
}
}  // namespace

bool frfcfs_scan_avx2_available() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2");
}

RN_AVX2 int64_t frfcfs_scan_avx2(const CandidateTable& t, int64_t now, int64_t& at) {
  // Local copies: the stores to `when` could otherwise alias the table's fields.
  const int64_t* const __restrict bank_ready = t.bank_ready;
  const int64_t* const __restrict lanes = t.lanes;
  const int64_t* const __restrict upper = t.upper;
  const int64_t* const __restrict key = t.key;
  const int64_t* const* const __restrict group_ready = t.group_ready;
  const int64_t* const* const __restrict rank_ready = t.rank_ready;
  int64_t* const __restrict when = t.when;
  const int groups = t.ranks * t.groups_per_rank;
  const __m256i floor = _mm256_set1_epi64x(now);
  // Pass 1: every bank's ready time, clamped to now, and their minimum. Per group, the larger of the
  // group's and the rank's term for each of the eight commands sits in two vectors; each bank picks
  // its command's with a lane permutation.
  __m256i earliest = _mm256_set1_epi64x(std::numeric_limits<int64_t>::max());
  for (int r = 0, g = 0; r < t.ranks; ++r) {
    const __m256i rank_low = load(rank_ready[r]), rank_high = load(rank_ready[r] + 4);
    for (const int end = g + t.groups_per_rank; g < end; ++g) {
      const int64_t* gr = group_ready[g];
      const __m256i low = max64(load(gr), rank_low), high = max64(load(gr + 4), rank_high);
      const __m256i lane = load(lanes + 4 * g);
      const __m256i term = _mm256_blendv_epi8(_mm256_permutevar8x32_epi32(low, lane),
                                              _mm256_permutevar8x32_epi32(high, lane), load(upper + 4 * g));
      const __m256i w = max64(max64(load(bank_ready + 4 * g), term), floor);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(when + 4 * g), w);
      earliest = min64(earliest, w);
    }
  }
  at = horizontal_min(earliest);
  // Pass 2: the smallest key among the banks ready by `at`; the others' keys are masked to the
  // largest int64 (all ones from the compare, then the sign bit cleared).
  const __m256i at_v = _mm256_set1_epi64x(at);
  const __m256i positive = _mm256_set1_epi64x(std::numeric_limits<int64_t>::max());
  __m256i best = positive;
  for (int g = 0; g < groups; ++g) {
    const __m256i late = _mm256_cmpgt_epi64(load(when + 4 * g), at_v);
    best = min64(best, _mm256_and_si256(_mm256_or_si256(load(key + 4 * g), late), positive));
  }
  return horizontal_min(best);
}

}  // namespace reset_native::dram

#else  // not x86-64: the portable scan only

namespace reset_native::dram {
bool frfcfs_scan_avx2_available() { return false; }
int64_t frfcfs_scan_avx2(const CandidateTable&, int64_t, int64_t& at) {
  at = std::numeric_limits<int64_t>::max();
  return std::numeric_limits<int64_t>::max();
}
}  // namespace reset_native::dram

#endif
