// The W4A4 split-K kernel in thread-block clusters (session 21 helper w4a4splitcl42; opt-in:
// RESET_NATIVE_GEMV_W4A4_SPLIT_CLUSTER=C). The split kernel in the W4A4 split rule's form plus kForm16Cluster,
// kForm16ClusterAmax and kForm16ClusterCompact (gemv_kernel.cuh, gemv_w4a4_cluster.cuh): the C CTAs of a cluster
// work on the same K slice (split_cluster_slice), so each quantizes 1/C of the slice's staged x and copies the
// others' shares as E2M1 codes from their shared memory (stage_cluster's compact form), and each reads 1/C of x for
// the dynamic activation amax (cluster_amax) instead of all of it. Every (slice, walker) pair computes the same row
// tiles from the same staged x in the same order as the plain split kernel: the same partial sums, the same bits.
// Cost model and measurements: NOTES-w4a4splitcl42.md (the branch), bench/RESULTS.md.
#pragma once
#include "nvfp4/gemv_kernel.cuh"

namespace reset_native::nvfp4_cuda::detail {

// RESET_NATIVE_GEMV_W4A4_SPLIT_CLUSTER (read at every W4A4 split-K call): "2" .. "8" = clusters of that many CTAs;
// unset or anything else = 1: no clusters (the plain split kernel).
inline int w4a4_split_cluster_override() {
  const char* v = std::getenv("RESET_NATIVE_GEMV_W4A4_SPLIT_CLUSTER");
  if (v == nullptr || v[0] < '2' || v[0] > '8' || v[1] != '\0') return 1;
  return v[0] - '0';
}

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
