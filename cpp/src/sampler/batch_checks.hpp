// Host-side helpers shared by update() and decode_step(): argument checks and one slot's advance.
#pragma once
#include <cstdint>

#include "reset_native/sampler.hpp"
#include "sampler/transition.hpp"

namespace reset_native::sampler::detail {

// Rows within the state, token ids in [-1, vocab), slots in range and distinct. Throws InvalidArgument.
void check_batch(const StateView& state, std::int64_t vocab, const Batch& batch);
TransitionParams transition_params(const Config& config);
// observe_token + choose_temperature on slot `slot`; returns the temperature.
double advance_slot(const TransitionParams& p, const std::uint8_t* classes, const StateView& state, std::int64_t slot,
                    std::int64_t last_token, float entropy);

}  // namespace reset_native::sampler::detail
