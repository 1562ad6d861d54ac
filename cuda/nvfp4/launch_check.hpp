// Turns a CUDA runtime status into reset_native::Error (never aborts): used after every launch/API call.
#pragma once
#include <cuda_runtime.h>

#include <string>

#include "reset_native/error.hpp"

namespace reset_native::nvfp4_cuda::detail {

inline void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    (void)cudaGetLastError();  // clear a non-sticky error so the caller's context stays usable
    throw Error(std::string(what) + ": " + cudaGetErrorString(status));
  }
}

inline void check_launch(const char* what) { check_cuda(cudaGetLastError(), what); }

}  // namespace reset_native::nvfp4_cuda::detail
