// Run-time check that the CUDA kernels compiled into this library have a device to run on.
#include <cuda_runtime.h>

namespace reset_native {

bool cuda_runtime_has_device() {
  int count = 0;
  // Without a driver (CPU machines) this returns an error instead of crashing: report "no device".
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky error state
    return false;
  }
  return count > 0;
}

}  // namespace reset_native
