// Probe (session 36): can a cluster of SMs stage the 16-token GEMV's x sooner than every SM reading its own copy
// through the L2? Session 35's chain trace put that staging at 2.3-3.8 us per call at 16 tokens (132 SMs x 128-160
// KiB from the L2 at once, ~7.3 TB/s), and more loads in flight per thread did not shorten it.
// One CTA of 512 threads per SM, ~200 KB of dynamic shared memory (the two-team kernel's footprint), x = M tokens x K
// bf16 written by a previous kernel (so in the L2), staged as gemv_kernel.cuh's stage_wide stages it (rows of 2112
// bytes, row c * M + token, 16-byte halves of a unit at their word planes, pairs (j, j + 4) permuted). Modes:
//   l2    every CTA loads all of x through the L2 (4 units in flight per thread): the kernel's way now
//   push  clusters of C: each CTA loads 1/C of the units and stores each to its own shared memory and to its peers'
//         (st.shared::cluster), then a cluster barrier
//   mc    clusters of C: TMA bulk copies with .multicast::cluster, each CTA issuing 1/C of the rows for all C CTAs
//         (raw rows: no word planes, no pair permutation, which no bulk copy can do; the ceiling of a multicast)
//   bulk  every CTA bulk-copies all rows for itself (TMA without multicast)
// Prints per mode, C, M and K: the CTAs' median staging time and the span from the first CTA's start to the last
// one's end (%globaltimer ns, median of 7 launches), and the bytes wrong against the expected staged layout.
//   nvcc -std=c++17 -O3 -gencode arch=compute_90a,code=sm_90a -Icuda -Icpp/include -o /tmp/x_stage_cluster_probe
//     bench/probes/x_stage_cluster_probe.cu  (one command line)
//   /tmp/x_stage_cluster_probe
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "core/cluster.cuh"
#include "core/globaltimer.cuh"
#include "core/mbarrier.cuh"
#include "core/pdl.cuh"
#include "nvfp4/gemv_launch.cuh"

namespace cc = reset_native::cuda_core;
namespace nd = reset_native::nvfp4_cuda::detail;
// The 16-bit kernel's staged-x layout (gemv_params.cuh, gemv_kernel.cuh): rows of kTokStride u16, units of 16
// elements, each 8-element half at its word plane (staged_offset) with pairs (j, j + 4) permuted (pair_permuted).
using nd::kChunk;
using nd::kTokStride;
using nd::kUnitsPerToken;
using nd::pair_permuted;
using nd::staged_offset;

constexpr int kCtaThreads = 512;  // the two-team kernel's CTA
constexpr int kBatch = 4;
enum Mode { kL2 = 0, kPush = 1, kMc = 2, kBulk = 3 };

__device__ __forceinline__ void st_cluster_v4(uint32_t addr, uint4 v) {
  asm volatile("st.shared::cluster.v4.u32 [%0], {%1, %2, %3, %4};" ::"r"(addr), "r"(v.x), "r"(v.y), "r"(v.z),
               "r"(v.w)
               : "memory");
}

__device__ __forceinline__ void bulk_multicast_g2s(void* dst, const void* src, uint32_t bytes, uint64_t* bar,
                                                   uint16_t mask) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster [%0], [%1], %2, [%3], "
      "%4;" ::"r"(cc::smem_addr(dst)),
      "l"(src), "r"(bytes), "r"(cc::smem_addr(bar)), "h"(mask)
      : "memory");
}

