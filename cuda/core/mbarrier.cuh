// Shared-memory transaction barriers and 1-D bulk copies (TMA, sm_90) for producer/consumer rings.
// A "full" barrier expects one arrival (the producer's, with the byte count it waits for) and completes
// when the bulk copies have delivered those bytes; an "empty" barrier counts the consumers' releases.
// Phase parity alternates 0, 1, 0, ... per completion; a waiter passes the parity of the phase it needs.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace reset_native::cuda_core {

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void mbar_init(uint64_t* bar, int arrivals) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_addr(bar)), "r"(arrivals) : "memory");
}

// Makes the initialised barriers visible to the async (TMA) proxy; call before the CTA-wide barrier that
// publishes them.
__device__ __forceinline__ void mbar_init_fence() {
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
}

// The producer's arrival, announcing `bytes` of bulk copies that will complete on this barrier.
__device__ __forceinline__ void mbar_arrive_expect_tx(uint64_t* bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_addr(bar)), "r"(bytes)
               : "memory");
}

// A consumer's release (release semantics: its earlier shared-memory reads are done before the arrival).
__device__ __forceinline__ void mbar_arrive(uint64_t* bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(smem_addr(bar)) : "memory");
}

// Orders this thread's earlier generic-proxy shared-memory accesses before later async-proxy (TMA) accesses
// that other threads start after synchronising with it: e.g. a consumer's reads of a ring stage before the
// bulk copy that refills the stage (PTX: cross-proxy accesses need a proxy fence).
__device__ __forceinline__ void fence_async_shared() { asm volatile("fence.proxy.async.shared::cta;" ::: "memory"); }

// Spins until the phase with this parity has completed (acquire: the data it guards is visible after).
__device__ __forceinline__ void mbar_wait(uint64_t* bar, uint32_t parity) {
  asm volatile(
      "{\n"
      " .reg .pred done;\n"
      " WAIT_%=:\n"
      " mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      " @!done bra WAIT_%=;\n"
      "}\n" ::"r"(smem_addr(bar)),
      "r"(parity)
      : "memory");
}

// Global -> shared copy of `bytes` (multiple of 16; both addresses 16-byte aligned) by the TMA unit,
// completing `bytes` transactions on `bar`.
__device__ __forceinline__ void bulk_copy_g2s(void* dst, const void* src, uint32_t bytes, uint64_t* bar) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(
          smem_addr(dst)),
      "l"(src), "r"(bytes), "r"(smem_addr(bar))
      : "memory");
}

// One box of a 2-D tensor (TMA descriptor `map` in parameter/constant/global memory) at element
// coordinates (x = inner, y = row) -> shared memory (128-byte aligned), completing its bytes on `bar`.
// Rows past the tensor's end are filled with zeros (and still count).
__device__ __forceinline__ void tensor_copy_2d_g2s(void* dst, const void* map, int x, int y, uint64_t* bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];" ::"r"(
          smem_addr(dst)),
      "l"(map), "r"(x), "r"(y), "r"(smem_addr(bar))
      : "memory");
}

// Barrier over the first `threads` threads of the CTA only (named barrier 1), for kernels whose other
// warps (a producer) never join.
__device__ __forceinline__ void named_sync(int threads) {
  asm volatile("bar.sync 1, %0;" ::"r"(threads) : "memory");
}

}  // namespace reset_native::cuda_core
