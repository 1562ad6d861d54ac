// Phase time stamps for the latency probe (bench/probes/sampler_trace.cu), compiled in only with
// -DRESET_NATIVE_SAMPLER_TRACE: thread 0 of each block of row 0 records %globaltimer (ns, comparable
// across SMs) and clock64 (cycles, for phases inside one block) at the marked points. In the
// package build RN_TRACE is empty.
#pragma once

#ifdef RESET_NATIVE_SAMPLER_TRACE
namespace reset_native::sampler::cuda_detail {
constexpr int kTraceKernels = 4, kTraceEvents = 20, kTraceBlocks = 128;
// Probe-only: a device symbol the probe reads back after each step.
__device__ unsigned long long g_trace_time[kTraceKernels][kTraceEvents][kTraceBlocks];
__device__ long long g_trace_clock[kTraceKernels][kTraceEvents][kTraceBlocks];
__device__ double g_trace_sink;  // probe-only repeats of a phase store their result here (kept, not used)
// Probe-only (sampler_batch trace-bins): nonzero makes each bins block time its adds again after its flush (marks
// 9 -> 10: the same shared reductions, warm; 10 -> 11: the same weights and bins with no shared memory access).
__device__ int g_trace_bins_repeat;
// Any thread of a block of row 0 may record (the caller picks one): trace_mark_here; trace_mark is thread 0.
__device__ __forceinline__ void trace_mark_here(int kernel, int event) {
  if (blockIdx.x == 0 && blockIdx.y < kTraceBlocks) {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    g_trace_time[kernel][event][blockIdx.y] = t;
    g_trace_clock[kernel][event][blockIdx.y] = clock64();
  }
}
__device__ __forceinline__ void trace_mark(int kernel, int event) {
  if (threadIdx.x == 0) trace_mark_here(kernel, event);
}
}  // namespace reset_native::sampler::cuda_detail
#define RN_TRACE(kernel, event) ::reset_native::sampler::cuda_detail::trace_mark(kernel, event)
#define RN_TRACE_HERE(kernel, event) ::reset_native::sampler::cuda_detail::trace_mark_here(kernel, event)
// A phase the probe runs twice (the same instructions, so the second run has warm caches) is a call.
#define RN_TRACE_NOINLINE __noinline__
#else
#define RN_TRACE_NOINLINE __forceinline__
#define RN_TRACE(kernel, event) \
  do {                          \
  } while (0)
#define RN_TRACE_HERE(kernel, event) \
  do {                               \
  } while (0)
#endif
