// Instantiates the NVFP4 GEMV kernels with the fused RMSNorm prologue for f16 x, A16.
#include "nvfp4/gemv_dispatch.cuh"

namespace reset_native::nvfp4_cuda::detail {
template void dispatch_prologue<kF16, kProRmsNorm>(const GemvParams&, const LaunchPlan&, cudaStream_t);
}  // namespace reset_native::nvfp4_cuda::detail
