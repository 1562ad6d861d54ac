// Per-row device helpers of the GPU decode step: workspace views, slot claims, chunk loads, per-thread
// entropy partials and the staged slot state.
// Part of decode_step.cu's translation unit: included only there, in order.
#pragma once

namespace reset_native::sampler::cuda_detail {

using detail::Candidate;
using detail::kBinScale;
using detail::kCandidates;
using detail::kCells;
using detail::kHistBins;
using detail::kTopPBins;
using detail::RowPlan;
using cuda_core::pdl_trigger;
using cuda_core::pdl_wait;

struct Workspace {
  unsigned* counters;               // [slots] blocks of a row done with the current pass
  RowPlan* plans;                   // [slots]
  EntropyPart* entropy;             // [slots, chunks]
  unsigned long long* masses;       // [slots, chunks]
  unsigned long long* hist;         // [slots, kHistBins], zero between passes
  unsigned* candidate_counts;       // [slots], zero between steps
  Candidate* candidates;            // [slots, kCandidates]
  unsigned* flags;                  // [slots] one-kernel step: bumped when a row's pass is combined
  unsigned* grid;                   // [2] one-kernel and resident steps: rows that claimed their slot, rows done
  unsigned* steps;                  // [slots] resident step: steps run per row (the tag of the next)
  unsigned long long* tagged;       // [slots, row_words] resident step: tagged words
  unsigned chunks;
  unsigned row_words;
  unsigned* cells;                  // [slots, chunks, kCells] sampling pass, a.cell_masses: kept mass per cell
};

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
  Workspace ws;
  // Switches of the kernels path, read from the environment at every call (decode_step.cu: read_switches):
  // sample_picks: the sample pass picks the top-p boundary bin itself (RESET_NATIVE_SAMPLER_SAMPLE_PICKS).
  int sample_picks;
  // sub_bins: the threshold inside the top-p boundary bin through sub-bins (RESET_NATIVE_SAMPLER_SUB_BINS).
  int sub_bins;
  // lean_stats: the stats pass's exps without __expf's subnormal path where none needs it
  // (RESET_NATIVE_SAMPLER_LEAN_STATS).
  int lean_stats;
  // lean_draw: the sample pass's last block with fewer barriers and lean draw weights
  // (RESET_NATIVE_SAMPLER_LEAN_DRAW).
  int lean_draw;
  // Session 11's switches (decode_step.cu: read_switches; all on by default), each the same bits:
  // stats_loads / bins_loads / sample_loads: how each pass loads its chunks (kLoadChecked, kLoadFull or, bins and
  // sample only, kLoadVec: RESET_NATIVE_SAMPLER_FULL_LOADS / _VEC_LOADS);
  int stats_loads, bins_loads, sample_loads;
  // flat_bins: the bins pass weighs and bins all of a thread's logits first, then adds them with shared-memory
  // reductions at precomputed addresses (RESET_NATIVE_SAMPLER_FLAT_BINS; with the lean weights only);
  int flat_bins;
  // stats_range: the stats pass's test for bare exps on each thread's smallest logit (warp_chunk_part;
  // RESET_NATIVE_SAMPLER_STATS_RANGE, with lean_stats only);
  int stats_range;
  // warp_redux: the sample pass's warp sums of kept mass and candidate counts as 32-bit redux instructions, the
  // candidate scan only in warps that hold candidates (RESET_NATIVE_SAMPLER_WARP_REDUX).
  int warp_redux;
  // kept_sum: the sample pass sums a thread's kept mass inside its weights' loop (kept_weights_summed;
  // RESET_NATIVE_SAMPLER_KEPT_SUM, with the lean weights only).
  int kept_sum;
  // combine_loads: the stats pass's row combine loads a lane's cached parts before noting the first
  // (warp_combine_parts; RESET_NATIVE_SAMPLER_COMBINE_LOADS, session 13).
  int combine_loads;
  // prep_first: the grouped stats pass's part 0 prepares the row's slot instead of its last part
  // (RESET_NATIVE_SAMPLER_PREP_FIRST, session 14).
  int prep_first;
  // cell_masses: the sampling pass publishes every warp's kept mass as two cells of 128 logits (no block sum), and
  // the draw goes from its chunk to one cell (decode_step_cells.cuh; RESET_NATIVE_SAMPLER_CELL_MASSES, session 15).
  int cell_masses;
  // Session 16's switch (decode_step.cu: read_switches), the same bits on and off:
  // pre_warp: the stats pass's last block loads the row's RowPre with warp 1 while warp 0 combines the chunks' parts
  // (RESET_NATIVE_SAMPLER_PRE_WARP);
  int pre_warp;
  // Session 17's switch (branch sampler18; decode_step.cu: read_switches), the same bits on and off:
  // owner_draw: in the draw with the cells (decode_step_cells.cuh), the warp of the chunk that holds the quantile finds
  // its segment (a 16-lane scan) and the token, with no barrier after the chunks' scan
  // (RESET_NATIVE_SAMPLER_OWNER_DRAW; on by default where rows x chunks > SMs).
  int owner_draw;
  // Session 18's switch (branch sampler20; decode_step.cu: read_switches), the same bits on and off:
  // early_scan: with the cells and the lean counted threshold, the draw scans the chunks' masses of the cells and the
  // surely kept candidates inside the threshold's barriers and adds the boundary sub-bin's kept candidates after it
  // (decode_step_early_scan.cuh; RESET_NATIVE_SAMPLER_EARLY_SCAN, on by default with top-p).
  int early_scan;
};

