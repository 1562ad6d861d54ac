// Probe (NOTES-w4a4cluster35.md): what the W4A4 cluster staging's DSMEM copy costs on this GPU, and how many clusters
// of C CTAs with the two-team kernel's footprint (512 threads, ~200 KB of dynamic shared memory, one CTA per SM) fit.
// One CTA per SM in clusters of C; each CTA fills its 1/C share of `rows` staged rows (2112-byte rows, 2048 data bytes,
// as gemv_kernel.cuh's staged x), then, after a cluster barrier, copies the other shares' data columns the way
// stage_cluster does (4 remote 16-byte loads in flight per thread), or (mode local) the same bytes within its own
// shared memory. Prints per C and rows: the copy's clock cycles per CTA (mean, max over CTAs), bytes per cycle per SM,
// the cycles of one more full cluster barrier right after it, and whether every copied byte is right.
//   nvcc -std=c++17 -O3 -arch=sm_90 -Icuda -o /tmp/dsmem_copy_probe bench/probes/dsmem_copy_probe.cu
//   /tmp/dsmem_copy_probe
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <vector>

#include "core/cluster.cuh"
#include "core/mbarrier.cuh"

namespace cc = reset_native::cuda_core;

constexpr int kThreads = 512, kRowBytes = 2112, kRowVecs = 128, kBatch = 4;

__device__ __forceinline__ uint32_t byte_offset(unsigned i) { return (i / kRowVecs) * kRowBytes + (i % kRowVecs) * 16; }

// out[3 cta ..] = {copy cycles, cycles of the next cluster barrier, wrong 16-byte vectors}
__global__ void __launch_bounds__(kThreads, 1) probe(int rows, int remote, unsigned long long* out) {
  extern __shared__ uint4 smem[];
  const int rank = int(cc::cluster_ctarank()), csize = int(cc::cluster_nctarank());
  const unsigned cluster_id = blockIdx.x / unsigned(csize);
  auto share_start = [&](int r) { return rows * r / csize; };
  auto pattern = [&](unsigned i) { return make_uint4(i, cluster_id, i ^ 0x5a5a5a5au, 7u); };
  char* base = reinterpret_cast<char*>(smem);
  // own share (remote mode) or every other share's source copy at the end (local mode: rows .. 2 rows)
  const unsigned own_end = unsigned(share_start(rank + 1)) * kRowVecs;
  for (unsigned i = unsigned(share_start(rank)) * kRowVecs + threadIdx.x; i < own_end; i += kThreads)
    *reinterpret_cast<uint4*>(base + byte_offset(i)) = pattern(i);
  if (!remote)
    for (unsigned i = threadIdx.x; i < unsigned(rows) * kRowVecs; i += kThreads)
      *reinterpret_cast<uint4*>(base + size_t(rows) * kRowBytes + byte_offset(i)) = pattern(i);
  cc::cluster_arrive();
  cc::cluster_wait();
  const long long t0 = clock64();
  const uint32_t xs = cc::smem_addr(smem);
  for (int q = 1; q < csize; ++q) {
    const int peer = (rank + q) % csize;
    const uint32_t src = remote ? cc::cluster_map_shared(xs, uint32_t(peer)) : xs + uint32_t(rows) * kRowBytes;
    const unsigned v_end = unsigned(share_start(peer + 1)) * kRowVecs;
    for (unsigned b0 = unsigned(share_start(peer)) * kRowVecs + threadIdx.x; b0 < v_end; b0 += kBatch * kThreads) {
      uint4 v[kBatch];
#pragma unroll
      for (int b = 0; b < kBatch; ++b) {
        const unsigned i = b0 + b * kThreads;
        const char* local_src = base + size_t(rows) * kRowBytes + byte_offset(i);
        if (i < v_end)
          v[b] = remote ? cc::ld_cluster_v4(src + byte_offset(i)) : *reinterpret_cast<const uint4*>(local_src);
      }
#pragma unroll
      for (int b = 0; b < kBatch; ++b) {
        const unsigned i = b0 + b * kThreads;
        if (i < v_end) *reinterpret_cast<uint4*>(base + byte_offset(i)) = v[b];
      }
    }
  }
  __syncthreads();
  const long long t1 = clock64();
  cc::cluster_arrive();  // every copy done: no peer reads this CTA's shared memory after this barrier
  cc::cluster_wait();
  const long long t2 = clock64();
  unsigned long long wrong = 0;
  for (unsigned i = threadIdx.x; i < unsigned(rows) * kRowVecs; i += kThreads) {
    const uint4 v = *reinterpret_cast<const uint4*>(base + byte_offset(i)), w = pattern(i);
    wrong += (v.x != w.x || v.y != w.y || v.z != w.z || v.w != w.w);
  }
  atomicAdd(&out[3 * blockIdx.x + 2], wrong);
  if (threadIdx.x == 0) {
    out[3 * blockIdx.x] = static_cast<unsigned long long>(t1 - t0);
    out[3 * blockIdx.x + 1] = static_cast<unsigned long long>(t2 - t1);
  }
}

