// The GEMV's weight ring: an extra producer warp streams each (row tile, K chunk) step's weights and block
// scales into a ring of shared-memory stages with 1-D bulk copies (TMA), and the 8 compute warps read
// their fragments from there instead of keeping global loads in flight in registers.
//
// Why: the register pipeline holds at most 64 KiB in flight per SM (3-4 steps x 32 B per thread at 2 CTAs
// of 256 threads, ~123 of 128 registers), and a read-only probe with that access pattern reaches only
// ~2.45 TB/s on an H200 while a bulk-copy ring over the same bytes reaches ~3.45 TB/s (bench/probes,
// bench/RESULTS.md session 5). The ring's depth costs shared memory, not registers.
//
// Stage layout: one box of each TMA descriptor (RingMaps): the 16 rows' 512 bytes of one
// 1024-wide K chunk (row pitch 512), then their 16 x 64 scale bytes. Two copies per step by one thread of the
// producer warp. (One 1-D bulk copy per row piece, 32 per step, was measured slower than the register path:
// bench/probes/hbm_read_ring_variants.cu, 2.0 vs 3.5 TB/s for one copy per step.) Only the FAST path
// (K % 1024 == 0, 16-byte aligned weight and scale rows) and the persistent whole-x kernels use it.
#pragma once
#include "core/mbarrier.cuh"
#include "nvfp4/gemv_params.cuh"

namespace reset_native::nvfp4_cuda {
namespace detail {

constexpr int kRingRowPitch = kChunk / 2;                            // 512 B of FP4 per row and chunk
constexpr int kRingScaleOffset = 16 * kRingRowPitch;                 // 8192
constexpr int kRingStageBytes = kRingScaleOffset + 16 * (kChunk / 16);  // 9216, a multiple of 128
constexpr uint32_t kRingTxBytes = kRingStageBytes;                   // bytes the two copies deliver

// Ring stages: 4 at two CTAs per SM (the probe's best: ~80 KiB in flight per SM), 8 with one CTA.
template <int MINB>
__host__ __device__ constexpr int ring_stages() {
  return MINB == 1 ? 8 : 4;
}

// Shared memory the ring adds after a kernel's own `base` bytes: 128-byte aligned stages, then the full
// and empty barriers.
__host__ __device__ constexpr size_t ring_offset(size_t base) {
  return (base + 127) / 128 * 128;
}
template <int S>
__host__ __device__ constexpr size_t ring_smem_bytes(size_t base) {
  return ring_offset(base) + size_t(S) * kRingStageBytes + 2 * S * sizeof(uint64_t);
}

template <int S>
struct WeightRing {
  uint8_t* data;   // S stages
  uint64_t* full;  // [S] producer -> consumers
  uint64_t* empty; // [S] consumers -> producer (kWarps arrivals)

  __device__ WeightRing(uint8_t* smem, size_t base) {
    data = smem + ring_offset(base);
    full = reinterpret_cast<uint64_t*>(data + size_t(S) * kRingStageBytes);
    empty = full + S;
  }

  // Thread 0, before the CTA-wide barrier that precedes every other use.
  __device__ void init() const {
#pragma unroll
    for (int s = 0; s < S; ++s) {
      cuda_core::mbar_init(&full[s], 1);
      cuda_core::mbar_init(&empty[s], kWarps);
    }
    cuda_core::mbar_init_fence();
  }

  // The producer warp: every step of this CTA, in the compute warps' order (persistent CTAs walk row tiles
  // first_row, + tile_stride, ...; K chunks inside a tile), issued by its first thread. Rows past n come in
  // as zeros (never written out). Needs no pdl_wait: nothing the previous kernel writes is read.
  // PAIRS (the SiLU epilogue's tile pairs): each tile at row0 is followed by its partner at row0 + pair_rows, and
  // the next pair starts tile_stride rows after row0.
  template <bool PAIRS = false>
  __device__ void produce(const RingMaps& maps, int steps, int first_row, int tile_stride, int nchunks,
                          int pair_rows = 0) const {
    if (threadIdx.x % 32 != 0) return;
    int row0 = first_row, c = 0;
    bool second = false;
    for (int step = 0; step < steps; ++step) {
      const int s = step % S;
      if (step >= S) cuda_core::mbar_wait(&empty[s], uint32_t((step / S - 1) & 1));
      cuda_core::mbar_arrive_expect_tx(&full[s], kRingTxBytes);
      uint8_t* st = data + size_t(s) * kRingStageBytes;
      cuda_core::tensor_copy_2d_g2s(st, &maps.w, c * (kChunk / 8), row0, &full[s]);
      cuda_core::tensor_copy_2d_g2s(st + kRingScaleOffset, &maps.s, c * (kChunk / 16), row0, &full[s]);
      if (++c == nchunks) {
        c = 0;
        if constexpr (PAIRS) {
          second = !second;
          row0 += second ? pair_rows : tile_stride - pair_rows;
        } else {
          row0 += tile_stride;
        }
      }
    }
  }

  // A compute thread's fragments of step `step`: rows g and g + 8, 32 FP4 values at K offset kwarp inside
  // the chunk, and their two scale bytes each (the layout load_weights gives). The warp then releases the
  // stage, after the cross-proxy fence: the reads are generic-proxy loads and the next copy into the stage an
  // async-proxy (TMA) write, which the PTX memory model orders only through fence.proxy.async (and ptxas issues
  // the arrive while the LDS are still in flight). Without it ~2-8% of calls had 1-4 wrong outputs on an H200
  // (session 10, bench/probes/fused_bits_repeat.py); session 11 saw none with or without it (900 calls), so the
  // fence is what the memory model asks for, not a proven fix; bench/probes/ring_race_probe.cu compares variants.
  __device__ __forceinline__ void consume(int step, int kwarp, uint32_t (&w)[2][4], uint32_t (&sc)[2]) const {
    const int lane = threadIdx.x % 32, g = lane / 4;
    const int s = step % S;
    cuda_core::mbar_wait(&full[s], uint32_t((step / S) & 1));
    const uint8_t* st = data + size_t(s) * kRingStageBytes;
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      const int row = g + 8 * hr;
      const uint4 v = *reinterpret_cast<const uint4*>(st + row * kRingRowPitch + kwarp / 2);
      w[hr][0] = v.x, w[hr][1] = v.y, w[hr][2] = v.z, w[hr][3] = v.w;
      sc[hr] = *reinterpret_cast<const uint16_t*>(st + kRingScaleOffset + row * (kChunk / 16) + kwarp / 16);
    }
#ifdef RESET_NATIVE_RING_PROBE  // bench/probes/ring_race_probe.cu supplies the release variants it compares
    ring_probe_before_release(w, sc);
#else
    cuda_core::fence_async_shared();  // this thread's reads of the stage before the TMA may overwrite it
#endif
    __syncwarp();
    if (lane == 0) cuda_core::mbar_arrive(&empty[s]);
#ifdef RESET_NATIVE_RING_PROBE
    ring_probe_after_release(step, kwarp, st, w, sc);
#endif
  }
};

// Barrier over the compute warps: the whole CTA without a ring, the first kThreads threads with one (the
// producer warp never joins after the start).
template <bool RING>
__device__ __forceinline__ void compute_sync() {
  if constexpr (RING) {
    cuda_core::named_sync(kThreads);
  } else {
    __syncthreads();
  }
}

}  // namespace detail
}  // namespace reset_native::nvfp4_cuda
