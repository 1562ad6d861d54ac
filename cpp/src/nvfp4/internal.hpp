// Private to cpp/src/nvfp4: kernel entry points shared between the drivers (quantize.cpp, gemv.cpp,
// dequantize.cpp) and the code paths (kernels_scalar.cpp; kernels_avx2.cpp and gemv_avx2.cpp;
// gemv_avx512.cpp).
#pragma once
#include <algorithm>
#include <cstdint>
#include <string>

#include "parallel.hpp"
#include "reset_native/nvfp4.hpp"

namespace reset_native::nvfp4::detail {

// E4M3 byte -> float for all 256 bytes (NaN for 0x7F / 0xFF); a constant table built once.
const float* e4m3_table();

bool cpu_has_avx2();    // AVX2 + FMA + F16C
bool cpu_has_avx512();  // AVX-512F on top of cpu_has_avx2()

// Resolves kAuto (the best kernel this CPU runs, or the one RESET_NATIVE_CPU_ISA names) and checks that the
// resulting kernel can run here (throws Unsupported otherwise).
Kernel resolve_kernel(Kernel requested);
// requested > 0 as is; 0: default_gemv_threads().
int resolve_threads(int requested);

// The AVX-512 path uses the AVX2 kernels for everything but the GEMV (quantize, fp16 widening).
inline bool uses_avx2_helpers(Kernel k) { return k == Kernel::kAVX2 || k == Kernel::kAVX512; }

// Threads worth using for `work` items when each thread should get at least `min_per_thread` of them:
// starting a helper thread costs tens of microseconds (far more on a busy machine), which small calls must
// not pay.
inline int threads_for_work(int threads, int64_t work, int64_t min_per_thread) {
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, work / min_per_thread)));
}

// Largest |x[i]| of x[0..count). Sets *first_bad to the index of the first NaN / Inf (the return value is then
// meaningless) or to -1.
float scan_amax_scalar(const float* x, int64_t count, int64_t* first_bad);
float scan_amax_avx2(const float* x, int64_t count, int64_t* first_bad);

// Quantizes one finite row of `cols` (% 16 == 0) floats with global scale gs (SPEC steps 2-5): writes the
// cols / 16 block scale bytes and the cols / 2 packed bytes.
void quantize_row_scalar(const float* x, int64_t cols, float gs, uint8_t* packed, uint8_t* scales);
void quantize_row_avx2(const float* x, int64_t cols, float gs, uint8_t* packed, uint8_t* scales);

// Widens `count` fp16 values to float.
void half_to_float_scalar(const uint16_t* in, float* out, int64_t count);
void half_to_float_f16c(const uint16_t* in, float* out, int64_t count);

// Lays out the activations x [m, k] in the element order the GEMV kernels decode weights in, into xd [m, k]
// (a permutation within each group of 16-blocks; see the kernels' files).
void arrange_activations_scalar(const float* x, int64_t m, int64_t k, float* xd);
void arrange_activations_avx2(const float* x, int64_t m, int64_t k, float* xd);
// The AVX-512 layout pads each row to a whole number of 16-block groups: row i starts at
// xd + i * arranged_stride_avx512(k) (the other layouts use stride k).
int64_t arranged_stride_avx512(int64_t k);
void arrange_activations_avx512(const float* x, int64_t m, int64_t k, float* xd);

// Raw W4A16 sums for weight rows [n0, n1):
//   out[i * n_total + r] = sum_b e4m3(scales[r, b]) * sum_j e2m1(code[r, 16b + j]) * x[i, 16b + j]
// for i < m, with xd laid out by the matching arrange_activations_*.
void gemv_rows_scalar(const uint8_t* packed, const uint8_t* scales, int64_t k, const float* xd, int64_t m,
                      int64_t n0, int64_t n1, int64_t n_total, float* out);
void gemv_rows_avx2(const uint8_t* packed, const uint8_t* scales, int64_t k, const float* xd, int64_t m,
                    int64_t n0, int64_t n1, int64_t n_total, float* out);
void gemv_rows_avx512(const uint8_t* packed, const uint8_t* scales, int64_t k, const float* xd, int64_t m,
                      int64_t n0, int64_t n1, int64_t n_total, float* out);

// E2M1 code -> value, all 16 codes (8 = -0).
inline constexpr float kE2M1Values[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                          -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

// Throws InvalidArgument unless (packed, block_scales, global_scale, rows, cols) describe a usable matrix.
void check_parts(const char* what, const uint8_t* packed, const uint8_t* block_scales, float global_scale,
                 int64_t rows, int64_t cols);

// quantize() with the caller's function and argument names in its messages (gemv quantizes x for W4A4).
float quantize_named(const char* what, const char* name, const void* w, DType dtype, int64_t rows, int64_t cols,
                     uint8_t* packed, uint8_t* block_scales, std::optional<float> global_scale,
                     const Options& options);

// "w[3, 17]" style index text for messages.
std::string index_text(const char* name, int64_t row, int64_t col);

// Throws InvalidArgument unless rows/cols describe a non-empty NVFP4 matrix.
void check_matrix_shape(const char* what, int64_t rows, int64_t cols);

}  // namespace reset_native::nvfp4::detail