int main() {
  int sms = 0, clock_khz = 0;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, 0);
  const size_t smem = 200 * 1024;
  cudaFuncSetAttribute(probe, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
  unsigned long long* out = nullptr;
  cudaMalloc(&out, sizeof(unsigned long long) * 3 * sms);
  std::printf("# %d SMs, %.2f GHz (attribute); copy cycles per CTA, one CTA per SM, 512 threads, %zu KB smem\n", sms,
              clock_khz * 1e-6, smem / 1024);
  std::printf("%-6s %2s %5s %8s %9s %9s %8s %9s %8s %6s\n", "mode", "C", "rows", "KB in", "clusters", "mean clk",
              "max clk", "B/clk/SM", "bar clk", "wrong");
  for (int c : {2, 3, 4, 8}) {
    int clusters = cc::max_active_clusters(probe, kThreads, smem, c, cudaStream_t(0));
    const int grid = (clusters * c < sms ? clusters * c : sms / c * c);
    for (int rows : {32, 48, 64, 80}) {  // M x K chunks: 8 x 4, 12 x 4, 16 x 4, 16 x 5
      for (int remote : {1, 0}) {
        if (!remote && size_t(2 * rows) * kRowBytes > smem) continue;
        cudaMemset(out, 0, sizeof(unsigned long long) * 3 * sms);
        if (grid < c || cc::launch_pdl_cluster(probe, dim3(grid), dim3(kThreads), smem, c, 0, rows, remote, out) !=
                            cudaSuccess ||
            cudaDeviceSynchronize() != cudaSuccess) {
          std::printf("%-6s %2d %5d launch failed: %s\n", remote ? "dsmem" : "local", c, rows,
                      cudaGetErrorString(cudaGetLastError()));
          continue;
        }
        std::vector<unsigned long long> h(3 * sms);
        cudaMemcpy(h.data(), out, sizeof(unsigned long long) * 3 * sms, cudaMemcpyDeviceToHost);
        double sum = 0, mx = 0, bar = 0;
        unsigned long long wrong = 0;
        for (int b = 0; b < grid; ++b) {
          sum += double(h[3 * b]);
          mx = h[3 * b] > mx ? double(h[3 * b]) : mx;
          bar += double(h[3 * b + 1]);
          wrong += h[3 * b + 2];
        }
        const double bytes = double(rows) * (c - 1) / c * 2048;  // the other shares' data bytes (mean over ranks)
        std::printf("%-6s %2d %5d %8.1f %9d %9.0f %8.0f %9.1f %8.0f %6llu\n", remote ? "dsmem" : "local", c, rows,
                    bytes / 1024, clusters, sum / grid, mx, bytes / (sum / grid), bar / grid, wrong);
      }
    }
  }
  cudaFree(out);
  return 0;
}
