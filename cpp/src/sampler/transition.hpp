// One step of the ReSET state machine for one slot (docs/SPEC-reset.md section 2), written once for
// host and device so the CPU and CUDA paths take bit-identical decisions from the same entropy.
// Sums are float64 and the window is re-summed oldest to newest each step: a fixed order, so the
// result does not depend on history beyond the values themselves.
#pragma once
#include <cstdint>

#include "reset_native/sampler.hpp"
#include "sampler/device_compat.hpp"

namespace reset_native::sampler::detail {

struct TransitionParams {
  double t_low;
  double t_high;
  double tau0;
  std::int32_t window;
};

// Feeds the token generated at the previous step (-1: none) into the slot: spec step 1, with the
// class lookups done by the caller: last_class = classes[last_token] and prev_class = the class of
// the slot's last token before this call (ints[kLastToken]; ignored when that is -1).
RN_HOST_DEVICE inline void observe_token_classes(double* sums, std::int64_t* ints, std::int64_t last_token,
                                                 std::uint8_t last_class, std::uint8_t prev_class) {
  if (last_token < 0) return;
  ints[kPrevToken] = ints[kLastToken];
  ints[kLastToken] = last_token;
  const bool prev_newline = ints[kPrevToken] >= 0 && prev_class == static_cast<std::uint8_t>(TokenClass::kNewline);
  const bool boundary = last_class == static_cast<std::uint8_t>(TokenClass::kDoubleNewline) ||
                        (last_class == static_cast<std::uint8_t>(TokenClass::kNewline) && prev_newline);
  if (boundary) {
    sums[kStepSum] = 0.0;
    ints[kStepCount] = 0;
  }
}

// The same, looking the classes up in `classes` (which must cover the token ids; the caller checks
// the range).
RN_HOST_DEVICE inline void observe_token(const std::uint8_t* classes, double* sums, std::int64_t* ints,
                                         std::int64_t last_token) {
  if (last_token < 0) return;
  const std::int64_t prev = ints[kLastToken];
  observe_token_classes(sums, ints, last_token, classes[last_token], prev >= 0 ? classes[prev] : std::uint8_t{0});
}

// Spec steps 3-4 as far as they go without the new entropy: the step mean hs and the global mean
// hbar of the slot before this token. The GPU computes them while the row's entropy is still being
// reduced; temperature_for finishes them once it is known. The window is re-summed oldest to newest.
struct StepMeans {  // plain data (it also lives in CUDA shared memory)
  double hs;
  double hbar;
  bool hs_is_entropy;  // the window is empty: hs is the new entropy itself
  bool hbar_is_hs;     // nothing seen since reset: hbar is hs
};

RN_HOST_DEVICE inline StepMeans step_means(const TransitionParams& p, const float* window_entropies,
                                           const double* sums, const std::int64_t* ints) {
  StepMeans m{0.0, 0.0, false, false};
  const std::int64_t win_len = ints[kWindowLen];
  if (ints[kStepCount] < p.window) {
    if (win_len == 0) {
      m.hs_is_entropy = true;
    } else {
      // Oldest entry sits at head when the ring is full, at 0 otherwise.
      const std::int64_t start = win_len == p.window ? ints[kWindowHead] : 0;
      double s = 0.0;
      for (std::int64_t i = 0; i < win_len; ++i) {
        std::int64_t j = start + i;
        if (j >= p.window) j -= p.window;
        s += static_cast<double>(window_entropies[j]);
      }
      m.hs = s / static_cast<double>(win_len);
    }
  } else {
    m.hs = sums[kStepSum] / static_cast<double>(ints[kStepCount]);
  }
  if (ints[kGlobalCount] > 0) {
    m.hbar = sums[kGlobalSum] / static_cast<double>(ints[kGlobalCount]);
  } else {
    m.hbar_is_hs = true;
  }
  return m;
}

// Spec steps 5-6: the temperature for entropy h.
RN_HOST_DEVICE inline double temperature_for(const TransitionParams& p, const StepMeans& m, float h) {
  const double ht = static_cast<double>(h);
  const double hs = m.hs_is_entropy ? ht : m.hs;
  const double hbar = m.hbar_is_hs ? hs : m.hbar;
  const double tau = hs > hbar ? hs : p.tau0;
  return ht >= tau ? p.t_high : p.t_low;
}

// Appends h to the window, the step and the global sums. Returns the ring index it was written to.
RN_HOST_DEVICE inline std::int64_t append_entropy(const TransitionParams& p, float* window_entropies, double* sums,
                                                  std::int64_t* ints, float h) {
  const double ht = static_cast<double>(h);
  const std::int64_t head = ints[kWindowHead];
  if (window_entropies) window_entropies[head] = h;
  ints[kWindowHead] = head + 1 == p.window ? 0 : head + 1;
  if (ints[kWindowLen] < p.window) ints[kWindowLen] = ints[kWindowLen] + 1;
  sums[kStepSum] += ht;
  ints[kStepCount] += 1;
  sums[kGlobalSum] += ht;
  ints[kGlobalCount] += 1;
  return head;
}

// Spec steps 3-6 for entropy h: returns the temperature and appends h to window, step and global.
RN_HOST_DEVICE inline double choose_temperature(const TransitionParams& p, float* window_entropies, double* sums,
                                                std::int64_t* ints, float h) {
  const double t = temperature_for(p, step_means(p, window_entropies, sums, ints), h);
  append_entropy(p, window_entropies, sums, ints, h);
  return t;
}

}  // namespace reset_native::sampler::detail
