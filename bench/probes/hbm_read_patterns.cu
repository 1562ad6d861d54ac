// Probe: HBM read rate of weight-streaming patterns (same bytes), flat step ring like the GEMV.
// PATTERN 0: GEMV rows g, g+8 of a 16-row tile, 64 B per quad (row stride K/2).
// PATTERN 1: tile-contiguous repack: the CTA's 16 rows x 512 B of a chunk are 8 KiB contiguous.
#include <cstdio>
#include <cstdint>
#include <cuda_runtime.h>
__device__ __forceinline__ uint4 ldnc(const void* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
  return v;
}
template <int PATTERN, int DEPTH, int MINB>
__global__ void __launch_bounds__(256, MINB) rd(const uint8_t* w, int n, int k, uint32_t* sink) {
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
  const int ntiles = n / 16, nchunks = k / 1024;
  const int my_tiles = (ntiles - int(blockIdx.x) + int(gridDim.x) - 1) / int(gridDim.x);
  const int steps = my_tiles * nchunks;
  const int64_t halfk = k / 2;
  auto addr = [&](int j, int hr) {
    const int tile = blockIdx.x + (j / nchunks) * gridDim.x, c = j % nchunks;
    if (PATTERN == 0) return w + int64_t(tile * 16 + g + 8 * hr) * halfk + c * 512 + warp * 64 + t * 16;
    return w + (int64_t(tile) * nchunks + c) * 8192 + warp * 1024 + hr * 512 + lane * 16;
  };
  uint4 v[DEPTH][2];
#pragma unroll
  for (int d = 0; d < DEPTH; ++d)
    if (d < steps) { v[d][0] = ldnc(addr(d, 0)); v[d][1] = ldnc(addr(d, 1)); }
  uint32_t acc = 0;
  for (int s = 0; s < steps; s += DEPTH) {
#pragma unroll
    for (int d = 0; d < DEPTH; ++d) {
      if (s + d < steps) {
        acc ^= v[d][0].x ^ v[d][0].w ^ v[d][1].y ^ v[d][1].z;
        if (s + d + DEPTH < steps) { v[d][0] = ldnc(addr(s + d + DEPTH, 0)); v[d][1] = ldnc(addr(s + d + DEPTH, 1)); }
      }
    }
  }
  if (acc == 0x12345678u) sink[0] = acc;
}
int main() {
  const int n = 24576, k = 4096;
  const size_t bytes = size_t(n) * k / 2;
  const int copies = 8;
  uint8_t* buf; uint32_t* sink;
  cudaMalloc(&buf, bytes * copies); cudaMalloc(&sink, 4);
  cudaMemset(buf, 1, bytes * copies);
  int sms; cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
  auto run = [&](auto kern, int per_sm, const char* name) {
    for (int rep = 0; rep < 3; ++rep) {
      cudaEventRecord(a);
      for (int it = 0; it < 40; ++it) kern<<<sms * per_sm, 256>>>(buf + (it % copies) * bytes, n, k, sink);
      cudaEventRecord(b); cudaEventSynchronize(b);
      float ms; cudaEventElapsedTime(&ms, a, b);
      if (rep == 2) printf("%-34s %.1f us/call  %.2f TB/s\n", name, ms * 1000 / 40, bytes * 40 / (ms * 1e-3) / 1e12);
    }
  };
  run(rd<0, 3, 2>, 2, "gemv  2cta depth3");
  run(rd<0, 4, 2>, 2, "gemv  2cta depth4");
  run(rd<0, 6, 2>, 2, "gemv  2cta depth6");
  run(rd<0, 4, 3>, 3, "gemv  3cta depth4");
  run(rd<0, 4, 4>, 4, "gemv  4cta depth4");
  run(rd<0, 2, 4>, 4, "gemv  4cta depth2");
  run(rd<1, 3, 2>, 2, "contig 2cta depth3");
  run(rd<1, 4, 2>, 2, "contig 2cta depth4");
  run(rd<1, 6, 2>, 2, "contig 2cta depth6");
  run(rd<1, 4, 3>, 3, "contig 3cta depth4");
  run(rd<1, 4, 4>, 4, "contig 4cta depth4");
  run(rd<1, 2, 4>, 4, "contig 4cta depth2");
  run(rd<1, 8, 1>, 1, "contig 1cta depth8");
  return 0;
}
