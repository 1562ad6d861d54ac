// SiLU-gated product of an MLP, act_fn(gate) * up, in one kernel (reset_native/ops_cuda.hpp). The gate and up
// halves may be column slices of one fused projection output (row strides). Arithmetic as torch's: silu in fp32
// as x / (1 + exp(-x)) rounded to the dtype, then the product rounded.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <string>

#include "core/pdl.cuh"
#include "ops/dtype_conv.cuh"
#include "reset_native/error.hpp"
#include "reset_native/ops_cuda.hpp"

namespace reset_native::ops_cuda {
namespace {

constexpr int kThreads = 256;

template <class T>
__global__ void __launch_bounds__(kThreads) silu_mul_kernel(const T* gate, const T* up, T* y, std::int64_t rows,
                                                            std::int64_t n, std::int64_t gate_rs, std::int64_t up_rs) {
  cuda_core::pdl_wait();  // gate and up come from the previous kernel
  cuda_core::pdl_trigger();
  const std::int64_t total = rows * n;
  for (std::int64_t i = std::int64_t(blockIdx.x) * kThreads + threadIdx.x; i < total;
       i += std::int64_t(gridDim.x) * kThreads) {
    const std::int64_t r = i / n, c = i % n;
    const float g = Conv<T>::to_float(gate[r * gate_rs + c]);
    const float act = round_to<T>(__fdiv_rn(g, __fadd_rn(1.0f, expf(-g))));
    y[i] = Conv<T>::from_float(__fmul_rn(act, Conv<T>::to_float(up[r * up_rs + c])));
  }
}

template <class T>
void launch(const void* gate, const void* up, void* y, std::int64_t rows, std::int64_t n, std::int64_t gate_rs,
            std::int64_t up_rs, cudaStream_t s) {
  const std::int64_t total = rows * n;
  const std::int64_t want = (total + kThreads - 1) / kThreads;
  const auto blocks = static_cast<unsigned>(want < 65535 ? want : 65535);  // grid-stride loop covers the rest
  const cudaError_t status =
      cuda_core::launch_pdl(silu_mul_kernel<T>, dim3(blocks), dim3(kThreads), 0, s, static_cast<const T*>(gate),
                            static_cast<const T*>(up), static_cast<T*>(y), rows, n, gate_rs, up_rs);
  if (status != cudaSuccess) {
    (void)cudaGetLastError();
    throw Error(std::string("silu_mul: launch: ") + cudaGetErrorString(status));
  }
}

}  // namespace

void launch_silu_mul(const void* gate, const void* up, void* y, std::int64_t rows, std::int64_t n,
                     std::int64_t gate_rs, std::int64_t up_rs, DType dtype, void* stream) {
  require(rows >= 0 && n >= 0, "silu_mul: rows and n must be >= 0");
  require(gate_rs >= n && up_rs >= n, "silu_mul: row strides must be >= n");
  if (rows == 0 || n == 0) return;
  require(gate != nullptr && up != nullptr && y != nullptr, "silu_mul: null pointer");
  const auto s = static_cast<cudaStream_t>(stream);
  switch (dtype) {
    case DType::F32: launch<float>(gate, up, y, rows, n, gate_rs, up_rs, s); break;
    case DType::F16: launch<__half>(gate, up, y, rows, n, gate_rs, up_rs, s); break;
    case DType::BF16: launch<__nv_bfloat16>(gate, up, y, rows, n, gate_rs, up_rs, s); break;
    default: throw InvalidType("silu_mul: dtype must be F32, F16 or BF16");
  }
}

}  // namespace reset_native::ops_cuda
