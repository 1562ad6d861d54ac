// reset_native/nvfp4.hpp as an embedder sees it: formats against the spec's bit-field formulas, quantize
// semantics on hand-built blocks, scalar vs AVX2 agreement, GEMV against an fp64 reference, and errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstdint>
#include <random>
#include <vector>

#include "reset_native/nvfp4.hpp"

namespace nv = reset_native::nvfp4;

namespace {

double e2m1_formula(int code) {
  const int e = (code >> 1) & 3, m = code & 1;
  const double mag = e == 0 ? 0.5 * m : std::ldexp(1.0 + 0.5 * m, e - 1);
  return (code & 8) ? -mag : mag;
}

double e4m3_formula(int byte) {
  const int e = (byte >> 3) & 15, m = byte & 7;
  if (e == 15 && m == 7) return std::nan("");
  const double mag = e == 0 ? std::ldexp(m / 8.0, -6) : std::ldexp(1.0 + m / 8.0, e - 7);
  return (byte & 0x80) ? -mag : mag;
}

std::vector<nv::Kernel> kernels() {
  std::vector<nv::Kernel> k = {nv::Kernel::kScalar};
  if (nv::avx2_available()) k.push_back(nv::Kernel::kAVX2);
  if (nv::avx512_available()) k.push_back(nv::Kernel::kAVX512);
  return k;
}

std::vector<float> random_matrix(int64_t rows, int64_t cols, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist;
  std::vector<float> w(static_cast<size_t>(rows * cols));
  for (auto& v : w) v = dist(gen);
  return w;
}

}  // namespace

TEST(NVFP4, DecodesEveryCodeAndByteExactly) {
  for (int c = 0; c < 16; ++c) {
    EXPECT_EQ(nv::e2m1_decode(static_cast<uint8_t>(c)), e2m1_formula(c)) << c;
    EXPECT_EQ(std::signbit(nv::e2m1_decode(static_cast<uint8_t>(c))), (c & 8) != 0) << c;
  }
  for (int b = 0; b < 256; ++b) {
    const double want = e4m3_formula(b);
    const float got = nv::e4m3_decode(static_cast<uint8_t>(b));
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(got)) << b;
    } else {
      EXPECT_EQ(got, want) << b;
      EXPECT_EQ(nv::e4m3_encode(got), b) << b;  // encode inverts decode (also -0 -> 0x80)
    }
  }
}

TEST(NVFP4, RoundsTiesToEvenAndSaturates) {
  const float ties[] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};
  const int codes[] = {0, 2, 2, 4, 4, 6, 6};
  for (int i = 0; i < 7; ++i) {
    EXPECT_EQ(nv::e2m1_encode(ties[i]), codes[i]);
    EXPECT_EQ(nv::e2m1_encode(-ties[i]), codes[i] | 8);
  }
  EXPECT_EQ(nv::e2m1_encode(1e9f), 7);
  EXPECT_EQ(nv::e2m1_encode(-0.0f), 8);
  EXPECT_EQ(nv::e4m3_encode(1e9f), 0x7E);
  EXPECT_EQ(nv::e4m3_encode(17.0f), nv::e4m3_encode(16.0f));  // 16, 18 are neighbours: tie -> even (16)
  EXPECT_EQ(nv::block_scale_byte(0.0f, 1.0f), 0x01);            // all-zero block: clamped 2^-9
  EXPECT_EQ(nv::block_scale_byte(1e9f, 1.0f), 0x7E);            // clamps at 448
}

