// Probe (session 13): how far a read-only kernel of the GEMV's shape (256-thread CTAs, two CTAs per SM, the GEMV's
// weight addresses: rows g and g + 8 of a 16-row tile, 64 B per quad, 16-byte loads) streams, by where its loop
// waits. ptxas counts every streaming load of such a loop on one scoreboard and a wait on it waits for all of them,
// so where the wait sits sets the real depth (session 12's hbm_read_slope.cu waited before every step: one step in
// flight whatever its DEPTH). Forms, D slots of one step (two 16-byte loads) per thread:
//   step  : each step's use waits (as hbm_read_slope.cu: ~1 step in flight);
//   head  : one wait at the head of the D steps (the GEMV's plain loop): the refills issued during the D steps are
//           all waited for at the next head, the last one just issued;
//   headbar: head, plus a CTA barrier after every 16-row tile's last step (where the GEMV reduces a tile);
//   phased: two halves; [wait for half Y] -> [issue half X, addresses data-dependent on the waited words] ->
//           [use Y] -> [wait for X] ...: each wait finds only loads issued a half earlier (the GEMV's kSmallPhased).
// Line fit t = a + bytes / rate over a size sweep (40 back-to-back launches over copies rotated past the L2, best
// of 3). Build and run on the GPU host (results: bench/RESULTS.md, session 13):
//   nvcc -std=c++17 -O3 -arch=sm_90 -o /tmp/hbm_read_phased bench/probes/hbm_read_phased.cu && /tmp/hbm_read_phased
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>

