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

// The attribute that allows programmatic stream serialization where `allow` (off with RESET_NATIVE_PDL=0).
inline cudaLaunchAttribute pdl_attribute(bool allow = true) {
  cudaLaunchAttribute a{};
  a.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  a.val.programmaticStreamSerializationAllowed = allow && pdl_enabled() ? 1 : 0;
  return a;
}

// A cudaLaunchKernelEx configuration: grid x block, smem bytes of dynamic shared memory, on stream, with the n
// attributes at attrs (which must outlive the launch call).
inline cudaLaunchConfig_t launch_config(dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                                        cudaLaunchAttribute* attrs, unsigned n) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cfg.attrs = attrs;
  cfg.numAttrs = n;
  return cfg;
}

// kernel<<<grid, block, smem, stream>>>(args...) with programmatic stream serialization allowed where `pdl` (and
// RESET_NATIVE_PDL allows it), else the plain way (the kernel's pdl_wait / pdl_trigger are then no-ops).
template <typename... KArgs, typename... Args>
cudaError_t launch_maybe_pdl(bool pdl, void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem,
                             cudaStream_t stream, Args&&... args) {
  cudaLaunchAttribute attr[1] = {pdl_attribute(pdl)};
  const cudaLaunchConfig_t cfg = launch_config(grid, block, smem, stream, attr, 1);
  return cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...);
}

// kernel<<<grid, block, smem, stream>>>(args...) with programmatic stream serialization allowed.
template <typename... KArgs, typename... Args>
cudaError_t launch_pdl(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                       Args&&... args) {
  return launch_maybe_pdl(true, kernel, grid, block, smem, stream, std::forward<Args>(args)...);
}

}  // namespace reset_native::cuda_core
