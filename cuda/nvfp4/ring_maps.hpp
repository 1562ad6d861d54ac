// Host side of the weight ring's TMA descriptors (gemv_ring.cuh): the driver's encoder, looked up through the
// runtime, and the 2-D row-box descriptor both ring maps use. Shared by the launcher (gemv.cu) and
// bench/probes/ring_race_probe.cu, which launches the ring kernel directly.
#pragma once
#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "nvfp4/launch_check.hpp"
#include "reset_native/error.hpp"

namespace reset_native::nvfp4_cuda::detail {

// The driver's tensor-map encoder, looked up once through the runtime (no link against libcuda).
inline PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
  static const PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult status{};
    check_cuda(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &status),
               "nvfp4 gemv: cuTensorMapEncodeTiled lookup");
    require(f != nullptr && status == cudaDriverEntryPointSuccess, "nvfp4 gemv: driver has no cuTensorMapEncodeTiled");
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(f);
  }();
  return fn;
}

// 2-D descriptor of a row-major [rows, row_bytes] byte matrix read in boxes of 16 rows x box_bytes.
inline void encode_rows(CUtensorMap* map, const void* base, int64_t rows, int64_t row_bytes, int box_bytes, bool words) {
  const int elem = words ? 4 : 1;
  const cuuint64_t dims[2] = {cuuint64_t(row_bytes / elem), cuuint64_t(rows)};
  const cuuint64_t strides[1] = {cuuint64_t(row_bytes)};
  const cuuint32_t box[2] = {cuuint32_t(box_bytes / elem), 16};
  const cuuint32_t estrides[2] = {1, 1};
  const CUresult r = tensor_map_encoder()(map, words ? CU_TENSOR_MAP_DATA_TYPE_UINT32 : CU_TENSOR_MAP_DATA_TYPE_UINT8, 2,
                                          const_cast<void*>(base), dims, strides, box, estrides,
                                          CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_NONE,
                                          CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  require(r == CUDA_SUCCESS, "nvfp4 gemv: cuTensorMapEncodeTiled failed (" + std::to_string(int(r)) + ")");
}

}  // namespace reset_native::nvfp4_cuda::detail
