// Scalar NVFP4 format helpers: E2M1 / E4M3 / fp16 / bf16 conversions, global and block scales.
#include <array>
#include <cmath>
#include <cstring>
#include <string>

#include "internal.hpp"

namespace reset_native::nvfp4 {

namespace {

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

}  // namespace

float e2m1_decode(uint8_t code) {
  require(code < 16, "e2m1_decode: code must be 0..15, got " + std::to_string(code));
  static constexpr float kMagnitude[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  const float m = kMagnitude[code & 7];
  return (code & 8) ? -m : m;
}

uint8_t e2m1_encode(float value) {
  // The magnitude code is the number of RNE decision points the magnitude lies beyond (SPEC step 3);
  // ties sit on the even side, NaN compares false everywhere and lands on 0.
  const float m = std::fabs(value);
  const int code = (m > 0.25f) + (m >= 0.75f) + (m > 1.25f) + (m >= 1.75f) + (m > 2.5f) + (m >= 3.5f) +
                   (m > 5.0f);
  return static_cast<uint8_t>(code | (std::signbit(value) ? 8 : 0));
}

float e4m3_decode(uint8_t byte) { return detail::e4m3_table()[byte]; }

uint8_t e4m3_encode(float value) {
  const uint8_t sign = std::signbit(value) ? 0x80 : 0x00;
  if (std::isnan(value)) return 0x7F;
  float a = std::fabs(value);
  if (a >= kE4M3Max) return sign | 0x7E;  // satfinite: 448 = 1.75 * 2^8
  if (a < 1.0f / 64.0f) {
    // Subnormal range: multiples of 2^-9; a code of 8 is exactly the first normal (byte 0x08).
    return sign | static_cast<uint8_t>(std::nearbyint(a * 512.0f));
  }
  // Normal: keep 3 mantissa bits with round-to-nearest-even on the float's bit pattern. A carry into the
  // exponent is the correct result; a < 448 never rounds past 448.
  uint32_t u = bits_of(a);
  u += 0x7FFFFu + ((u >> 20) & 1u);
  const int exponent = static_cast<int>(u >> 23) - 127;
  const uint32_t mantissa = (u >> 20) & 7u;
  return sign | static_cast<uint8_t>(((exponent + 7) << 3) | mantissa);
}

float global_scale_from_amax(float amax) {
  require(std::isfinite(amax) && amax >= 0.0f,
          "global_scale_from_amax: amax must be finite and >= 0, got " + std::to_string(amax));
  return amax == 0.0f ? 1.0f : amax / kGlobalScaleDivisor;
}

uint8_t block_scale_byte(float block_amax, float global_scale) {
  const float d = 6.0f * global_scale;
  float bs = block_amax / d;
  // Written so that NaN (0 / 0 when the global scale underflowed to 0) takes the lower clamp.
  bs = bs > kE4M3Max ? kE4M3Max : (bs >= kE4M3MinScale ? bs : kE4M3MinScale);
  return e4m3_encode(bs);
}

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1Fu;
  const uint32_t mantissa = h & 0x3FFu;
  if (exponent == 0) {
    const float m = std::ldexp(static_cast<float>(mantissa), -24);  // zero or subnormal, exact
    return sign ? -m : m;
  }
  if (exponent == 31) return float_of(sign | 0x7F800000u | (mantissa << 13));
  return float_of(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

float bf16_to_float(uint16_t b) { return float_of(static_cast<uint32_t>(b) << 16); }

uint16_t float_to_half(float value) {
  const uint32_t u = bits_of(value);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  uint32_t a = u & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return sign | 0x7E00u | static_cast<uint16_t>((a >> 13) & 0x3FFu);  // NaN
  if (a >= 0x477FF000u) return sign | 0x7C00u;  // >= 65520 rounds to infinity
  if (a >= 0x38800000u) {                        // >= 2^-14: normal half
    a += 0xFFFu + ((a >> 13) & 1u);
    return sign | static_cast<uint16_t>((a - 0x38000000u) >> 13);
  }
  // Subnormal half: multiples of 2^-24 (the scaling is exact, nearbyint rounds to even).
  return sign | static_cast<uint16_t>(std::nearbyint(std::fabs(value) * 16777216.0f));
}

uint16_t float_to_bf16(float value) {
  const uint32_t u = bits_of(value);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);  // quiet NaN
  return static_cast<uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

namespace detail {

const float* e4m3_table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int b = 0; b < 256; ++b) {
      const int exponent = (b >> 3) & 15;
      const int mantissa = b & 7;
      float v;
      if (exponent == 15 && mantissa == 7) {
        v = std::nanf("");
      } else if (exponent == 0) {
        v = std::ldexp(static_cast<float>(mantissa), -9);
      } else {
        v = std::ldexp(static_cast<float>(8 + mantissa), exponent - 10);
      }
      t[b] = (b & 0x80) ? -v : v;
    }
    return t;
  }();
  return table.data();
}

// Messages are built with std::string and std::to_string, never iostreams: the first formatted number
// through an ostream (num_put / num_get and their locale caches) crashed the process on the 16-core GPU host
// in both runs there (a std::ifstream >> long at the first dequantize, a std::ostringstream << int64_t at the
// first non-finite-input error), while constructing streams without formatting did not (bench/RESULTS-cpu5.md).
std::string index_text(const char* name, int64_t row, int64_t col) {
  return std::string(name) + "[" + std::to_string(row) + ", " + std::to_string(col) + "]";
}

void check_matrix_shape(const char* what, int64_t rows, int64_t cols) {
  const std::string shape = "[" + std::to_string(rows) + ", " + std::to_string(cols) + "]";
  if (rows <= 0 || cols <= 0) {
    throw InvalidArgument(std::string(what) + ": the matrix must be non-empty, got shape " + shape);
  }
  if (cols % kBlockSize != 0) {
    throw InvalidArgument(std::string(what) + ": the number of columns (K) must be a multiple of 16, got " +
                          std::to_string(cols));
  }
  // Keeps every index computation (rows * cols and friends) far from int64 overflow.
  if (rows > (int64_t{1} << 40) / cols) {
    throw InvalidArgument(std::string(what) + ": shape " + shape + " is too large");
  }
}

void check_parts(const char* what, const uint8_t* packed, const uint8_t* block_scales, float global_scale,
                 int64_t rows, int64_t cols) {
  check_matrix_shape(what, rows, cols);
  require(packed != nullptr, std::string(what) + ": packed is null");
  require(block_scales != nullptr, std::string(what) + ": block_scales is null");
  require(std::isfinite(global_scale) && global_scale > 0.0f,
          std::string(what) + ": global_scale must be finite and > 0, got " + std::to_string(global_scale));
}

}  // namespace detail

}  // namespace reset_native::nvfp4
