// CPU building blocks over one logits row: dtype conversion, a vectorisable exp and the chunked
// one-pass entropy accumulator.
#pragma once
#include <cstdint>
#include <cstring>

#include "reset_native/sampler.hpp"

namespace reset_native::sampler::detail {

// Elements per chunk: the float partial sums of one chunk are merged into double accumulators.
inline constexpr std::int64_t kChunk = 512;

// exp(d) for d <= 0 to ~1e-7 relative; 0 below -87 (and for d = -inf). Used for loop tails and by
// the portable kernels; the AVX2 kernels compute the same polynomial eight lanes at a time.
inline float exp_nonpositive(float d) {
  const float kLog2e = 1.44269504f, kLn2Hi = 0.693145752f, kLn2Lo = 1.42860677e-06f, kShift = 12582912.0f;
  const float dc = d < -87.0f ? -87.0f : d;
  const float t = dc * kLog2e + kShift;  // round to nearest integer via the float mantissa
  std::int32_t tb;
  std::memcpy(&tb, &t, sizeof tb);
  const float n = t - kShift;
  const float r = (dc - n * kLn2Hi) - n * kLn2Lo;  // |r| <= ln2/2
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  std::int32_t pb;
  std::memcpy(&pb, &p, sizeof pb);
  std::int32_t kShiftBits;
  std::memcpy(&kShiftBits, &kShift, sizeof kShiftBits);
  pb += (tb - kShiftBits) << 23;  // scale by 2^n (n >= -126 keeps the result normal)
  float e;
  std::memcpy(&e, &pb, sizeof e);
  return d < -87.0f ? 0.0f : e;
}

struct ChunkMax {
  float max;
  bool nan;
};

// One chunk's entropy sums against a reference value m: sum_exp = sum exp(z - m) and
// sum_dexp = sum (z - m) exp(z - m) (nats), plus the chunk's maximum (NaN entries ignored).
// The sums are only meaningful when max <= m; they are NaN when the chunk holds a NaN.
struct ChunkSums {
  float max;
  float sum_exp;
  float sum_dexp;
};

namespace avx2 {
bool available();  // the CPU runs AVX2 and FMA (and this build has the kernels)
ChunkMax chunk_max(const float* z, std::int64_t n);
ChunkSums chunk_sums(const float* z, std::int64_t n, float m);
float weights_chunk(const float* z, std::int64_t n, float zmax, float inv_t, float keep_from, float* out);
}  // namespace avx2

// Converts n elements of a float32/bf16/fp16 row to float32.
void to_float(const void* row, DType dtype, std::int64_t n, float* out);

// Running (max, sum exp(z - max), sum (z - max) exp(z - max)) of a row in one read: each chunk is
// summed against the running maximum, and summed again only when it raises that maximum (a few
// chunks per row for logits in any order but ascending).
struct EntropyAccumulator {
  double max = -1.0 / 0.0;
  double sum_exp = 0.0;
  double sum_zexp = 0.0;
  std::int64_t argmax = -1;
  bool has_nan = false;  // a NaN or +inf entry
  void add(const float* z, std::int64_t n, std::int64_t offset);
  // Entropy in nats; only meaningful when max is finite and !has_nan.
  double entropy() const;
};

// out[i] = exp((z[i] - zmax) * inv_t) for z[i] >= keep_from, else 0; returns the double sum.
double tempered_weights(const float* z, std::int64_t n, float zmax, float inv_t, float keep_from, float* out);

}  // namespace reset_native::sampler::detail

#include <vector>
namespace reset_native::sampler::detail {
// sample_row without the argument checks, for a row already known to be valid (max/argmax given).
// `scratch` is resized to vocab and reused across rows.
std::int64_t sample_checked_row(const float* z, std::int64_t vocab, float zmax, std::int64_t argmax,
                                double temperature, std::int64_t top_k, double top_p, double u,
                                std::vector<float>& scratch);
}  // namespace reset_native::sampler::detail
