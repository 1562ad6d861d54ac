// Functional model: runs the unit's per-step program on real data, in the unit's arithmetic
// (fp32 datapath, one rounding per product and per sum, operands rounded to their stored dtype).
#pragma once
#include <cstdint>

#include "reset_native/pim/config.hpp"

namespace reset_native::pim {

// Arrays hold values already representable in their dtype (the caller rounds inputs); outputs are
// rounded to the stored dtype. state1/state2/copy may be null when the optimizer does not use them.
void apply_update(const UpdateConfig& config, int64_t n, float* weight, const float* grad, float* state1,
                  float* state2, float* copy);

float round_to(DType d, float x);  // round-to-nearest-even to fp16 / bf16 (fp32: identity)

}  // namespace reset_native::pim
