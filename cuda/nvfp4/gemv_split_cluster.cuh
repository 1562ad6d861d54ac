// The W4A4 split-K kernel in thread-block clusters (session 21 helper w4a4splitcl42; the default from
// kSplitClusterMinTokens tokens since helper w4a4splitdef43). The split kernel in the W4A4 split rule's form plus
// kForm16Cluster, kForm16ClusterAmax and kForm16ClusterCompact (gemv_kernel.cuh, gemv_w4a4_cluster.cuh): the C CTAs
// of a cluster work on the same K slice (split_cluster_slice), so each quantizes 1/C of the slice's staged x and
// copies the others' shares as E2M1 codes from their shared memory (stage_cluster's compact form), and each reads 1/C
// of x for the dynamic activation amax (cluster_amax) instead of all of it. Every (slice, walker) pair computes the
// same row tiles from the same staged x in the same order as the plain split kernel: the same partial sums, the same
// bits. Cost model and measurements: NOTES-w4a4splitcl42.md (that branch), bench/RESULTS.md.
#pragma once
#include "nvfp4/gemv_launch.cuh"

namespace reset_native::nvfp4_cuda::detail {

// RESET_NATIVE_GEMV_W4A4_SPLIT_CLUSTER (read at every W4A4 split-K call): unset or empty = 0, the rule (below,
// applied in gemv_split.cuh launch_split_cluster); "2" .. "8" = clusters of that many CTAs at every M; anything else
// ("1") = 1: no clusters (the plain split kernel).
inline int w4a4_split_cluster_override() {
  const char* v = std::getenv("RESET_NATIVE_GEMV_W4A4_SPLIT_CLUSTER");
  if (v == nullptr || v[0] == '\0') return 0;
  if (v[0] < '2' || v[0] > '8' || v[1] != '\0') return 1;
  return v[0] - '0';
}

// The default (H200, bench/RESULTS.md "Session 21, call 7", W4A4 dynamic scale, us, plain split / C = 2 / C = 4):
// M = 4 no cluster won more than 0.2 us (8B down 18.0 / 17.8 / 17.9), so clusters from 8 tokens. C = 4 won on 8B down
// (M = 8 23.0 / 20.0 / 20.0, M = 16 31.4 / 28.2 / 26.1) and 32B o (M = 8 20.4 / 18.7 / 17.9, M = 16 29.6 / 24.7 /
// 24.0), C = 2 on 32B down (M = 8 39.7 / 38.8 / 41.0, M = 16 52.2 / 49.5 / 55.4; static scale M = 16 46.5 / 43.4 /
// 49.0: not the amax). 32B down has 13 slices (20 walkers of 16 row tiles each), the others 6 and 4 (44 / 64 walkers,
// 5 .. 6 tiles); its C = 4 at M = 16 also reads the amax through the pre-kernel (65 CTAs x 800 KiB of x = 50.8 MiB,
// past kSplitInlineAmaxWideBytes). So C = 4 where the call has at most kSplitClusterWideMaxSlices slices and the
// in-kernel amax at C = 4 stays within that limit (checked with a static scale as well: the same geometry), else
// C = 2. Which of the two is the cause on 32B down is not measured; 14B down (9 slices) is not measured either.
constexpr int kSplitClusterMinTokens = 8;
constexpr int kSplitClusterWideMaxSlices = 8;
constexpr int kSplitClusterWide = 4;
constexpr int kSplitClusterNarrow = 2;

// The FORM of the clustered split kernel of an instance (NT token columns, x dtype XDT).
template <int XDT, int NT>
constexpr int split_cluster_form() {
  return form16_rule<XDT, true, NT, true, true, 2, false, true, 1>() | kForm16Cluster | kForm16ClusterAmax |
         kForm16ClusterCompact;
}

// Walkers (CTAs) per K slice for `clusters` co-resident clusters of `cluster` CTAs and ksplit slices: whole clusters,
// the resident ones shared evenly by the slices (at least one per slice: more wait for a second wave), and no more
// than one row tile per walker needs, rounded up to a whole cluster (a CTA without a tile still quantizes its share
// and waits for its peers).
inline int split_cluster_walkers(int clusters, int cluster, int ksplit, int ntiles) {
  const int resident = clusters / ksplit > 0 ? clusters / ksplit : 1;
  const int needed = (ntiles + cluster - 1) / cluster;
  return (resident < needed ? resident : needed) * cluster;
}

}  // namespace reset_native::nvfp4_cuda::detail
