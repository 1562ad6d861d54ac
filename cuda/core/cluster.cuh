// Thread-block clusters (sm_90): the cluster barrier, distributed shared memory (DSMEM) loads, and a launch with
// cluster dimensions next to programmatic dependent launch (pdl.cuh).
// DSMEM rules (PTX ISA, CUDA programming guide): a CTA may read a peer's shared memory only after a cluster barrier
// that follows the peer's writes (the barrier also guarantees the peer has started), and a CTA must not exit while a
// peer may still read its shared memory (a second barrier: arrive after the reads, wait before exiting).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <utility>

#include "core/pdl.cuh"

namespace reset_native::cuda_core {

__device__ __forceinline__ uint32_t cluster_ctarank() {
  uint32_t r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(r));
  return r;
}

__device__ __forceinline__ uint32_t cluster_nctarank() {
  uint32_t r;
  asm volatile("mov.u32 %0, %%cluster_nctarank;" : "=r"(r));
  return r;
}

// This thread's arrival on the cluster barrier (release: its earlier memory accesses, shared memory included, are
// ordered before any peer's matching wait returns). Every thread of every CTA of the cluster arrives once per phase.
__device__ __forceinline__ void cluster_arrive() { asm volatile("barrier.cluster.arrive.release;" ::: "memory"); }

// Waits until every thread of the cluster has arrived in this phase (acquire).
__device__ __forceinline__ void cluster_wait() { asm volatile("barrier.cluster.wait.acquire;" ::: "memory"); }

// The shared::cluster address of the variable at shared::cta address `addr` in the CTA of rank `rank`.
__device__ __forceinline__ uint32_t cluster_map_shared(uint32_t addr, uint32_t rank) {
  uint32_t r;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(r) : "r"(addr), "r"(rank));
  return r;
}

// 16 bytes of a peer's shared memory (shared::cluster address from cluster_map_shared, 16-byte aligned).
__device__ __forceinline__ uint4 ld_cluster_v4(uint32_t addr) {
  uint4 v;
  asm volatile("ld.shared::cluster.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "r"(addr)
               : "memory");
  return v;
}

// The launch attribute for clusters of `cluster` CTAs along x.
inline cudaLaunchAttribute cluster_dimension(int cluster) {
  cudaLaunchAttribute a{};
  a.id = cudaLaunchAttributeClusterDimension;
  a.val.clusterDim.x = static_cast<unsigned>(cluster);
  a.val.clusterDim.y = 1;
  a.val.clusterDim.z = 1;
  return a;
}

// Clusters of `cluster` CTAs (block threads, smem bytes of dynamic shared memory each) that can be resident at once;
// 0 where none fits or the query fails (the error is cleared). The kernel's dynamic shared memory attribute must
// already allow smem. stream: the one the launch will use (a query, nothing is enqueued; not the legacy stream, which
// a stream capture in progress would not allow to be touched).
template <typename... KArgs>
int max_active_clusters(void (*kernel)(KArgs...), int threads, size_t smem, int cluster, cudaStream_t stream) {
  cudaLaunchAttribute attr[1] = {cluster_dimension(cluster)};
  const cudaLaunchConfig_t cfg = launch_config(dim3(cluster), dim3(threads), smem, stream, attr, 1);
  int clusters = 0;
  if (cudaOccupancyMaxActiveClusters(&clusters, reinterpret_cast<const void*>(kernel), &cfg) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return clusters;
}

// launch_pdl (pdl.cuh) with clusters of `cluster` CTAs along x (grid.x a multiple of cluster).
template <typename... KArgs, typename... Args>
cudaError_t launch_pdl_cluster(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, int cluster,
                               cudaStream_t stream, Args&&... args) {
  cudaLaunchAttribute attr[2] = {pdl_attribute(), cluster_dimension(cluster)};
  const cudaLaunchConfig_t cfg = launch_config(grid, block, smem, stream, attr, 2);
  return cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...);
}

}  // namespace reset_native::cuda_core
