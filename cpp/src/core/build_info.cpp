#include "reset_native/build_info.hpp"

#include <thread>

#if RESET_NATIVE_WITH_OPENMP
#include <omp.h>
#endif

namespace reset_native {

#if RESET_NATIVE_WITH_CUDA
bool cuda_runtime_has_device();  // cuda/core/device_query.cu
#endif

namespace {

std::string compiler_string() {
#if defined(__clang__)
  return "clang " __clang_version__;
#elif defined(__GNUC__)
  return "gcc " __VERSION__;
#else
  return "unknown";
#endif
}

std::string simd_level() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return "avx512f";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "avx2+fma";
  return "sse2";
#elif defined(__aarch64__)
  return "neon";
#else
  return "scalar";
#endif
}

}  // namespace

int default_threads() {
#if RESET_NATIVE_WITH_OPENMP
  return omp_get_max_threads();
#else
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
#endif
}

bool cuda_device_available() {
#if RESET_NATIVE_WITH_CUDA
  return cuda_runtime_has_device();
#else
  return false;
#endif
}

BuildInfo build_info() {
  BuildInfo info;
  info.version = RESET_NATIVE_VERSION;
  info.compiler = compiler_string();
  info.cuda_compiled = RESET_NATIVE_WITH_CUDA != 0;
  info.cuda_arch = info.cuda_compiled ? RESET_NATIVE_CUDA_ARCH : "";
  info.openmp = RESET_NATIVE_WITH_OPENMP != 0;
  info.threads = default_threads();
  info.simd = simd_level();
  return info;
}

}  // namespace reset_native
