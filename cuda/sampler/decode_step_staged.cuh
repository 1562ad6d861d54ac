// Staged chunk loads of the grouped passes (session 13, RESET_NATIVE_SAMPLER_STAGED_LOADS): a block's chunks stream
// through kStages shared-memory stages filled by cp.async, so that kStages chunks per thread are in flight while the
// thread works on the one in its registers, with no register held for them. (Register loads give a thread one chunk
// in flight at most: ptxas counts a loop's loads on one scoreboard, and a wait on it waits for all of them; see
// load_next_chunk.) Only where the rows are 16-byte aligned (the copies are 16 bytes). Two layouts: the bins and
// sample passes' kLoadVec layout (kVecLayout: each thread copies and later reads its own 16-byte pieces, no barrier)
// and the stats pass's load_chunk layout (kStridedLayout: x[j] = element j * kThreads + t, which its fp32 sums depend
// on; each warp copies the 8 runs of 32 logits its lanes read, and syncs before reading them and before refilling).
// A row's partial last chunk is loaded from global memory at its turn (load_chunk's layout, as load_chunk_as does).
// The same elements in the same registers: the same bits.
// Part of decode_step.cu's translation unit: included only there, in order.
#pragma once

namespace reset_native::sampler::cuda_detail {

constexpr int kStages = 2;

// How a grouped pass streams its chunks: registers (the next chunk's loads issued before this chunk's work, as
// before session 13), phased (load_next_chunk's kPhased) or staged (here; where the rows are 16-byte aligned, else
// the phased form's code, which ptxas schedules there like the plain one).
constexpr int kStreamPlain = 0, kStreamPhased = 1, kStreamStaged = 2;

constexpr int kVecLayout = 0, kStridedLayout = 1;

// A block's stages. kVecLayout: stage s holds thread t's 16-byte pieces at [s][k * kThreads + t]; kStridedLayout:
// warp w's 1 KB (fp32; 512 B for 16-bit logits) at [s][64 w ...], the runs j = 0..7 of its 32 logits one after the
// other.
struct ChunkStages {
  uint4 piece[kStages][kVecLoads * kThreads];
};

// 16-byte pieces per thread and chunk in kLoadVec's layout: fp32 two (4 logits each), 16-bit one (8 logits).
template <int kDType>
constexpr int kVecPieces = kDType == 0 ? 2 : 1;

__device__ __forceinline__ void copy_16_async(const void* shared, const void* global) {
  const unsigned to = static_cast<unsigned>(__cvta_generic_to_shared(shared));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(to), "l"(global) : "memory");
}

// Closes this thread's copies since the last commit into one group (an empty group where there were none, so that
// group i is always the block's chunk i).
__device__ __forceinline__ void commit_copies() { asm volatile("cp.async.commit_group;" ::: "memory"); }

// Until at most kStages - 1 of this thread's groups are in flight: the oldest one has landed.
__device__ __forceinline__ void wait_oldest_copies() {
  asm volatile("cp.async.wait_group %0;" ::"n"(kStages - 1) : "memory");
}

// Until none is in flight (a block that leaves early).
__device__ __forceinline__ void wait_all_copies() { asm volatile("cp.async.wait_all;" ::: "memory"); }

__device__ __forceinline__ bool whole_chunk(const KernelArgs& a, unsigned c) {
  return c < a.ws.chunks && static_cast<std::int64_t>(c + 1) * kChunk <= a.vocab;
}

// The strided layout's pieces: a warp's run j of 32 logits (elements j * kThreads + 32 w ...) is 128 bytes (fp32) or
// 64 (16-bit), 8 or 4 pieces; lane l copies pieces l and l + 32 (fp32) or piece l (16-bit): run p / kRunPieces, piece
// p % kRunPieces of it.
template <int kDType>
constexpr int kRunPieces = kDType == 0 ? 8 : 4;
template <int kDType>
constexpr int kLanePieces = kDType == 0 ? 2 : 1;

// Starts chunk c of row z into stage s (nothing for a partial chunk or one past the row) and commits a group.
template <int kDType, int kLayout>
__device__ __forceinline__ void stage_chunk(const KernelArgs& a, const void* z, unsigned c, ChunkStages& st, int s) {
  if (whole_chunk(a, c)) {
    constexpr int kBytes = kDType == 0 ? 4 : 2;
    const char* chunk = static_cast<const char*>(z) + static_cast<std::int64_t>(c) * kChunk * kBytes;
    if constexpr (kLayout == kVecLayout) {
      const uint4* from = reinterpret_cast<const uint4*>(chunk) + threadIdx.x;
#pragma unroll
      for (int k = 0; k < kVecPieces<kDType>; ++k) {
        copy_16_async(&st.piece[s][k * kThreads + threadIdx.x], from + k * kThreads);
      }
    } else {
      const unsigned lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
      for (int k = 0; k < kLanePieces<kDType>; ++k) {
        const unsigned p = lane + 32 * k, run = p / kRunPieces<kDType>, piece = p % kRunPieces<kDType>;
        copy_16_async(&st.piece[s][warp * 64 + p], chunk + (run * kThreads + 32 * warp) * kBytes + piece * 16);
      }
    }
  }
  commit_copies();
}