namespace {

__device__ __forceinline__ uint4 ldnc(const void* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0,%1,%2,%3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

__device__ __forceinline__ uint32_t fold(const uint4 (&v)[2]) {
  return v[0].x ^ v[0].y ^ v[0].z ^ v[0].w ^ v[1].x ^ v[1].y ^ v[1].z ^ v[1].w;
}

enum Form { kStep = 0, kHead = 1, kPhased = 2, kHeadBar = 3 };

template <int FORM, int D, int MINB>
__global__ void __launch_bounds__(256, MINB) read_kernel(const uint8_t* w, int n, int k, uint32_t* sink) {
  const int tid = int(threadIdx.x), warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
  const int nchunks = k / 1024;
  const int my_tiles = (n / 16 - int(blockIdx.x) + int(gridDim.x) - 1) / int(gridDim.x);
  const int steps = my_tiles * nchunks;
  const int64_t halfk = k / 2;
  const uint32_t runtime_zero = uint32_t(k) >> 31;
  int next = 0;  // the next step to load (sequential cursor, as the GEMV's fetch)
  auto load = [&](uint4 (&v)[2], uint32_t dep) {
    const int tile = int(blockIdx.x) + (next / nchunks) * int(gridDim.x), c = next % nchunks + int(dep);
    const uint8_t* base = w + int64_t(tile * 16 + g) * halfk + c * 512 + warp * 64 + t * 16;
    v[0] = ldnc(base);
    v[1] = ldnc(base + 8 * halfk);
    ++next;
  };
  uint4 v[D][2];
#pragma unroll
  for (int d = 0; d < D; ++d)
    if (d < steps) load(v[d], 0);
  uint32_t acc = 0;
  if constexpr (FORM == kPhased) {
    constexpr int H = D / 2;
    auto phase = [&](auto y0_tag, int s, bool issue) {
      constexpr int Y0 = decltype(y0_tag)::value, X0 = H - Y0;
      const uint32_t dep = (v[Y0][0].x | v[Y0 + H - 1][1].w) & runtime_zero;
      if (issue) {
#pragma unroll
        for (int j = 0; j < H; ++j)
          if (s + H + j < steps) load(v[X0 + j], dep);
      }
#pragma unroll
      for (int j = 0; j < H; ++j)
        if (s + j < steps) acc ^= fold(v[Y0 + j]);
    };
    for (int s = 0; s < steps; s += D) {
      phase(std::integral_constant<int, 0>{}, s, s > 0);
      phase(std::integral_constant<int, H>{}, s + H, true);
    }
  } else {
    for (int s = 0; s < steps; s += D) {
      if constexpr (FORM != kStep) acc ^= (v[0][0].x | v[D - 1][1].w) & runtime_zero;  // the one wait, here
#pragma unroll
      for (int d = 0; d < D; ++d) {
        if (s + d < steps) {
          acc ^= fold(v[d]);
          if (s + d + D < steps) load(v[d], 0);
          if (FORM == kHeadBar && (s + d) % nchunks == nchunks - 1) __syncthreads();  // uniform: same steps
        }
      }
    }
  }
  if (acc == 0x12345678u) sink[0] = acc;
}

using Kernel = void (*)(const uint8_t*, int, int, uint32_t*);

float per_call_us(Kernel kern, const uint8_t* buf, size_t bytes, int copies, int n, int k, uint32_t* sink,
                  int grid) {
  grid = std::min(grid, n / 16);  // a CTA per tile at most
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  float best = 1e30f;
  for (int rep = 0; rep < 3; ++rep) {
    cudaEventRecord(a);
    for (int it = 0; it < 40; ++it) kern<<<grid, 256>>>(buf + size_t(it % copies) * bytes, n, k, sink);
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

}  // namespace

int main() {
  int sms = 0, l2 = 0;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, 0);
  const int k = 4096;
  const std::vector<int> ns = {4096, 12288, 24576, 49152, 98304};
  const size_t max_bytes = size_t(ns.back()) * k / 2;
  const size_t pool = std::max<size_t>(size_t(4) * l2, 2 * max_bytes);
  uint8_t* buf = nullptr;
  uint32_t* sink = nullptr;
  if (cudaMalloc(&buf, pool) != cudaSuccess || cudaMalloc(&sink, 4) != cudaSuccess) {
    std::printf("cudaMalloc failed\n");
    return 1;
  }
  cudaMemset(buf, 1, pool);
  const struct {
    Kernel kern;
    int per_sm;
    const char* name;
  } kinds[] = {{read_kernel<kStep, 4, 2>, 2, "step d4 2cta"},     {read_kernel<kHead, 4, 2>, 2, "head d4 2cta"},
               {read_kernel<kHead, 8, 2>, 2, "head d8 2cta"},     {read_kernel<kHeadBar, 4, 2>, 2, "headbar d4 2cta"},
               {read_kernel<kPhased, 4, 2>, 2, "phased d4 2cta"},
               {read_kernel<kPhased, 6, 2>, 2, "phased d6 2cta"}, {read_kernel<kPhased, 8, 2>, 2, "phased d8 2cta"},
               {read_kernel<kHead, 4, 4>, 4, "head d4 4cta"},     {read_kernel<kPhased, 4, 4>, 4, "phased d4 4cta"}};
  std::printf("# K = %d, grid = CTAs per SM x %d SMs x 256 threads (at most a CTA per 16-row tile); per-call us"
              " (best of 3 x 40 launches, rotated copies)\n", k, sms);
  std::printf("%-18s", "form \\ MB");
  for (int n : ns) std::printf("%8.1f", double(n) * k / 2 / 1e6);
  std::printf("%10s%10s\n", "fixed us", "TB/s");
  for (const auto& kd : kinds) {
    std::printf("%-18s", kd.name);
    std::fflush(stdout);
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (int n : ns) {
      const size_t bytes = size_t(n) * k / 2;
      const int copies = int(std::max<size_t>(2, pool / bytes));
      const float us = per_call_us(kd.kern, buf, bytes, copies, n, k, sink, kd.per_sm * sms);
      std::printf("%8.2f", us);
      sx += double(bytes);
      sy += us;
      sxx += double(bytes) * double(bytes);
      sxy += double(bytes) * us;
    }
    const double cnt = double(ns.size());
    const double slope = (sxy - sx * sy / cnt) / (sxx - sx * sx / cnt);  // us per byte
    std::printf("%10.2f%10.3f\n", (sy - slope * sx) / cnt, 1e-6 / slope);
  }
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) std::printf("CUDA error: %s\n", cudaGetErrorString(err));
  return err == cudaSuccess ? 0 : 1;
}
