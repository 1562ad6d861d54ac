// Static-analysis probe: the W4A4 (bf16 x) instances of the 16-bit GEMV kernel (gemv_kernel.cuh) that the Qwen3 layers
// run at M = 2..16 (two CTAs per SM, one CTA, two teams, split K; NT = 1 and 2), in one form: -DGEMV16_FORM=2048
// (kForm16RedPad: session 19's rule, RESET_NATIVE_GEMV_16_FORM=w4a4old), 6144 (+ kForm16QuantFast), 14336
// (+ kForm16AmaxWide: the W4A4 rule since session 20).
// bench/probes/sass_w4a4_count.sh compiles it for each form and counts the x-staging loop and the main loop.
// Template order: XDT, W4A4, NT, FAST, WHOLE, MINB, RING, SPLIT, TEAMS, FORM.
#include "nvfp4/gemv_launch.cuh"

namespace reset_native::nvfp4_cuda::detail {
#ifndef GEMV16_FORM
#define GEMV16_FORM 2048
#endif
#define GEMV16_W4A4_INSTANCE(NT, MINB, SPLIT, TEAMS)                                                           \
  template __global__ void gemv_kernel<kBF16, true, NT, true, true, MINB, false, SPLIT, TEAMS, GEMV16_FORM>( \
      const GemvParams, const __grid_constant__ RingMaps);
GEMV16_W4A4_INSTANCE(1, 2, false, 1)  // two CTAs per SM
GEMV16_W4A4_INSTANCE(2, 2, false, 1)
GEMV16_W4A4_INSTANCE(1, 1, false, 1)  // one CTA per SM (RESET_NATIVE_GEMV_TEAMS=1)
GEMV16_W4A4_INSTANCE(2, 1, false, 1)
GEMV16_W4A4_INSTANCE(1, 1, false, 2)  // two teams (the default at 2..16 tokens where x fits whole)
GEMV16_W4A4_INSTANCE(2, 1, false, 2)
GEMV16_W4A4_INSTANCE(1, 2, true, 1)  // split K (8B q/k/v, o at M >= 4; down; 32B o, down)
GEMV16_W4A4_INSTANCE(2, 2, true, 1)
#undef GEMV16_W4A4_INSTANCE
}  // namespace reset_native::nvfp4_cuda::detail
