// Phase time stamps of the warp-specialised medium-M kernel and its x permutation for the timeline probe
// (bench/probes/ws_sk_trace.cu), compiled in only with -DRESET_NATIVE_WS_TRACE: thread 0 of each CTA records
// %globaltimer (ns, comparable across SMs) at the events below. Stamps go to one of two slots by the call's
// x pointer (slot 1 where x is g_ws_trace_x1), so that a chain of calls alternating two x buffers keeps two calls'
// timelines: a call and the one before it. In the package build the macros are empty.
#pragma once

namespace reset_native::nvfp4_cuda::detail {
enum WsTraceEvent {
  kWsEntry = 0,      // kernel entry
  kWsFirstW = 1,     // the first stage's weights landed (w_full)
  kWsFirstX = 2,     // the first stage's x landed (x_full: after the permutation, through the PDL wait)
  kWsSeg0Done = 3,   // the first segment's stages done (its wgmmas retired)
  kWsSeg0Out = 4,    // the first segment published (stream-K) or stored
  kWsLastDone = 5,   // the last segment's stages done (stream-K CTAs with 2+ segments)
  kWsLastAdded = 6,  // the last segment's lower pieces added
  kWsEnd = 7,        // the CTA's last store done
  kWsTraceEvents = 8
};
enum WsPermTraceEvent { kWsPermEntry = 0, kWsPermWaited = 1, kWsPermEnd = 2, kWsPermEvents = 3 };
}  // namespace reset_native::nvfp4_cuda::detail

#ifdef RESET_NATIVE_WS_TRACE
#include "core/globaltimer.cuh"

namespace reset_native::nvfp4_cuda::detail {
constexpr int kWsTraceCtas = 2048;
// Probe-only device symbols (the probe sets g_ws_trace_x1; every stamp it reads is rewritten by the calls it reads).
__device__ unsigned long long g_ws_trace_x1;  // the address of x in slot 1's calls
__device__ unsigned long long g_ws_trace[2][kWsTraceEvents][kWsTraceCtas];
__device__ unsigned long long g_ws_perm_trace[2][kWsPermEvents][kWsTraceCtas];

__device__ __forceinline__ unsigned ws_trace_cta() {
  return blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
}
__device__ __forceinline__ void ws_trace_mark(int slot, int event) {
  const unsigned cta = ws_trace_cta();
  if (threadIdx.x != 0 || cta >= unsigned(kWsTraceCtas)) return;
  g_ws_trace[slot][event][cta] = cuda_core::globaltimer_ns();
}
// The stamps' slot of a call: 1 where its x is the probe's g_ws_trace_x1, else 0.
__device__ __forceinline__ int ws_trace_slot_of(const void* x) {
  return reinterpret_cast<unsigned long long>(x) == g_ws_trace_x1 ? 1 : 0;
}
__device__ __forceinline__ void ws_perm_mark(const void* x, int event) {
  const unsigned cta = ws_trace_cta();
  if (threadIdx.x != 0 || cta >= unsigned(kWsTraceCtas)) return;
  g_ws_perm_trace[ws_trace_slot_of(x)][event][cta] = cuda_core::globaltimer_ns();
}
}  // namespace reset_native::nvfp4_cuda::detail
#define WS_TRACE_BEGIN(x) const int ws_trace_slot = ::reset_native::nvfp4_cuda::detail::ws_trace_slot_of(x)
#define WS_TRACE(event) ::reset_native::nvfp4_cuda::detail::ws_trace_mark(ws_trace_slot, event)
#define WS_TRACE_IF(cond, event) \
  do {                           \
    if (cond) WS_TRACE(event);   \
  } while (0)
#define WS_PERM_TRACE(x, event) ::reset_native::nvfp4_cuda::detail::ws_perm_mark(x, event)
#else
#define WS_TRACE_BEGIN(x) \
  do {                    \
  } while (0)
#define WS_TRACE(event) \
  do {                  \
  } while (0)
#define WS_TRACE_IF(cond, event) \
  do {                           \
  } while (0)
#define WS_PERM_TRACE(x, event) \
  do {                          \
  } while (0)
#endif
