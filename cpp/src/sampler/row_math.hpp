// CPU building blocks over one logits row: dtype conversion, a vectorisable exp and the chunked
// one-pass entropy accumulator.
#pragma once
#include <cstdint>

#include "reset_native/sampler.hpp"

namespace reset_native::sampler::detail {

// Elements per chunk: small enough to stay in L1 between the max and the exp loop.
inline constexpr std::int64_t kChunk = 512;

// Converts n elements of a float32/bf16/fp16 row to float32.
void to_float(const void* row, DType dtype, std::int64_t n, float* out);

// Running (max, sum exp(z - max), sum (z - max) exp(z - max)) of a row, merged chunk by chunk.
struct EntropyAccumulator {
  double max = -1.0 / 0.0;
  double sum_exp = 0.0;
  double sum_zexp = 0.0;
  std::int64_t argmax = -1;
  bool has_nan = false;
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