template <int kDType>
__device__ __forceinline__ const void* row_logits(const KernelArgs& a, std::int64_t row) {
  return static_cast<const char*>(a.logits) + static_cast<std::size_t>(row * a.row_stride) * (kDType == 0 ? 4 : 2);
}

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

// True when claim_slot took the slot (the row must release it) despite the other errors in `bad`.
__device__ __forceinline__ bool claimed(int bad) {
  return !(bad & (kErrorSlotRange | kErrorTokenRange | kErrorSlotTwice));
}

// Marks a rejected row: flag for the host, sentinel outputs, slot untouched.
__device__ void reject_row(const KernelArgs& a, std::int64_t row, int bad, float entropy) {
  atomicOr(a.scratch.error_flag, bad);
  if (a.tokens) a.tokens[row] = -1;  // update_kernel has no tokens
  a.temperatures[row] = NAN;
  if (a.entropies) a.entropies[row] = entropy;
}

// Tempered distance of logit x to the row maximum, m = (x - zmax) / T rounded as weight() and
// topp_bin() use it: the per-logit passes compute it once for both.
__device__ __forceinline__ float tempered(float x, float zmax, float inv_t) {
  return __fmul_rn(__fsub_rn(x, zmax), inv_t);
}

// floor(g) of a float 0 <= g < 2^23 (or -0) without a float-to-int conversion (those run at a quarter of
// the rate of adds, 16 per clock per SM, and the per-logit passes did two per logit): g + 2^23 lies in
// [2^23, 2^24), where the floats are exactly the integers, so the sum rounded down is 2^23 + floor(g), and
// its bits are 0x4B000000 + floor(g). Exact, not an approximation.
constexpr float kTwo23 = 8388608.0f;
constexpr unsigned kTwo23Bits = 0x4B000000u;
__device__ __forceinline__ unsigned floor_below_2_23(float g) {
  return __float_as_uint(__fadd_rd(g, kTwo23)) - kTwo23Bits;
}

// exp(m) as __expf computes it (ex2.approx of RN(m * log2 e)), for m <= 0. kLean: the bare ex2.approx.ftz,
// without __expf's handling of subnormal results (a compare and two predicated multiplies per call): the
// same bits wherever RN(m * log2 e) >= -126, and 0 instead of a value below 2^-126 elsewhere, where the
// weight below is 0 either way (RN(RN(e * 2^24) + 0.5) = 0.5 for every e < 2^-25).
constexpr float kLog2e = 1.4426950216293334961f;  // __expf's constant, 0x3FB8AA3B
template <bool kLean>
__device__ __forceinline__ float weight_exp(float m) {
  if constexpr (kLean) {
    float e;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(e) : "f"(__fmul_rn(m, kLog2e)));
    return e;
  } else {
    return __expf(m);
  }
}

