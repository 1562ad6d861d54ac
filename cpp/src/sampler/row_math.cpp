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

#define RN_EXP_INLINE __attribute__((always_inline)) inline

// exp(d) for d <= 0 to ~1e-7 relative; 0 below -87 (and for d = -inf). Branch-free so loops vectorise.
RN_EXP_INLINE float exp_nonpositive(float d) {
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

// The loops below are `omp simd` reductions: that licenses the compiler to reorder the float sums
// into vector lanes (plain -O3 keeps them scalar). Without OpenMP they still run, unvectorised.
struct ChunkMax {
  float max;
  bool nan;
};

#define RN_ALWAYS_INLINE __attribute__((always_inline)) inline

RN_ALWAYS_INLINE ChunkMax chunk_max_impl(const float* z, std::int64_t n) {
  float m = -INFINITY;
  int nan = 0;
#pragma omp simd reduction(max : m) reduction(| : nan)
  for (std::int64_t i = 0; i < n; ++i) {
    m = z[i] > m ? z[i] : m;
    nan |= z[i] != z[i];
  }
  return ChunkMax{m, nan != 0};
}

// sum exp(z - m) and sum (z - m) exp(z - m) over a chunk whose maximum is m (finite).
RN_ALWAYS_INLINE void chunk_sums_impl(const float* z, std::int64_t n, float m, float* s_out, float* t_out) {
  float s = 0.0f, t = 0.0f;
#pragma omp simd reduction(+ : s, t)
  for (std::int64_t i = 0; i < n; ++i) {
    const float d = z[i] - m;
    const float e = exp_nonpositive(d);
    s += e;
    t += d < -87.0f ? 0.0f : d * e;
  }
  *s_out = s;
  *t_out = t;
}

RN_ALWAYS_INLINE float weights_chunk_impl(const float* z, std::int64_t n, float zmax, float inv_t, float keep_from,
                                          float* out) {
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

// On x86 each kernel is compiled twice, for AVX2+FMA and for the baseline ISA, and picked at run
// time (GCC's target_clones cannot combine two ISA extensions in one clone).
#if defined(__x86_64__) || defined(__i386__)
#define RN_DISPATCH(ret, name, params, args)                                                \
  __attribute__((target("avx2,fma"))) ret name##_avx2 params { return name##_impl args; } \
  ret name##_base params { return name##_impl args; }                                      \
  ret name params {                                                                        \
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? name##_avx2 args : name##_base args; \
  }
#else
#define RN_DISPATCH(ret, name, params, args) \
  ret name params { return name##_impl args; }
#endif

RN_DISPATCH(ChunkMax, chunk_max, (const float* z, std::int64_t n), (z, n))
RN_DISPATCH(void, chunk_sums, (const float* z, std::int64_t n, float m, float* s, float* t), (z, n, m, s, t))
RN_DISPATCH(float, weights_chunk, (const float* z, std::int64_t n, float zmax, float inv_t, float keep_from, float* out),
            (z, n, zmax, inv_t, keep_from, out))

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
    const ChunkMax c = chunk_max(z + start, len);
    if (c.nan) {
      has_nan = true;
      return;
    }
    if (c.max == -INFINITY) continue;
    float cs, ct;
    chunk_sums(z + start, len, c.max, &cs, &ct);
    const double cm = c.max;
    if (cm > max) {  // rescale what we have to the new maximum; only then is the argmax looked up
      const double f = std::exp(max - cm);
      sum_zexp = max == -INFINITY ? 0.0 : (sum_zexp + (max - cm) * sum_exp) * f;
      sum_exp = max == -INFINITY ? 0.0 : sum_exp * f;
      max = cm;
      argmax = offset + start + first_index_of(z + start, len, c.max);
    }
    const double f = std::exp(cm - max);
    sum_exp += static_cast<double>(cs) * f;
    sum_zexp += (static_cast<double>(ct) + (cm - max) * static_cast<double>(cs)) * f;
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
