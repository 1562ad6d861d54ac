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
//   nvcc -std=c++17 -O3 -arch=sm_90 -Icuda -o /tmp/hbm_read_phased bench/probes/hbm_read_phased.cu \
//     && /tmp/hbm_read_phased
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "nvfp4/nvfp4_device.cuh"  // ld_stream_v4: the GEMV's own weight load
#include "read_sweep.cuh"

namespace {

using reset_native::nvfp4_cuda::detail::ld_stream_v4;

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
    v[0] = ld_stream_v4(base);
    v[1] = ld_stream_v4(base + 8 * halfk);
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

}  // namespace

int main() {
  const read_sweep::Kind kinds[] = {
      {read_kernel<kStep, 4, 2>, 2, "step d4 2cta"},     {read_kernel<kHead, 4, 2>, 2, "head d4 2cta"},
      {read_kernel<kHead, 8, 2>, 2, "head d8 2cta"},     {read_kernel<kHeadBar, 4, 2>, 2, "headbar d4 2cta"},
      {read_kernel<kPhased, 4, 2>, 2, "phased d4 2cta"}, {read_kernel<kPhased, 6, 2>, 2, "phased d6 2cta"},
      {read_kernel<kPhased, 8, 2>, 2, "phased d8 2cta"}, {read_kernel<kHead, 4, 4>, 4, "head d4 4cta"},
      {read_kernel<kPhased, 4, 4>, 4, "phased d4 4cta"}};
  return read_sweep::run(kinds, int(sizeof(kinds) / sizeof(kinds[0])), 4096, {4096, 12288, 24576, 49152, 98304}, 18);
}
