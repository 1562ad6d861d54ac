// The SiLU-gated value of one element, round(round(silu(g)) * u) in the storage dtype T: shared by the
// silu_mul op and the NVFP4 GEMV's gated input so both produce the same bits (torch's silu: x / (1 + exp(-x))
// in fp32, rounded to T, then the product rounded).
#pragma once
#include "ops/dtype_conv.cuh"

namespace reset_native::ops_cuda {

template <class T>
__device__ __forceinline__ float silu_mul_value(float g, float u) {
  const float act = round_to<T>(__fdiv_rn(g, __fadd_rn(1.0f, expf(-g))));
  return round_to<T>(__fmul_rn(act, u));
}

}  // namespace reset_native::ops_cuda