// out[4 * cta ..] = {start ns, end ns, wrong u16 values, 0}
__global__ void __launch_bounds__(kCtaThreads, 1) stage_probe(const uint16_t* x, int m, int k, int mode,
                                                           unsigned long long* out) {
  extern __shared__ uint4 smem[];
  uint16_t* xs = reinterpret_cast<uint16_t*>(smem);
  const int nchunks = k / kChunk, rows = nchunks * m;
  uint64_t* bar = reinterpret_cast<uint64_t*>(xs + size_t(rows) * kTokStride);
  const bool clustered = mode == kPush || mode == kMc;
  const int rank = clustered ? int(cc::cluster_ctarank()) : 0, csize = clustered ? int(cc::cluster_nctarank()) : 1;
  if (threadIdx.x == 0 && (mode == kMc || mode == kBulk)) {
    cc::mbar_init(bar, 1);
    cc::mbar_init_fence();
  }
  if (clustered) {  // every peer started, its barrier initialised (the kernel would arrive before its PDL wait)
    cc::cluster_arrive();
    cc::cluster_wait();
  } else {
    __syncthreads();
  }
  const unsigned long long t0 = cc::globaltimer_ns();
  auto row_src = [&](int row) { return x + size_t(row % m) * k + size_t(row / m) * kChunk; };  // row = c * m + tok
  if (mode == kL2 || mode == kPush) {
    const int u_first = rows * rank / csize * kUnitsPerToken, u_end = rows * (rank + 1) / csize * kUnitsPerToken;
    const uint32_t xs_addr = cc::smem_addr(xs);
    for (int base = u_first + int(threadIdx.x); base < u_end; base += kBatch * kCtaThreads) {
      uint4 v[kBatch][2];
#pragma unroll
      for (int b = 0; b < kBatch; ++b) {
        const int u = min(base + b * kCtaThreads, u_end - 1);
        const uint4* src = reinterpret_cast<const uint4*>(row_src(u / kUnitsPerToken) + (u % kUnitsPerToken) * 16);
        v[b][0] = __ldg(src);
        v[b][1] = __ldg(src + 1);
      }
#pragma unroll
      for (int b = 0; b < kBatch; ++b) {
        const int u = base + b * kCtaThreads;
        if (u >= u_end) continue;
        const int row = u / kUnitsPerToken, col = u % kUnitsPerToken;  // staged row, unit column
        const uint32_t off0 = uint32_t(row * kTokStride + staged_offset(col * 16)) * 2;
        const uint32_t off1 = off0 + uint32_t(staged_offset(8)) * 2;
        const uint4 p0 = pair_permuted(v[b][0]), p1 = pair_permuted(v[b][1]);
        *reinterpret_cast<uint4*>(reinterpret_cast<char*>(xs) + off0) = p0;
        *reinterpret_cast<uint4*>(reinterpret_cast<char*>(xs) + off1) = p1;
        for (int q = 1; q < csize; ++q) {
          const uint32_t peer = cc::cluster_map_shared(xs_addr, uint32_t((rank + q) % csize));
          st_cluster_v4(peer + off0, p0);
          st_cluster_v4(peer + off1, p1);
        }
      }
    }
    if (mode == kPush) {
      cc::cluster_arrive();
      cc::cluster_wait();
    } else {
      __syncthreads();
    }
  } else {
    if (threadIdx.x == 0) {
      cc::mbar_arrive_expect_tx(bar, uint32_t(rows) * kChunk * 2);
      const int r0 = rows * rank / csize, r1 = rows * (rank + 1) / csize;
      for (int r = r0; r < r1; ++r) {
        if (mode == kMc) {
          bulk_multicast_g2s(xs + size_t(r) * kTokStride, row_src(r), kChunk * 2, bar, uint16_t((1u << csize) - 1));
        } else {
          cc::bulk_copy_g2s(xs + size_t(r) * kTokStride, row_src(r), kChunk * 2, bar);
        }
      }
    }
    cc::mbar_wait(bar, 0);
  }
  const unsigned long long t1 = cc::globaltimer_ns();
  // check: the staged layout (l2, push) or the raw rows (mc, bulk) against x
  unsigned long long wrong = 0;
  for (int i = int(threadIdx.x); i < rows * kChunk; i += kCtaThreads) {
    const int row = i / kChunk, e = i % kChunk;
    int at;
    if (mode == kMc || mode == kBulk) {
      at = row * kTokStride + e;
    } else {  // element e of the unit's 8-element half: pairs (j, j + 4) -> positions 2 j, 2 j + 1
      const int e8 = e % 8, pos = e8 < 4 ? 2 * e8 : 2 * (e8 - 4) + 1;
      at = row * kTokStride + staged_offset(e - e8) + pos;
    }
    wrong += xs[at] != row_src(row)[e];
  }
  if (wrong) atomicAdd(&out[4 * blockIdx.x + 2], wrong);
  if (threadIdx.x == 0) out[4 * blockIdx.x] = t0, out[4 * blockIdx.x + 1] = t1;
  if (clustered) {  // no CTA leaves while a peer may still write into it (push) -- all writes ended before t1
    cc::cluster_arrive();
    cc::cluster_wait();
  }
}

