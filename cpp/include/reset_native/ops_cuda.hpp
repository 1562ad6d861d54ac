// CUDA kernels for the model ops that the integrations fuse around reset_native's engines: RMSNorm.
// Host launchers on raw device pointers; everything runs on the given stream, asynchronously.
#pragma once
#include <cstdint>

namespace reset_native::ops_cuda {

enum class DType : int { F32 = 0, F16 = 1, BF16 = 2 };

// y[r, :] = w * to_dtype(x[r, :] * rsqrt(mean(x[r, :]^2) + eps)) with fp32 statistics and the product
// rounded to the dtype before the weight multiply: the RMSNorm of Llama/Qwen models in transformers, as one
// kernel instead of seven. x, y: [rows, h] contiguous, w: [h], all of one dtype. rows == 0 is a no-op.
void launch_rms_norm(const void* x, const void* w, void* y, std::int64_t rows, std::int64_t h, float eps,
                     DType dtype, void* stream);

}  // namespace reset_native::ops_cuda
