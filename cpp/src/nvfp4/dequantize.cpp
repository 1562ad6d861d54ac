// dequantize(): value = e2m1(code) * e4m3(scale byte) * global_scale, rounded once to the output dtype.
#include <cmath>
#include <cstring>

#include "internal.hpp"

namespace reset_native::nvfp4 {

namespace {

// Rounds an exact double to float with round-to-odd: a later RNE rounding to a narrower format (fp16,
// bf16; >= 2 bits narrower) then equals a single correctly rounded conversion from the exact value.
float round_to_odd(double v) {
  float f = static_cast<float>(v);
  if (static_cast<double>(f) == v || !std::isfinite(f)) return f;
  if (std::fabs(static_cast<double>(f)) > std::fabs(v)) f = std::nextafter(f, 0.0f);
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  u |= 1u;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

}  // namespace

void dequantize(const uint8_t* packed, const uint8_t* block_scales, float global_scale, int64_t rows,
                int64_t cols, void* out, DType out_dtype, const Options& options) {
  detail::check_parts("dequantize", packed, block_scales, global_scale, rows, cols);
  require(out != nullptr, "dequantize: out is null");
  detail::resolve_kernel(options.kernel);  // validates the request; this loop is table driven either way
  const int threads = detail::threads_for_work(detail::resolve_threads(options.threads), rows * cols, int64_t{1} << 18);
  const float* e4m3 = detail::e4m3_table();
  const int64_t blocks = cols / kBlockSize;
  detail::parallel_for(rows, std::max<int64_t>(1, (int64_t{1} << 16) / cols), threads,
                       [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      for (int64_t b = 0; b < blocks; ++b) {
        // The 16 possible values of this block, each rounded once. e2m1 * e4m3 is exact in float, so one
        // float multiply by global_scale is the correctly rounded float32 value. For fp16 / bf16 the exact
        // value (exact in double) goes through round-to-odd float first. Codes 8..15 are the negatives.
        const float block_scale = e4m3[block_scales[r * blocks + b]];
        float vf[16];
        uint16_t vh[16];
        for (uint8_t c = 0; c < 8; ++c) {
          if (out_dtype == DType::kFloat32) {
            vf[c] = (detail::kE2M1Values[c] * block_scale) * global_scale;
            vf[c + 8] = -vf[c];
          } else {
            const double exact = static_cast<double>(detail::kE2M1Values[c] * block_scale) * global_scale;
            const float odd = round_to_odd(exact);
            vh[c] = out_dtype == DType::kFloat16 ? float_to_half(odd) : float_to_bf16(odd);
            vh[c + 8] = static_cast<uint16_t>(vh[c] | 0x8000u);
          }
        }
        const uint8_t* codes = packed + r * (cols / 2) + b * (kBlockSize / 2);
        const int64_t base = r * cols + b * kBlockSize;
        if (out_dtype == DType::kFloat32) {
          float* o = static_cast<float*>(out) + base;
          for (int i = 0; i < 8; ++i) {
            o[2 * i] = vf[codes[i] & 0xF];
            o[2 * i + 1] = vf[codes[i] >> 4];
          }
        } else {
          uint16_t* o = static_cast<uint16_t*>(out) + base;
          for (int i = 0; i < 8; ++i) {
            o[2 * i] = vh[codes[i] & 0xF];
            o[2 * i + 1] = vh[codes[i] >> 4];
          }
        }
      }
    }
  });
}

}  // namespace reset_native::nvfp4
