// ReSET sampler core (CPU): entropy of a logits row, the per-sequence ReSET state machine
// (docs/SPEC-reset.md section 2) for a batch of slots, and top-k/top-p sampling with a
// counter-based random stream. The CUDA kernels (cuda/sampler/) use the same state layout and the
// same transition code, so both devices take the same decisions from the same entropies.
#pragma once
#include <cstdint>
#include <vector>

namespace reset_native::sampler {

enum class DType : int { kFloat32 = 0, kBFloat16 = 1, kFloat16 = 2 };

// Vocabulary class of a token id; kDoubleNewline wins when an id is in both sets.
enum class TokenClass : std::uint8_t { kOther = 0, kNewline = 1, kDoubleNewline = 2 };

// A temperature at or below this means greedy (argmax).
inline constexpr double kGreedyTemperature = 1e-6;
// Upper bound on the window (the transition re-sums the window every step, in a fixed order).
inline constexpr std::int32_t kMaxWindow = 4096;

struct Config {
  double t_low = 0.0;   // temperature of confident tokens (H_t < tau)
  double tau0 = 0.0;    // threshold outside uncertain steps, nats
  double t_high = 1.0;  // temperature of uncertain tokens (H_t >= tau)
  std::int32_t window = 32;
  double top_p = 1.0;   // (0, 1]; 1 disables
  std::int64_t top_k = 0;  // 0 disables
};

// Throws InvalidArgument naming the field when a value is out of range.
void validate(const Config& config);

// Per-slot state, structure of arrays, row-major by slot. Counts and token ids share one int64
// record per slot (fields below); sums are float64 so CPU and GPU add in the same precision/order.
enum SlotInt : int {
  kStepCount = 0,    // entropies in the current step
  kGlobalCount = 1,  // entropies since reset; also the slot's random-stream position
  kWindowLen = 2,    // entropies held in the window ring (<= window)
  kWindowHead = 3,   // ring index the next entropy is written to
  kLastToken = 4,    // last generated token id, -1 if none
  kPrevToken = 5,    // the one before, -1 if none
  kSeed = 6,         // the slot's random-stream key (uint64 bit pattern)
  kSlotInts = 7
};
enum SlotSum : int { kStepSum = 0, kGlobalSum = 1, kSlotSums = 2 };

struct StateView {
  std::int64_t slots = 0;
  std::int32_t window = 0;
  float* window_entropies = nullptr;  // [slots, window]
  double* sums = nullptr;             // [slots, kSlotSums]
  std::int64_t* ints = nullptr;       // [slots, kSlotInts]
};

// Owning CPU storage for a batch of slots (what embedders use; Python keeps its own arrays).
class State {
 public:
  State(std::int64_t slots, std::int32_t window, std::uint64_t seed);
  StateView view();
  std::int64_t slots() const { return slots_; }

