// Caution (session 13): ptxas waits on all of this loop's loads before each step's use, so every DEPTH here keeps
// about one step in flight; bench/probes/hbm_read_phased.cu places the wait (bench/RESULTS.md, session 13).
// Probe: fixed cost and streaming rate (line fit t = a + bytes / rate over a size sweep) of read-only kernels of
// the GEMV's shape (256-thread CTAs, DEPTH steps of two 16-byte loads per thread in flight), varying CTAs per SM,
// depth, the L2 prefetch hint and the pattern, to tell whether the GEMV's ~78% streaming rate (bench/RESULTS.md,
// session 10 call A) is its row-strided access pattern or what any kernel of this shape gets:
//   0 gemv : rows g and g + 8 of a 16-row tile, 64 B per quad, row stride K/2 (the NVFP4 GEMV's weight loads);
//   1 tile : the same steps with each tile's 16 rows x 512 B chunk stored contiguously (a repacked layout);
//   2 flat : consecutive 16-byte loads over the buffer, a CTA's steps contiguous (the simplest stream).
// Each size runs 40 back-to-back launches over copies rotated past the L2 (>= 3x L2 bytes), per-call time =
// total / 40, best of 3. Build and run on the GPU host (results: bench/RESULTS.md, session 12):
//   nvcc -std=c++17 -O3 -arch=sm_90 -o /tmp/hbm_read_slope bench/probes/hbm_read_slope.cu && /tmp/hbm_read_slope
#include <cuda_runtime.h>

#include <cstdint>

#include "read_sweep.cuh"

namespace {

// HINT 0: no L2 prefetch hint; 1: L2::128B; 2: L2::256B (the GEMV's weight loads since session 6).
template <int HINT>
__device__ __forceinline__ uint4 ldnc(const void* p) {
  uint4 v;
  if constexpr (HINT == 0) {
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p));
  } else if constexpr (HINT == 1) {
    asm volatile("ld.global.nc.L1::no_allocate.L2::128B.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p));
  } else {
    asm volatile("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p));
  }
  return v;
}

template <int PATTERN, int DEPTH, int HINT, int MINB>
__global__ void __launch_bounds__(256, MINB) read_kernel(const uint8_t* w, int n, int k, uint32_t* sink) {
  const int tid = int(threadIdx.x), warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
  const int ntiles = n / 16, nchunks = k / 1024;
  const int my_tiles = (ntiles - int(blockIdx.x) + int(gridDim.x) - 1) / int(gridDim.x);
  const int steps = my_tiles * nchunks;
  const int64_t halfk = k / 2;
  auto addr = [&](int j, int hr) -> const uint8_t* {
    const int tile = int(blockIdx.x) + (j / nchunks) * int(gridDim.x), c = j % nchunks;
    if (PATTERN == 0) return w + int64_t(tile * 16 + g + 8 * hr) * halfk + c * 512 + warp * 64 + t * 16;
    if (PATTERN == 1) return w + (int64_t(tile) * nchunks + c) * 8192 + hr * 4096 + tid * 16;
    // flat: this CTA's steps are its share of the buffer in order, 8 KiB per step
    const int64_t first = int64_t(blockIdx.x) * (int64_t(ntiles / int(gridDim.x)) * nchunks * 8192) +
                          int64_t(min(int(blockIdx.x), ntiles % int(gridDim.x))) * nchunks * 8192;
    return w + first + int64_t(j) * 8192 + hr * 4096 + tid * 16;
  };
  uint4 v[DEPTH][2];
#pragma unroll
  for (int d = 0; d < DEPTH; ++d)
    if (d < steps) {
      v[d][0] = ldnc<HINT>(addr(d, 0));
      v[d][1] = ldnc<HINT>(addr(d, 1));
    }
  uint32_t acc = 0;
  for (int s = 0; s < steps; s += DEPTH) {
#pragma unroll
    for (int d = 0; d < DEPTH; ++d) {
      if (s + d < steps) {
        acc ^= v[d][0].x ^ v[d][0].w ^ v[d][1].y ^ v[d][1].z;
        if (s + d + DEPTH < steps) {
          v[d][0] = ldnc<HINT>(addr(s + d + DEPTH, 0));
          v[d][1] = ldnc<HINT>(addr(s + d + DEPTH, 1));
        }
      }
    }
  }
  if (acc == 0x12345678u) sink[0] = acc;
}

}  // namespace

int main() {
  const read_sweep::Kind kinds[] = {
      {read_kernel<0, 4, 0, 2>, 2, "gemv d4 2cta"},        {read_kernel<0, 4, 2, 2>, 2, "gemv d4 2cta L2:256"},
      {read_kernel<0, 8, 2, 1>, 2, "gemv d8 2cta L2:256"}, {read_kernel<0, 16, 2, 1>, 2, "gemv d16 2cta L2:256"},
      {read_kernel<0, 3, 2, 3>, 3, "gemv d3 3cta L2:256"}, {read_kernel<0, 4, 2, 3>, 3, "gemv d4 3cta L2:256"},
      {read_kernel<0, 2, 2, 4>, 4, "gemv d2 4cta L2:256"}, {read_kernel<0, 4, 2, 4>, 4, "gemv d4 4cta L2:256"},
      {read_kernel<0, 1, 2, 8>, 8, "gemv d1 8cta L2:256"}, {read_kernel<0, 2, 2, 8>, 8, "gemv d2 8cta L2:256"},
      {read_kernel<1, 4, 2, 2>, 2, "tile d4 2cta L2:256"}, {read_kernel<1, 4, 2, 4>, 4, "tile d4 4cta L2:256"},
      {read_kernel<2, 4, 0, 2>, 2, "flat d4 2cta"},        {read_kernel<2, 16, 0, 1>, 2, "flat d16 2cta"},
      {read_kernel<2, 4, 2, 4>, 4, "flat d4 4cta L2:256"}, {read_kernel<2, 2, 0, 8>, 8, "flat d2 8cta"},
      {read_kernel<2, 4, 0, 8>, 8, "flat d4 8cta"}};
  return read_sweep::run(kinds, int(sizeof(kinds) / sizeof(kinds[0])), 4096, {4096, 12288, 24576, 49152, 98304}, 26);
}
