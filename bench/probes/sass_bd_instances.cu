// Static-analysis probe: instantiates only the block-diagonal GEMV kernels whose SASS
// bench/probes/sass_count.sh counts (compiling this is ~4x faster than a whole gemv_<dtype>_<act>.cu).
#include "nvfp4/gemv_bd_kernel.cuh"

namespace reset_native::nvfp4_cuda::detail {
template __global__ void gemv_bd_kernel<kBF16, false, 1, true, 2, false>(const GemvParams, const __grid_constant__ RingMaps);
template __global__ void gemv_bd_kernel<kBF16, false, 2, true, 2, false>(const GemvParams, const __grid_constant__ RingMaps);
template __global__ void gemv_bd_kernel<kF16, false, 1, true, 2, false>(const GemvParams, const __grid_constant__ RingMaps);
template __global__ void gemv_bd_kernel<kBF16, true, 1, true, 2, false>(const GemvParams, const __grid_constant__ RingMaps);
template __global__ void gemv_bd_kernel<kBF16, false, 1, true, 2, false, kProRmsNorm>(const GemvParams,
                                                                                      const __grid_constant__ RingMaps);
// the default forms since session 11 (SMALL = kSmallCompact | kSmallBatchX) of the W4A4 and fused kernels above
template __global__ void gemv_bd_kernel<kBF16, true, 1, true, 2, false, kProNone, false, 3>(const GemvParams,
                                                                                          const __grid_constant__ RingMaps);
template __global__ void gemv_bd_kernel<kBF16, false, 1, true, 2, false, kProRmsNorm, false, 3>(
    const GemvParams, const __grid_constant__ RingMaps);
template __global__ void gemv_bd_kernel<kBF16, false, 1, true, 2, false, kProRmsNorm, true, 3>(
    const GemvParams, const __grid_constant__ RingMaps);
// session 12: the fused kernels with kSmallHeadWait (their form since), and the plain and SiLU-only cb ones
template __global__ void gemv_bd_kernel<kBF16, false, 1, true, 2, false, kProRmsNorm, false, 7>(
    const GemvParams, const __grid_constant__ RingMaps);
template __global__ void gemv_bd_kernel<kBF16, false, 1, true, 2, false, kProRmsNorm, true, 7>(
    const GemvParams, const __grid_constant__ RingMaps);
template __global__ void gemv_bd_kernel<kBF16, false, 1, true, 2, false, kProNone, true, 3>(
    const GemvParams, const __grid_constant__ RingMaps);
template __global__ void gemv_bd_kernel<kBF16, false, 1, true, 2, false, kProNone, false, 3>(
    const GemvParams, const __grid_constant__ RingMaps);
// session 17: the lean form (plain A16 at M = 1 by default where it fits), kDepth 4 and kSmallDepth5
template __global__ void gemv_bd_kernel<kBF16, false, 1, true, 2, false, kProNone, false, 3 | kSmallLean>(
    const GemvParams, const __grid_constant__ RingMaps);
template __global__ void gemv_bd_kernel<kBF16, false, 1, true, 2, false, kProNone, false,
                                        3 | kSmallLean | kSmallDepth5>(const GemvParams,
                                                                       const __grid_constant__ RingMaps);
}  // namespace reset_native::nvfp4_cuda::detail