// Fixed-point probability weight round(exp(m) * 2^24), in [0, 2^24], of a logit at tempered distance m:
// floor(g) of g = RN(RN(exp(m) * 2^24) + 0.5). Explicit-rounding intrinsics: no FMA contraction may make two
// passes disagree on a weight. kLean (the same bits): weight_exp's bare ex2, and floor(g) by
// floor_below_2_23 when g < 2^23, and from g's bits when g is in [2^23, 2^24] (then an integer: 2^23 + its
// 23 mantissa bits, 2^24 for bits 0x4B800000; m <= 0, so g <= RN(2^24 + 0.5) = 2^24), instead of a conversion.
template <bool kLean = false>
__device__ __forceinline__ unsigned weight_at(float m) {
  const float w = weight_exp<kLean>(m);
  const float g = __fadd_rn(__fmul_rn(w, 16777216.0f), 0.5f);
  if constexpr (kLean) {
    return g < kTwo23 ? floor_below_2_23(g) : __float_as_uint(g) - (kTwo23Bits - 0x800000u);
  } else {
    return static_cast<unsigned>(g);
  }
}

// Top-p bin of a logit of weight > 0 at tempered distance m: its distance below the maximum in
// 1/kBinScale nats. -m is exactly RN(zmax - x) / T's rounding (round-to-nearest is symmetric), so a
// larger logit never gets a larger bin. kLean (the same bits for every m <= 0, the only ones that
// occur, -inf included): the truncation as floor_below_2_23 (x = -m * kBinScale >= 0 or -0); an x of
// 2^23 or more gives at least 2^23 (bits of at least 2^24), clamped like the conversion's saturation.
template <bool kLean = false>
__device__ __forceinline__ int bin_at(float m) {
  const float x = __fmul_rn(-m, kBinScale);
  if constexpr (kLean) {
    return static_cast<int>(min(floor_below_2_23(x), static_cast<unsigned>(kTopPBins - 1)));
  } else {
    return min(__float2int_rz(x), kTopPBins - 1);
  }
}

// The same from the logit.
__device__ __forceinline__ unsigned weight(float x, float zmax, float inv_t) { return weight_at(tempered(x, zmax, inv_t)); }
__device__ __forceinline__ int topp_bin(float x, float zmax, float inv_t) { return bin_at(tempered(x, zmax, inv_t)); }

// Whether a logit passes the top-k floor (floor_key 0: no floor, every key passes; order_key is then
// not computed).
__device__ __forceinline__ bool above_floor(float x, unsigned floor_key) {
  return floor_key == 0u || order_key(x) >= floor_key;
}

// This thread's kPerThread logits of a chunk (-inf past the row's end).
template <int kDType>
__device__ __forceinline__ void load_chunk(const void* z, std::int64_t begin, std::int64_t end, float (&x)[kPerThread]) {
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    const std::int64_t i = begin + j * kThreads + threadIdx.x;
    x[j] = i < end ? load_logit<kDType>(z, i) : -INFINITY;
  }
}

// How a pass loads a chunk (session 11's switches; KernelArgs::load_mode): kLoadChecked as load_chunk, every
// element against the row's end; kLoadFull: a chunk wholly inside the row without those checks (32-bit
// offsets from the chunk's start: the same elements in the same registers, RESET_NATIVE_SAMPLER_FULL_LOADS);
// kLoadVec: a whole chunk in 16-byte loads (RESET_NATIVE_SAMPLER_VEC_LOADS, only where the row's chunks are
// 16-byte aligned), which puts other elements in a thread's registers (vec_index): only for the passes whose
// results are exact integer sums over the chunk's logits, independent of which thread holds which (bins,
// sample). A partial chunk (the row's last) always loads checked, in load_chunk's layout.
constexpr int kLoadChecked = 0, kLoadFull = 1, kLoadVec = 2;
constexpr int kVecLoads = 2;  // 16-byte loads per thread and chunk (fp32: 4 logits each; 16-bit: 8 and 8 ...)

