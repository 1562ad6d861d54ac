// Fused ReSET decode step on the GPU: one block per row does entropy -> state update -> temperature
// -> top-k -> top-p -> sample, with all state in device memory, no host synchronisation and no
// allocation (CUDA-graph capturable). Top-k and top-p thresholds are found without sorting, by a
// 4 x 8-bit radix search over order-preserving float keys: top-k on counts, top-p on probability
// masses held in 2^-23 fixed point so every sum is an exact, order-independent integer (the same
// seed gives the same token on every run). The draw is an inverse CDF over (thread, element) order.
#include <cuda_runtime.h>

#include <cmath>
#include <string>

#include "block_primitives.cuh"
#include "reset_native/error.hpp"
#include "reset_native/sampler.hpp"
#include "sampler/philox.hpp"
#include "sampler/transition.hpp"

namespace reset_native::sampler {

namespace cuda_detail {

struct KernelArgs {
  detail::TransitionParams params;
  double top_p;
  std::int64_t top_k;
  const std::uint8_t* classes;
  std::int64_t vocab;
  StateView state;
  const std::int64_t* last_tokens;
  const std::int64_t* slots;
  const void* logits;
  std::int64_t row_stride;
  std::int64_t* tokens;
  float* temperatures;
  float* entropies;
  DeviceScratch scratch;
};

// Checks the row's slot and token id and claims the slot; 0 when the row may proceed.
__device__ int claim_slot(const KernelArgs& a, std::int64_t row, std::int64_t* slot_out) {
  const std::int64_t slot = a.slots ? a.slots[row] : row;
  const std::int64_t last = a.last_tokens[row];
  *slot_out = slot;
  int bad = 0;
  if (slot < 0 || slot >= a.state.slots) bad |= kErrorSlotRange;
  if (last < -1 || last >= a.vocab) bad |= kErrorTokenRange;
  if (!bad && atomicExch(a.scratch.slot_busy + slot, 1) != 0) bad |= kErrorSlotTwice;
  return bad;
}

// Marks a rejected row: flag for the host, sentinel outputs, slot untouched.
__device__ void reject_row(const KernelArgs& a, std::int64_t row, int bad, float entropy) {
  atomicOr(a.scratch.error_flag, bad);
  if (a.tokens) a.tokens[row] = -1;  // update_kernel has no tokens
  a.temperatures[row] = NAN;
  if (a.entropies) a.entropies[row] = entropy;
}

// Fixed-point probability weight of logit x: round(exp((x - zmax) / T) * 2^23), in [0, 2^23], so a
// warp's 32 weights sum in 32 bits. Explicit-rounding intrinsics: no FMA contraction may make two
// passes disagree on a weight. The rounding avoids a float->int conversion (a quarter-rate
// instruction, run once per element in five passes): w * 2^23 + 2^23 lies in [2^23, 2^24], where
// the floats are exactly the integers, so the addition rounds to nearest even and the mantissa
// bits are the result (checked against rint for every float32 w in [0, 1]).
__device__ __forceinline__ unsigned weight(float x, float zmax, float inv_t) {
  const float w = __expf(__fmul_rn(__fsub_rn(x, zmax), inv_t));
  return __float_as_uint(__fadd_rn(__fmul_rn(w, 8388608.0f), 8388608.0f)) - 0x4B000000u;
}

// Radix search for the largest key K with measure(key >= K) >= target, where each element counts
// 1 (counts) or its weight (masses), among elements whose key >= key_floor. Returns K.
template <int kDType, bool kMass>
__device__ unsigned radix_threshold(const void* row, std::int64_t vocab, unsigned key_floor, double target_fraction,
                                    double fixed_target, float zmax, float inv_t, unsigned long long* hist,
                                    unsigned long long* warp_sums, unsigned* s_choice, unsigned long long* s_above,
                                    double* s_target) {
  unsigned prefix = 0, mask = 0;
  if (threadIdx.x == 0) *s_target = fixed_target;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int b = threadIdx.x; b < 256; b += blockDim.x) hist[b] = 0ull;
    __syncthreads();
    // Every lane runs the same number of iterations so that whole warps can merge their updates:
    // lanes hitting the same bucket add up first and one of them does the shared-memory atomic
    // (buckets are few and hot: per-element atomics would serialise).
    for (std::int64_t base = 0; base < vocab; base += blockDim.x) {
      const std::int64_t i = base + threadIdx.x;
      bool valid = i < vocab;
      unsigned key = 0, m = 0;
      if (valid) {
        const float x = load_logit<kDType>(row, i);
        key = order_key(x);
        valid = key >= key_floor && (key & mask) == prefix;
        // exp runs on the quarter-rate special-function unit: only for elements still in the
        // search (after the first level, whole warps usually have none)
        m = 1u;
        if (kMass && valid) m = weight(x, zmax, inv_t);
        valid = valid && m > 0;
      }
      const unsigned bucket = (key >> shift) & 0xFFu;
      // One round per distinct bucket in the warp; every shuffle/ballot runs on the full warp.
      unsigned pending = __ballot_sync(kFullMask, valid);
      while (pending) {
        const int leader = __ffs(pending) - 1;
        const unsigned b = __shfl_sync(kFullMask, bucket, leader);
        const bool mine = valid && bucket == b;
        const unsigned group = __ballot_sync(kFullMask, mine);
        unsigned sum;
        if (kMass) {
          sum = mine ? m : 0u;
          for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(kFullMask, sum, o);
        } else {
          sum = static_cast<unsigned>(__popc(group));
        }
        if ((threadIdx.x & 31) == static_cast<unsigned>(leader)) atomicAdd(hist + b, static_cast<unsigned long long>(sum));
        pending &= ~group;
      }
    }
    __syncthreads();
    // Buckets from the top (thread t holds bucket 255 - t): the first whose inclusive sum reaches target.
    const unsigned long long v = threadIdx.x < 256 ? hist[255 - threadIdx.x] : 0ull;
    unsigned long long total;
    const unsigned long long before = block_exclusive_scan(v, warp_sums, &total);
    if (shift == 24 && kMass && threadIdx.x == 0) *s_target = target_fraction * static_cast<double>(total);
    if (threadIdx.x == 0) {
      *s_choice = 0;
      *s_above = 0;
    }
    __syncthreads();
    const double target = *s_target;
    if (threadIdx.x < 256 && v > 0 && static_cast<double>(before) < target &&
        static_cast<double>(before + v) >= target) {
      *s_choice = 255 - threadIdx.x;
      *s_above = before;
    }
    __syncthreads();
    const unsigned digit = *s_choice;
    prefix |= digit << shift;
    mask |= 0xFFu << shift;
    if (threadIdx.x == 0) *s_target = target - static_cast<double>(*s_above);
    __syncthreads();
  }
  return prefix;
}

