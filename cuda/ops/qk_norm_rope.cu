// Head RMSNorm + rotary embedding of q and k in one kernel (reset_native/ops_cuda.hpp): one warp per head row,
// optionally writing k and v straight into a static KV cache (the cache update's index copies fused in too).
// Each lane owns the rotation pairs (j, j + d/2) for j = lane, lane + 32, ...; the row is read twice (sum of
// squares, then the rotation), the second time from L1. The arithmetic replays transformers' operations and
// roundings one by one (norm: fp32 statistics, round, times weight, round; rope: two rounded products, rounded
// sum), so only the order of the fp32 sum of squares differs from the unfused model.
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
constexpr int kRowsPerBlock = kThreads / 32;

template <class T>
__global__ void __launch_bounds__(kThreads) qk_norm_rope_kernel(QkNormRopeArgs a) {
  cuda_core::pdl_wait();     // q and k come from the previous kernel (the projection GEMV)
  cuda_core::pdl_trigger();  // let the next kernel start its launch
  const int lane = threadIdx.x % 32;
  const bool cached = a.k_cache != nullptr;
  const int heads = a.hq + a.hk * (cached ? 2 : 1);  // with a cache, v's rows are copied by the same launch
  const std::int64_t row = std::int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32;
  if (row >= a.batch * a.seq * heads) return;  // whole warps exit together: no shuffle below is left half-empty
  const std::int64_t token = row / heads;
  const int h = static_cast<int>(row % heads);
  const std::int64_t b = token / a.seq, s = token % a.seq;
  const bool is_q = h < a.hq;
  std::int64_t slot = 0;  // the cache row of this token
  if (cached) {
    const std::int64_t pos = *a.cache_pos;
    slot = pos + s;
    if (pos < 0 || pos > a.cache_len - a.seq) {  // the call does not fit: write nothing, poison all of q (NaN
                                                 // logits reach the sampler's error flag), like the reference
      if (is_q) {
        T* yq = static_cast<T*>(a.q_out) + (token * a.hq + h) * a.d;
        for (int j = lane; j < a.d; j += 32) yq[j] = Conv<T>::from_float(__int_as_float(0x7fc00000));
      }
      return;
    }
    if (h >= a.hq + a.hk) {  // a v row: copy it into its cache slot
      const int hv = h - a.hq - a.hk;
      const T* v = static_cast<const T*>(a.v) + b * a.v_sb + s * a.v_ss + hv * a.v_sh;
      T* dst = static_cast<T*>(a.v_cache) + ((b * a.hk + hv) * a.cache_len + slot) * a.d;
      for (int j = lane; j < a.d; j += 32) dst[j] = v[j];
      return;
    }
  }
  const T* x = is_q ? static_cast<const T*>(a.q) + b * a.q_sb + s * a.q_ss + h * a.q_sh
                    : static_cast<const T*>(a.k) + b * a.k_sb + s * a.k_ss + (h - a.hq) * a.k_sh;
  T* y = is_q      ? static_cast<T*>(a.q_out) + (token * a.hq + h) * a.d
         : cached ? static_cast<T*>(a.k_cache) + ((b * a.hk + (h - a.hq)) * a.cache_len + slot) * a.d
                  : static_cast<T*>(a.k_out) + (token * a.hk + (h - a.hq)) * a.d;
  const T* w = static_cast<const T*>(is_q ? a.q_weight : a.k_weight);
  const T* cs = static_cast<const T*>(a.cos) + b * a.cs_sb + s * a.cs_ss;
  const T* sn = static_cast<const T*>(a.sin) + b * a.cs_sb + s * a.cs_ss;
  const int half = a.d / 2;

  float scale = 1.0f;
  if (w != nullptr) {
    float sum = 0.0f;
    for (int j = lane; j < a.d; j += 32) {
      const float v = Conv<T>::to_float(x[j]);
      sum = fmaf(v, v, sum);
    }
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xFFFFFFFFu, sum, o);
    scale = rsqrtf(__fadd_rn(__fdiv_rn(sum, float(a.d)), a.eps));
  }
  for (int j = lane; j < half; j += 32) {
    float x1 = Conv<T>::to_float(x[j]);
    float x2 = Conv<T>::to_float(x[j + half]);
    if (w != nullptr) {
      x1 = round_to<T>(__fmul_rn(Conv<T>::to_float(w[j]), round_to<T>(__fmul_rn(x1, scale))));
      x2 = round_to<T>(__fmul_rn(Conv<T>::to_float(w[j + half]), round_to<T>(__fmul_rn(x2, scale))));
    }
    const float c1 = Conv<T>::to_float(cs[j]), c2 = Conv<T>::to_float(cs[j + half]);
    const float s1 = Conv<T>::to_float(sn[j]), s2 = Conv<T>::to_float(sn[j + half]);
    y[j] = Conv<T>::from_float(__fadd_rn(round_to<T>(__fmul_rn(x1, c1)), round_to<T>(__fmul_rn(-x2, s1))));
    y[j + half] = Conv<T>::from_float(__fadd_rn(round_to<T>(__fmul_rn(x2, c2)), round_to<T>(__fmul_rn(x1, s2))));
  }
}

template <class T>
void launch(const QkNormRopeArgs& a, std::int64_t rows, cudaStream_t s) {
  const auto blocks = static_cast<unsigned>((rows + kRowsPerBlock - 1) / kRowsPerBlock);
  const cudaError_t status = cuda_core::launch_pdl(qk_norm_rope_kernel<T>, dim3(blocks), dim3(kThreads), 0, s, a);
  if (status != cudaSuccess) {
    (void)cudaGetLastError();
    throw Error(std::string("qk_norm_rope: launch: ") + cudaGetErrorString(status));
  }
}

}  // namespace

void launch_qk_norm_rope(const QkNormRopeArgs& a, DType dtype, void* stream) {
  require(a.batch >= 0 && a.seq >= 0, "qk_norm_rope: batch and seq must be >= 0");
  require(a.hq >= 1 && a.hk >= 1, "qk_norm_rope: q and k need at least one head each");
  require(a.d >= 2 && a.d % 2 == 0, "qk_norm_rope: head_dim must be even and >= 2, got " + std::to_string(a.d));
  require((a.q_weight == nullptr) == (a.k_weight == nullptr), "qk_norm_rope: give both norm weights or neither");
  require(a.eps >= 0.0f, "qk_norm_rope: eps must be >= 0");
  const bool cached = a.k_cache != nullptr;
  require(cached == (a.v_cache != nullptr) && cached == (a.cache_pos != nullptr) && cached == (a.v != nullptr),
          "qk_norm_rope: a cache write needs v, k_cache, v_cache and cache_pos together");
  require(!cached || a.cache_len >= 1, "qk_norm_rope: cache_len must be >= 1");
  const std::int64_t rows = a.batch * a.seq * (a.hq + a.hk * (cached ? 2 : 1));
  if (rows == 0) return;  // empty input: its pointers may be null
  require(rows / kRowsPerBlock < (std::int64_t(1) << 31), "qk_norm_rope: too many rows for one launch");
  require(a.q && a.k && a.q_out && (cached || a.k_out) && a.cos && a.sin, "qk_norm_rope: null pointer");
  const auto s = static_cast<cudaStream_t>(stream);
  switch (dtype) {
    case DType::F32: launch<float>(a, rows, s); break;
    case DType::F16: launch<__half>(a, rows, s); break;
    case DType::BF16: launch<__nv_bfloat16>(a, rows, s); break;
    default: throw InvalidType("qk_norm_rope: dtype must be F32, F16 or BF16");
  }
}

}  // namespace reset_native::ops_cuda
