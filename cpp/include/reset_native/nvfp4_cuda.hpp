// NVFP4 CUDA kernels (Hopper, sm_90): quantize / dequantize / small-M GEMV on raw device pointers.
// Usable without Python or torch: every launcher enqueues on `stream` (a cudaStream_t passed as void*;
// nullptr = the legacy default stream), never synchronizes, never allocates, and throws
// reset_native::InvalidArgument on bad sizes or reset_native::Error when a launch fails.
// Semantics: ../../../shared/docs/SPEC-nvfp4.md (format, quantizer) and docs/nvfp4_cuda.md (kernels).
// Only present in builds with RESET_NATIVE_WITH_CUDA=1.
#pragma once
#include <cstdint>
#include <string>

namespace reset_native::nvfp4_cuda {

// Element types of dense inputs/outputs.
enum class DType : int { F32 = 0, F16 = 1, BF16 = 2 };

// Activation handling of the GEMV: A16 multiplies x as given (fp32 accumulation); NVFP4 first quantizes each
// row of x to NVFP4 (per-16 E4M3 block scales, one activation global scale) inside the GEMV launch (W4A4).
enum class Activation : int { A16 = 0, NVFP4 = 1 };

// amax_out[0] <- max |x| over `count` elements, as a float (the bits of a non-negative float compare like
// unsigned ints, so the kernel combines blocks with atomicMax). *amax_out must be 0 before the launch.
// When first_nonfinite != nullptr (initialised to UINT64_MAX), it receives the smallest flat index of a NaN/Inf.
void launch_amax(const void* x, DType dtype, std::int64_t count, float* amax_out,
                 unsigned long long* first_nonfinite, void* stream);

// SPEC section 2 quantizer of w [n, k] (k % 16 == 0) with a given decode global scale (> 0, finite):
// packed [n, k/2] uint8 (element 2i in the low nibble), block_scales [n, k/16] E4M3 bytes.
// Bit-identical to the CPU reference: true IEEE division, round-to-nearest-even everywhere.
void launch_quantize(const void* w, DType dtype, std::int64_t n, std::int64_t k, float global_scale,
                     std::uint8_t* packed, std::uint8_t* block_scales, void* stream);

// out [n, k] = e2m1(code) * e4m3(scale) * global_scale (the first product is exact, one fp32 rounding),
// then rounded to out_dtype.
void launch_dequantize(const std::uint8_t* packed, const std::uint8_t* block_scales, float global_scale,
                       std::int64_t n, std::int64_t k, void* out, DType out_dtype, void* stream);

// out [n, k] (out_dtype F16 or BF16) = the values x [n, k] takes under launch_quantize with global_scale, *without*
// the global scale: e2m1(code) * e4m3(scale), exact in 16 bits. A NaN / Inf in x becomes NaN in out (no check, no
// error). The prefill W4A4 GEMM's activation operand (quantize + dequantize(gs = 1) in one launch).
void launch_quantize_values(const void* x, DType dtype, std::int64_t n, std::int64_t k, float global_scale, void* out,
                            DType out_dtype, void* stream);

// Decoder ops computed inside the GEMV (one kernel less per use; see GemvArgs): while it stages x (prologue),
// or on its results (epilogue).
enum class Prologue : int { None = 0, RmsNorm = 1 };
enum class Epilogue : int { None = 0, SiluMul = 1 };

struct GemvArgs {
  const std::uint8_t* packed = nullptr;        // [n, k/2]
  const std::uint8_t* block_scales = nullptr;  // [n, k/16]
  float global_scale = 1.0f;                   // weight decode multiplier
  std::int64_t n = 0, k = 0;                   // k % 16 == 0
  const void* x = nullptr;                     // [m, k], dtype x_dtype
  DType x_dtype = DType::BF16;                 // also the output and bias dtype
  std::int64_t m = 0;                          // 1..16 tokens
  Activation activation = Activation::A16;
  // NVFP4 activations: the global scale is act_global_scale when act_amax_workspace == nullptr, else it is
  // computed on the device as amax(|x|)/2688 into the 4-byte workspace (which the launcher clears itself).
  float act_global_scale = 1.0f;
  float* act_amax_workspace = nullptr;
  const void* bias = nullptr;  // optional [n]
  // optional [m, n] contiguous, x_dtype: added to the fp32 result before the one rounding to the output (a
  // decoder's residual connection fused into the projection that feeds it)
  const void* residual = nullptr;
  void* out = nullptr;         // [m, n]
  // Optional fused prologue (16-bit x, A16, m <= 2). RmsNorm: x is the un-normalised [m, k] input of an RMSNorm
  // with weight prologue_weight [k] (x_dtype) and epsilon prologue_eps; the result is bit-identical to running the
  // rms_norm op first (same operations, roundings and summation order).
  Prologue prologue = Prologue::None;
  const void* prologue_weight = nullptr;
  float prologue_eps = 0.0f;
  // Optional fused epilogue (16-bit x, A16, m <= 2, n % 32 == 0, no residual). SiluMul: the rows are a fused
  // [gate (n/2) | up (n/2)] projection and out is [m, n/2] = silu(gate) * up, bit-identical to the plain GEMV
  // followed by the silu_mul op (gate and up rounded to x_dtype first, then that op's two roundings).
  Epilogue epilogue = Epilogue::None;
  // Optional device scratch for split K (m tokens x long K, see gemv_workspace_bytes): with at least that many
  // bytes here (4-byte aligned, not shared with a concurrent call) the GEMV may split K across CTA groups and add
  // the fp32 partial sums in a fixed order; without, it runs unsplit (same results within fp32 rounding, slower).
  void* split_workspace = nullptr;
  std::int64_t split_workspace_bytes = 0;
  // When set and the call would split K with more split_workspace_bytes than given, launch_gemv launches nothing
  // and returns the bytes it wants, so that a caller can size the workspace from the launch itself (one planning
  // pass per call) instead of asking gemv_workspace_bytes first. Unset: such a call runs unsplit.
  bool defer_short_workspace = false;
};

// Bytes of split_workspace that launch_gemv would use for these arguments on the current device; 0 when the call
// does not split (always for m <= 2 when x fits the block-diagonal kernel, and with fused prologue/epilogue).
std::int64_t gemv_workspace_bytes(const GemvArgs& a);

// Whether launch_gemv would stream these arguments' weights through the TMA weight ring (the same results as the
// register-pipelined loads, bit for bit): by default block-diagonal A16 calls (m <= 2) on layers with many row
// tiles per SM; RESET_NATIVE_GEMV_RING=1 / =0 force it wherever it applies / never. With a prologue or epilogue:
// whether the fused kernel would (same rule; false where gemv_fusion_supported is). Queries the device; no launch.
bool gemv_uses_weight_ring(const GemvArgs& a);

// y = x @ dequantize(w).T (+ bias) (+ residual), fp32 accumulation, output in x_dtype. One launch (two small extra
// nodes, a 4-byte memset and an amax kernel, when W4A4 computes its activation scale on the device). Returns the
// split-K workspace bytes the call wants (gemv_workspace_bytes; 0 with a fused prologue / epilogue): when that is
// more than args.split_workspace_bytes and args.defer_short_workspace is set, nothing was launched.
std::int64_t launch_gemv(const GemvArgs& args, void* stream);

// Whether launch_gemv has a kernel for args' prologue / epilogue (true without either): 16-bit x, A16,
// 1 <= m <= 2, k % 1024 == 0, 16-byte aligned x / packed / block scales / prologue weight, x fitting shared memory
// twice per SM; SiluMul also n % 32 == 0 and no residual. Callers without it run the rms_norm / silu_mul op and a
// plain GEMV. Queries the current device; no launch.
bool gemv_fusion_supported(const GemvArgs& args);

// Largest m the GEMV accepts.
constexpr std::int64_t kGemvMaxTokens = 16;

// The medium-M GEMM (cuda/nvfp4/gemm_mid_kernel.cuh): y [m, n] = global_scale * (x @ W_local^T) + bias, W4A16 with
// float16 / bfloat16 x, output and bias in x's dtype, fp32 accumulation, one rounding. Every weight byte is read once
// per 64 tokens (the GEMV reads it once per 16). For 17..a few hundred tokens (batched decode, short prompts).
struct GemmMidArgs {
  const std::uint8_t* packed = nullptr;        // [n, k/2], 16-byte aligned
  const std::uint8_t* block_scales = nullptr;  // [n, k/16], 8-byte aligned
  float global_scale = 1.0f;
  std::int64_t n = 0, k = 0;                   // k % 128 == 0
  const void* x = nullptr;                     // [m, k] contiguous, 16-byte aligned
  DType x_dtype = DType::BF16;                 // F16 or BF16
  std::int64_t m = 0;                          // 1..kGemmMidMaxTokens
  const void* bias = nullptr;                  // optional [n]
  void* out = nullptr;                         // [m, n]
  // x permuted for the warp-specialised kernels and the fp32 partial sums of a K split (gemm_mid_workspace_bytes;
  // 16-byte aligned, not shared with a concurrent call)
  void* workspace = nullptr;
  std::int64_t workspace_bytes = 0;
};
constexpr std::int64_t kGemmMidMaxTokens = 1024;
constexpr std::int64_t kGemmMidMaxRows = 65535 * 256;  // row blocks of 256 on the grid's y dimension
constexpr std::int64_t kGemmMidMaxOutputs = std::int64_t(1) << 31;  // m * n

// Whether this build has the medium-M GEMM's wgmma kernels (sm_90a; RESET_NATIVE_GEMM_MID=wg32 | wg64 | wg128 |
// wg64g4 | wg128g4 | wg128g4s and the warp-specialised ws<tokens>c<warpgroups>[m2]).
bool gemm_mid_wgmma_built();
// The kernel shape launch_gemm_mid takes for m tokens and n rows ("n4m2", "wg64g4", "wg128g4s", ...): hopper = the GPU
// is compute capability 9.0, request = RESET_NATIVE_GEMM_MID's value ("" = unset). Host only, no device needed.
// sms = the GPU's SM count (the rule fits grids to waves).
std::string gemm_mid_shape_name(std::int64_t m, std::int64_t n, bool hopper, const std::string& request, int sms);
// The whole plan of launch_gemm_mid for m tokens, n rows and k on such a GPU, under this process's environment
// (RESET_NATIVE_GEMM_MID, _SPLITS, _SK): shape, K splits, stream-K CTAs (0: a grid). Host only, no device needed.
struct GemmMidPlanRule {
  std::string shape;
  int splits, stream_k_ctas;
};
GemmMidPlanRule gemm_mid_plan_rule(std::int64_t m, std::int64_t n, std::int64_t k, bool hopper, int sms);
// Whether launch_gemm_mid takes these arguments (dtype, k % 128, m and n ranges, m * n, alignment); host only.
bool gemm_mid_supported(const GemmMidArgs& args);
// Workspace bytes launch_gemm_mid needs for this shape on the current device (0: none needed, or not supported).
std::int64_t gemm_mid_workspace_bytes(const GemmMidArgs& args);
// The plan launch_gemm_mid takes for this shape on the current device: shape, K splits (1: none) and stream-K CTAs of
// the warp-specialised kernel (0: a grid of blocks); {"", 0, 0} where gemm_mid_supported is false.
GemmMidPlanRule gemm_mid_launch_plan(const GemmMidArgs& args);
// One launch (two with a K split: the partial sums are added in a fixed order). Throws InvalidArgument when
// gemm_mid_supported is false or the workspace is short.
void launch_gemm_mid(const GemmMidArgs& args, void* stream);

}  // namespace reset_native::nvfp4_cuda