template <int kDType>
__global__ void __launch_bounds__(kThreads, 1) decode_kernel(KernelArgs a) {
  __shared__ EntropyPart parts[kWarps];
  __shared__ unsigned long long hist[256];
  __shared__ unsigned long long warp_sums[kWarps];
  __shared__ int s_bad;
  __shared__ double s_temperature, s_uniform, s_target;
  __shared__ unsigned s_choice;
  __shared__ unsigned long long s_above, s_rank;
  __shared__ std::int64_t s_token, s_owner;

  const std::int64_t row = blockIdx.x;
  const void* z = static_cast<const char*>(a.logits) +
                  static_cast<std::size_t>(row * a.row_stride) * (kDType == 0 ? 4 : 2);
  std::int64_t slot = 0;
  if (threadIdx.x == 0) s_bad = claim_slot(a, row, &slot);

  // 1. entropy, max and argmax in one pass.
  ThreadEntropy thread_h;
  for (std::int64_t i = threadIdx.x; i < a.vocab; i += blockDim.x) thread_h.add(load_logit<kDType>(z, i), i);
  const EntropyPart all = block_entropy(thread_h.widen(), parts);
  const float entropy = all.max == -INFINITY || all.nan
                            ? NAN
                            : static_cast<float>(fmax(log(all.sum_exp) - all.sum_zexp / all.sum_exp, 0.0));

  // 2. state update and temperature (one thread; same code as the CPU path).
  if (threadIdx.x == 0) {
    int bad = s_bad;
    if (all.nan) bad |= kErrorNaN;
    else if (all.max == -INFINITY) bad |= kErrorAllNegInf;
    if (bad) {
      reject_row(a, row, bad, entropy);
      if (!(bad & (kErrorSlotRange | kErrorTokenRange | kErrorSlotTwice))) a.scratch.slot_busy[slot] = 0;
    } else {
      double* sums = a.state.sums + slot * kSlotSums;
      std::int64_t* ints = a.state.ints + slot * kSlotInts;
      s_uniform = detail::philox_uniform(static_cast<std::uint64_t>(ints[kSeed]),
                                         static_cast<std::uint64_t>(ints[kGlobalCount]));
      detail::observe_token(a.classes, sums, ints, a.last_tokens[row]);
      s_temperature = detail::choose_temperature(a.params, a.state.window_entropies + slot * a.state.window, sums,
                                                 ints, entropy);
      a.temperatures[row] = static_cast<float>(s_temperature);
      if (a.entropies) a.entropies[row] = entropy;
      s_owner = slot;
    }
    s_bad = bad;
  }
  __syncthreads();
  if (s_bad) return;

  const double t = s_temperature;
  if (t <= kGreedyTemperature) {
    if (threadIdx.x == 0) {
      a.tokens[row] = all.argmax;
      a.scratch.slot_busy[s_owner] = 0;
    }
    return;
  }
  const float zmax = all.max;
  const float inv_t = static_cast<float>(1.0 / t);

  // 3. top-k, then top-p thresholds as keys (keep key >= threshold).
  unsigned floor_key = 0;
  if (a.top_k > 0 && a.top_k < a.vocab) {
    floor_key = radix_threshold<kDType, false>(z, a.vocab, 0u, 0.0, static_cast<double>(a.top_k), zmax, inv_t, hist,
                                               warp_sums, &s_choice, &s_above, &s_target);
  }
  if (a.top_p < 1.0) {
    const unsigned p_key = radix_threshold<kDType, true>(z, a.vocab, floor_key, a.top_p, 0.0, zmax, inv_t, hist,
                                                         warp_sums, &s_choice, &s_above, &s_target);
    floor_key = p_key > floor_key ? p_key : floor_key;
  }

  // 4. inverse CDF: each thread's kept mass, scanned in thread order; the owning thread's elements
  //    are then scanned by the whole block to find the token.
  unsigned long long mine = 0;
  for (std::int64_t i = threadIdx.x; i < a.vocab; i += blockDim.x) {
    const float x = load_logit<kDType>(z, i);
    if (order_key(x) >= floor_key) mine += weight(x, zmax, inv_t);
  }
  unsigned long long total;
  const unsigned long long before = block_exclusive_scan(mine, warp_sums, &total);
  if (threadIdx.x == 0) s_token = all.argmax;
  const unsigned long long target =
      min(static_cast<unsigned long long>(s_uniform * static_cast<double>(total)), total - 1);
  if (before <= target && target < before + mine) {
    s_choice = threadIdx.x;
    s_rank = target - before;
  }
  __syncthreads();
  const unsigned owner = s_choice;
  const unsigned long long rank = s_rank;
  const std::int64_t per_thread = (a.vocab - owner + blockDim.x - 1) / blockDim.x;
  unsigned long long offset = 0;
  for (std::int64_t j0 = 0; j0 < per_thread; j0 += blockDim.x) {
    const std::int64_t j = j0 + threadIdx.x;
    const std::int64_t i = owner + j * static_cast<std::int64_t>(blockDim.x);
    unsigned long long w = 0;
    if (j < per_thread) {
      const float x = load_logit<kDType>(z, i);
      if (order_key(x) >= floor_key) w = weight(x, zmax, inv_t);
    }
    unsigned long long chunk;
    const unsigned long long at = offset + block_exclusive_scan(w, warp_sums, &chunk);
    if (w > 0 && at <= rank && rank < at + w) s_token = i;
    offset += chunk;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    a.tokens[row] = s_token;
    a.scratch.slot_busy[s_owner] = 0;
  }
}

