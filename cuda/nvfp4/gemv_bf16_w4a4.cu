// Instantiates the NVFP4 GEMV kernels for bf16 x, w4a4 (one file per variant: parallel builds).
#include "nvfp4/gemv_dispatch.cuh"

namespace reset_native::nvfp4_cuda::detail {
template void dispatch_mode<kBF16, true>(const GemvParams&, const LaunchPlan&, cudaStream_t);
}  // namespace reset_native::nvfp4_cuda::detail
