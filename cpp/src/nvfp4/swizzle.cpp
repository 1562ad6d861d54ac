// The 128x4 block-scale layout of cuBLAS / CUTLASS (import / export only; kernels use the linear layout).
#include <cstring>

#include "internal.hpp"

namespace reset_native::nvfp4 {

namespace {

int64_t round_up(int64_t v, int64_t to) { return (v + to - 1) / to * to; }

void check_scale_shape(const char* what, const void* a, const void* b, int64_t rows, int64_t scale_cols) {
  require(a != nullptr && b != nullptr, std::string(what) + ": null buffer");
  require(rows > 0 && scale_cols > 0, std::string(what) + ": rows and scale_cols must be > 0, got " +
                                          std::to_string(rows) + " and " + std::to_string(scale_cols));
  require(rows <= (int64_t{1} << 40) / scale_cols, std::string(what) + ": shape is too large");
}

int64_t swizzled_offset(int64_t r, int64_t c, int64_t padded_cols) {
  return ((r / 128) * (padded_cols / 4) + c / 4) * 512 + (r % 32) * 16 + ((r % 128) / 32) * 4 + c % 4;
}

}  // namespace

int64_t swizzled_size(int64_t rows, int64_t scale_cols) {
  require(rows > 0 && scale_cols > 0, "swizzled_size: rows and scale_cols must be > 0");
  return round_up(rows, 128) * round_up(scale_cols, 4);
}

void swizzle_block_scales(const uint8_t* linear, int64_t rows, int64_t scale_cols, uint8_t* swizzled) {
  check_scale_shape("swizzle_block_scales", linear, swizzled, rows, scale_cols);
  const int64_t padded_cols = round_up(scale_cols, 4);
  std::memset(swizzled, 0, static_cast<size_t>(swizzled_size(rows, scale_cols)));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < scale_cols; ++c) swizzled[swizzled_offset(r, c, padded_cols)] = linear[r * scale_cols + c];
  }
}

void unswizzle_block_scales(const uint8_t* swizzled, int64_t rows, int64_t scale_cols, uint8_t* linear) {
  check_scale_shape("unswizzle_block_scales", swizzled, linear, rows, scale_cols);
  const int64_t padded_cols = round_up(scale_cols, 4);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < scale_cols; ++c) linear[r * scale_cols + c] = swizzled[swizzled_offset(r, c, padded_cols)];
  }
}

}  // namespace reset_native::nvfp4