__global__ void fill_x(uint16_t* x, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    x[i] = uint16_t((i * 2654435761u) >> 7);
}

int main() {
  int sms = 0;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  const size_t smem = 200 * 1024;
  cudaFuncSetAttribute(stage_probe, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
  cudaFuncSetAttribute(stage_probe, cudaFuncAttributeNonPortableClusterSizeAllowed, 1);
  uint16_t* x = nullptr;
  unsigned long long* out = nullptr;
  cudaMalloc(&x, size_t(16) * 5120 * 2);
  cudaMalloc(&out, sizeof(unsigned long long) * 4 * sms);
  std::printf("# %d SMs; one CTA of %d threads per SM, %zu KB smem; ns, median of 7 launches\n", sms, kCtaThreads,
              smem / 1024);
  std::printf("%-5s %2s %3s %5s %5s %8s %9s %9s %6s\n", "mode", "C", "M", "K", "CTAs", "KB/CTA", "median", "span",
              "wrong");
  struct Case { int mode, c; };
  const Case cases[] = {{kL2, 1}, {kBulk, 1}, {kPush, 2}, {kPush, 4}, {kMc, 2}, {kMc, 4}};
  for (int k : {4096, 5120}) {
    for (int m : {16, 8}) {
      fill_x<<<264, 256>>>(x, size_t(m) * k);
      for (const Case& cs : cases) {
        const bool clustered = cs.mode == kPush || cs.mode == kMc;
        int grid = sms;
        if (clustered) {
          const int clusters = cc::max_active_clusters(stage_probe, kCtaThreads, smem, cs.c, cudaStream_t(0));
          grid = std::min(clusters * cs.c, sms / cs.c * cs.c);
        }
        std::vector<double> med, span;
        unsigned long long wrong = 0;
        for (int rep = 0; rep < 7; ++rep) {
          cudaMemset(out, 0, sizeof(unsigned long long) * 4 * sms);
          const cudaError_t e =
              clustered ? cc::launch_pdl_cluster(stage_probe, dim3(grid), dim3(kCtaThreads), smem, cs.c,
                                                 cudaStream_t(0), x, m, k, cs.mode, out)
                        : cc::launch_pdl(stage_probe, dim3(grid), dim3(kCtaThreads), smem, cudaStream_t(0), x, m, k,
                                         cs.mode, out);
          if (e != cudaSuccess || cudaDeviceSynchronize() != cudaSuccess) {
            std::printf("launch failed (mode %d C %d): %s\n", cs.mode, cs.c, cudaGetErrorString(cudaGetLastError()));
            return 1;
          }
          std::vector<unsigned long long> h(4 * sms);
          cudaMemcpy(h.data(), out, sizeof(unsigned long long) * 4 * sms, cudaMemcpyDeviceToHost);
          std::vector<double> d;
          unsigned long long lo = ~0ull, hi = 0;
          for (int b = 0; b < grid; ++b) {
            d.push_back(double(h[4 * b + 1] - h[4 * b]));
            lo = std::min(lo, h[4 * b]), hi = std::max(hi, h[4 * b + 1]);
            wrong += h[4 * b + 2];
          }
          std::nth_element(d.begin(), d.begin() + d.size() / 2, d.end());
          med.push_back(d[d.size() / 2]);
          span.push_back(double(hi - lo));
        }
        std::sort(med.begin(), med.end());
        std::sort(span.begin(), span.end());
        const char* names[] = {"l2", "push", "mc", "bulk"};
        std::printf("%-5s %2d %3d %5d %5d %8.0f %9.0f %9.0f %6llu\n", names[cs.mode], cs.c, m, k, grid,
                    double(m) * k * 2 / 1024, med[3], span[3], wrong);
      }
    }
  }
  cudaFree(x);
  cudaFree(out);
  return 0;
}
