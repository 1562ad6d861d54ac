// Microbench (session 19, sampler23): the top-p bins pass's shared-memory add forms on one H200 block per chunk (75
// blocks, V = 151936, as the B = 1 bins pass): split (RESET_NATIVE_SAMPLER_BINS_ADD=split, the default before session
// 20: two predicated reductions per logit, the 12-bit halves), carry (the default since session 20: one 32-bit add
// returning its word, a count of wraps), match
// (warp-aggregated halves with __match_any_sync; ptxas loops over the groups). Median cycles per warm repeat of one
// chunk's add (weights and bins included; an approximation of weight_at / bin_at), and whether every block's 64-bit
// bin sums equal split's. nvcc -std=c++17 -O3 -arch=sm_90 -o /tmp/bins_add_forms bench/probes/bins_add_forms.cu
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <algorithm>
#include <random>
#include <cuda_runtime.h>
constexpr int kThreads = 256, kPer = 8, kBins = 1024, kChunk = 2048;
__device__ __forceinline__ void red_nz(unsigned address, unsigned v) {
  asm volatile("{\n\t.reg .pred p;\n\tsetp.ne.u32 p, %1, 0;\n\t@p red.shared.add.u32 [%0], %1;\n\t}" ::"r"(address),
               "r"(v) : "memory");
}
__device__ __forceinline__ void wb(float x, float zmax, float inv_t, unsigned& w, unsigned& off) {
  const float m = (x - zmax) * inv_t;
  const float e = exp2f(m * 1.4426950408889634f) * 16777216.0f;
  w = m > -17.3f ? static_cast<unsigned>(e + 0.5f) : 0u;
  off = static_cast<unsigned>(min(__float2int_rz(-m * 59.0f), kBins - 1)) * 4u;
}
template <int kForm>
__device__ __forceinline__ void add(const float (&x)[kPer], float zmax, float inv_t, unsigned lo, unsigned hi) {
  unsigned w[kPer], off[kPer];
#pragma unroll
  for (int j = 0; j < kPer; ++j) wb(x[j], zmax, inv_t, w[j], off[j]);
  if constexpr (kForm == 0) {
#pragma unroll
    for (int j = 0; j < kPer; ++j) { red_nz(lo + off[j], w[j] & 0xFFFu); red_nz(hi + off[j], w[j] >> 12); }
  } else if constexpr (kForm == 1) {
    // The package's carry form (topp_bins_add_carry): unpredicated adds, weight-0 lanes add 0 to word `lane`.
    unsigned old[kPer], wraps = 0u;
    const unsigned lane_word = lo + (threadIdx.x & 31u) * 4u;
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
      asm volatile("atom.shared.add.u32 %0, [%1], %2;" : "=r"(old[j]) : "r"(w[j] != 0u ? lo + off[j] : lane_word),
                   "r"(w[j]) : "memory");
    }
#pragma unroll
    for (int j = 0; j < kPer; ++j) wraps |= (old[j] + w[j] < old[j] ? 1u : 0u) << j;
    if (wraps) {
#pragma unroll
      for (int j = 0; j < kPer; ++j) red_nz(hi + off[j], (wraps >> j) & 1u);
    }
  } else {
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
      const unsigned peers = __match_any_sync(0xFFFFFFFFu, off[j]);
      const unsigned l = __reduce_add_sync(peers, w[j] & 0xFFFu), h = __reduce_add_sync(peers, w[j] >> 12);
      const bool lead = (__ffs(peers) - 1) == static_cast<int>(threadIdx.x & 31);
      red_nz(lo + off[j], lead ? l : 0u);
      red_nz(hi + off[j], lead ? h : 0u);
    }
  }
}
template <int kForm>
__global__ void __launch_bounds__(kThreads) k(const float* z, int vocab, float zmax, float inv_t, int reps,
                                              unsigned long long* out, unsigned long long* cyc) {
  __shared__ unsigned hlo[kBins], hhi[kBins];
  for (int b = threadIdx.x; b < kBins; b += kThreads) { hlo[b] = 0u; hhi[b] = 0u; }
  float x[kPer];
  const int base = blockIdx.x * kChunk + threadIdx.x * kPer;
#pragma unroll
  for (int j = 0; j < kPer; ++j) x[j] = base + j < vocab ? z[base + j] : -INFINITY;
  const unsigned lo = static_cast<unsigned>(__cvta_generic_to_shared(hlo));
  const unsigned hi = static_cast<unsigned>(__cvta_generic_to_shared(hhi));
  __syncthreads();
  add<kForm>(x, zmax, inv_t, lo, hi);  // the checked pass
  __syncthreads();
  for (int b = threadIdx.x; b < kBins; b += kThreads) {
    const unsigned long long v = kForm == 1 ? (static_cast<unsigned long long>(hhi[b]) << 32) + hlo[b]
                                            : (static_cast<unsigned long long>(hhi[b]) << 12) + hlo[b];
    out[blockIdx.x * kBins + b] = v;
  }
  __syncthreads();
  long long t0 = clock64();
  for (int r = 0; r < reps; ++r) {
    float y[kPer];
    const unsigned zero = *static_cast<volatile unsigned*>(&hlo[r & 7]) & 0u;  // data dependency per rep
#pragma unroll
    for (int j = 0; j < kPer; ++j) y[j] = __uint_as_float(__float_as_uint(x[j]) | zero);
    add<kForm>(y, zmax, inv_t, lo, hi);
    __syncthreads();
  }
  long long t1 = clock64();
  if (threadIdx.x == 0) cyc[blockIdx.x] = (t1 - t0) / reps;
}
int main() {
  const int vocab = 151936, blocks = (vocab + kChunk - 1) / kChunk, reps = 50;
  const char* dists[] = {"N(0,3) T=1", "N(0,3) T=0.6", "N(0,1) T=1", "crowded 7/8 equal", "all equal"};
  float *dz; unsigned long long *dout, *dcyc;
  cudaMalloc(&dz, vocab * 4); cudaMalloc(&dout, 3ull * blocks * kBins * 8); cudaMalloc(&dcyc, 3 * blocks * 8);
  std::mt19937 g(7);
  printf("%-20s %8s %8s %8s   same\n", "dist", "split", "carry", "match");
  for (int d = 0; d < 5; ++d) {
    std::vector<float> z(vocab);
    std::normal_distribution<float> n(0.f, d == 2 ? 1.f : 3.f);
    for (int i = 0; i < vocab; ++i) z[i] = n(g);
    if (d == 3) for (int i = 0; i < vocab; ++i) if (i % 8) z[i] = 5.0f;
    if (d == 4) for (int i = 0; i < vocab; ++i) z[i] = 1.0f;
    const float zmax = *std::max_element(z.begin(), z.end()), inv_t = d == 1 ? 1.f / 0.6f : 1.f;
    cudaMemcpy(dz, z.data(), vocab * 4, cudaMemcpyHostToDevice);
    for (int w = 0; w < 2; ++w) {
      k<0><<<blocks, kThreads>>>(dz, vocab, zmax, inv_t, reps, dout, dcyc);
      k<1><<<blocks, kThreads>>>(dz, vocab, zmax, inv_t, reps, dout + blocks * kBins, dcyc + blocks);
      k<2><<<blocks, kThreads>>>(dz, vocab, zmax, inv_t, reps, dout + 2 * blocks * kBins, dcyc + 2 * blocks);
    }
    if (cudaDeviceSynchronize() != cudaSuccess) {
      printf("error %s\n", cudaGetErrorString(cudaGetLastError()));
      return 1;
    }
    std::vector<unsigned long long> o(3ull * blocks * kBins), c(3 * blocks);
    cudaMemcpy(o.data(), dout, o.size() * 8, cudaMemcpyDeviceToHost);
    cudaMemcpy(c.data(), dcyc, c.size() * 8, cudaMemcpyDeviceToHost);
    unsigned long long med[3];
    for (int f = 0; f < 3; ++f) {
      std::vector<unsigned long long> v(c.begin() + f * blocks, c.begin() + (f + 1) * blocks);
      std::sort(v.begin(), v.end());
      med[f] = v[blocks / 2];
    }
    bool s1 = true, s2 = true;
    for (size_t i = 0; i < (size_t)blocks * kBins; ++i) {
      s1 &= o[i] == o[blocks * kBins + i];
      s2 &= o[i] == o[2 * blocks * kBins + i];
    }
    printf("%-20s %8llu %8llu %8llu   carry %d match %d\n", dists[d], med[0], med[1], med[2], s1, s2);
  }
}
