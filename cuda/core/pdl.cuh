// Programmatic dependent launch (sm_90): a kernel launched with launch_pdl may start while the previous
// kernel on the stream is still running; it must call pdl_wait() before touching anything that kernel
// writes (or anything it reads and we write). Loads of data nobody writes (GEMV weights) can go before it,
// which hides the launch gap and the ramp-up of the memory stream behind the previous kernel's tail.
// pdl_trigger() lets the next PDL kernel launch early. Both are no-ops when launched without PDL.
// RESET_NATIVE_PDL=0 in the environment (read once per process) launches everything the plain way.
#pragma once
#include <cuda_runtime.h>

#include <cstdlib>
#include <cstring>

namespace reset_native::cuda_core {

__device__ __forceinline__ void pdl_wait() { asm volatile("griddepcontrol.wait;" ::: "memory"); }
__device__ __forceinline__ void pdl_trigger() { asm volatile("griddepcontrol.launch_dependents;" ::: "memory"); }

inline bool pdl_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("RESET_NATIVE_PDL");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  return enabled;
}

// kernel<<<grid, block, smem, stream>>>(args...) with programmatic stream serialization allowed.
template <typename... KArgs, typename... Args>
cudaError_t launch_pdl(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                       Args&&... args) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = pdl_enabled() ? 1 : 0;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  return cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...);
}

}  // namespace reset_native::cuda_core
