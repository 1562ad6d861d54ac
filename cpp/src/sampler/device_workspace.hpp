// Layout of the CUDA decode step's preallocated device workspace (one buffer per ReSETState, sized
// by device_workspace_bytes). Each logits row is split into fixed chunks of kChunk elements, one
// block per chunk; blocks pass per-chunk partials, per-row histograms and top-p candidates through
// this buffer and the last block of a row to finish combines them. The chunk size is fixed (not
// derived from the batch size) so a row's float partial sums, hence its entropy, do not depend on
// the batch around it.
#pragma once
#include <cstdint>

#include "sampler/transition.hpp"

namespace reset_native::sampler::detail {

inline constexpr std::int64_t kChunk = 2048;  // logits per block
inline constexpr int kHistBins = 2048;        // the widest radix digit (11 bits)
// Top-p bins: a logit x of weight > 0 falls in bin floor(-(x - max) / T * kBinScale), clamped to
// kTopPBins - 1. A weight round(exp(d) * 2^24) is 0 below d = -17.33, so the bins are 1/59 nat wide
// and monotone in x: every logit of a lower bin is larger than every logit of a higher one.
inline constexpr int kTopPBins = 1024;
inline constexpr float kBinScale = 59.0f;
// Logits of the top-p boundary bin kept per row for the exact threshold; more -> a slower exact
// fallback inside the row's last block (reached only by rows with huge runs of near-equal logits).
inline constexpr int kCandidates = 2048;
// RESET_NATIVE_SAMPLER_CELL_MASSES (session 15): the sampling pass publishes a chunk's kept mass as kCells cells of
// 128 logits each (a warp's two halves), so the draw goes from the chunk to one cell's logits.
inline constexpr int kCells = 16;

struct Candidate {
  std::uint32_t key;     // order-preserving key of the logit
  std::uint32_t weight;  // fixed-point probability weight
  std::uint32_t index;   // position in the row
  std::uint32_t pad;
};

// Running (max, sum exp(z - max), sum (z - max) exp(z - max)) of a set of logits, with its first argmax.
struct EntropyPart {
  float max;
  double sum_exp;
  double sum_zexp;
  std::int64_t argmax;
  std::int32_t nan;
};

// What the later kernels of a step need to know about a row, written when its entropy is known.
struct RowPlan {
  double uniform;          // the row's random number for the draw
  double target;           // radix search: measure still to reach inside the chosen prefix
  std::int64_t argmax;     // fallback token
  std::int64_t slot;       // slot released at the end of the step; -1: the row did not claim one
  float zmax;              // row maximum
  float inv_t;             // 1 / temperature
  std::uint32_t prefix;    // radix search: key bits chosen so far
  std::uint32_t mask;      // ... and which bits those are
  std::uint32_t floor_key; // keep keys >= floor_key (top-k, then top-p threshold)
  std::int32_t active;     // 1: the row still needs sampling (not greedy, not rejected)
  std::int32_t bin;        // top-p boundary bin (the exact threshold is among its logits); -1: none
  std::int32_t pad;
};

// The row's slot prepared for its state update while the entropy is being reduced (stats pass, by
// the block of chunk 0): the claim's result, the state after the previous token was fed (spec step
// 1), the step means (steps 3-4) and the random number. It lives in the first bytes of the row's
// candidate buffer, which is free until the sampling pass.
struct RowPre {
  StepMeans means;
  double sums[kSlotSums];
  std::int64_t ints[kSlotInts];
  double uniform;
  std::int64_t slot;
  std::int32_t bad;  // claim_slot's result
  std::int32_t pad;
};
static_assert(sizeof(RowPre) <= kCandidates * sizeof(Candidate), "RowPre fits the row's candidate buffer");
static_assert(sizeof(RowPre) % 8 == 0, "RowPre is whole 8-byte words");

// Resident step (decode_step_resident.cuh): every block of a row is resident at once and blocks
// exchange values as 64-bit tagged words, value << 32 | tag, written with one store and read by
// polling until the tag is the step's (no fence, no arrival counter). Per row, in words:
// kPartWords per chunk (its entropy part), kPreWords (the prepared slot: step means, uniform, claim),
// kKeptWords per chunk (its kept mass above the top-p boundary bin, two halves, and its count of
// boundary-bin logits), 2 * kChunkCandidates per chunk (those logits: key, weight) and kPlanWords
// (what the row's lead block tells the others: max, 1 / T, go on or not, boundary bin).
inline constexpr int kPartWords = 4;
inline constexpr int kPreWords = 7;
inline constexpr int kPlanWords = 4;
inline constexpr int kKeptWords = 3;
// Boundary-bin logits one chunk publishes; a chunk with more sends the row to the exact fallback.
inline constexpr int kChunkCandidates = 32;

inline std::int64_t tagged_words_per_row(std::int64_t chunks) {
  return chunks * (kPartWords + kKeptWords + 2 * kChunkCandidates) + kPreWords + kPlanWords;
}

struct WorkspaceLayout {
  std::int64_t chunks = 0;  // blocks per row
  std::int64_t counters = 0, plans = 0, entropy = 0, masses = 0, hist = 0;  // byte offsets
  std::int64_t candidate_counts = 0, candidates = 0;
  std::int64_t flags = 0, grid = 0;  // one-kernel step: per-row pass flags, grid counters
  std::int64_t steps = 0, tagged = 0;  // resident step: per-row step counter (the tag), tagged words
  std::int64_t cells = 0;              // sampling pass: kCells kept masses (uint32) per chunk
  std::int64_t bytes = 0;
};

inline std::int64_t chunks_of(std::int64_t vocab) { return (vocab + kChunk - 1) / kChunk; }

inline WorkspaceLayout workspace_layout(std::int64_t slots, std::int64_t vocab) {
  const auto align = [](std::int64_t n) { return (n + 255) / 256 * 256; };
  WorkspaceLayout l;
  l.chunks = chunks_of(vocab);
  std::int64_t at = 0;
  l.counters = at;
  at = align(at + slots * static_cast<std::int64_t>(sizeof(std::uint32_t)));
  l.plans = at;
  at = align(at + slots * static_cast<std::int64_t>(sizeof(RowPlan)));
  l.entropy = at;
  at = align(at + slots * l.chunks * static_cast<std::int64_t>(sizeof(EntropyPart)));
  l.masses = at;
  at = align(at + slots * l.chunks * static_cast<std::int64_t>(sizeof(std::uint64_t)));
  l.hist = at;
  at = align(at + slots * kHistBins * static_cast<std::int64_t>(sizeof(std::uint64_t)));
  l.candidate_counts = at;
  at = align(at + slots * static_cast<std::int64_t>(sizeof(std::uint32_t)));
  l.candidates = at;
  at = align(at + slots * kCandidates * static_cast<std::int64_t>(sizeof(Candidate)));
  l.flags = at;
  at = align(at + slots * static_cast<std::int64_t>(sizeof(std::uint32_t)));
  l.grid = at;
  at = align(at + 2 * static_cast<std::int64_t>(sizeof(std::uint32_t)));
  l.steps = at;
  at = align(at + slots * static_cast<std::int64_t>(sizeof(std::uint32_t)));
  l.tagged = at;
  at = align(at + slots * tagged_words_per_row(l.chunks) * static_cast<std::int64_t>(sizeof(std::uint64_t)));
  l.cells = at;
  at = align(at + slots * l.chunks * kCells * static_cast<std::int64_t>(sizeof(std::uint32_t)));
  l.bytes = at;
  return l;
}

}  // namespace reset_native::sampler::detail
