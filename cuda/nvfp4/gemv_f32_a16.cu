// Instantiates the NVFP4 GEMV kernels for f32 x, a16 (one file per variant: parallel builds).
#include "nvfp4/gemv_dispatch.cuh"

namespace reset_native::nvfp4_cuda::detail {
template void dispatch_mode<kF32, false>(const GemvParams&, const LaunchPlan&, cudaStream_t);
}  // namespace reset_native::nvfp4_cuda::detail
