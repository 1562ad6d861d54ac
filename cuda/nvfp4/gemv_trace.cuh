// Phase time stamps of the block-diagonal GEMV for the chain-timeline probe (bench/probes/gemv_chain_trace.cu),
// compiled in only with -DRESET_NATIVE_GEMV_TRACE: thread 0 of each CTA records %globaltimer (ns, comparable
// across SMs) at the marked points: 0 before the weight prefetch, 1 after the PDL wait, 2 x staged, 3 the first
// kDepth steps done, 4 the CTA's last tile written. GEMV_TRACE_WARP records, per CTA, the latest of its warps' lane 0
// (atomicMax) once a value the warp has loaded is in its registers (the stamp waits for it): 5 the first x unit
// loaded (before its conversion), 6 after x is staged, the prefetched weight words (ptxas waits there for every weight
// load in flight: all kDepth steps landed; the main loop's own wait at its head then finds them there, so its one
// wait per loop stays); the probe zeroes these stamps before each replay. The call's index in the probe's chain is its weight copy's
// index (the probe sets g_gemv_trace_base / g_gemv_trace_stride to the copies' layout). In the package build
// GEMV_TRACE and GEMV_TRACE_WARP are empty.
#pragma once

#ifdef RESET_NATIVE_GEMV_TRACE
#include <cstdint>

#include "core/globaltimer.cuh"
namespace reset_native::nvfp4_cuda::detail {
constexpr int kGemvTraceCalls = 32, kGemvTraceEvents = 8, kGemvTraceCtas = 1024;
// Probe-only device symbols (the probe writes base / stride once and reads the stamps after a replay).
__device__ const uint8_t* g_gemv_trace_base;
__device__ unsigned long long g_gemv_trace_stride;
__device__ unsigned long long g_gemv_trace[kGemvTraceCalls][kGemvTraceEvents][kGemvTraceCtas];
__device__ __forceinline__ void gemv_trace_mark(const uint8_t* packed, int event) {
  if (threadIdx.x != 0 || blockIdx.x >= kGemvTraceCtas || g_gemv_trace_stride == 0) return;
  const unsigned long long call = (unsigned long long)(packed - g_gemv_trace_base) / g_gemv_trace_stride;
  if (call >= kGemvTraceCalls) return;
  g_gemv_trace[call][event][blockIdx.x] = cuda_core::globaltimer_ns();
}
// Lane 0 of each warp, once dep is in its registers: the branch on dep (taken only for the bits 0x7fffffff, which the
// probe's data does not hold) waits for it, and the timer is read after the branch.
__device__ __forceinline__ void gemv_trace_warp_max(const uint8_t* packed, int event, uint32_t dep) {
  if (threadIdx.x % 32 != 0 || blockIdx.x >= kGemvTraceCtas || g_gemv_trace_stride == 0 || dep == 0x7fffffffu) return;
  const unsigned long long call = (unsigned long long)(packed - g_gemv_trace_base) / g_gemv_trace_stride;
  if (call >= kGemvTraceCalls) return;
  atomicMax(&g_gemv_trace[call][event][blockIdx.x], cuda_core::globaltimer_ns());
}
}  // namespace reset_native::nvfp4_cuda::detail
#define GEMV_TRACE(packed, event) ::reset_native::nvfp4_cuda::detail::gemv_trace_mark(packed, event)
#define GEMV_TRACE_WARP(packed, event, dep) ::reset_native::nvfp4_cuda::detail::gemv_trace_warp_max(packed, event, dep)
#else
#define GEMV_TRACE(packed, event) \
  do {                            \
  } while (0)
#define GEMV_TRACE_WARP(packed, event, dep) \
  do {                                      \
  } while (0)
#endif