// The state machine alone, one thread per row.
__global__ void update_kernel(KernelArgs a, std::int64_t rows, const float* entropies) {
  const std::int64_t row = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (row >= rows) return;
  std::int64_t slot = 0;
  int bad = claim_slot(a, row, &slot);
  const float h = entropies[row];
  if (!(h >= 0.0f) || isinf(h)) bad |= kErrorEntropy;  // also catches NaN
  if (bad) {
    reject_row(a, row, bad, h);
    if (!(bad & (kErrorSlotRange | kErrorTokenRange | kErrorSlotTwice))) a.scratch.slot_busy[slot] = 0;
    return;
  }
  double* sums = a.state.sums + slot * kSlotSums;
  std::int64_t* ints = a.state.ints + slot * kSlotInts;
  detail::observe_token(a.classes, sums, ints, a.last_tokens[row]);
  a.temperatures[row] = static_cast<float>(
      detail::choose_temperature(a.params, a.state.window_entropies + slot * a.state.window, sums, ints, h));
  a.scratch.slot_busy[slot] = 0;
}

KernelArgs make_args(const Config& config, const std::uint8_t* classes, std::int64_t vocab, StateView state,
                     const Batch& batch, DeviceScratch scratch) {
  validate(config);
  require(config.window == state.window, "config.window and the state's window differ");
  require(vocab >= 1, "vocab must be >= 1");
  require(batch.rows >= 1 && batch.rows <= state.slots, "rows must be in [1, batch_size]");
  require(scratch.error_flag && scratch.slot_busy, "device scratch buffers are missing");
  KernelArgs a{};
  a.params = detail::TransitionParams{config.t_low, config.t_high, config.tau0, config.window};
  a.top_p = config.top_p;
  a.top_k = config.top_k;
  a.classes = classes;
  a.vocab = vocab;
  a.state = state;
  a.last_tokens = batch.last_tokens;
  a.slots = batch.slots;
  a.scratch = scratch;
  return a;
}

