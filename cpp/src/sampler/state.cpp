// Configuration checks, slot storage, slot reset, random stream and the batched state update.
#include <cmath>
#include <string>
#include <unordered_set>

#include "reset_native/error.hpp"
#include "reset_native/sampler.hpp"
#include "sampler/batch_checks.hpp"
#include "sampler/philox.hpp"
#include "sampler/transition.hpp"

namespace reset_native::sampler {

namespace {
void require_temperature(double t, const char* name) {
  require(std::isfinite(t) && t >= 0.0,
          std::string(name) + " must be a finite temperature >= 0 (0 = greedy), got " + std::to_string(t));
}
}  // namespace

void validate(const Config& c) {
  require_temperature(c.t_low, "t_low");
  require_temperature(c.t_high, "t_high");
  require(std::isfinite(c.tau0) && c.tau0 >= 0.0, "tau0 must be a finite entropy >= 0 nats, got " + std::to_string(c.tau0));
  require(c.window >= 1 && c.window <= kMaxWindow,
          "window must be in [1, " + std::to_string(kMaxWindow) + "], got " + std::to_string(c.window));
  require(c.top_p > 0.0 && c.top_p <= 1.0, "top_p must be in (0, 1], got " + std::to_string(c.top_p));
  require(c.top_k >= 0, "top_k must be >= 0 (0 disables), got " + std::to_string(c.top_k));
}

State::State(std::int64_t slots, std::int32_t window, std::uint64_t seed) : slots_(slots), window_(window) {
  require(slots >= 1, "slots must be >= 1, got " + std::to_string(slots));
  require(window >= 1 && window <= kMaxWindow, "window must be in [1, 4096], got " + std::to_string(window));
  window_entropies_.assign(static_cast<std::size_t>(slots * window), 0.0f);
  sums_.assign(static_cast<std::size_t>(slots * kSlotSums), 0.0);
  ints_.assign(static_cast<std::size_t>(slots * kSlotInts), 0);
  for (std::int64_t s = 0; s < slots; ++s) reset_slot(view(), s, default_slot_seed(seed, s));
}

StateView State::view() {
  return StateView{slots_, window_, window_entropies_.data(), sums_.data(), ints_.data()};
}

std::uint64_t default_slot_seed(std::uint64_t seed, std::int64_t slot) {
  return detail::mix64(detail::mix64(seed) ^ static_cast<std::uint64_t>(slot));
}

void reset_slot(StateView state, std::int64_t slot, std::uint64_t slot_seed) {
  require(slot >= 0 && slot < state.slots,
          "slot must be in [0, " + std::to_string(state.slots) + "), got " + std::to_string(slot));
  std::int64_t* ints = state.ints + slot * kSlotInts;
  ints[kStepCount] = ints[kGlobalCount] = ints[kWindowLen] = ints[kWindowHead] = 0;
  ints[kLastToken] = ints[kPrevToken] = -1;
  ints[kSeed] = static_cast<std::int64_t>(slot_seed);
  state.sums[slot * kSlotSums + kStepSum] = state.sums[slot * kSlotSums + kGlobalSum] = 0.0;
  for (std::int32_t i = 0; i < state.window; ++i) state.window_entropies[slot * state.window + i] = 0.0f;
}

double uniform(std::uint64_t slot_seed, std::uint64_t position) {
  return detail::philox_uniform(slot_seed, position);
}

std::vector<std::uint8_t> token_classes(std::int64_t vocab, const std::vector<std::int64_t>& newline_ids,
                                        const std::vector<std::int64_t>& double_newline_ids) {
  require(vocab >= 1, "vocab_size must be >= 1, got " + std::to_string(vocab));
  std::vector<std::uint8_t> classes(static_cast<std::size_t>(vocab), static_cast<std::uint8_t>(TokenClass::kOther));
  auto mark = [&](const std::vector<std::int64_t>& ids, TokenClass cls, const char* name) {
    for (std::int64_t id : ids) {
      require(id >= 0 && id < vocab, std::string(name) + " holds id " + std::to_string(id) +
                                         " outside the vocabulary [0, " + std::to_string(vocab) + ")");
      classes[static_cast<std::size_t>(id)] = static_cast<std::uint8_t>(cls);
    }
  };
  mark(newline_ids, TokenClass::kNewline, "newline_ids");
  mark(double_newline_ids, TokenClass::kDoubleNewline, "double_newline_ids");
  return classes;
}

namespace detail {

void check_batch(const StateView& state, std::int64_t vocab, const Batch& batch) {
  require(batch.rows >= 1 && batch.rows <= state.slots,
          "rows must be in [1, " + std::to_string(state.slots) + "] (the state's batch_size), got " +
              std::to_string(batch.rows));
  for (std::int64_t r = 0; r < batch.rows; ++r) {
    const std::int64_t t = batch.last_tokens[r];
    require(t >= -1 && t < vocab, "last_tokens[" + std::to_string(r) + "] = " + std::to_string(t) +
                                      " is outside the vocabulary [0, " + std::to_string(vocab) + ") (-1 = none)");
  }
  if (batch.slots == nullptr) return;
  std::unordered_set<std::int64_t> seen;
  for (std::int64_t r = 0; r < batch.rows; ++r) {
    const std::int64_t s = batch.slots[r];
    require(s >= 0 && s < state.slots, "slots[" + std::to_string(r) + "] = " + std::to_string(s) +
                                           " is outside [0, " + std::to_string(state.slots) + ")");
    require(seen.insert(s).second, "slots[" + std::to_string(r) + "] = " + std::to_string(s) +
                                       " appears twice: each row must own a distinct slot");
  }
}

TransitionParams transition_params(const Config& c) { return TransitionParams{c.t_low, c.t_high, c.tau0, c.window}; }

double advance_slot(const TransitionParams& p, const std::uint8_t* classes, const StateView& state, std::int64_t slot,
                    std::int64_t last_token, float entropy) {
  double* sums = state.sums + slot * kSlotSums;
  std::int64_t* ints = state.ints + slot * kSlotInts;
  observe_token(classes, sums, ints, last_token);
  return choose_temperature(p, state.window_entropies + slot * state.window, sums, ints, entropy);
}

}  // namespace detail

void update(const Config& config, const std::uint8_t* classes, std::int64_t vocab, StateView state,
            const Batch& batch, const float* entropies, float* temperatures) {
  validate(config);
  require(config.window == state.window, "config.window and the state's window differ");
  detail::check_batch(state, vocab, batch);
  for (std::int64_t r = 0; r < batch.rows; ++r) {
    const float h = entropies[r];
    require(std::isfinite(h) && h >= 0.0f,
            "entropies[" + std::to_string(r) + "] must be finite and >= 0, got " + std::to_string(h));
  }
  const detail::TransitionParams p = detail::transition_params(config);
  for (std::int64_t r = 0; r < batch.rows; ++r) {
    const std::int64_t slot = batch.slots ? batch.slots[r] : r;
    temperatures[r] = static_cast<float>(detail::advance_slot(p, classes, state, slot, batch.last_tokens[r], entropies[r]));
  }
}

}  // namespace reset_native::sampler
