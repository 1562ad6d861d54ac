// fp32 <-> storage dtype conversions shared by the integration ops (round to nearest even on the way back).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace reset_native::ops_cuda {

template <class T>
struct Conv;
template <>
struct Conv<float> {
  static __device__ __forceinline__ float to_float(float v) { return v; }
  static __device__ __forceinline__ float from_float(float v) { return v; }
};
template <>
struct Conv<__half> {
  static __device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
  static __device__ __forceinline__ __half from_float(float v) { return __float2half_rn(v); }
};
template <>
struct Conv<__nv_bfloat16> {
  static __device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
  static __device__ __forceinline__ __nv_bfloat16 from_float(float v) { return __float2bfloat16_rn(v); }
};

// One rounding to T and back: the value a T tensor holds after an elementwise torch op computed in fp32.
template <class T>
__device__ __forceinline__ float round_to(float v) {
  return Conv<T>::to_float(Conv<T>::from_float(v));
}

}  // namespace reset_native::ops_cuda