// Element offset of x[j] from the chunk's start in kLoadVec's layout: fp32, float4 k of the thread holds
// x[4k..4k+3] = elements 1024 k + 4 t + (0..3); 16-bit, one 16-byte load holds x[0..7] = elements 8 t + (0..7).
template <int kDType>
__device__ __forceinline__ unsigned vec_offset(int j) {
  constexpr int kPer = kDType == 0 ? 4 : 8;  // logits per 16-byte load
  return static_cast<unsigned>((j / kPer) * (kThreads * kPer) + threadIdx.x * kPer + j % kPer);
}

// Whether the chunk [begin, end) is loaded in kLoadVec's layout under `mode`.
__device__ __forceinline__ bool vec_layout(int mode, std::int64_t begin, std::int64_t end) {
  return mode == kLoadVec && end - begin == kChunk;
}

template <int kDType>
__device__ __forceinline__ void load_chunk_full(const void* z, std::int64_t begin, float (&x)[kPerThread]) {
  if constexpr (kDType == 0) {
    const float* p = static_cast<const float*>(z) + begin + threadIdx.x;
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) x[j] = __ldg(p + j * kThreads);
  } else {
    const unsigned short* p = static_cast<const unsigned short*>(z) + begin + threadIdx.x;
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) x[j] = widen_half<kDType>(__ldg(p + j * kThreads));
  }
}

template <int kDType>
__device__ __forceinline__ void load_chunk_vec(const void* z, std::int64_t begin, float (&x)[kPerThread]) {
  static_assert(kPerThread == 8, "kLoadVec's layout: 8 logits per thread");
  if constexpr (kDType == 0) {
    const float4* p = reinterpret_cast<const float4*>(static_cast<const float*>(z) + begin) + threadIdx.x;
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      const float4 v = __ldg(p + k * kThreads);
      x[4 * k] = v.x;
      x[4 * k + 1] = v.y;
      x[4 * k + 2] = v.z;
      x[4 * k + 3] = v.w;
    }
  } else {
    const uint4 v = __ldg(reinterpret_cast<const uint4*>(static_cast<const unsigned short*>(z) + begin) + threadIdx.x);
    const unsigned words[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      x[2 * k] = widen_half<kDType>(static_cast<unsigned short>(words[k] & 0xFFFFu));
      x[2 * k + 1] = widen_half<kDType>(static_cast<unsigned short>(words[k] >> 16));
    }
  }
}

// The chunk [begin, end) of row z into x under `mode` (block-uniform).
template <int kDType>
__device__ __forceinline__ void load_chunk_as(int mode, const void* z, std::int64_t begin, std::int64_t end,
                                              float (&x)[kPerThread]) {
  if (mode != kLoadChecked && end - begin == kChunk) {
    if (mode == kLoadVec) {
      load_chunk_vec<kDType>(z, begin, x);
    } else {
      load_chunk_full<kDType>(z, begin, x);
    }
  } else {
    load_chunk<kDType>(z, begin, end, x);
  }
}

// The same, before pdl_wait, in the kernels after the stats kernel of the same step: the stats kernel's
// blocks read the logits only after their own pdl_wait (the logits' producer had finished and its
// writes were visible) and let the next kernel launch only after that, so a later kernel of the step
// may read the logits as soon as it starts. That hides the load behind the previous kernel's tail.
template <int kDType>
__device__ __forceinline__ void load_early_chunk(const KernelArgs& a, std::int64_t row, std::int64_t begin,
                                                 std::int64_t end, float (&x)[kPerThread], int mode = kLoadChecked) {
  load_chunk_as<kDType>(mode, row_logits<kDType>(a, row), begin, end, x);
}

