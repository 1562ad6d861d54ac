// Which CPU code path and how many threads the kernels use: CPU feature checks, the RESET_NATIVE_CPU_ISA
// override, and the physical-core thread default.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "internal.hpp"
#include "reset_native/build_info.hpp"

#if defined(__linux__)
#include <sched.h>
#endif

namespace reset_native::nvfp4 {

namespace detail {

bool cpu_has_avx2() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
  return false;
#endif
}

bool cpu_has_avx512() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return cpu_has_avx2() && __builtin_cpu_supports("avx512f");
#else
  return false;
#endif
}

namespace {

bool can_run(Kernel k) {
  switch (k) {
    case Kernel::kScalar: return true;
    case Kernel::kAVX2: return cpu_has_avx2();
    case Kernel::kAVX512: return cpu_has_avx512();
    case Kernel::kAuto: return true;
  }
  return false;
}

const char* lacking(Kernel k) { return k == Kernel::kAVX512 ? "AVX-512F" : "AVX2/FMA/F16C"; }

// The kernel RESET_NATIVE_CPU_ISA forces, or kAuto when it is unset, empty or "auto". Read on every call
// (cheap next to any kernel) so tests and benchmarks can switch paths within one process.
Kernel env_kernel() {
  const char* v = std::getenv("RESET_NATIVE_CPU_ISA");
  if (v == nullptr) return Kernel::kAuto;
  const std::string s(v);
  if (s.empty() || s == "auto") return Kernel::kAuto;
  if (s == "scalar") return Kernel::kScalar;
  if (s == "avx2") return Kernel::kAVX2;
  if (s == "avx512") return Kernel::kAVX512;
  throw InvalidArgument("RESET_NATIVE_CPU_ISA must be auto, scalar, avx2 or avx512, got '" + s + "'");
}

}  // namespace

Kernel resolve_kernel(Kernel requested) {
  switch (requested) {
    case Kernel::kAuto: {
      const Kernel forced = env_kernel();
      // AVX-512 first: on the 16-core Xeon measured (bench/RESULTS.md, NVFP4 CPU, branch cpu6) its M = 1 GEMV
      // took 0.76-0.80x the AVX2 time on every Qwen3-8B layer, back to back and cold (~half the micro-ops per
      // weight, so fewer cores saturate the memory).
      if (forced == Kernel::kAuto) {
        return cpu_has_avx512() ? Kernel::kAVX512 : cpu_has_avx2() ? Kernel::kAVX2 : Kernel::kScalar;
      }
      if (!can_run(forced)) {
        throw Unsupported(std::string("nvfp4: RESET_NATIVE_CPU_ISA=") + kernel_name(forced) +
                          " but this CPU lacks " + lacking(forced));
      }
      return forced;
    }
    case Kernel::kScalar:
    case Kernel::kAVX2:
    case Kernel::kAVX512:
      if (!can_run(requested)) {
        throw Unsupported(std::string("nvfp4: the ") + kernel_name(requested) +
                          " kernel was requested but this CPU lacks " + lacking(requested));
      }
      return requested;
  }
  throw InvalidArgument("nvfp4: unknown kernel value");
}

int resolve_threads(int requested) {
  require(requested >= 0, "nvfp4: threads must be >= 0 (0 = default), got " + std::to_string(requested));
  return requested == 0 ? default_gemv_threads() : requested;
}

}  // namespace detail

namespace {

#if defined(__linux__)
// The integer in a small sysfs file, or -1.
long read_sysfs_long(const char* path) {
  std::FILE* f = std::fopen(path, "r");
  if (f == nullptr) return -1;
  long v = -1;
  if (std::fscanf(f, "%ld", &v) != 1) v = -1;
  std::fclose(f);
  return v;
}
#endif

int count_physical_cores() {
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 0;
  std::vector<std::pair<long, long>> cores;  // distinct (package, core id)
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &set)) continue;
    char path[128];
    std::snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/core_id", cpu);
    const long core = read_sysfs_long(path);
    std::snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/physical_package_id", cpu);
    const long package = read_sysfs_long(path);
    if (core < 0 || package < 0) return 0;
    const std::pair<long, long> id(package, core);
    if (std::find(cores.begin(), cores.end(), id) == cores.end()) cores.push_back(id);
  }
  return static_cast<int>(cores.size());
#else
  return 0;
#endif
}

}  // namespace

int physical_cores() {
  // Read once: the topology does not change while the process runs (the affinity mask rarely does).
  static const int cores = count_physical_cores();
  return cores;
}

int default_gemv_threads() {
  const int logical = std::max(1, default_threads());
  const char* omp = std::getenv("OMP_NUM_THREADS");
  if (omp != nullptr && *omp != '\0') return logical;  // the user chose a count
  const int cores = physical_cores();
  return cores > 0 ? std::min(logical, cores) : logical;
}

bool avx2_available() { return detail::cpu_has_avx2(); }
bool avx512_available() { return detail::cpu_has_avx512(); }

Kernel selected_kernel(Kernel requested) { return detail::resolve_kernel(requested); }

const char* kernel_name(Kernel kernel) {
  switch (kernel) {
    case Kernel::kAuto: return "auto";
    case Kernel::kScalar: return "scalar";
    case Kernel::kAVX2: return "avx2";
    case Kernel::kAVX512: return "avx512";
  }
  return "unknown";
}

}  // namespace reset_native::nvfp4
