// Phase time stamps of the block-diagonal GEMV for the chain-timeline probe (bench/probes/gemv_chain_trace.cu),
// compiled in only with -DRESET_NATIVE_GEMV_TRACE: thread 0 of each CTA records %globaltimer (ns, comparable
// across SMs) at the marked points: 0 before the weight prefetch, 1 after the PDL wait, 2 x staged, 3 the first
// kDepth steps done, 4 the CTA's last tile written. The call's index in the probe's chain is its weight copy's
// index (the probe sets g_gemv_trace_base / g_gemv_trace_stride to the copies' layout). In the package build
// GEMV_TRACE is empty.
#pragma once

#ifdef RESET_NATIVE_GEMV_TRACE
#include <cstdint>
namespace reset_native::nvfp4_cuda::detail {
constexpr int kGemvTraceCalls = 32, kGemvTraceEvents = 5, kGemvTraceCtas = 1024;
// Probe-only device symbols (the probe writes base / stride once and reads the stamps after a replay).
__device__ const uint8_t* g_gemv_trace_base;
__device__ unsigned long long g_gemv_trace_stride;
__device__ unsigned long long g_gemv_trace[kGemvTraceCalls][kGemvTraceEvents][kGemvTraceCtas];
__device__ __forceinline__ void gemv_trace_mark(const uint8_t* packed, int event) {
  if (threadIdx.x != 0 || blockIdx.x >= kGemvTraceCtas || g_gemv_trace_stride == 0) return;
  const unsigned long long call = (unsigned long long)(packed - g_gemv_trace_base) / g_gemv_trace_stride;
  if (call >= kGemvTraceCalls) return;
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  g_gemv_trace[call][event][blockIdx.x] = t;
}
}  // namespace reset_native::nvfp4_cuda::detail
#define GEMV_TRACE(packed, event) ::reset_native::nvfp4_cuda::detail::gemv_trace_mark(packed, event)
#else
#define GEMV_TRACE(packed, event) \
  do {                            \
  } while (0)
#endif
