// %globaltimer (ns, one clock for every SM): the time stamp of the trace probes' phase marks (nvfp4/gemv_trace.cuh,
// nvfp4/gemm_ws_trace.cuh). Only their -DRESET_NATIVE_*_TRACE builds include it.
#pragma once

namespace reset_native::cuda_core {
__device__ __forceinline__ unsigned long long globaltimer_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}
}  // namespace reset_native::cuda_core
