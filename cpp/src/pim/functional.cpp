#include "reset_native/pim/functional.hpp"

#include <cmath>
#include <cstring>
#include <vector>

#include "reset_native/error.hpp"
#include "arith.hpp"
#include "reset_native/pim/program.hpp"

namespace reset_native::pim {

namespace {
using arith::bits;
using arith::from_bits;

// IEEE binary16 round-to-nearest-even, returned as the float it represents.
float round_fp16(float x) {
  if (std::isnan(x)) return x;
  const float a = std::fabs(x);
  if (a >= 65520.0f) return std::copysign(INFINITY, x);  // rounds past the largest half (65504)
  if (a < 6.103515625e-05f) {                              // subnormal range: quantum 2^-24
    const float q = 5.9604644775390625e-08f;
    return std::copysign(std::nearbyint(a / q) * q, x);    // a / q is exact (power of two)
  }
  // Normal: keep 11 significant bits by rounding off the 13 low mantissa bits of the float.
  const uint32_t u = bits(a);
  const uint32_t lsb = (u >> 13) & 1u;
  const uint32_t r = (u + 0x0FFFu + lsb) & ~0x1FFFu;
  return std::copysign(from_bits(r), x);
}

float round_bf16(float x) {
  if (std::isnan(x)) return x;
  const uint32_t u = bits(x);
  const uint32_t lsb = (u >> 16) & 1u;
  return from_bits((u + 0x7FFFu + lsb) & 0xFFFF0000u);
}

}  // namespace

float round_to(DType d, float x) {
  switch (d) {
    case DType::FP16: return round_fp16(x);
    case DType::BF16: return round_bf16(x);
    case DType::FP32: return x;
  }
  return x;
}

void apply_update(const UpdateConfig& config, int64_t n, float* weight, const float* grad, float* state1,
                  float* state2, float* copy) {
  require(n >= 0, "n must be >= 0");
  const Program p = build_program(config);
  float* arrays[kNumStreams] = {weight, const_cast<float*>(grad), state1, state2, copy};
  for (int s : p.streams)
    if (arrays[s] == nullptr) throw InvalidArgument(std::string("the optimizer needs the ") + stream_name(s) + " array");
  using arith::axpby;
  using arith::mul;
  const float eps = config.hyper.eps;
  std::vector<float> v(static_cast<size_t>(p.values), 0.0f);
  for (int64_t i = 0; i < n; ++i) {
    for (const Op& op : p.ops) {
      switch (op.kind) {
        case OpKind::Load: v[op.dst] = arrays[op.stream][i]; break;
        case OpKind::Mac: v[op.dst] = axpby(op.a, arrays[op.stream][i], op.b, v[op.x]); break;
        case OpKind::Axpby: v[op.dst] = axpby(op.a, v[op.x], op.b, v[op.y]); break;
        case OpKind::Mul: v[op.dst] = mul(v[op.x], v[op.y]); break;
        case OpKind::AdamDiv: v[op.dst] = arith::adam_div(op.a, v[op.x], op.b, v[op.y], eps); break;
        case OpKind::Store: arrays[op.stream][i] = round_to(stream_dtype(config, op.stream), v[op.x]); break;
      }
    }
  }
}

}  // namespace reset_native::pim
