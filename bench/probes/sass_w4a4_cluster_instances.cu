// Static-analysis probe: the W4A4 two-team instances of the 16-bit GEMV kernel (gemv_kernel.cuh) with kForm16Cluster
// (RESET_NATIVE_GEMV_W4A4_CLUSTER, NOTES-w4a4cluster35.md) and without (the rule's form, FORM 14336), bf16 x, NT = 1
// and 2, and with the cluster forms of RESET_NATIVE_GEMV_W4A4_CLUSTER_FORM (kForm16ClusterAmax, kForm16ClusterCompact,
// NOTES-w4a4cluster39.md): registers, spills, and the SASS of stage_cluster (compile with -cubin -Xptxas -v, read
// with cuobjdump -sass). Template order: XDT, W4A4, NT, FAST, WHOLE, MINB, RING, SPLIT, TEAMS, FORM.
#include "nvfp4/gemv_launch.cuh"

namespace reset_native::nvfp4_cuda::detail {
#define GEMV16_W4A4_TEAMS(NT, FORM)                                                          \
  template __global__ void gemv_kernel<kBF16, true, NT, true, true, 1, false, false, 2, FORM>( \
      const GemvParams, const __grid_constant__ RingMaps);
#define GEMV16_W4A4_CLUSTER_FORMS(NT)                                                  \
  GEMV16_W4A4_TEAMS(NT, 14336)  /* the rule: kForm16RedPad | kForm16QuantFast | kForm16AmaxWide */ \
  GEMV16_W4A4_TEAMS(NT, 14336 | kForm16Cluster)                                       \
  GEMV16_W4A4_TEAMS(NT, 14336 | kForm16Cluster | kForm16ClusterAmax)                  \
  GEMV16_W4A4_TEAMS(NT, 14336 | kForm16Cluster | kForm16ClusterCompact)               \
  GEMV16_W4A4_TEAMS(NT, 14336 | kForm16Cluster | kForm16ClusterAmax | kForm16ClusterCompact)
GEMV16_W4A4_CLUSTER_FORMS(1)
GEMV16_W4A4_CLUSTER_FORMS(2)
#undef GEMV16_W4A4_CLUSTER_FORMS
#undef GEMV16_W4A4_TEAMS
}  // namespace reset_native::nvfp4_cuda::detail