// Phased loads (session 13, RESET_NATIVE_SAMPLER_PHASED_LOADS; kPhased in the grouped passes). ptxas counts all
// of a loop's streaming loads on one scoreboard, and a wait on it waits for every load it counts: the grouped
// passes' loop (load the next chunk, then use this one) made each use of a chunk wait also for the next chunk's
// loads it had just issued (bench/probes/sass_sb_waits.py --loads), so a warp had one chunk in flight only while
// it waited, none while it computed. kPhased makes the next chunk's addresses depend on every logit of the
// current chunk through a runtime zero (opaque_zero), so ptxas must wait for the current chunk before it issues
// the next one's loads: the wait then finds only the current chunk outstanding, and the next chunk's loads stay
// in flight through this chunk's work. The same elements are loaded into the same registers: the same bits.
// A zero the compiler cannot fold: make_workspace allows at most 65535 chunks of 2048, so vocab < 2^27.
__device__ __forceinline__ unsigned opaque_zero(const KernelArgs& a) { return static_cast<unsigned>(a.vocab >> 32); }

// z offset by 0 bytes, an offset computed from every logit of x (so from every load of x's chunk).
__device__ __forceinline__ const void* after_chunk(const void* z, const float (&x)[kPerThread], unsigned zero) {
  unsigned bits = 0u;
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) bits |= __float_as_uint(x[j]);
  return static_cast<const char*>(z) + (bits & zero);
}

// The chunk `next` of the row into xn, loaded under `mode`; kPhased: only once x's chunk has arrived.
template <int kDType, bool kPhased>
__device__ __forceinline__ void load_next_chunk(const KernelArgs& a, std::int64_t row, unsigned next, int mode,
                                                const float (&x)[kPerThread], float (&xn)[kPerThread]) {
  const void* z = row_logits<kDType>(a, row);
  if constexpr (kPhased) z = after_chunk(z, x, opaque_zero(a));
  const std::int64_t nb = static_cast<std::int64_t>(next) * kChunk;
  load_chunk_as<kDType>(mode, z, nb, min(nb + kChunk, a.vocab), xn);
}

// One round of a grouped pass (a block taking chunks part, part + parts, ... of its row): up to kWarps
// chunks from `round` on, each handed to on_chunk(k, c) with x holding chunk c while the next chunk's
// load is in flight. Returns the round's chunk count; x then holds the next round's first chunk.
// mode: how the chunks are loaded (load_chunk_as; the caller loaded the first one the same way).
// kPhased: see load_next_chunk.
template <int kDType, bool kPhased = false, class OnChunk>
__device__ __forceinline__ int grouped_round(const KernelArgs& a, std::int64_t row, unsigned round, unsigned parts,
                                             float (&x)[kPerThread], OnChunk&& on_chunk, int mode = kLoadChecked) {
  int k = 0;
  for (unsigned c = round; k < kWarps && c < a.ws.chunks; ++k, c += parts) {
    const unsigned next = c + parts;
    float xn[kPerThread];
    if (next < a.ws.chunks) load_next_chunk<kDType, kPhased>(a, row, next, mode, x, xn);
    on_chunk(k, c);
    if (next < a.ws.chunks) {
#pragma unroll
      for (int j = 0; j < kPerThread; ++j) x[j] = xn[j];
    }
  }
  return k;
}

