// Checks the AVX-512 GEMV kernels (cpp/src/nvfp4/gemv_avx512.cpp) on a CPU without AVX-512: compiled against
// SIMDe's portable implementation of the intrinsics (see immintrin.h beside this file and
// tests/test_nvfp4_avx512_emulated.py), it compares every M = 1..18 and every block-count remainder, with
// random codes and every kind of scale byte (negative, subnormal, NaN), against an fp64 reference.
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "internal.hpp"

namespace nv = reset_native::nvfp4;

int main() {
  std::mt19937 gen(1);
  std::normal_distribution<float> normal;
  int fails = 0;
  double worst = 0;
  const float* e4m3 = nv::detail::e4m3_table();
  for (int blocks : {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 48, 259}) {
    for (int m = 1; m <= 18; ++m) {
      const int64_t k = 16 * blocks, n = 5;
      std::vector<uint8_t> packed(n * k / 2), scales(n * blocks);
      for (auto& b : packed) b = static_cast<uint8_t>(gen());
      for (auto& b : scales) b = static_cast<uint8_t>(gen());
      std::vector<float> x(m * k);
      for (auto& v : x) v = normal(gen);
      std::vector<float> xd(m * nv::detail::arranged_stride_avx512(k));
      nv::detail::arrange_activations_avx512(x.data(), m, k, xd.data());
      std::vector<float> y(m * n, -1.0f);
      // Two row ranges, as two threads would run them.
      nv::detail::gemv_rows_avx512(packed.data(), scales.data(), k, xd.data(), m, 0, 2, n, y.data());
      nv::detail::gemv_rows_avx512(packed.data(), scales.data(), k, xd.data(), m, 2, n, n, y.data());
      for (int i = 0; i < m; ++i) {
        for (int r = 0; r < n; ++r) {
          double ref = 0, bound = 0;
          for (int64_t j = 0; j < k; ++j) {
            const uint8_t byte = packed[r * k / 2 + j / 2];
            const double w = nv::detail::kE2M1Values[j % 2 ? byte >> 4 : byte & 15] *
                             static_cast<double>(e4m3[scales[r * blocks + j / 16]]);
            ref += w * x[i * k + j];
            bound += std::fabs(w * x[i * k + j]);
          }
          const float got = y[i * n + r];
          const bool ok = std::isnan(ref) ? std::isnan(got) : std::fabs(got - ref) <= 1e-5 * bound + 1e-30;
          if (!std::isnan(ref)) worst = std::max(worst, std::fabs(got - ref) / (bound + 1e-30));
          if (!ok && fails++ < 10) std::printf("FAIL blocks=%d m=%d i=%d r=%d got=%g ref=%g\n", blocks, m, i, r, got, ref);
        }
      }
    }
  }
  std::printf("fails=%d worst=%g\n", fails, worst);
  return fails != 0;
}