// Chunk c of row z into x from stage s (a whole chunk, in the layout's order) or from global memory (a partial one).
template <int kDType, int kLayout>
__device__ __forceinline__ void take_chunk(const KernelArgs& a, const void* z, unsigned c, const ChunkStages& st,
                                           int s, float (&x)[kPerThread]) {
  wait_oldest_copies();
  if (whole_chunk(a, c)) {
    if constexpr (kLayout == kVecLayout && kDType == 0) {
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        const uint4 v = st.piece[s][k * kThreads + threadIdx.x];
        x[4 * k] = __uint_as_float(v.x);
        x[4 * k + 1] = __uint_as_float(v.y);
        x[4 * k + 2] = __uint_as_float(v.z);
        x[4 * k + 3] = __uint_as_float(v.w);
      }
    } else if constexpr (kLayout == kVecLayout) {
      const uint4 v = st.piece[s][threadIdx.x];
      const unsigned words[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        x[2 * k] = widen_half<kDType>(static_cast<unsigned short>(words[k] & 0xFFFFu));
        x[2 * k + 1] = widen_half<kDType>(static_cast<unsigned short>(words[k] >> 16));
      }
    } else {
      __syncwarp();  // the warp's copies, made visible to each lane by its wait, to the whole warp
      const unsigned lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
      const char* runs = reinterpret_cast<const char*>(&st.piece[s][warp * 64]);
#pragma unroll
      for (int j = 0; j < kPerThread; ++j) {
        if constexpr (kDType == 0) {
          x[j] = reinterpret_cast<const float*>(runs)[j * 32 + lane];
        } else {
          x[j] = widen_half<kDType>(reinterpret_cast<const unsigned short*>(runs)[j * 32 + lane]);
        }
      }
    }
  } else {
    const std::int64_t b = static_cast<std::int64_t>(c) * kChunk;
    load_chunk<kDType>(z, b, min(b + kChunk, a.vocab), x);
  }
}

// A block's chunks part, part + parts, ... of row z: the first kStages started (before the PDL wait is fine in the
// bins and sample passes: the logits are complete once the stats kernel lets them launch, see load_early_chunk).
template <int kDType, int kLayout>
__device__ __forceinline__ void start_stages(const KernelArgs& a, const void* z, unsigned part, unsigned parts,
                                             ChunkStages& st) {
#pragma unroll
  for (int s = 0; s < kStages; ++s) stage_chunk<kDType, kLayout>(a, z, part + s * parts, st, s);
}

// The block's i-th chunk c (i counted from 0) into x, and the stage it leaves refilled with chunk c + kStages *
// parts. The refill's address depends on x (after_chunk), so it is issued only once this thread's reads of the stage
// have landed; kStridedLayout: and once every lane's have (the warp sync's mask depends on x too: all ones).
template <int kDType, int kLayout>
__device__ __forceinline__ void next_staged_chunk(const KernelArgs& a, const void* z, unsigned i, unsigned c,
                                                  unsigned parts, ChunkStages& st, float (&x)[kPerThread]) {
  const int s = static_cast<int>(i % kStages);
  take_chunk<kDType, kLayout>(a, z, c, st, s, x);
  const unsigned zero = opaque_zero(a);
  const void* after = after_chunk(z, x, zero);
  if constexpr (kLayout == kStridedLayout) {
    __syncwarp(kFullMask | static_cast<unsigned>(static_cast<const char*>(after) - static_cast<const char*>(z)));
  }
  stage_chunk<kDType, kLayout>(a, after, c + kStages * parts, st, s);
}

// grouped_round (decode_step_row.cuh) from the stages: up to kWarps chunks from `round` on, each in x when
// on_chunk(k, c) runs; taken counts the block's chunks so far.
template <int kDType, int kLayout, class OnChunk>
__device__ __forceinline__ int staged_round(const KernelArgs& a, const void* z, unsigned round, unsigned parts,
                                            ChunkStages& st, unsigned& taken, float (&x)[kPerThread],
                                            OnChunk&& on_chunk) {
  int k = 0;
  for (unsigned c = round; k < kWarps && c < a.ws.chunks; ++k, c += parts) {
    next_staged_chunk<kDType, kLayout>(a, z, taken++, c, parts, st, x);
    on_chunk(k, c);
  }
  return k;
}

}  // namespace reset_native::sampler::cuda_detail
