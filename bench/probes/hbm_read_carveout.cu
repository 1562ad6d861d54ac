// Probe (session 39): does the shared memory a GEMV reserves for its staged x limit how fast its weight loop can
// stream? At 16 tokens the 16-bit GEMV stages all of x (128-171 KB at K = 4096-5120), so the SM runs with a 196-228 KB
// shared-memory carve-out and 28-60 KB of L1, where the one-token kernel has 192 KB of L1 (ncu, session 39 call A);
// its read-only loop streamed at ~77% of the read bandwidth (sessions 37-38) against ~100% at one token. The weight
// loads are L1::no_allocate, but returning sectors are still staged in the L1 data array, so a small L1 could cap the
// bytes in flight per SM. The kernels here read what the GEMV reads (rows g and g + 8 of a 16-row tile, 64 B per quad
// per row and step, 16-byte streaming loads; optionally its 2-byte block-scale loads, which do allocate in L1) with
// the plain loop's one wait per D steps, and reserve S bytes of shared memory they never touch. A 512-thread CTA is
// two walkers of 8 warps (the GEMV's two teams). Line fit over a size sweep as hbm_read_phased.cu
// (read_sweep.cuh). Build and run on the GPU host:
//   nvcc -std=c++17 -O3 -arch=sm_90 -Icuda -o /tmp/c bench/probes/hbm_read_carveout.cu && /tmp/c
#include <cuda_runtime.h>

#include <cstdint>

#include "nvfp4/nvfp4_device.cuh"  // ld_stream_v4: the GEMV's own weight load
#include "read_sweep.cuh"

namespace {

using reset_native::nvfp4_cuda::detail::ld_stream_v4;

template <int THREADS, int D, int MINB, bool SCALES>
__global__ void __launch_bounds__(THREADS, MINB) carveout_kernel(const uint8_t* w, int n, int k, uint32_t* sink) {
  constexpr int kWalkers = THREADS / 256;
  const int tid = int(threadIdx.x), team = tid / 256, warp = tid / 32 % 8, lane = tid % 32, g = lane / 4, t = lane % 4;
  const int walker = int(blockIdx.x) * kWalkers + team, walkers = int(gridDim.x) * kWalkers;
  const int nchunks = k / 1024;
  const int my_tiles = (n / 16 - walker + walkers - 1) / walkers;
  const int steps = my_tiles * nchunks;
  const int64_t halfk = k / 2, sixteenthk = k / 16;
  const uint8_t* scales = w + int64_t(n) * halfk;  // read_sweep.cuh: each copy's scale bytes follow its weights
  const uint32_t runtime_zero = uint32_t(k) >> 31;
  int next = 0;
  auto load = [&](uint4 (&v)[2], uint32_t (&s)[2]) {
    const int tile = walker + (next / nchunks) * walkers, c = next % nchunks;
    const int64_t row = int64_t(tile) * 16 + g;
    const uint8_t* base = w + row * halfk + c * 512 + warp * 64 + t * 16;
    v[0] = ld_stream_v4(base);
    v[1] = ld_stream_v4(base + 8 * halfk);
    if constexpr (SCALES) {
      const uint8_t* sp = scales + row * sixteenthk + c * 64 + warp * 8 + t * 2;
      s[0] = __ldg(reinterpret_cast<const uint16_t*>(sp));
      s[1] = __ldg(reinterpret_cast<const uint16_t*>(sp + 8 * sixteenthk));
    }
    ++next;
  };
  uint4 v[D][2];
  uint32_t sc[D][2] = {};
#pragma unroll
  for (int d = 0; d < D; ++d)
    if (d < steps) load(v[d], sc[d]);
  uint32_t acc = 0;
  for (int s = 0; s < steps; s += D) {
    acc ^= (v[0][0].x | v[D - 1][1].w) & runtime_zero;  // the one wait per D steps
#pragma unroll
    for (int d = 0; d < D; ++d) {
      if (s + d < steps) {
        acc ^= v[d][0].x ^ v[d][0].y ^ v[d][0].z ^ v[d][0].w ^ v[d][1].x ^ v[d][1].y ^ v[d][1].z ^ v[d][1].w;
        acc ^= sc[d][0] ^ sc[d][1];
        if (s + d + D < steps) load(v[d], sc[d]);
      }
    }
  }
  if (acc == 0x12345678u) sink[0] = acc;
}

constexpr int kKB = 1024;

}  // namespace

int main() {
  // Shared-memory configs an SM can take (KB): 0, 8, 16, 32, 64, 100, 132, 164, 196, 228 of 256 (L1 = the rest).
  // 2 x 48 KB -> 100 (L1 156); 2 x 87 -> 196 (L1 60); 2 x 104 -> 228 (L1 28). 1 x 170 KB (8B gate_up's 16 tokens)
  // -> 196; 1 x 203 (32B gate_up's) -> 228.
  const read_sweep::Kind kinds[] = {
      {carveout_kernel<256, 4, 2, false>, 2, "256x2 d4 smem 0", 256, 0},
      {carveout_kernel<256, 4, 2, false>, 2, "256x2 d4 smem 2x48K", 256, 48 * kKB},
      {carveout_kernel<256, 4, 2, false>, 2, "256x2 d4 smem 2x87K", 256, 87 * kKB},
      {carveout_kernel<256, 4, 2, false>, 2, "256x2 d4 smem 2x104K", 256, 104 * kKB},
      {carveout_kernel<512, 2, 1, false>, 1, "512x1 d2 smem 0", 512, 0},
      {carveout_kernel<512, 2, 1, false>, 1, "512x1 d2 smem 96K", 512, 96 * kKB},
      {carveout_kernel<512, 2, 1, false>, 1, "512x1 d2 smem 170K", 512, 170 * kKB},
      {carveout_kernel<512, 2, 1, false>, 1, "512x1 d2 smem 203K", 512, 203 * kKB},
      {carveout_kernel<512, 4, 1, false>, 1, "512x1 d4 smem 0", 512, 0},
      {carveout_kernel<512, 4, 1, false>, 1, "512x1 d4 smem 170K", 512, 170 * kKB},
      {carveout_kernel<256, 4, 2, true>, 2, "+sc 256x2 d4 smem 0", 256, 0, true},
      {carveout_kernel<256, 4, 2, true>, 2, "+sc 256x2 d4 2x87K", 256, 87 * kKB, true},
      {carveout_kernel<512, 2, 1, true>, 1, "+sc 512x1 d2 smem 0", 512, 0, true},
      {carveout_kernel<512, 2, 1, true>, 1, "+sc 512x1 d2 170K", 512, 170 * kKB, true},
      {carveout_kernel<512, 2, 1, true>, 1, "+sc 512x1 d2 203K", 512, 203 * kKB, true}};
  return read_sweep::run(kinds, int(sizeof(kinds) / sizeof(kinds[0])), 4096, {4096, 12288, 24576, 49152, 98304}, 22);
}
