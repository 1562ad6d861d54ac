// Private: the unit's fp32 arithmetic and the storage encodings of its operand dtypes.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "reset_native/pim/config.hpp"

namespace reset_native::pim::arith {

// Products go through memory so no compiler contracts them into a fused multiply-add: the unit
// rounds every product and every sum to fp32, as numpy's float32 arithmetic does.
inline float mul(float a, float b) {
  volatile float p = a * b;
  return p;
}
inline float axpby(float a, float x, float b, float y) { return mul(a, x) + mul(b, y); }
inline float adam_div(float c1, float m, float c2, float v, float eps) {
  volatile float den = std::sqrt(mul(c2, v)) + eps;
  return mul(c1, m) / den;
}

inline uint32_t bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return u;
}
inline float from_bits(uint32_t u) {
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

// Encodings of values already representable in the dtype (round first).
inline uint16_t fp16_bits(float x) {
  const uint32_t u = bits(x);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const float a = std::fabs(x);
  if (std::isnan(x)) return static_cast<uint16_t>(sign | 0x7E00u);
  if (std::isinf(x)) return static_cast<uint16_t>(sign | 0x7C00u);
  if (a < 6.103515625e-05f) return static_cast<uint16_t>(sign | static_cast<uint16_t>(a / 5.9604644775390625e-08f));
  const uint32_t e = ((u >> 23) & 0xFFu) - 127 + 15;
  return static_cast<uint16_t>(sign | (e << 10) | ((u >> 13) & 0x3FFu));
}
inline float fp16_value(uint16_t h) {
  const float sign = (h & 0x8000u) ? -1.0f : 1.0f;
  const int e = (h >> 10) & 0x1F, m = h & 0x3FF;
  if (e == 0) return sign * static_cast<float>(m) * 5.9604644775390625e-08f;
  if (e == 31) return m ? std::nanf("") : sign * INFINITY;
  return from_bits((static_cast<uint32_t>(h & 0x8000u) << 16) | (static_cast<uint32_t>(e - 15 + 127) << 23) |
                   (static_cast<uint32_t>(m) << 13));
}

inline void store(DType d, float x, uint8_t* p) {
  if (d == DType::FP32) {
    std::memcpy(p, &x, 4);
    return;
  }
  const uint16_t h = d == DType::FP16 ? fp16_bits(x) : static_cast<uint16_t>(bits(x) >> 16);
  std::memcpy(p, &h, 2);
}
inline float load(DType d, const uint8_t* p) {
  if (d == DType::FP32) {
    float x;
    std::memcpy(&x, p, 4);
    return x;
  }
  uint16_t h;
  std::memcpy(&h, p, 2);
  return d == DType::FP16 ? fp16_value(h) : from_bits(static_cast<uint32_t>(h) << 16);
}

}  // namespace reset_native::pim::arith
