// Portable kernels: the reference code path, also what runs on CPUs without AVX2.
#include <cmath>

#include "internal.hpp"

namespace reset_native::nvfp4::detail {

namespace {

// The sign comes from the input, not the quotient: 0 / 0 (a global scale that underflowed) is a NaN whose
// sign the hardware picks.
uint8_t encode_element(float x, float scale) {
  return static_cast<uint8_t>((e2m1_encode(x / scale) & 7) | (std::signbit(x) ? 8 : 0));
}

}  // namespace

float scan_amax_scalar(const float* x, int64_t count, int64_t* first_bad) {
  float amax = 0.0f;
  for (int64_t i = 0; i < count; ++i) {
    const float a = std::fabs(x[i]);
    if (!(a <= 3.4028234663852886e38f)) {  // NaN or Inf
      *first_bad = i;
      return amax;
    }
    amax = a > amax ? a : amax;
  }
  *first_bad = -1;
  return amax;
}

void quantize_row_scalar(const float* x, int64_t cols, float gs, uint8_t* packed, uint8_t* scales) {
  const float* e4m3 = e4m3_table();
  for (int64_t b = 0; b < cols / kBlockSize; ++b) {
    const float* xb = x + b * kBlockSize;
    float block_amax = 0.0f;
    for (int j = 0; j < kBlockSize; ++j) {
      const float a = std::fabs(xb[j]);
      block_amax = a > block_amax ? a : block_amax;
    }
    const uint8_t byte = block_scale_byte(block_amax, gs);
    scales[b] = byte;
    const float s = e4m3[byte] * gs;
    for (int i = 0; i < 8; ++i) {
      packed[b * 8 + i] =
          static_cast<uint8_t>(encode_element(xb[2 * i], s) | (encode_element(xb[2 * i + 1], s) << 4));
    }
  }
}

void half_to_float_scalar(const uint16_t* in, float* out, int64_t count) {
  for (int64_t i = 0; i < count; ++i) out[i] = half_to_float(in[i]);
}

// Every 16-block of each row becomes [its 8 even elements, its 8 odd elements]: the order in which
// gemv_rows_scalar decodes the low and high nibbles of a block's 8 bytes.
void arrange_activations_scalar(const float* x, int64_t m, int64_t k, float* xd) {
  for (int64_t b = 0; b < m * k; b += kBlockSize) {
    for (int j = 0; j < kBlockSize / 2; ++j) {
      xd[b + j] = x[b + 2 * j];
      xd[b + kBlockSize / 2 + j] = x[b + 2 * j + 1];
    }
  }
}

void gemv_rows_scalar(const uint8_t* packed, const uint8_t* scales, int64_t k, const float* xd, int64_t m,
                      int64_t n0, int64_t n1, int64_t n_total, float* out) {
  const float* e4m3 = e4m3_table();
  const int64_t blocks = k / kBlockSize;
  for (int64_t r = n0; r < n1; ++r) {
    const uint8_t* row_codes = packed + r * (k / 2);
    const uint8_t* row_scales = scales + r * blocks;
    for (int64_t i = 0; i < m; ++i) {
      const float* xr = xd + i * k;
      float acc = 0.0f;
      for (int64_t b = 0; b < blocks; ++b) {
        const uint8_t* codes = row_codes + b * 8;
        const float* xe = xr + b * kBlockSize;  // 8 even elements, then 8 odd ones
        float partial = 0.0f;
        for (int j = 0; j < 8; ++j) {
          partial += kE2M1Values[codes[j] & 0xF] * xe[j];
          partial += kE2M1Values[codes[j] >> 4] * xe[8 + j];
        }
        acc += partial * e4m3[row_scales[b]];
      }
      out[i * n_total + r] = acc;
    }
  }
}

}  // namespace reset_native::nvfp4::detail
