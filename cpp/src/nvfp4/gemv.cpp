// gemv(): y = x @ dequantize(W).T (+ bias), fp32 accumulation, straight from the packed weights.
// The driver prepares the activations once (widen to float, W4A4 quantization, rearrangement into the
// order the kernels decode weights in), splits the weight rows over threads, then scales, adds bias and
// narrows.
#include <cmath>
#include <vector>

#include "internal.hpp"

namespace reset_native::nvfp4 {

namespace {

void widen(const void* in, DType dtype, int64_t count, Kernel kernel, float* out) {
  if (dtype == DType::kFloat32) {
    const float* f = static_cast<const float*>(in);
    std::copy(f, f + count, out);
  } else if (dtype == DType::kBFloat16) {
    const uint16_t* h = static_cast<const uint16_t*>(in);
    for (int64_t i = 0; i < count; ++i) out[i] = bf16_to_float(h[i]);
  } else if (detail::uses_avx2_helpers(kernel)) {
    detail::half_to_float_f16c(static_cast<const uint16_t*>(in), out, count);
  } else {
    detail::half_to_float_scalar(static_cast<const uint16_t*>(in), out, count);
  }
}

// W4A4: replaces x by its NVFP4 quantization without the global scale (e2m1 * e4m3, exact in float) and
// returns the activation global scale, which the caller multiplies into the result.
float quantize_activations(std::vector<float>& x, int64_t m, int64_t k, const GemvOptions& options) {
  std::vector<uint8_t> codes(static_cast<size_t>(m * k / 2));
  std::vector<uint8_t> scales(static_cast<size_t>(m * k / kBlockSize));
  Options inner = options;
  const float act_gs = detail::quantize_named("gemv (activation nvfp4)", "x", x.data(), DType::kFloat32, m, k,
                                              codes.data(), scales.data(), options.act_global_scale, inner);
  const float* e4m3 = detail::e4m3_table();
  for (int64_t i = 0; i < m * k; ++i) {
    const uint8_t byte = codes[static_cast<size_t>(i / 2)];
    const uint8_t code = (i % 2 == 0) ? (byte & 0xF) : (byte >> 4);
    x[static_cast<size_t>(i)] = detail::kE2M1Values[code] * e4m3[scales[static_cast<size_t>(i / kBlockSize)]];
  }
  return act_gs;
}

}  // namespace

void gemv(const uint8_t* packed, const uint8_t* block_scales, float global_scale, int64_t n, int64_t k,
          const void* x, DType x_dtype, int64_t m, void* y, const void* bias, const GemvOptions& options) {
  detail::check_parts("gemv", packed, block_scales, global_scale, n, k);
  require(x != nullptr, "gemv: x is null");
  require(y != nullptr, "gemv: y is null");
  require(m >= 1, "gemv: x must have at least one row, got m = " + std::to_string(m));
  require(m <= (int64_t{1} << 40) / k && m <= (int64_t{1} << 40) / n,
          "gemv: m = " + std::to_string(m) + " is too large");
  require(options.activation == Activation::kBF16 || options.activation == Activation::kNVFP4,
          "gemv: unknown activation value");
  require(options.activation == Activation::kNVFP4 || !options.act_global_scale,
          "gemv: act_global_scale is only meaningful with activation nvfp4 (W4A4)");
  if (options.act_global_scale) {
    require(std::isfinite(*options.act_global_scale) && *options.act_global_scale > 0.0f,
            "gemv: act_global_scale must be finite and > 0, got " + std::to_string(*options.act_global_scale));
  }
  require(x_dtype == DType::kFloat32 || x_dtype == DType::kFloat16 || x_dtype == DType::kBFloat16,
          "gemv: unknown x dtype value");
  const Kernel kernel = detail::resolve_kernel(options.kernel);
  // At least ~1M weights (0.56 MB packed, tens of microseconds on one core) per thread, so waking a helper
  // (a futex wake unless it is still polling) stays small next to its share.
  const int threads = detail::threads_for_work(detail::resolve_threads(options.threads), n * k, int64_t{1} << 20);

  std::vector<float> xf(static_cast<size_t>(m * k));
  widen(x, x_dtype, m * k, kernel, xf.data());
  double out_scale = global_scale;
  if (options.activation == Activation::kNVFP4) out_scale *= quantize_activations(xf, m, k, options);
  const int64_t stride = kernel == Kernel::kAVX512 ? detail::arranged_stride_avx512(k) : k;
  std::vector<float> xd(static_cast<size_t>(m * stride));
  if (kernel == Kernel::kAVX512) {
    detail::arrange_activations_avx512(xf.data(), m, k, xd.data());
  } else if (kernel == Kernel::kAVX2) {
    detail::arrange_activations_avx2(xf.data(), m, k, xd.data());
  } else {
    detail::arrange_activations_scalar(xf.data(), m, k, xd.data());
  }

  std::vector<float> bias_f;
  if (bias != nullptr) {
    bias_f.resize(static_cast<size_t>(n));
    widen(bias, x_dtype, n, kernel, bias_f.data());
  }
  // Scales, adds bias and narrows the raw sums of rows [n0, n1), in the chunk that computed them: still in
  // cache, and spread over the threads instead of a serial pass after the join on every call's critical path.
  std::vector<float> raw(static_cast<size_t>(m * n));
  const auto finish = [&](int64_t n0, int64_t n1) {
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t r = n0; r < n1; ++r) {
        const int64_t at = i * n + r;
        float v = static_cast<float>(static_cast<double>(raw[static_cast<size_t>(at)]) * out_scale);
        if (bias != nullptr) v += bias_f[static_cast<size_t>(r)];
        if (x_dtype == DType::kFloat32) {
          static_cast<float*>(y)[at] = v;
        } else if (x_dtype == DType::kFloat16) {
          static_cast<uint16_t*>(y)[at] = float_to_half(v);
        } else {
          static_cast<uint16_t*>(y)[at] = float_to_bf16(v);
        }
      }
    }
  };

  // Row chunks: many per thread so a helper that wakes late (or is descheduled) costs only the chunks it would
  // have taken, a multiple of 8 rows (the row group). Each output row is computed whole by one thread, so the
  // result does not depend on the thread count.
  int64_t grain = (n + 16 * threads - 1) / (16 * threads);
  grain = std::max<int64_t>(8, (grain + 7) / 8 * 8);
  detail::parallel_for(n, grain, threads, [&](int64_t n0, int64_t n1) {
    if (kernel == Kernel::kAVX512) {
      detail::gemv_rows_avx512(packed, block_scales, k, xd.data(), m, n0, n1, n, raw.data());
    } else if (kernel == Kernel::kAVX2) {
      detail::gemv_rows_avx2(packed, block_scales, k, xd.data(), m, n0, n1, n, raw.data());
    } else {
      detail::gemv_rows_scalar(packed, block_scales, k, xd.data(), m, n0, n1, n, raw.data());
    }
    finish(n0, n1);
  });
}

}  // namespace reset_native::nvfp4
