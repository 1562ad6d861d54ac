// Instantiates the fused NVFP4 GEMV kernels (RMSNorm prologue, SiLU * up epilogue, both) for bf16 x, A16.
#include "nvfp4/gemv_dispatch.cuh"

namespace reset_native::nvfp4_cuda::detail {
template void dispatch_fused<kBF16, kProRmsNorm, false>(const GemvParams&, const LaunchPlan&, cudaStream_t);
template void dispatch_fused<kBF16, kProNone, true>(const GemvParams&, const LaunchPlan&, cudaStream_t);
template void dispatch_fused<kBF16, kProRmsNorm, true>(const GemvParams&, const LaunchPlan&, cudaStream_t);
}  // namespace reset_native::nvfp4_cuda::detail
