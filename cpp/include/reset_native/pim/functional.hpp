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

// The same update executed the way the hardware would: the arrays are laid out byte by byte in a DRAM
// image (DataLayout: chunks, banks, rows, columns, one byte lane per device), and every unit command of
// every chunk's sequence (the ones the timing run issues, in each unit's order) is executed on it with
// per-device register files; the results are read back from the image. Same signature and results as
// apply_update when layout and sequences are right: a check of both.
void execute_commands(const UpdateConfig& config, int64_t n, float* weight, const float* grad, float* state1,
                      float* state2, float* copy);

float round_to(DType d, float x);  // round-to-nearest-even to fp16 / bf16 (fp32: identity)

}  // namespace reset_native::pim