void check_launch(const char* what) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) throw Error(std::string(what) + " launch failed: " + cudaGetErrorString(err));
}

}  // namespace cuda_detail

void decode_step_cuda(const Config& config, const std::uint8_t* classes, std::int64_t vocab, StateView state,
                      const Batch& batch, const void* logits, DType dtype, std::int64_t row_stride,
                      std::int64_t* tokens, float* temperatures, float* entropies, DeviceScratch scratch,
                      void* stream) {
  using namespace cuda_detail;
  KernelArgs a = make_args(config, classes, vocab, state, batch, scratch);
  require(row_stride >= vocab, "row_stride must be >= vocab");
  a.logits = logits;
  a.row_stride = row_stride;
  a.tokens = tokens;
  a.temperatures = temperatures;
  a.entropies = entropies;
  const auto s = static_cast<cudaStream_t>(stream);
  const dim3 grid(static_cast<unsigned>(batch.rows));
  switch (dtype) {
    case DType::kFloat32: decode_kernel<0><<<grid, kThreads, 0, s>>>(a); break;
    case DType::kBFloat16: decode_kernel<1><<<grid, kThreads, 0, s>>>(a); break;
    case DType::kFloat16: decode_kernel<2><<<grid, kThreads, 0, s>>>(a); break;
  }
  check_launch("ReSET decode_step");
}

void update_cuda(const Config& config, const std::uint8_t* classes, std::int64_t vocab, StateView state,
                 const Batch& batch, const float* entropies, float* temperatures, DeviceScratch scratch, void* stream) {
  using namespace cuda_detail;
  KernelArgs a = make_args(config, classes, vocab, state, batch, scratch);
  a.temperatures = temperatures;
  const unsigned threads = 128;
  const unsigned blocks = static_cast<unsigned>((batch.rows + threads - 1) / threads);
  update_kernel<<<blocks, threads, 0, static_cast<cudaStream_t>(stream)>>>(a, batch.rows, entropies);
  check_launch("ReSET update");
}

}  // namespace reset_native::sampler
