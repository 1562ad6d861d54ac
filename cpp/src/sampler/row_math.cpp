#include "sampler/row_math.hpp"

#include <cmath>
#include <cstring>

namespace reset_native::sampler::detail {

namespace {

float bits_to_float(std::uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu;
  if (exp == 0x1Fu) return bits_to_float(sign | 0x7F800000u | (man << 13));  // inf / nan
  if (exp == 0) {                                                            // zero / subnormal
    const float v = std::ldexp(static_cast<float>(man), -24);
    return sign ? -v : v;
  }
  return bits_to_float(sign | ((exp + 112u) << 23) | (man << 13));
}

// Portable loops (`omp simd` lets compilers that manage it use vector lanes for the float sums).
ChunkMax chunk_max_portable(const float* z, std::int64_t n) {
  float m = -INFINITY;
  int nan = 0;
#pragma omp simd reduction(max : m) reduction(| : nan)
  for (std::int64_t i = 0; i < n; ++i) {
    m = z[i] > m ? z[i] : m;
    nan |= z[i] != z[i];
  }
  return ChunkMax{m, nan != 0};
}

// The ChunkSums of a chunk against m; the exp loop runs only when no element exceeds m.
ChunkSums chunk_sums_portable(const float* z, std::int64_t n, float m) {
  const ChunkMax c = chunk_max_portable(z, n);
  if (c.nan) return ChunkSums{c.max, NAN, NAN};
  if (c.max > m) return ChunkSums{c.max, 0.0f, 0.0f};
  float s = 0.0f, t = 0.0f;
#pragma omp simd reduction(+ : s, t)
  for (std::int64_t i = 0; i < n; ++i) {
    const float d = z[i] - m;
    const float e = exp_nonpositive(d);
    s += e;
    t += d < -87.0f ? 0.0f : d * e;
  }
  return ChunkSums{c.max, s, t};
}

float weights_chunk_portable(const float* z, std::int64_t n, float zmax, float inv_t, float keep_from, float* out) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (std::int64_t i = 0; i < n; ++i) {
    const float e = exp_nonpositive((z[i] - zmax) * inv_t);
    const float w = z[i] >= keep_from ? e : 0.0f;
    out[i] = w;
    s += w;
  }
  return s;
}

// The AVX2+FMA kernels (row_math_avx2.cpp) when the CPU has them, the portable loops otherwise.
ChunkMax chunk_max(const float* z, std::int64_t n) {
  return avx2::available() ? avx2::chunk_max(z, n) : chunk_max_portable(z, n);
}
ChunkSums chunk_sums(const float* z, std::int64_t n, float m) {
  return avx2::available() ? avx2::chunk_sums(z, n, m) : chunk_sums_portable(z, n, m);
}
float weights_chunk(const float* z, std::int64_t n, float zmax, float inv_t, float keep_from, float* out) {
  return avx2::available() ? avx2::weights_chunk(z, n, zmax, inv_t, keep_from, out)
                           : weights_chunk_portable(z, n, zmax, inv_t, keep_from, out);
}

std::int64_t first_index_of(const float* z, std::int64_t n, float value) {
  for (std::int64_t i = 0; i < n; ++i)
    if (z[i] == value) return i;
  return -1;
}

}  // namespace

void to_float(const void* row, DType dtype, std::int64_t n, float* out) {
  if (dtype == DType::kFloat32) {
    std::memcpy(out, row, static_cast<std::size_t>(n) * sizeof(float));
    return;
  }
  const auto* h = static_cast<const std::uint16_t*>(row);
  if (dtype == DType::kBFloat16) {
    for (std::int64_t i = 0; i < n; ++i) out[i] = bits_to_float(static_cast<std::uint32_t>(h[i]) << 16);
  } else {
    for (std::int64_t i = 0; i < n; ++i) out[i] = half_to_float(h[i]);
  }
}

void EntropyAccumulator::add(const float* z, std::int64_t n, std::int64_t offset) {
  for (std::int64_t start = 0; start < n; start += kChunk) {
    const std::int64_t len = n - start < kChunk ? n - start : kChunk;
    const float* chunk = z + start;
    ChunkSums c;
    if (max == -INFINITY) {  // nothing finite yet: the chunk's own maximum starts the row
      const ChunkMax first = chunk_max(chunk, len);
      if (first.nan || first.max == INFINITY) {  // +inf has no softmax either: rejected like NaN
        has_nan = true;
        return;
      }
      if (first.max == -INFINITY) continue;
      max = first.max;
      argmax = offset + start + first_index_of(chunk, len, first.max);
      c = chunk_sums(chunk, len, first.max);
    } else {
      c = chunk_sums(chunk, len, static_cast<float>(max));
      if (c.max > max) {  // a new maximum: rescale what we have, sum this chunk again against it
        if (c.max == INFINITY) {
          has_nan = true;
          return;
        }
        const double f = std::exp(max - static_cast<double>(c.max));
        sum_zexp = (sum_zexp + (max - static_cast<double>(c.max)) * sum_exp) * f;
        sum_exp *= f;
        max = c.max;
        argmax = offset + start + first_index_of(chunk, len, c.max);
        c = chunk_sums(chunk, len, c.max);
      }
    }
    if (std::isnan(c.sum_exp) || std::isnan(c.sum_dexp)) {
      has_nan = true;
      return;
    }
    sum_exp += c.sum_exp;
    sum_zexp += c.sum_dexp;
  }
}

double EntropyAccumulator::entropy() const {
  const double h = std::log(sum_exp) - sum_zexp / sum_exp;
  return h > 0.0 ? h : 0.0;
}

double tempered_weights(const float* z, std::int64_t n, float zmax, float inv_t, float keep_from, float* out) {
  double total = 0.0;
  for (std::int64_t start = 0; start < n; start += kChunk) {
    const std::int64_t len = n - start < kChunk ? n - start : kChunk;
    total += weights_chunk(z + start, len, zmax, inv_t, keep_from, out + start);
  }
  return total;
}

}  // namespace reset_native::sampler::detail
