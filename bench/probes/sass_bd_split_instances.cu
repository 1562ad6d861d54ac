// Static-analysis probe: the block-diagonal GEMV's split K instances at M = 1 (gemv_bd_split.cuh), the default cb
// form and the lean forms, for ptxas -v (registers, spills) and bench/probes/sass_step_count.py.
#include "nvfp4/gemv_bd_kernel.cuh"

namespace reset_native::nvfp4_cuda::detail {
constexpr int kCbSplit = kSmallCompact | kSmallBatchX | kSmallSplit;
template __global__ void gemv_bd_kernel<kBF16, false, 1, true, 2, false, kProNone, false, kCbSplit>(
    const GemvParams, const __grid_constant__ RingMaps);
template __global__ void gemv_bd_kernel<kBF16, false, 1, true, 2, false, kProNone, false, kCbSplit | kSmallLean>(
    const GemvParams, const __grid_constant__ RingMaps);
template __global__ void gemv_bd_kernel<kBF16, false, 1, true, 2, false, kProNone, false,
                                        kCbSplit | kSmallLean | kSmallDepth5>(const GemvParams,
                                                                              const __grid_constant__ RingMaps);
}  // namespace reset_native::nvfp4_cuda::detail
