// The fused CPU decode step: entropy of every row (parallel), then the state update (serial, cheap,
// only after every row was found valid), then top-k/top-p sampling (parallel). A single row runs
// on the calling thread: a thread team would only add wake-up and barrier costs.
#include <cmath>
#include <string>
#include <vector>

#include "reset_native/error.hpp"
#include "reset_native/sampler.hpp"
#include "sampler/batch_checks.hpp"
#include "sampler/philox.hpp"
#include "sampler/row_math.hpp"

namespace reset_native::sampler {

namespace {

const void* row_pointer(const void* logits, DType dtype, std::int64_t row, std::int64_t stride) {
  const std::size_t elem = dtype == DType::kFloat32 ? 4 : 2;
  return static_cast<const char*>(logits) + static_cast<std::size_t>(row * stride) * elem;
}

// float32 rows are used in place; bf16/fp16 rows are widened into `buffer` first.
const float* as_float_row(const void* row, DType dtype, std::int64_t vocab, std::vector<float>& buffer) {
  if (dtype == DType::kFloat32) return static_cast<const float*>(row);
  buffer.resize(static_cast<std::size_t>(vocab));
  detail::to_float(row, dtype, vocab, buffer.data());
  return buffer.data();
}

}  // namespace

float row_entropy(const void* row, std::int64_t vocab, DType dtype, std::int64_t* argmax) {
  require(vocab >= 1, "vocab must be >= 1, got " + std::to_string(vocab));
  std::vector<float> buffer;
  const float* z = as_float_row(row, dtype, vocab, buffer);
  detail::EntropyAccumulator acc;
  acc.add(z, vocab, 0);
  require(!acc.has_nan, "logits row holds NaN or +inf");
  require(acc.max != -INFINITY, "logits row is all -inf: its entropy is undefined");
  if (argmax) *argmax = acc.argmax;
  return static_cast<float>(acc.entropy());
}

void decode_step(const Config& config, const std::uint8_t* classes, std::int64_t vocab, StateView state,
                 const Batch& batch, const void* logits, DType dtype, std::int64_t row_stride, std::int64_t* tokens,
                 float* temperatures, float* entropies) {
  validate(config);
  require(config.window == state.window, "config.window and the state's window differ");
  require(vocab >= 1 && row_stride >= vocab, "row_stride must be >= vocab");
  detail::check_batch(state, vocab, batch);
  const std::int64_t rows = batch.rows;
  std::vector<float> maxima(static_cast<std::size_t>(rows));
  std::vector<std::int64_t> argmax(static_cast<std::size_t>(rows));
  std::vector<int> bad(static_cast<std::size_t>(rows), 0);  // 1 = NaN or +inf, 2 = all -inf

#pragma omp parallel if (rows > 1)
  {
    std::vector<float> buffer;
#pragma omp for schedule(static)
    for (std::int64_t r = 0; r < rows; ++r) {
      const float* z = as_float_row(row_pointer(logits, dtype, r, row_stride), dtype, vocab, buffer);
      detail::EntropyAccumulator acc;
      acc.add(z, vocab, 0);
      bad[r] = acc.has_nan ? 1 : (acc.max == -INFINITY ? 2 : 0);
      entropies[r] = bad[r] ? 0.0f : static_cast<float>(acc.entropy());
      maxima[r] = static_cast<float>(acc.max);
      argmax[r] = acc.argmax;
    }
  }
  for (std::int64_t r = 0; r < rows; ++r) {
    require(bad[r] != 1, "logits row " + std::to_string(r) + " holds NaN or +inf");
    require(bad[r] != 2, "logits row " + std::to_string(r) + " is all -inf: nothing can be sampled");
  }

  const detail::TransitionParams p = detail::transition_params(config);
  std::vector<double> u(static_cast<std::size_t>(rows)), temps(static_cast<std::size_t>(rows));
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t slot = batch.slots ? batch.slots[r] : r;
    const std::int64_t* ints = state.ints + slot * kSlotInts;
    // The random number of this token: (slot seed, position before this token).
    u[r] = detail::philox_uniform(static_cast<std::uint64_t>(ints[kSeed]),
                                  static_cast<std::uint64_t>(ints[kGlobalCount]));
    temps[r] = detail::advance_slot(p, classes, state, slot, batch.last_tokens[r], entropies[r]);
    temperatures[r] = static_cast<float>(temps[r]);
  }

#pragma omp parallel if (rows > 1)
  {
    std::vector<float> buffer, scratch;
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t r = 0; r < rows; ++r) {
      const float* z = as_float_row(row_pointer(logits, dtype, r, row_stride), dtype, vocab, buffer);
      tokens[r] = detail::sample_checked_row(z, vocab, maxima[r], argmax[r], temps[r], config.top_k, config.top_p, u[r],
                                             scratch);
    }
  }
}

}  // namespace reset_native::sampler
