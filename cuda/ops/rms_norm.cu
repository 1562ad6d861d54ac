// One-pass RMSNorm (reset_native/ops_cuda.hpp): one block per row, fp32 sum of squares in the order of
// core/row_rms.cuh (the NVFP4 GEMV's fused RMSNorm prologue sums in the same order: identical bits), then the
// normalised row rounded to the dtype and multiplied by the weight, matching transformers' LlamaRMSNorm /
// Qwen3RMSNorm operation by operation (only the order of the fp32 sum differs).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <string>

#include "core/pdl.cuh"
#include "core/row_rms.cuh"
#include "ops/dtype_conv.cuh"
#include "reset_native/error.hpp"
#include "reset_native/ops_cuda.hpp"

namespace reset_native::ops_cuda {
namespace {

constexpr int kThreads = 256;

template <class T>
__global__ void __launch_bounds__(kThreads) rms_norm_kernel(const T* x, const T* w, T* y, std::int64_t h,
                                                            float eps) {
  static_assert(kThreads == cuda_core::kRmsLanes, "one thread per lane of the shared summation order");
  __shared__ float warp_sums[cuda_core::kRmsWarps];
  __shared__ float s_scale;
  cuda_core::pdl_wait();     // x comes from the previous kernel (a no-op without PDL)
  cuda_core::pdl_trigger();  // the next kernel (a GEMV) may start streaming its weights now
  const T* xr = x + blockIdx.x * h;
  T* yr = y + blockIdx.x * h;
  const bool vec = h % cuda_core::kRmsGroup == 0 && reinterpret_cast<std::uintptr_t>(x) % 16 == 0;
  const float sum = cuda_core::rms_warp_sum(
      cuda_core::rms_lane_partial(xr, h, int(threadIdx.x), vec, [](T v) { return Conv<T>::to_float(v); }));
  if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = sum;
  __syncthreads();
  if (threadIdx.x == 0) s_scale = cuda_core::rms_scale(warp_sums, h, eps);
  __syncthreads();
  const float scale = s_scale;
  for (std::int64_t i = threadIdx.x; i < h; i += kThreads) {
    const T normed = Conv<T>::from_float(__fmul_rn(Conv<T>::to_float(xr[i]), scale));
    yr[i] = Conv<T>::from_float(__fmul_rn(Conv<T>::to_float(w[i]), Conv<T>::to_float(normed)));
  }
}

template <class T>
void launch(const void* x, const void* w, void* y, std::int64_t rows, std::int64_t h, float eps, cudaStream_t s) {
  const cudaError_t status =
      cuda_core::launch_pdl(rms_norm_kernel<T>, dim3(static_cast<unsigned>(rows)), dim3(kThreads), 0, s,
                            static_cast<const T*>(x), static_cast<const T*>(w), static_cast<T*>(y), h, eps);
  if (status != cudaSuccess) {
    (void)cudaGetLastError();
    throw Error(std::string("rms_norm: launch: ") + cudaGetErrorString(status));
  }
}

}  // namespace

void launch_rms_norm(const void* x, const void* w, void* y, std::int64_t rows, std::int64_t h, float eps,
                     DType dtype, void* stream) {
  require(rows >= 0 && rows < (std::int64_t(1) << 31), "rms_norm: rows must be in [0, 2^31), got " +
                                                           std::to_string(rows));
  require(h >= 1, "rms_norm: the normalised size must be >= 1, got " + std::to_string(h));
  require(eps >= 0.0f, "rms_norm: eps must be >= 0");
  if (rows == 0) return;  // empty input: nothing to read, and its pointers may be null
  require(x != nullptr && w != nullptr && y != nullptr, "rms_norm: null pointer");
  const auto s = static_cast<cudaStream_t>(stream);
  switch (dtype) {
    case DType::F32: launch<float>(x, w, y, rows, h, eps, s); break;
    case DType::F16: launch<__half>(x, w, y, rows, h, eps, s); break;
    case DType::BF16: launch<__nv_bfloat16>(x, w, y, rows, h, eps, s); break;
    default: throw InvalidType("rms_norm: dtype must be F32, F16 or BF16");
  }
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) throw Error(std::string("rms_norm: launch failed: ") + cudaGetErrorString(err));
}

}  // namespace reset_native::ops_cuda
