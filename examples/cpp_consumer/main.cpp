// Embeds reset_native from C++: prints what the library was built with, proves errors arrive as
// reset_native::Error, and runs the NVFP4 API on raw buffers (quantize a small matrix, GEMV against it).
// Exit code 0 on success.
#include <cmath>
#include <cstdint>
#include <iostream>
#include <vector>

#include "reset_native/build_info.hpp"
#include "reset_native/error.hpp"
#include "reset_native/nvfp4.hpp"

namespace {

// y = x @ W.T for W [4, 32] quantized to NVFP4; compares with the same product on the dequantized weights.
bool nvfp4_demo() {
  namespace nv = reset_native::nvfp4;
  const int64_t n = 4, k = 32;
  std::vector<float> w(n * k), x(k);
  for (int64_t i = 0; i < n * k; ++i) w[i] = std::sin(0.37f * static_cast<float>(i)) * 3.0f;
  for (int64_t j = 0; j < k; ++j) x[j] = std::cos(0.11f * static_cast<float>(j));
  std::vector<uint8_t> packed(n * k / 2), scales(n * k / nv::kBlockSize);
  const float gs = nv::quantize(w.data(), n, k, packed.data(), scales.data());
  std::vector<float> wq(n * k), y(n);
  nv::dequantize(packed.data(), scales.data(), gs, n, k, wq.data());
  nv::gemv(packed.data(), scales.data(), gs, n, k, x.data(), nv::DType::kFloat32, 1, y.data());
  bool ok = true;
  for (int64_t r = 0; r < n; ++r) {
    double ref = 0;
    for (int64_t j = 0; j < k; ++j) ref += static_cast<double>(wq[r * k + j]) * x[j];
    ok = ok && std::fabs(ref - y[r]) <= 1e-5 * (std::fabs(ref) + 1);
  }
  std::cout << "nvfp4: " << n << "x" << k << " global_scale " << gs << ", y[0] " << y[0]
            << (ok ? " (matches dequantized reference)" : " (MISMATCH)") << "\n";
  return ok;
}

}  // namespace

int main() {
  const reset_native::BuildInfo info = reset_native::build_info();
  std::cout << "reset_native " << info.version << " (" << info.compiler << ", cuda "
            << (info.cuda_compiled ? info.cuda_arch : std::string("off")) << ", threads " << info.threads
            << ")\n";
  try {
    reset_native::require(false, "demo: argument checks throw");
    return 1;
  } catch (const reset_native::InvalidArgument& e) {
    std::cout << "caught: " << e.what() << "\n";
  }
  if (!nvfp4_demo()) return 1;
  std::cout << "consumer ok\n";
  return 0;
}
