// Launch parameters and tile constants shared by the NVFP4 GEMV kernels (gemv_kernel.cuh,
// gemv_bd_kernel.cuh) and their weight ring (gemv_ring.cuh).
#pragma once
#include <cuda.h>

#include <cstdint>

namespace reset_native::nvfp4_cuda {
namespace detail {

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kKStep = 128;                 // K per warp per chunk (4 threads x 32 elements per row)
constexpr int kChunk = kWarps * kKStep;     // K staged per iteration
constexpr int kTokStride = kChunk + 32;     // u16 per staged token row; +64 B keeps LDS.128 conflict-free
constexpr int kPlane = kChunk / 4;          // u16 per "word plane" of a token row
constexpr int kUnitsPerToken = kChunk / 16; // staging unit = one 16-element block of one token
constexpr float kDecodeBias = 128.0f;       // A operand holds e2m1 * e4m3 * 2^-7; the epilogue multiplies 2^7

struct GemvParams {  // 112 bytes (static_assert below)
  const uint8_t* packed;
  const uint8_t* scales;
  const void* x;
  const void* bias;
  const void* residual;   // optional [m, n], added in the epilogue
  void* out;
  const float* act_amax;  // W4A4 with a device-computed activation scale, else nullptr
  float act_gs;           // W4A4 static activation scale
  float w_gs;             // weight global scale
  int n, k, m;
  int x_aligned;          // x is 16-byte aligned (k % 16 == 0 keeps every block aligned then)
  // Fused prologue (gemv_prologue.cuh), read only by the kernels instantiated with one: the RMSNorm weight [k]
  // and epsilon; for SiLU * up, x is [m, 2k] (gate columns, then up columns).
  const void* pro_w;
  float pro_eps;
  // The 16-bit two-team kernel. Bit 0, without split K: 1 = tile walkers numbered team-major (walker = team * CTAs +
  // CTA, so a last, partial round of row tiles runs on one team of more SMs), 0 = CTA-major (CTA * 2 + team). Bit 1
  // (kRedOneBit, gemv_launch.cuh red_one_launch): the launch gave each team one reduction buffer, not two. In the 4
  // bytes of padding after pro_eps: this struct's size and its other fields' offsets steer ptxas (the union below).
  int team_major;
  // Split K (gemv_split.cuh, gemv_bd_split.cuh): ksplit > 1 CTA groups each take 1/ksplit of the K chunks and
  // write fp32 partial sums to split_ws [ksplit][m][n], added in slice order by a second kernel or, with
  // split_nonce, by the split kernel's last CTA per walker group. ksplit = 1: off.
  float* split_ws;
  int ksplit;
  // The two share their bytes: the size of this struct steers ptxas (one more field, 112 -> 128 bytes, moved the
  // registers of most GEMV instances by up to 43 and cut their code by 40%, session 35), and no kernel reads both.
  union {
    // W4A4 with a device-computed activation scale (act_amax != nullptr): 1 = the kernel reduces amax(|x|) over all
    // of x itself (kernels that stage all of x, and split K, whose CTA 0 also stores it to *act_amax for
    // gemv_split_reduce); 0 = the amax pre-kernel wrote it to *act_amax.
    int amax_inline;
    // A16 split K: 0 = gemv_split_reduce adds the slices; else the call's nonce for the split kernel's in-kernel
    // fixup (gemv_split_fixup.cuh), whose tags follow the partial sums in split_ws.
    unsigned split_nonce;
  };
};

static_assert(sizeof(GemvParams) == 112, "GemvParams' size steers ptxas' code for every GEMV kernel (see the union)");

// Weight ring only (gemv_ring.cuh): 2-D TMA descriptors of the packed weights (n rows of k/8 32-bit words)
// and of the block scales (n rows of k/16 bytes), encoded by the host for this call. A separate
// __grid_constant__ kernel parameter (TMA reads it in place), so GemvParams' code generation is unchanged.
struct RingMaps {
  CUtensorMap w;
  CUtensorMap s;
};

}  // namespace detail
}  // namespace reset_native::nvfp4_cuda
