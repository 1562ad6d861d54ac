// Top-k / top-p restricted sampling of one row (CPU). Order-independent tie rules, see sampler.hpp.
#include <algorithm>
#include <cmath>
#include <functional>
#include <utility>
#include <vector>

#include "reset_native/error.hpp"
#include "reset_native/sampler.hpp"
#include "sampler/row_math.hpp"

namespace reset_native::sampler {

namespace {

struct Candidate {
  float z;
  float w;
};

// The largest logit v with mass(z >= v) >= target: the last value the top-p rule keeps.
// Weighted quickselect with a three-way partition, expected O(n).
float top_p_cutoff(std::vector<Candidate>& c, double target) {
  std::size_t lo = 0, hi = c.size();
  float last_pivot = c.empty() ? -INFINITY : c[0].z;
  while (lo < hi) {
    const float a = c[lo].z, b = c[lo + (hi - lo) / 2].z, d = c[hi - 1].z;
    const float pivot = std::max(std::min(a, b), std::min(std::max(a, b), d));  // median of three
    last_pivot = pivot;
    // [lo, gt) > pivot, [gt, lt) == pivot, [lt, hi) < pivot
    std::size_t gt = lo, i = lo, lt = hi;
    while (i < lt) {
      if (c[i].z > pivot) {
        std::swap(c[i++], c[gt++]);
      } else if (c[i].z < pivot) {
        std::swap(c[i], c[--lt]);
      } else {
        ++i;
      }
    }
    double above = 0.0, equal = 0.0;
    for (std::size_t j = lo; j < gt; ++j) above += c[j].w;
    for (std::size_t j = gt; j < lt; ++j) equal += c[j].w;
    if (above >= target && gt > lo) {
      hi = gt;
    } else if (above + equal >= target || lt == hi) {
      return pivot;  // nothing below can be needed (or nothing is left below: rounding)
    } else {
      target -= above + equal;
      lo = lt;
    }
  }
  return last_pivot;
}

}  // namespace

namespace detail {

std::int64_t sample_checked_row(const float* z, std::int64_t vocab, float zmax, std::int64_t argmax,
                                double temperature, std::int64_t top_k, double top_p, double u, std::vector<float>& w) {
  if (temperature <= kGreedyTemperature) return argmax;
  float keep_from = -INFINITY;
  w.resize(static_cast<std::size_t>(vocab));
  if (top_k > 0 && top_k < vocab) {
    std::copy(z, z + vocab, w.begin());
    std::nth_element(w.begin(), w.begin() + (top_k - 1), w.end(), std::greater<float>());
    keep_from = w[static_cast<std::size_t>(top_k - 1)];
  }
  const double total = detail::tempered_weights(z, vocab, zmax, static_cast<float>(1.0 / temperature), keep_from,
                                                w.data());
  double kept_total = total;
  if (top_p < 1.0) {
    // A token lighter than (1 - top_p) * total / vocab is never kept: everything at or below its
    // logit weighs less than (1 - top_p) * total, so the mass strictly above it exceeds top_p * total.
    const double lightest = (1.0 - top_p) * total / static_cast<double>(vocab);
    std::vector<Candidate> c;
    for (std::int64_t i = 0; i < vocab; ++i)
      if (w[i] > 0.0f && static_cast<double>(w[i]) >= lightest) c.push_back({z[i], w[i]});
    const float cutoff = top_p_cutoff(c, top_p * total);
    if (cutoff > keep_from) {
      keep_from = cutoff;
      kept_total = 0.0;
      for (std::int64_t i = 0; i < vocab; ++i) {
        if (z[i] < keep_from) w[i] = 0.0f;
        kept_total += w[i];
      }
    }
  }
  // Inverse CDF in index order; the fallback covers u * total rounding past the last weight.
  const double target = u * kept_total;
  double cum = 0.0;
  std::int64_t last_kept = argmax;
  for (std::int64_t i = 0; i < vocab; ++i) {
    if (w[i] <= 0.0f) continue;
    cum += w[i];
    last_kept = i;
    if (cum > target) return i;
  }
  return last_kept;
}

}  // namespace detail

std::int64_t sample_row(const float* z, std::int64_t vocab, double temperature, std::int64_t top_k, double top_p,
                        double u) {
  require(vocab >= 1, "vocab must be >= 1");
  require(std::isfinite(temperature) && temperature >= 0.0, "temperature must be finite and >= 0");
  require(top_k >= 0, "top_k must be >= 0");
  require(top_p > 0.0 && top_p <= 1.0, "top_p must be in (0, 1]");
  require(u >= 0.0 && u < 1.0, "u must be in [0, 1)");
  detail::EntropyAccumulator acc;
  acc.add(z, vocab, 0);
  require(!acc.has_nan, "logits row holds NaN or +inf");
  require(acc.max != -INFINITY, "logits row is all -inf: nothing can be sampled");
  std::vector<float> scratch;
  return detail::sample_checked_row(z, vocab, static_cast<float>(acc.max), acc.argmax, temperature, top_k, top_p, u,
                                    scratch);
}

}  // namespace reset_native::sampler