// The warp's part of a chunk (valid in every lane; merge_warp_parts / block_chunk_part finish the chunk): the
// maximum of the warp's kPerThread * 32 logits and the first index of it, then fp32 sums relative to that
// maximum (explicit roundings, so every kernel computing it gets the same bits). A NaN or +inf anywhere flags
// the part (its row is rejected, so its other fields are then never used); -inf logits add nothing.
// lean (a.lean_stats, the stats pass only): when no finite logit of the warp has an exp argument below -126
// (so __expf would take no subnormal path: the usual case, unless the chunk spans more than 87 nats), the
// exps are bare ex2.approx.ftz, the instruction __expf runs on such arguments, and -inf logits go through the
// same code instead of a branch: exp(-inf) = +0 adds nothing to the sum, and their fma gets -FLT_MAX in place of
// -inf, so -FLT_MAX * +0 = -0 adds nothing either (the same bits: tests/test_sampler_gpu_switches.py).
// range (a.stats_range, RESET_NATIVE_SAMPLER_STATS_RANGE; with lean): the test for bare exps on the thread's
// smallest logit alone where it holds no -inf, NaN or +inf: RN(RN(x - max) * log2 e) is monotone in x, so the
// smallest logit has the smallest exp argument, and all of them are >= -126 iff its is (one min per logit instead
// of two compares and a predicate merge). Otherwise (a -inf, NaN or +inf in the thread) the test per logit as
// without it. The same decision, so the same bits.
__device__ __forceinline__ ChunkPart warp_chunk_part(const float (&x)[kPerThread], std::int64_t begin,
                                                     bool lean = false, bool range = false) {
  float m = -INFINITY;
  int at = -1;  // j of this thread's first maximum
  bool flagged = false;
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    flagged |= !(x[j] < INFINITY);  // NaN or +inf
    if (x[j] > m) {
      m = x[j];
      at = j;
    }
  }
  ChunkPart p;
  p.max = warp_max(m);
  p.nan = __any_sync(kFullMask, flagged);
  // Index begin + j * kThreads + threadIdx.x grows with j first: the smallest over the warp is the first maximum.
  const bool holds = at >= 0 && m == p.max;
  p.argmax = warp_first_index(holds ? static_cast<std::int32_t>(begin + at * kThreads + threadIdx.x) : INT32_MAX);
  float se = 0.0f, sz = 0.0f;
  if (p.max != -INFINITY) {
    float d[kPerThread], t[kPerThread];
    bool bare = false;  // every exp argument of the warp's finite logits >= -126
    if (lean) {
      bool normal = true;
#pragma unroll
      for (int j = 0; j < kPerThread; ++j) {
        d[j] = __fsub_rn(x[j], p.max);
        t[j] = __fmul_rn(d[j], kLog2e);
      }
      bool decided = false;
      if (range && !flagged) {
        float low = x[0];  // the thread's smallest logit (no NaN here: flagged)
#pragma unroll
        for (int j = 1; j < kPerThread; ++j) low = fminf(low, x[j]);
        if (low != -INFINITY) {
          normal = __fmul_rn(__fsub_rn(low, p.max), kLog2e) >= -126.0f;
          decided = true;
        }
      }
      if (!decided) {
#pragma unroll
        for (int j = 0; j < kPerThread; ++j) normal &= x[j] == -INFINITY || t[j] >= -126.0f;
      }
      bare = __all_sync(kFullMask, normal);
    }
    if (bare) {
#pragma unroll
      for (int j = 0; j < kPerThread; ++j) {
        float e;
        asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(e) : "f"(t[j]));
        se = __fadd_rn(se, e);
        sz = __fmaf_rn(fmaxf(d[j], -FLT_MAX), e, sz);
      }
    } else {
#pragma unroll
      for (int j = 0; j < kPerThread; ++j) {
        if (x[j] == -INFINITY) continue;
        const float dj = __fsub_rn(x[j], p.max);
        const float e = __expf(dj);
        se = __fadd_rn(se, e);
        sz = __fmaf_rn(dj, e, sz);
      }
    }
  }
  p.sum_exp = warp_sum(se);
  p.sum_zexp = warp_sum(sz);
  return p;
}

// The chunk's part by the whole block, valid in every thread (two barriers: see block_chunk_part).
__device__ __forceinline__ ChunkPart chunk_part(const float (&x)[kPerThread], std::int64_t begin, ChunkPart* parts,
                                                bool lean = false, bool range = false) {
  return block_chunk_part(warp_chunk_part(x, begin, lean, range), parts);
}

// ---- The row's slot, prepared while its entropy is reduced ------------------------------------------
// Everything of the state update that does not need the new entropy (the slot claim, feeding the
// previous token, the step means, the random number) is done by the block of chunk 0 before it
// arrives (RowPre, device_workspace.hpp), so the row's last block only merges the entropy parts and
// finishes: temperature_for, append_entropy, the write-back and the plan.

using detail::RowPre;

// Where chunk 0's block leaves the row's RowPre for the last block: the start of the row's candidate
// buffer, unused until the sampling pass.
__device__ __forceinline__ RowPre* row_pre(const KernelArgs& a, std::int64_t row) {
  return reinterpret_cast<RowPre*>(a.ws.candidates + row * kCandidates);
}

