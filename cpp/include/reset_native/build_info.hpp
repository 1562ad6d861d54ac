// What this build of reset_native contains and what it can use at run time.
#pragma once
#include <string>

namespace reset_native {

struct BuildInfo {
  std::string version;
  std::string compiler;      // C++ compiler id and version
  bool cuda_compiled = false;  // CUDA kernels compiled into this library
  std::string cuda_arch;     // e.g. "90a"; empty when not compiled
  bool openmp = false;
  int threads = 1;           // worker threads the CPU kernels use by default
  std::string simd;          // best CPU SIMD level the kernels dispatch to on this machine
};

BuildInfo build_info();

// True when CUDA kernels are compiled in AND at least one CUDA device is usable.
bool cuda_device_available();

// Number of threads the CPU kernels use (OpenMP max threads, else hardware concurrency).
int default_threads();

}  // namespace reset_native
