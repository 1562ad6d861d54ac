// quantize(): SPEC-nvfp4 section 2, bit-exact. Pass 1 finds amax (and rejects non-finite input before
// anything is written), pass 2 computes each block's scale byte and encodes its 16 elements.
#include <cmath>
#include <vector>

#include "internal.hpp"

namespace reset_native::nvfp4 {

namespace {

// Gives row r of the input as floats: the input itself for float32, else widened into a scratch buffer.
struct RowSource {
  const void* data;
  DType dtype;
  int64_t cols;
  Kernel kernel;

  const float* row(int64_t r, std::vector<float>& scratch) const {
    if (dtype == DType::kFloat32) return static_cast<const float*>(data) + r * cols;
    const uint16_t* in = static_cast<const uint16_t*>(data) + r * cols;
    scratch.resize(static_cast<size_t>(cols));
    if (dtype == DType::kBFloat16) {
      for (int64_t j = 0; j < cols; ++j) scratch[j] = bf16_to_float(in[j]);
    } else if (detail::uses_avx2_helpers(kernel)) {
      detail::half_to_float_f16c(in, scratch.data(), cols);
    } else {
      detail::half_to_float_scalar(in, scratch.data(), cols);
    }
    return scratch.data();
  }
};

int64_t rows_per_chunk(int64_t cols) { return std::max<int64_t>(1, (int64_t{1} << 16) / cols); }

float quantize_impl(const char* what, const char* name, const RowSource& src, int64_t rows, int64_t cols, uint8_t* packed, uint8_t* block_scales,
                    std::optional<float> global_scale, const Options& options) {
  detail::check_matrix_shape(what, rows, cols);
  require(src.data != nullptr, std::string(what) + ": " + name + " is null");
  require(packed != nullptr, "quantize: packed is null");
  require(block_scales != nullptr, "quantize: block_scales is null");
  if (global_scale) {
    require(std::isfinite(*global_scale) && *global_scale > 0.0f,
            std::string(what) + ": global_scale must be finite and > 0, got " + std::to_string(*global_scale));
  }
  const int threads = detail::threads_for_work(detail::resolve_threads(options.threads), rows * cols, int64_t{1} << 18);
  const int64_t grain = rows_per_chunk(cols);
  const int64_t chunks = (rows + grain - 1) / grain;

  // Pass 1: per-chunk amax and first non-finite flat index (chunks are in row order).
  std::vector<float> chunk_amax(static_cast<size_t>(chunks), 0.0f);
  std::vector<int64_t> chunk_bad(static_cast<size_t>(chunks), -1);
  detail::parallel_for(rows, grain, threads, [&](int64_t r0, int64_t r1) {
    std::vector<float> scratch;
    float amax = 0.0f;
    int64_t bad = -1;
    for (int64_t r = r0; r < r1 && bad < 0; ++r) {
      const float* x = src.row(r, scratch);
      int64_t bad_col = -1;
      const float row_amax = detail::uses_avx2_helpers(src.kernel) ? detail::scan_amax_avx2(x, cols, &bad_col)
                                                         : detail::scan_amax_scalar(x, cols, &bad_col);
      if (bad_col >= 0) {
        bad = r * cols + bad_col;
      } else {
        amax = row_amax > amax ? row_amax : amax;
      }
    }
    chunk_amax[static_cast<size_t>(r0 / grain)] = amax;
    chunk_bad[static_cast<size_t>(r0 / grain)] = bad;
  });
  float amax = 0.0f;
  for (int64_t c = 0; c < chunks; ++c) {
    if (chunk_bad[c] >= 0) {
      const int64_t flat = chunk_bad[c];
      std::vector<float> scratch;
      const float v = src.row(flat / cols, scratch)[flat % cols];
      throw InvalidArgument(std::string(what) + ": " + detail::index_text(name, flat / cols, flat % cols) + " is " +
                            (std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf")) +
                            "; NVFP4 quantization needs finite input");
    }
    amax = std::max(amax, chunk_amax[c]);
  }
  const float gs = global_scale ? *global_scale : global_scale_from_amax(amax);

  // Pass 2: scales and codes.
  const int64_t blocks = cols / kBlockSize;
  detail::parallel_for(rows, grain, threads, [&](int64_t r0, int64_t r1) {
    std::vector<float> scratch;
    for (int64_t r = r0; r < r1; ++r) {
      const float* x = src.row(r, scratch);
      uint8_t* p = packed + r * (cols / 2);
      uint8_t* s = block_scales + r * blocks;
      if (detail::uses_avx2_helpers(src.kernel)) {
        detail::quantize_row_avx2(x, cols, gs, p, s);
      } else {
        detail::quantize_row_scalar(x, cols, gs, p, s);
      }
    }
  });
  return gs;
}

}  // namespace

namespace detail {

float quantize_named(const char* what, const char* name, const void* w, DType dtype, int64_t rows, int64_t cols,
                     uint8_t* packed, uint8_t* block_scales, std::optional<float> global_scale,
                     const Options& options) {
  const RowSource src{w, dtype, cols, resolve_kernel(options.kernel)};
  return quantize_impl(what, name, src, rows, cols, packed, block_scales, global_scale, options);
}

}  // namespace detail

float quantize(const float* w, int64_t rows, int64_t cols, uint8_t* packed, uint8_t* block_scales,
               std::optional<float> global_scale, const Options& options) {
  const RowSource src{w, DType::kFloat32, cols, detail::resolve_kernel(options.kernel)};
  return quantize_impl("quantize", "w", src, rows, cols, packed, block_scales, global_scale, options);
}

float quantize(const uint16_t* w, DType dtype, int64_t rows, int64_t cols, uint8_t* packed,
               uint8_t* block_scales, std::optional<float> global_scale, const Options& options) {
  require(dtype == DType::kFloat16 || dtype == DType::kBFloat16,
          "quantize: a uint16 input must be kFloat16 or kBFloat16 bit patterns");
  const RowSource src{w, dtype, cols, detail::resolve_kernel(options.kernel)};
  return quantize_impl("quantize", "w", src, rows, cols, packed, block_scales, global_scale, options);
}

}  // namespace reset_native::nvfp4