__device__ __forceinline__ std::int64_t row_slot(const KernelArgs& a, std::int64_t row) {
  return a.slots ? a.slots[row] : row;
}

// All threads of the preparing block: the slot's window into shared memory (the state machine
// re-sums it oldest to newest, one thread, so it must not wait on global loads in that loop).
__device__ void stage_window(const KernelArgs& a, std::int64_t row, float* s_window) {
  const std::int64_t slot = row_slot(a, row);
  if (slot < 0 || slot >= a.state.slots) return;  // rejected by claim_slot
  const float* window = a.state.window_entropies + slot * a.state.window;
  for (int j = threadIdx.x; j < a.state.window; j += kThreads) s_window[j] = window[j];
}

// What the preparation reads, staged in shared memory as it arrives (nothing is held in registers
// across the entropy reduction but the claim's result).
struct PrepShared {
  double sums[kSlotSums];
  std::int64_t ints[kSlotInts];
  std::int64_t last;
  std::uint8_t last_class, prev_class;
};

constexpr unsigned kPreparer = 32;  // the thread that claims the slot and runs prepare_row (warp 1)

// All threads of the preparing block, first thing: the claim, the slot's state and the two class
// lookups, each on its own warp (warps 1-4) so that their round trips overlap each other's and the
// chunk's. Returns the claim's result in kPreparer (0 elsewhere).
__device__ int prepare_loads(const KernelArgs& a, std::int64_t row, PrepShared& p) {
  const std::int64_t slot = row_slot(a, row);
  const bool valid = slot >= 0 && slot < a.state.slots;  // otherwise claim_slot rejects the row
  const std::int64_t* ints = a.state.ints + slot * kSlotInts;
  int bad = 0;
  if (threadIdx.x == kPreparer) {
    std::int64_t claimed_slot;
    bad = claim_slot(a, row, &claimed_slot);
  } else if (threadIdx.x == 64 && valid) {
    for (int k = 0; k < kSlotSums; ++k) p.sums[k] = a.state.sums[slot * kSlotSums + k];
    for (int k = 0; k < kSlotInts; ++k) p.ints[k] = ints[k];
  } else if (threadIdx.x == 96) {
    const std::int64_t last = a.last_tokens[row];
    p.last = last;
    p.last_class = last >= 0 && last < a.vocab ? a.classes[last] : 0;  // out of range: rejected, never used
  } else if (threadIdx.x == 128 && valid) {
    const std::int64_t prev = ints[kLastToken];
    p.prev_class = prev >= 0 && prev < a.vocab ? a.classes[prev] : 0;
  }
  return bad;
}

// kPreparer, after prepare_loads, stage_window and a __syncthreads: spec step 1, the step means and
// the random number, into `pre` (shared) and the row's RowPre (global, for a last block elsewhere).
__device__ void prepare_row(const KernelArgs& a, std::int64_t row, int bad, const PrepShared& p,
                            const float* s_window, RowPre& pre) {
  const std::int64_t slot = row_slot(a, row);
  pre.slot = slot;
  pre.bad = bad;
  if (slot >= 0 && slot < a.state.slots) {
    double sums[kSlotSums];
    std::int64_t ints[kSlotInts];
    for (int k = 0; k < kSlotSums; ++k) sums[k] = p.sums[k];
    for (int k = 0; k < kSlotInts; ++k) ints[k] = p.ints[k];
    detail::observe_token_classes(sums, ints, p.last, p.last_class, p.prev_class);
    pre.uniform = detail::philox_uniform(static_cast<std::uint64_t>(ints[kSeed]),
                                         static_cast<std::uint64_t>(ints[kGlobalCount]));
    pre.means = detail::step_means(a.params, s_window, sums, ints);
    for (int k = 0; k < kSlotSums; ++k) pre.sums[k] = sums[k];
    for (int k = 0; k < kSlotInts; ++k) pre.ints[k] = ints[k];
  }
  RN_TRACE_HERE(0, 16);  // computed; the global copy follows (mark 14 after it)
  *row_pre(a, row) = pre;
}

