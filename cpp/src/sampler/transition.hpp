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

// Spec steps 3-6 for entropy h: returns the temperature and appends h to window, step and global.
RN_HOST_DEVICE inline double choose_temperature(const TransitionParams& p, float* window_entropies, double* sums,
                                                std::int64_t* ints, float h) {
  const double ht = static_cast<double>(h);
  const std::int64_t win_len = ints[kWindowLen];
  double hs;
  if (ints[kStepCount] < p.window) {
    if (win_len == 0) {
      hs = ht;
    } else {
      // Oldest entry sits at head when the ring is full, at 0 otherwise.
      const std::int64_t start = win_len == p.window ? ints[kWindowHead] : 0;
      double s = 0.0;
      for (std::int64_t i = 0; i < win_len; ++i) {
        std::int64_t j = start + i;
        if (j >= p.window) j -= p.window;
        s += static_cast<double>(window_entropies[j]);
      }
      hs = s / static_cast<double>(win_len);
    }
  } else {
    hs = sums[kStepSum] / static_cast<double>(ints[kStepCount]);
  }
  const double hbar = ints[kGlobalCount] > 0 ? sums[kGlobalSum] / static_cast<double>(ints[kGlobalCount]) : hs;
  const double tau = hs > hbar ? hs : p.tau0;
  const double t = ht >= tau ? p.t_high : p.t_low;

  window_entropies[ints[kWindowHead]] = h;
  ints[kWindowHead] = ints[kWindowHead] + 1 == p.window ? 0 : ints[kWindowHead] + 1;
  if (win_len < p.window) ints[kWindowLen] = win_len + 1;
  sums[kStepSum] += ht;
  ints[kStepCount] += 1;
  sums[kGlobalSum] += ht;
  ints[kGlobalCount] += 1;
  return t;
}

}  // namespace reset_native::sampler::detail
