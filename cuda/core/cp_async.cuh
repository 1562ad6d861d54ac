// Per-thread asynchronous global -> shared copies (cp.async, sm_80+): each thread copies and later reads back only
// its own bytes, so cp.async.wait_group (ptxas: DEPBAR.LE on one scoreboard) is the only synchronisation needed.
// Unlike a register load, whose wait ptxas places for all loads of one scoreboard at once, wait_group N lets the N
// most recent groups stay in flight.
#pragma once
#include <cstdint>

namespace reset_native::cuda_core {

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes, L2 only (streamed once: not kept in L1), with a 256-byte L2 prefetch. dst and src 16-byte aligned.
__device__ __forceinline__ void cp_async_16_stream(void* dst, const void* src) {
  asm volatile("cp.async.cg.shared.global.L2::256B [%0], [%1], 16;" ::"r"(smem_u32(dst)), "l"(src) : "memory");
}

// 4 bytes (cp.async takes 4 and 8 only through L1). dst and src 4-byte aligned.
__device__ __forceinline__ void cp_async_4(void* dst, const void* src) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" ::"r"(smem_u32(dst)), "l"(src) : "memory");
}

// Closes the group of this thread's copies issued since the last commit (an empty group when there were none).
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }

// Waits until at most N of this thread's committed groups are still in flight (groups complete in commit order).
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}

}  // namespace reset_native::cuda_core
