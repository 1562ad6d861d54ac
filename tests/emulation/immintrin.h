#pragma once
// Stand-in for <immintrin.h> when tests/emulation/check_gemv_avx512.cpp is built: SIMDe (libsimde-dev)
// implements the AVX-512 intrinsics in portable code; the few that SIMDe 0.7.4 lacks are written out below.
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#include <cstring>
#include <cstdint>
#ifndef _mm512_cvtepu8_epi32
static inline __m512i _mm512_cvtepu8_epi32(__m128i v) {
  uint8_t b[16]; std::memcpy(b, &v, 16); int32_t o[16];
  for (int i = 0; i < 16; ++i) o[i] = b[i];
  __m512i r; std::memcpy(&r, o, 64); return r;
}
#endif
#ifndef _mm512_cvtepi32_ps
static inline __m512 _mm512_cvtepi32_ps(__m512i v) {
  int32_t a[16]; std::memcpy(a, &v, 64); float o[16];
  for (int i = 0; i < 16; ++i) o[i] = (float)a[i];
  __m512 r; std::memcpy(&r, o, 64); return r;
}
#endif
#ifndef _mm512_cmplt_epi32_mask
static inline simde__mmask16 _mm512_cmplt_epi32_mask(__m512i x, __m512i y) {
  int32_t a[16], b[16]; std::memcpy(a, &x, 64); std::memcpy(b, &y, 64); unsigned m = 0;
  for (int i = 0; i < 16; ++i) m |= (a[i] < b[i]) << i;
  return (simde__mmask16)m;
}
#endif
#ifndef _mm512_reduce_add_ps
static inline float _mm512_reduce_add_ps(__m512 v) {
  float a[16]; std::memcpy(a, &v, 64); float s = 0;
  for (int i = 0; i < 16; ++i) s += a[i];
  return s;
}
#endif
