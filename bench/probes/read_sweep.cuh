// The size sweep of the read-only probes (hbm_read_slope.cu, hbm_read_phased.cu): each kernel kind reads N x K/2 bytes
// for N in a sweep, 40 back-to-back launches over copies rotated past the L2 (best of 3), and a least-squares line
// t = fixed + bytes / rate is fitted over the sweep. Kernels take (weights, n, k, sink) and a grid of CTAs of 256
// threads, or Kind::threads, each with Kind::smem bytes of dynamic shared memory reserved (unused by the read-only
// kernels: it only moves the SM's shared-memory / L1 split the way a GEMV's staged x does). Each copy of the weights
// is followed by n * k / 16 bytes that a kernel may read as its block scales.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>

namespace read_sweep {

using Kernel = void (*)(const uint8_t*, int, int, uint32_t*);

struct Kind {
  Kernel kern;
  int per_sm;  // CTAs per SM of the grid
  const char* name;
  int threads = 256;
  int smem = 0;              // dynamic shared memory per CTA, bytes
  bool reads_scales = false;  // the kernel also reads the n * k / 16 scale bytes (counted in the rate)
};

inline float per_call_us(const Kind& kind, const uint8_t* buf, size_t stride, int copies, int n, int k, uint32_t* sink,
                         int grid) {
  grid = std::min(grid, n / 16 / (kind.threads / 256));  // a 256-thread walker per 16-row tile at most
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  float best = 1e30f;
  for (int rep = 0; rep < 3; ++rep) {
    cudaEventRecord(a);
    for (int it = 0; it < 40; ++it)
      kind.kern<<<grid, kind.threads, kind.smem>>>(buf + size_t(it % copies) * stride, n, k, sink);
    cudaEventRecord(b);
    cudaEventSynchronize(b);
    float ms = 0;
    cudaEventElapsedTime(&ms, a, b);
    best = std::min(best, ms * 1000 / 40);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return best;
}

// Prints the table (one row per kind: us per size, fixed us, TB/s); returns the process exit code.
inline int run(const Kind* kinds, int count, int k, const std::vector<int>& ns, int name_width) {
  int sms = 0, l2 = 0;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, 0);
  const size_t max_bytes = size_t(ns.back()) * k / 2;
  const size_t pool = std::max<size_t>(size_t(4) * l2, 2 * (max_bytes + max_bytes / 8));
  uint8_t* buf = nullptr;
  uint32_t* sink = nullptr;
  if (cudaMalloc(&buf, pool) != cudaSuccess || cudaMalloc(&sink, 4) != cudaSuccess) {
    std::printf("cudaMalloc failed\n");
    return 1;
  }
  cudaMemset(buf, 1, pool);
  std::printf("# K = %d, grid = CTAs per SM x %d SMs x 256 threads (at most a CTA per 16-row tile); per-call us"
              " (best of 3 x 40 launches, rotated copies)\n", k, sms);
  std::printf("%-*s", name_width, "kind \\ MB");
  for (int n : ns) std::printf("%8.1f", double(n) * k / 2 / 1e6);
  std::printf("%10s%10s\n", "fixed us", "TB/s");
  for (int i = 0; i < count; ++i) {
    std::printf("%-*s", name_width, kinds[i].name);
    std::fflush(stdout);
    if (kinds[i].smem > 0)
      cudaFuncSetAttribute(kinds[i].kern, cudaFuncAttributeMaxDynamicSharedMemorySize, kinds[i].smem);
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (int n : ns) {
      const size_t bytes = size_t(n) * k / 2, stride = bytes + bytes / 8;  // weights, then their scale bytes
      const int copies = int(std::max<size_t>(2, pool / stride));
      const float us = per_call_us(kinds[i], buf, stride, copies, n, k, sink, kinds[i].per_sm * sms);
      std::printf("%8.2f", us);
      const double read = double(kinds[i].reads_scales ? stride : bytes);
      sx += read;
      sy += us;
      sxx += read * read;
      sxy += read * us;
    }
    const double cnt = double(ns.size());
    const double slope = (sxy - sx * sy / cnt) / (sxx - sx * sx / cnt);  // us per byte
    std::printf("%10.2f%10.3f\n", (sy - slope * sx) / cnt, 1e-6 / slope);
  }
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) std::printf("CUDA error: %s\n", cudaGetErrorString(err));
  cudaFree(buf);
  cudaFree(sink);
  return err == cudaSuccess ? 0 : 1;
}

}  // namespace read_sweep