 private:
  std::int64_t slots_;
  std::int32_t window_;
  std::vector<float> window_entropies_;
  std::vector<double> sums_;
  std::vector<std::int64_t> ints_;
};

// Key of slot `slot`'s random stream when the state was created with `seed`.
std::uint64_t default_slot_seed(std::uint64_t seed, std::int64_t slot);
// Empties one slot (start of a new sequence) and sets its random-stream key.
void reset_slot(StateView state, std::int64_t slot, std::uint64_t slot_seed);
// Philox4x32-10 keyed by the slot seed, counter = position: a uniform double in [0, 1).
double uniform(std::uint64_t slot_seed, std::uint64_t position);

// Class table [vocab] from the newline / double-newline id lists (ids must be < vocab).
std::vector<std::uint8_t> token_classes(std::int64_t vocab, const std::vector<std::int64_t>& newline_ids,
                                        const std::vector<std::int64_t>& double_newline_ids);

// Entropy (nats) of softmax(row); one pass, -inf entries allowed. Throws InvalidArgument for a row
// holding a NaN or only -inf. `argmax` (optional) receives the first index of the maximum.
float row_entropy(const void* row, std::int64_t vocab, DType dtype, std::int64_t* argmax = nullptr);

// One token from softmax(z / temperature) restricted by top-k then top-p, using the uniform u.
// Tie rule (order independent): top-k keeps every token whose logit is >= the k-th largest; top-p
// keeps every token whose strictly-larger-logit mass is < top_p of the top-k mass. The kept tokens
// are then drawn by inverse CDF in index order. temperature <= kGreedyTemperature: first argmax.
std::int64_t sample_row(const float* z, std::int64_t vocab, double temperature, std::int64_t top_k,
                        double top_p, double u);

struct Batch {
  std::int64_t rows = 0;
  const std::int64_t* last_tokens = nullptr;  // [rows], -1 = nothing generated before this step
  const std::int64_t* slots = nullptr;        // [rows] distinct slot per row; nullptr = row i is slot i
};

// The state machine alone: temperatures[rows] from entropies[rows]; advances the slots.
// Validates everything before touching the state (a throw leaves it unchanged).
void update(const Config& config, const std::uint8_t* classes, std::int64_t vocab, StateView state,
            const Batch& batch, const float* entropies, float* temperatures);

// Entropy per row -> state update -> temperature -> top-k/top-p sample, rows in parallel (OpenMP).
// logits: [rows, vocab] with `row_stride` elements between rows. Outputs are [rows].
void decode_step(const Config& config, const std::uint8_t* classes, std::int64_t vocab, StateView state,
                 const Batch& batch, const void* logits, DType dtype, std::int64_t row_stride,
                 std::int64_t* tokens, float* temperatures, float* entropies);

// CUDA launchers (defined only when the package is built with RESET_NATIVE_WITH_CUDA). Every pointer
// is device memory, `stream` is a cudaStream_t. They never synchronise or allocate: bad input
// (NaN / all -inf row, token id or slot out of range, a slot twice) ORs a bit of ErrorFlag into
// *error_flag, and the affected row gets token -1, temperature NaN, and leaves its slot unchanged.
enum ErrorFlag : std::int32_t {
  kErrorNaN = 1,
  kErrorAllNegInf = 2,
  kErrorTokenRange = 4,
  kErrorSlotRange = 8,
  kErrorSlotTwice = 16,
  kErrorEntropy = 32,  // update_cuda: an entropy that is NaN, infinite or negative
  kErrorStalled = 64,  // the resident step waited 0.2 s for a block of its grid: the outputs of that call are invalid
};

struct DeviceScratch {
  std::int32_t* error_flag = nullptr;  // [1]
  std::int32_t* slot_busy = nullptr;   // [slots], zero between calls (duplicate-slot detection)
  void* workspace = nullptr;           // decode_step_cuda: device_workspace_bytes, zeroed once at allocation
  std::int64_t workspace_bytes = 0;    // (the kernels leave it zeroed again where it must be)
};

// Bytes of the device workspace decode_step_cuda needs for a state of `slots` slots and `vocab` ids.
std::int64_t device_workspace_bytes(std::int64_t slots, std::int64_t vocab);

void decode_step_cuda(const Config& config, const std::uint8_t* classes, std::int64_t vocab, StateView state,
                      const Batch& batch, const void* logits, DType dtype, std::int64_t row_stride,
                      std::int64_t* tokens, float* temperatures, float* entropies, DeviceScratch scratch,
                      void* stream);
void update_cuda(const Config& config, const std::uint8_t* classes, std::int64_t vocab, StateView state,
                 const Batch& batch, const float* entropies, float* temperatures, DeviceScratch scratch, void* stream);

// The path decode_step_cuda takes for `rows` rows of `vocab` logits on the current device, as the
// environment stands now: "resident" (one launch, every block resident at once; no top-k),
// "one-kernel" (RESET_NATIVE_SAMPLER_FUSED=1) or "kernels" (stats, top-k, top-p bins, sample).
const char* decode_step_cuda_path(const Config& config, std::int64_t rows, std::int64_t vocab, DType dtype);

}  // namespace reset_native::sampler