TEST(NVFP4, HalfAndBfloat16Conversions) {
  EXPECT_EQ(nv::float_to_half(1.0f), 0x3C00);
  EXPECT_EQ(nv::float_to_half(65520.0f), 0x7C00);  // rounds to infinity
  EXPECT_EQ(nv::float_to_half(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(nv::half_to_float(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(nv::float_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3F80);  // tie -> even
  EXPECT_EQ(nv::bf16_to_float(0x3F81), 1.0f + std::ldexp(1.0f, -7));
  for (uint32_t h = 0; h < 0x7C00; ++h) EXPECT_EQ(nv::float_to_half(nv::half_to_float(h)), h);
}

TEST(NVFP4, QuantizeBlockWithUnitScale) {
  // global_scale 1 and block amax 6 make the block scale exactly 1: codes are the E2M1 rounding of x.
  const float w[16] = {6, 0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5, -6, -0.25f, -0.75f, -1.25f, -1.75f, -2.5f, -3.5f, -5};
  for (nv::Kernel k : kernels()) {
    uint8_t packed[8], scale;
    nv::Options o;
    o.kernel = k;
    EXPECT_EQ(nv::quantize(w, 1, 16, packed, &scale, 1.0f, o), 1.0f);
    EXPECT_EQ(scale, 0x38);  // E4M3 1.0
    const int want[16] = {7, 0, 2, 2, 4, 4, 6, 6, 15, 8, 10, 10, 12, 12, 14, 14};
    for (int i = 0; i < 16; ++i) EXPECT_EQ((packed[i / 2] >> (4 * (i % 2))) & 0xF, want[i]) << i;
  }
}

TEST(NVFP4, ScalarAndAvx2AgreeAndGemvMatchesFp64) {
  const int64_t n = 40, k = 272, m = 5;
  const std::vector<float> w = random_matrix(n, k, 1);
  const std::vector<float> x = random_matrix(m, k, 2);
  std::vector<uint8_t> packed(n * k / 2), scales(n * k / 16), packed2(n * k / 2), scales2(n * k / 16);
  nv::Options scalar;
  scalar.kernel = nv::Kernel::kScalar;
  const float gs = nv::quantize(w.data(), n, k, packed.data(), scales.data(), std::nullopt, scalar);
  const float gs2 = nv::quantize(w.data(), n, k, packed2.data(), scales2.data());
  EXPECT_EQ(gs, gs2);
  EXPECT_EQ(packed, packed2);
  EXPECT_EQ(scales, scales2);

  std::vector<float> dq(n * k);
  nv::dequantize(packed.data(), scales.data(), gs, n, k, dq.data());
  for (nv::Kernel kern : kernels()) {
    for (int64_t rows : {int64_t{1}, m}) {
      std::vector<float> y(rows * n);
      nv::GemvOptions o;
      o.kernel = kern;
      nv::gemv(packed.data(), scales.data(), gs, n, k, x.data(), nv::DType::kFloat32, rows, y.data(), nullptr, o);
      double max_err = 0, max_ref = 0;
      for (int64_t i = 0; i < rows; ++i) {
        for (int64_t r = 0; r < n; ++r) {
          double ref = 0;
          for (int64_t j = 0; j < k; ++j) ref += static_cast<double>(x[i * k + j]) * dq[r * k + j];
          max_err = std::max(max_err, std::fabs(ref - y[i * n + r]));
          max_ref = std::max(max_ref, std::fabs(ref));
        }
      }
      EXPECT_LE(max_err, 1e-5 * max_ref);
    }
  }
}

TEST(NVFP4, W4A4QuantizesTheActivations) {
  const int64_t n = 16, k = 64;
  const std::vector<float> w = random_matrix(n, k, 3);
  const std::vector<float> x = random_matrix(1, k, 4);
  std::vector<uint8_t> wp(n * k / 2), ws(n * k / 16), xp(k / 2), xs(k / 16);
  const float wgs = nv::quantize(w.data(), n, k, wp.data(), ws.data());
  const float xgs = nv::quantize(x.data(), 1, k, xp.data(), xs.data());
  std::vector<float> wq(n * k), xq(k), y(n);
  nv::dequantize(wp.data(), ws.data(), wgs, n, k, wq.data());
  nv::dequantize(xp.data(), xs.data(), xgs, 1, k, xq.data());
  nv::GemvOptions o;
  o.activation = nv::Activation::kNVFP4;
  nv::gemv(wp.data(), ws.data(), wgs, n, k, x.data(), nv::DType::kFloat32, 1, y.data(), nullptr, o);
  for (int64_t r = 0; r < n; ++r) {
    double ref = 0, mag = 0;
    for (int64_t j = 0; j < k; ++j) {
      ref += static_cast<double>(xq[j]) * wq[r * k + j];
      mag += std::fabs(static_cast<double>(xq[j]) * wq[r * k + j]);
    }
    EXPECT_NEAR(y[r], ref, 1e-5 * mag + 1e-30) << r;
  }
}

TEST(NVFP4, SwizzleRoundTrips) {
  const int64_t rows = 130, cols = 5;
  std::vector<uint8_t> linear(rows * cols), back(rows * cols);
  for (size_t i = 0; i < linear.size(); ++i) linear[i] = static_cast<uint8_t>(i * 7 + 1);
  std::vector<uint8_t> sw(nv::swizzled_size(rows, cols));
  EXPECT_EQ(sw.size(), 256u * 8u);
  nv::swizzle_block_scales(linear.data(), rows, cols, sw.data());
  EXPECT_EQ(sw[((129 / 128) * 2 + 4 / 4) * 512 + (129 % 32) * 16 + ((129 % 128) / 32) * 4 + 0], linear[129 * cols + 4]);
  nv::unswizzle_block_scales(sw.data(), rows, cols, back.data());
  EXPECT_EQ(back, linear);
}

TEST(NVFP4, BadArgumentsThrowInvalidArgument) {
  float w[32] = {};
  uint8_t p[16], s[2];
  float y[2];
  EXPECT_THROW(nv::quantize(w, 1, 24, p, s), reset_native::InvalidArgument);   // K % 16
  EXPECT_THROW(nv::quantize(w, 0, 32, p, s), reset_native::InvalidArgument);   // empty
  EXPECT_THROW(nv::quantize(nullptr, 1, 32, p, s), reset_native::InvalidArgument);
  EXPECT_THROW(nv::quantize(w, 1, 32, p, s, -1.0f), reset_native::InvalidArgument);
  w[17] = std::nanf("");
  try {
    nv::quantize(w, 1, 32, p, s);
    FAIL() << "NaN accepted";
  } catch (const reset_native::InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("w[0, 17] is nan"), std::string::npos) << e.what();
  }
  w[17] = 0;
  nv::quantize(w, 1, 32, p, s);
  EXPECT_THROW(nv::gemv(p, s, 0.0f, 1, 32, w, nv::DType::kFloat32, 1, y), reset_native::InvalidArgument);
  EXPECT_THROW(nv::gemv(p, s, 1.0f, 1, 32, w, nv::DType::kFloat32, 0, y), reset_native::InvalidArgument);
  EXPECT_THROW(nv::gemv(p, s, 1.0f, 1, 32, nullptr, nv::DType::kFloat32, 1, y), reset_native::InvalidArgument);
  nv::GemvOptions bad;
  bad.act_global_scale = 1.0f;  // only valid with W4A4
  EXPECT_THROW(nv::gemv(p, s, 1.0f, 1, 32, w, nv::DType::kFloat32, 1, y, nullptr, bad),
               reset_native::InvalidArgument);
  EXPECT_THROW(nv::e2m1_decode(16), reset_native::InvalidArgument);
  EXPECT_THROW(nv::dequantize(p, s, 1.0f, 1, 32, nullptr), reset_native::InvalidArgument);
  EXPECT_THROW(nv::swizzle_block_scales(s, 0, 2, p), reset_native::InvalidArgument);
  EXPECT_THROW(nv::global_scale_from_amax(-1.0f), reset_native::InvalidArgument);
}

TEST(NVFP4, KernelSelectionAndThreads) {
  EXPECT_EQ(nv::selected_kernel(nv::Kernel::kScalar), nv::Kernel::kScalar);
  EXPECT_STREQ(nv::kernel_name(nv::Kernel::kAVX512), "avx512");
  EXPECT_STREQ(nv::kernel_name(nv::Kernel::kAVX2), "avx2");
  const nv::Kernel best = nv::selected_kernel();
  if (std::getenv("RESET_NATIVE_CPU_ISA") == nullptr) {
    EXPECT_EQ(best, nv::avx512_available() ? nv::Kernel::kAVX512
                    : nv::avx2_available() ? nv::Kernel::kAVX2 : nv::Kernel::kScalar);  // the widest path
  }
  if (!nv::avx512_available()) EXPECT_THROW(nv::selected_kernel(nv::Kernel::kAVX512), reset_native::Unsupported);
  EXPECT_GE(nv::default_gemv_threads(), 1);
  if (nv::physical_cores() > 0 && std::getenv("OMP_NUM_THREADS") == nullptr) {
    EXPECT_LE(nv::default_gemv_threads(), nv::physical_cores());
  }
}
