// NVFP4 on the CPU: exact quantization / dequantization and a GEMV that reads the packed weights
// directly (never materializing the dequantized matrix). Semantics: shared/docs/SPEC-nvfp4.md.
//
// Layout of a quantized matrix W [rows, cols] (cols % 16 == 0):
//   packed        uint8 [rows, cols/2]   element 2i in bits 3:0, element 2i+1 in bits 7:4 (E2M1 codes)
//   block_scales  uint8 [rows, cols/16]  FP8 E4M3 bit patterns, linear row-major layout
//   global_scale  float                  decode multiplier: W ~= e2m1 * e4m3 * global_scale
//
// Every function validates its arguments and throws reset_native::InvalidArgument (bad value or shape),
// reset_native::Unsupported (a kernel this CPU cannot run); nothing aborts.
// fp16 / bf16 data is passed as its raw uint16 bit patterns.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>

#include "reset_native/error.hpp"

namespace reset_native::nvfp4 {

inline constexpr int64_t kBlockSize = 16;        // elements per block scale (along cols / K)
inline constexpr float kE2M1Max = 6.0f;          // largest FP4 magnitude
inline constexpr float kE4M3Max = 448.0f;        // largest FP8 E4M3 magnitude
inline constexpr float kE4M3MinScale = 1.0f / 512.0f;  // 2^-9: smallest block scale we store
inline constexpr float kGlobalScaleDivisor = 2688.0f;  // 6 * 448: global_scale = amax / 2688

// Element type of activations, outputs and (for quantize) weights.
enum class DType { kFloat32, kFloat16, kBFloat16 };

// How gemv treats the activations x. kBF16 (Python: activation="bf16", W4A16): x is used as given
// (in whatever float dtype it has). kNVFP4 (activation="nvfp4", W4A4): every row of x is first quantized to
// NVFP4 (per-16 block scales per row; one global scale per call = amax(x)/2688 unless act_global_scale is
// given), then the two quantized operands are multiplied exactly and summed in fp32.
enum class Activation { kBF16, kNVFP4 };

// Which CPU code path runs. kAuto picks AVX-512F (with AVX2+FMA+F16C) when the CPU has it, else AVX2+FMA+F16C,
// else the portable scalar path, unless the environment variable RESET_NATIVE_CPU_ISA = scalar | avx2 | avx512
// names one (auto or empty: no effect; any other value throws InvalidArgument). kAVX512 runs the AVX-512F GEMV
// and the AVX2 quantize / widening code. Forcing a kernel the CPU lacks throws Unsupported.
enum class Kernel { kAuto, kScalar, kAVX2, kAVX512 };

struct Options {
  Kernel kernel = Kernel::kAuto;
  int threads = 0;  // 0: default_gemv_threads()
};

struct GemvOptions : Options {
  Activation activation = Activation::kBF16;
  std::optional<float> act_global_scale;  // W4A4 only: static activation global scale (decode multiplier)
};

// ------------------------------------------------------------------ scalar format helpers
float e2m1_decode(uint8_t code);    // code 0..15 -> one of +-{0, .5, 1, 1.5, 2, 3, 4, 6}; code > 15 throws
uint8_t e2m1_encode(float value);   // RNE to E2M1, saturating at +-6, sign bit copied (so -0.0 -> 8), NaN -> 0
float e4m3_decode(uint8_t byte);    // FP8 E4M3 (fn): 0x7F / 0xFF decode to NaN
uint8_t e4m3_encode(float value);   // RNE, saturating at +-448, NaN -> 0x7F
float global_scale_from_amax(float amax);  // amax / 2688, or 1 when amax == 0; amax must be finite, >= 0
// The stored scale byte of a block with absolute maximum block_amax (SPEC step 2, clamp to [2^-9, 448]).
uint8_t block_scale_byte(float block_amax, float global_scale);

// IEEE half / bfloat16 <-> float. Narrowing rounds to nearest even; NaN stays NaN.
float half_to_float(uint16_t bits);
float bf16_to_float(uint16_t bits);
uint16_t float_to_half(float value);
uint16_t float_to_bf16(float value);

// ------------------------------------------------------------------ matrices
// Quantizes w [rows, cols] into packed [rows, cols/2] and block_scales [rows, cols/16]. Returns the
// global scale used: computed from amax(|w|) when global_scale is empty, else the given one (finite, > 0).
// Non-finite input throws InvalidArgument naming the first bad index (row-major).
float quantize(const float* w, int64_t rows, int64_t cols, uint8_t* packed, uint8_t* block_scales,
               std::optional<float> global_scale = std::nullopt, const Options& options = {});
// Same for fp16 / bf16 inputs (dtype kFloat16 or kBFloat16; bit patterns), widened to float exactly first.
float quantize(const uint16_t* w, DType dtype, int64_t rows, int64_t cols, uint8_t* packed,
               uint8_t* block_scales, std::optional<float> global_scale = std::nullopt,
               const Options& options = {});

// out [rows, cols] = e2m1 * e4m3 * global_scale, correctly rounded (once) to out_dtype.
// out points to float (kFloat32) or uint16 bit patterns (kFloat16 / kBFloat16).
void dequantize(const uint8_t* packed, const uint8_t* block_scales, float global_scale, int64_t rows,
                int64_t cols, void* out, DType out_dtype = DType::kFloat32, const Options& options = {});

// y [m, n] = x [m, k] @ dequantize(W [n, k]).T (+ bias [n]), fp32 accumulation, y in x's dtype.
// x, bias and y share x_dtype (float, or uint16 bit patterns for fp16 / bf16). bias may be null.
// See Activation for W4A16 vs W4A4.
void gemv(const uint8_t* packed, const uint8_t* block_scales, float global_scale, int64_t n, int64_t k,
          const void* x, DType x_dtype, int64_t m, void* y, const void* bias = nullptr,
          const GemvOptions& options = {});

// ------------------------------------------------------------------ 128x4 swizzled scale layout
// cuBLAS / CUTLASS layout: rows padded to a multiple of 128, scale columns to a multiple of 4; byte
// ((r/128)*(C/4) + c/4)*512 + (r%32)*16 + ((r%128)/32)*4 + c%4 holds linear[r, c]; padding bytes are 0.
int64_t swizzled_size(int64_t rows, int64_t scale_cols);
void swizzle_block_scales(const uint8_t* linear, int64_t rows, int64_t scale_cols, uint8_t* swizzled);
void unswizzle_block_scales(const uint8_t* swizzled, int64_t rows, int64_t scale_cols, uint8_t* linear);

// ------------------------------------------------------------------ introspection / benchmarking
bool avx2_available();    // this CPU can run Kernel::kAVX2
bool avx512_available();  // this CPU can run Kernel::kAVX512
// The kernel a call with `requested` runs (kAuto resolved, RESET_NATIVE_CPU_ISA applied); throws as the
// call would.
Kernel selected_kernel(Kernel requested = Kernel::kAuto);
const char* kernel_name(Kernel kernel);  // "auto", "scalar", "avx2", "avx512"

// Threads the CPU kernels use when Options::threads is 0: the physical cores this process may run on
// (SMT siblings add no memory bandwidth and fight over the vector units), capped by
// reset_native::default_threads(); exactly default_threads() when OMP_NUM_THREADS is set or the core
// topology cannot be read.
int default_gemv_threads();
// Physical cores (distinct core ids) among the CPUs this process may run on; 0 when unknown.
int physical_cores();
// Reads `bytes` bytes with all threads and returns a checksum; benchmarks time it to measure the
// machine's memory read bandwidth with the same threading the kernels use.
uint64_t read_checksum(const uint8_t* data, int64_t bytes, const Options& options = {});

}  // namespace reset_native::nvfp4
