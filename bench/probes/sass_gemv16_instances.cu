// Static-analysis probe: instantiates only the 16-bit GEMV kernels (gemv_kernel.cuh) that bf16 x at A16 runs on the
// Qwen3 benchmark layers at M = 3..16 (bench/probes/sass_sb_waits.sh lists where each waits for its weight loads).
// Template order: XDT, W4A4, NT, FAST, WHOLE, MINB, RING, SPLIT, TEAMS, FORM (-DGEMV16_FORM=kForm16* bits, default 0).
#include "nvfp4/gemv_launch.cuh"

namespace reset_native::nvfp4_cuda::detail {
#ifndef GEMV16_FORM
#define GEMV16_FORM 0
#endif
#define GEMV16_INSTANCE(NT, MINB, SPLIT, TEAMS)                                                   \
  template __global__ void gemv_kernel<kBF16, false, NT, true, true, MINB, false, SPLIT, TEAMS, GEMV16_FORM>( \
      const GemvParams, const __grid_constant__ RingMaps);
GEMV16_INSTANCE(1, 3, false, 1)  // three CTAs per SM (8B q/k/v, 32B o at M = 3)
GEMV16_INSTANCE(1, 2, false, 1)  // two CTAs per SM
GEMV16_INSTANCE(2, 2, false, 1)
GEMV16_INSTANCE(1, 1, false, 2)  // two teams
GEMV16_INSTANCE(2, 1, false, 2)
GEMV16_INSTANCE(1, 2, true, 1)  // split K (form16_rule, session 16: 174 for NT = 1, 442 for NT = 2; two teams 42 / 298)
GEMV16_INSTANCE(2, 2, true, 1)
#undef GEMV16_INSTANCE
}  // namespace reset_native::nvfp4_cuda::detail