// The row's last block, all threads, when it is not the preparing block: the RowPre into shared
// memory (visible after the next __syncthreads), word i by thread first + i.
constexpr unsigned kPreWordsOf = static_cast<unsigned>(sizeof(RowPre) / 8);
static_assert(kPreWordsOf <= 32, "one word per lane of one warp");
__device__ void load_pre(const KernelArgs& a, std::int64_t row, RowPre& pre, unsigned first = 0u) {
  const unsigned i = threadIdx.x - first;  // wraps past kPreWordsOf below first
  if (i < kPreWordsOf) {
    reinterpret_cast<unsigned long long*>(&pre)[i] =
        __ldcg(reinterpret_cast<const unsigned long long*>(row_pre(a, row)) + i);
  }
}

// The two temperatures' 1 / T as the plan holds them, for finish_row's fast form: computed by another thread of the
// last block while warp 0 combines the parts (stats_kernel's kFast). The same division and rounding as finish_row's
// static_cast<float>(1.0 / t) (an IEEE double division, then to float), of the same doubles: temperature_for returns
// p.t_low or p.t_high itself.
struct InvTemperatures {
  float low, high;
};
__device__ __forceinline__ InvTemperatures inv_temperatures(const detail::TransitionParams& p) {
  return InvTemperatures{static_cast<float>(1.0 / p.t_low), static_cast<float>(1.0 / p.t_high)};
}

// The row's entropy is known: finish the state update from the prepared slot, write the slot back
// and plan the rest of the step. One thread, once `pre` is complete in shared memory.
// kFast (RESET_NATIVE_SAMPLER_FAST_FINISH): the plan's 1 / T from `inv` (inv_temperatures, in shared memory) instead
// of a double division after the temperature is chosen: the same bits, one division fewer on the row's serial chain.
template <bool kFast = false>
__device__ void finish_row(const KernelArgs& a, std::int64_t row, const EntropyPart& all, const RowPre& pre,
                           const InvTemperatures* inv = nullptr) {
  const float entropy = all.max == -INFINITY || all.nan
                            ? NAN
                            : static_cast<float>(fmax(log(all.sum_exp) - all.sum_zexp / all.sum_exp, 0.0));
  const std::int64_t slot = pre.slot;
  int bad = pre.bad;
  if (all.nan) bad |= kErrorNaN;
  else if (all.max == -INFINITY) bad |= kErrorAllNegInf;
  RowPlan plan{};
  plan.slot = -1;
  plan.active = 0;
  plan.bin = -1;
  if (bad) {
    reject_row(a, row, bad, entropy);
    if (claimed(bad)) plan.slot = slot;
  } else {
    plan.uniform = pre.uniform;
    double sums[kSlotSums];
    std::int64_t ints[kSlotInts];
    for (int k = 0; k < kSlotSums; ++k) sums[k] = pre.sums[k];
    for (int k = 0; k < kSlotInts; ++k) ints[k] = pre.ints[k];
    const double t = detail::temperature_for(a.params, pre.means, entropy);
    const std::int64_t head = detail::append_entropy(a.params, nullptr, sums, ints, entropy);
    a.state.window_entropies[slot * a.state.window + head] = entropy;
    for (int k = 0; k < kSlotSums; ++k) a.state.sums[slot * kSlotSums + k] = sums[k];
    for (int k = 0; k < kSlotInts; ++k) a.state.ints[slot * kSlotInts + k] = ints[k];
    a.temperatures[row] = static_cast<float>(t);
    if (a.entropies) a.entropies[row] = entropy;
    plan.slot = slot;
    plan.argmax = all.argmax;
    if (t <= kGreedyTemperature) {
      a.tokens[row] = all.argmax;
    } else {
      plan.active = 1;
      plan.zmax = all.max;
      if constexpr (kFast) {
        plan.inv_t = t == a.params.t_high ? inv->high : inv->low;  // t is one of the two (temperature_for)
      } else {
        plan.inv_t = static_cast<float>(1.0 / t);
      }
      plan.target = static_cast<double>(a.top_k);  // the top-k search's target, when there is one
    }
  }
  a.ws.plans[row] = plan;
}

}  // namespace reset_native::sampler::cuda_detail
