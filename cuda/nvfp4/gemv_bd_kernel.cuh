// The NVFP4 GEMV for 1..2 tokens with block scales applied outside the tensor cores ("block-diagonal B").
// Same memory plan as gemv_kernel.cuh (persistent CTAs, all of x staged once in shared memory, 16-byte
// streaming weight loads, cursors without divisions) and the same FP4 decode into fp16 pairs worth
// e2m1 * 2^-14; what changes is where the E4M3 block scale is applied, which cost the 16-bit kernel a
// multiply per weight pair plus the scale conversions (~a fifth of its ~200 warp instructions per KiB):
//
// * In one mma.sync m16n8k16 the four threads of a quad each bring 4 weights of their own 16-element
//   block (a thread's k-slots are 2t, 2t+1, 2t+8, 2t+9). The B operand (tokens) is block-diagonal: column
//   2t+j holds token j only on thread t's k-slots and zeros elsewhere. The accumulator column a thread owns
//   is then exactly its own block's dot product for its own rows and tokens, which it scales in fp32 (one
//   multiply-add per row and token) after the block's four MMAs. Every lane's result is used and two tokens
//   share one MMA (kNG token pairs would serve M = 3..4, but there the 16-bit kernel measured faster). The A operand is the raw decoded pair: no multiply.
// * x in fp16: bf16 x is scaled per 16-element block by a power of two that puts the block amax in
//   [2^14, 2^15); every element within 2^29 of its block amax is then exact in fp16 (8 significant bits in
//   11) and smaller ones keep an absolute error below 2^-32 of the block amax. The inverse power of two is
//   the block's factor, applied with the weight block scale in fp32. fp16 x passes through (factor 1); W4A4
//   x is quantized while staging (SPEC section 2) into exact fp16 values e2m1 * e4m3 (factor 1).
// * Accuracy: fp16 products are exact and the MMAs accumulate in fp32, as in the 16-bit kernel.
// (FP8 m16n8k32 MMAs would decode 4 weights per register, but sm_90 has no FP8 mma.sync: ptxas lowers it to
// e4m3->f16 conversions plus fp16 MMAs, measured in the SASS: no gain.)
// A non-finite element of bf16 x makes its block's factor NaN, so every output of that token is NaN.
#pragma once
#include <type_traits>
#include <utility>

#include "core/env_switch.hpp"
#include "nvfp4/gemv_bd_w4a4_rule.cuh"
#include "nvfp4/gemv_launch.cuh"
#include "nvfp4/gemv_trace.cuh"

namespace reset_native::nvfp4_cuda {
namespace detail {

constexpr float kBdDecodeBias = 16384.0f;  // A operand holds e2m1 * 2^-14
constexpr int kSmallCompact = 1, kSmallBatchX = 2, kSmallHeadWait = 4, kSmallSplit = 8, kSmallLean = 16,
              kSmallDepth5 = 32;  // gemv_bd_kernel's SMALL bits (kSmallSplit: gemv_bd_split.cuh)
// W4A4 only (session 19 helper w4a4x29; with the cb form on the fast path by default since session 20 helper w4a4x30,
// as the 16-bit kernel's kForm16QuantFast / kForm16AmaxWide; RESET_NATIVE_GEMV_16_FORM=w4a4old: cb alone): the x
// quantization and the in-kernel amax of gemv_w4a4_quant.cuh, the same bits. Session 20 round 1, H200 2026-11-29:
// Qwen3-8B down at M = 2 25.0 -> 18.3 us.
constexpr int kSmallQuantFast = 64, kSmallAmaxWide = 128;

template <int XDT, bool W4A4>
struct BdMode {
  static constexpr bool kEnabled = W4A4 || XDT != kF32;  // f32 x keeps the 16-bit kernel (3-way split)
};

// Shared memory of one CTA, in bytes: x per token row (fp16, each 8-element group in the pair order
// (j, j+4) of store_unit; +16 so the rows of two tokens start on different banks), a zero area for lanes
// that carry no B values, the per-block factors, and the 8 warps' partial sums.
struct BdSmem {
  int row_bytes, zero_off, xf_off, xf_row, red_off, pro_off, total;
  // extra_bytes: the fused variants' shared memory (bd_extra_bytes: prologue, SiLU stash), after everything else
  __host__ __device__ BdSmem(int k, int m, int tokens, int extra_bytes = 0) {
    const int kpad = (k + kChunk - 1) / kChunk * kChunk;
    row_bytes = kpad * 2 + 16;
    zero_off = m * row_bytes;
    xf_off = zero_off + 4 * 16;
    xf_row = kpad / 16;
    red_off = xf_off + m * xf_row * 4;
    pro_off = red_off + 2 * kWarps * 16 * tokens * 4;  // two reduction buffers (alternate tiles)
    total = pro_off + extra_bytes;
  }
};

// 2^n for n in [-126, 127] (normal floats only).
__device__ __forceinline__ float pow2i(int n) { return __int_as_float((n + 127) << 23); }

// Two E4M3 scale bytes (low byte = first block) -> their exact values.
__device__ __forceinline__ float2 scales_f32(uint32_t two_bytes) {
  const uint32_t h = e4m3x2_to_half2(two_bytes);
  return __half22float2(*reinterpret_cast<const __half2*>(&h));
}

// scales_f32 for kSmallLean: the sign bits dropped by |.| on the converted values (ptxas folds it into the operand
// of the multiply that uses them) instead of a mask before the conversion: one LOP3 less per row and step. The same
// value for every byte: e4m3(b | 0x80) = -e4m3(b), -0 included; 0xFF and 0x7F both give NaN, which every later
// multiply turns into the canonical NaN either way. two_bytes must hold only the two bytes (a 16-bit load).
__device__ __forceinline__ float2 scales_f32_abs(uint32_t two_bytes) {
  uint32_t h;
  asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(h) : "h"(uint16_t(two_bytes)));
  const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&h));
  return make_float2(fabsf(f.x), fabsf(f.y));
}

// f(std::integral_constant<int, I>) for I = 0, 1, ...: an unrolled loop whose index is a constant expression.
template <class F, int... I>
__device__ __forceinline__ void unroll_seq(F&& f, std::integer_sequence<int, I...>) {
  (f(std::integral_constant<int, I>{}), ...);
}

// kSmallLean: load_weights<true> of chunk C (an immediate offset) from rows (wa, sa), every load predicated on on
// (no branch; the slot keeps undefined values when !on, never read then).
template <int C>
__device__ __forceinline__ void load_if(const uint8_t* const (&wa)[2], const uint8_t* const (&sa)[2], bool on,
                                        uint32_t (&wv)[2][4], uint32_t (&sc)[2]) {
  asm volatile(
      "{\n .reg .pred p;\n setp.ne.b32 p, %10, 0;\n"
      " @p ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0,%1,%2,%3}, [%11+%15];\n"
      " @p ld.global.nc.u16 %8, [%13+%16];\n"
      " @p ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%4,%5,%6,%7}, [%12+%15];\n"
      " @p ld.global.nc.u16 %9, [%14+%16];\n}"
      : "=r"(wv[0][0]), "=r"(wv[0][1]), "=r"(wv[0][2]), "=r"(wv[0][3]), "=r"(wv[1][0]), "=r"(wv[1][1]), "=r"(wv[1][2]),
        "=r"(wv[1][3]), "=r"(sc[0]), "=r"(sc[1])
      : "r"(int(on)), "l"(wa[0]), "l"(wa[1]), "l"(sa[0]), "l"(sa[1]), "n"(C * (kChunk / 2)), "n"(C * (kChunk / 16)));
}

// One 16-element block of one token -> its fp16 B values at grp (16 bytes per 8 elements, in the pair order
// (j, j+4) of fp4_word: uint4 = pairs (0,4), (1,5), (2,6), (3,7)); returns the factor that turns them back
// into x (before the W4A4 activation global scale). QFAST (kSmallQuantFast): quantize_activation_block_fast where it
// applies (the same values).
template <int XDT, bool W4A4, bool QFAST = false>
__device__ __forceinline__ float bd_store_unit(uint8_t* grp, const RawUnit<XDT>& u, float act_gs, float act_d) {
  using E = Elem<XDT>;
  uint4 o[2];
  float factor = 1.0f;
  if constexpr (!W4A4 && XDT == kF16) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const uint4 q = u.r[h];
      o[h] = make_uint4(__byte_perm(q.x, q.z, 0x5410), __byte_perm(q.x, q.z, 0x7632), __byte_perm(q.y, q.w, 0x5410),
                        __byte_perm(q.y, q.w, 0x7632));
    }
  } else {
    float v[16];
    const auto* e = reinterpret_cast<const typename E::T*>(u.r);
#pragma unroll
    for (int i = 0; i < 16; ++i) v[i] = E::to_float(e[i]);
    if constexpr (W4A4) {
      if (!QFAST || !quantize_activation_block_fast(v, act_gs, act_d))
        quantize_activation_block(v, act_gs, act_d);  // exact fp16 values e2m1 * e4m3
    } else {
      float amax = 0.0f;
      bool finite = true;
#pragma unroll
      for (int i = 0; i < 16; ++i) {
        amax = fmaxf(amax, fabsf(v[i]));
        finite = finite && fabsf(v[i]) <= 3.402823466e38f;  // false for inf and NaN
      }
      if (!finite || amax == 0.0f) {
#pragma unroll
        for (int i = 0; i < 16; ++i) v[i] = 0.0f;
        factor = finite ? 0.0f : __int_as_float(0x7FFFFFFF);
      } else {
        int ex;
        (void)frexpf(amax, &ex);  // amax in [2^(ex-1), 2^ex)
        const int sh = 15 - ex;   // amax * 2^sh in [2^14, 2^15): fp16 normal, no overflow after rounding
        const float p1 = pow2i(sh / 2), p2 = pow2i(sh - sh / 2);
#pragma unroll
        for (int i = 0; i < 16; ++i) v[i] = v[i] * p1 * p2;  // exact: powers of two
        factor = ex - 15 >= -126 ? pow2i(ex - 15) : ldexpf(1.0f, ex - 15);
      }
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const float* f = v + 8 * h;
      o[h] = make_uint4(pack_pair(f[0], f[4], false), pack_pair(f[1], f[5], false), pack_pair(f[2], f[6], false),
                        pack_pair(f[3], f[7], false));
    }
  }
  reinterpret_cast<uint4*>(grp)[0] = o[0];
  reinterpret_cast<uint4*>(grp)[1] = o[1];
  return factor;
}

// Shared memory after BdSmem's areas: the prologue's, then SILU's stash of one gate tile (16 rows x TOK).
template <int PRO, bool SILU, int TOK>
__host__ __device__ constexpr int bd_extra_bytes() {
  return int(prologue_smem_bytes<PRO>()) + (SILU ? 16 * TOK * int(sizeof(float)) : 0);
}

// SILU epilogue: rows [0, n/2) are a gate projection and [n/2, n) its up projection (a fused gate/up group);
// out [m, n/2] = silu(gate) * up with the silu_mul op's roundings (gate and up first rounded to the dtype as the
// plain GEMV writes them): the down projection's input without the gate/up output or the silu_mul kernel.
// Called for the gate tile (second == false: values kept in stash) and then for its up tile (same threads).
// ONE_PASS: as write_tile's (16 * m <= kThreads: one output per thread, thread idx in both calls).
template <int XDT, bool ONE_PASS = false>
__device__ __forceinline__ void silu_pair_tile(const GemvParams& p, const float* red, int row0, int tok_stride,
                                               float decode_bias, float* stash, bool second) {
  using E = Elem<XDT>;
  const int half_n = p.n / 2;
  for (int idx = threadIdx.x; idx < 16 * p.m; idx += kThreads) {
    const int rl = idx % 16, tok = idx / 16, row = row0 + rl;
    const float v = E::to_float(E::from_float(tile_value<XDT, false>(p, red, rl, tok, row, tok_stride, decode_bias,
                                                                      1.0f)));
    if (!second) {
      stash[idx] = v;
    } else {
      const float g = stash[idx];
      const float act = E::to_float(E::from_float(__fdiv_rn(g, __fadd_rn(1.0f, expf(-g)))));
      static_cast<typename E::T*>(p.out)[int64_t(tok) * half_n + (row - half_n)] = E::from_float(__fmul_rn(act, v));
    }
    if constexpr (ONE_PASS) break;
  }
}

// K staged per CTA under split K: the largest slice (ceil(chunks / ksplit) chunks). Host and device.
__host__ __device__ inline int bd_slice_k(int k, int ksplit) {
  const int chunks = (k + kChunk - 1) / kChunk;
  return (chunks + ksplit - 1) / ksplit * kChunk;
}

// Split-K epilogue of a 16-row tile (one output per thread: 16 * m <= kThreads): the 8 warps' sums in warp order,
// times 2^7 (exact) so that gemv_split_reduce's 2^7 decode bias completes this kernel's 2^14, to
// split_ws[slice][token][row]. LEAN (the lean split form; bd_lean_split_form checks n % 16 == 0 and ksplit * m * n <
// 2^31): no row check and a 32-bit index: the 64-bit one's loop-invariant parts took 4 registers, spilled at kDepth 5.
template <bool LEAN = false>
__device__ __forceinline__ void bd_write_partial(const GemvParams& p, const float* red, int row0, int tok_stride,
                                                 int slice, int tid) {
  static_assert(kBdDecodeBias == 128.0f * kDecodeBias, "the partial sums carry the remaining 2^7");
  const int rl = tid % 16, tok = tid / 16, row = row0 + rl;
  if (tok >= p.m || (!LEAN && row >= p.n)) return;
  float sum = 0.0f;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) sum += red[(w * 16 + rl) * tok_stride + tok];
  if constexpr (LEAN) {
    p.split_ws[uint32_t((slice * p.m + tok) * p.n + row)] = sum * 128.0f;
  } else {
    p.split_ws[(int64_t(slice) * p.m + tok) * p.n + row] = sum * 128.0f;
  }
}

// RING: weights through the shared-memory ring of gemv_ring.cuh (one more warp, the producer).
// MINB: CTAs per SM the registers allow (3: 80 registers, 3 steps in flight, see kLateRefill).
// SMALL (bits; register path only; plain A16 calls chosen by bd_small_choice, fused and W4A4 calls by bd_cb_form:
// both bits by default, since session 10 for plain A16 and since session 11 for the fused and W4A4 kernels):
//   kSmallCompact: the tile epilogue as one output per thread (16 * TOK <= kThreads) instead of write_tile's loop,
//     which ptxas unrolled ~20 times in each of the kDepth inlined steps (~1000 of the ~1200 instructions per step
//     copy: 86 KB of code for the M = 1 kernel, 26 KB without);
//   kSmallBatchX: x staged two units per thread at a time, both loads in flight before the first conversion (the
//     plain loop waits for one L2 round trip per unit: 2 at K = 8192, 3 at K = 12288 for one token).
//   kSmallHeadWait (the fused kernels since session 12, kBdFusedForm): ptxas gives every weight load
//     of the step loop one scoreboard, so a wait for one slot's words waits for all loads in flight. Where it puts
//     that wait decides how many steps stay in flight: once at the head of the kDepth steps (the plain and SiLU-only
//     cb instances: up to kDepth) or before each step's first use (every RMSNorm instance, and the plain SMALL 0/1
//     ones: each step then also waits for the refill the step before has just issued, ~1 step in flight; the long-
//     scoreboard stalls per instruction doubled in ncu). The bit makes slot 0's first word depend on the last slot's
//     last word at the loop head (one LOP3), which pins the one wait there. The same bits. (Tried and removed in
//     bench/RESULTS.md, session 12 gemv15: the weights through per-thread cp.async stages in shared memory, 5 steps
//     in flight at every step, 0.73-0.91x on the plain and 0.76-1.06x on the fused kernels; a batched RMSNorm
//     prologue, all of a lane's loads in flight and the norm weight prefetched into L1, 0.98-1.01x of cbw. Session 13:
//     a phased loop, two halves of slots, each wait finding only loads issued a half earlier, 0.96-1.03x of cb;
//     with the tile barrier removed (timing only) 0.99-1.01x: neither the drain nor the barrier limits this loop.)
// Measured on an H200 (bench/RESULTS.md, session 10): both together 1.00-1.31x faster than neither on 15 of 16 layer
// rows at M = 1, 2 (8B o at M = 1: 2% slower); part of it is ptxas' schedule of the main loop, which changes with
// the staging code (128 registers instead of 111). The same bits. The fused kernels take both too (SILU: the compact
// form of silu_pair_tile; the RMSNorm prologue's load_x_unit simply runs twice per batch), as do the W4A4 kernels
// (write_tile's act_gs form); the ring instances keep SMALL = 0 (the ring is off by default, see gemv.cu).
//   kSmallSplit (session 13, plain A16 fast path; launched by gemv_bd_split.cuh): CTA b takes K slice b % p.ksplit
//     (a contiguous run of chunks; only that part of x is staged) and walks the row tiles b / p.ksplit,
//     + gridDim.x / p.ksplit, ...; each tile ends in fp32 partial sums (bd_write_partial) that gemv_split_reduce adds
//     in slice order (at one token the kernel's own last CTA per walker group does: split_fixup at its end). Where
//     the tiles are few against the CTA slots (Qwen3-32B o and down: 320 tiles on 264 slots),
//     the unsplit kernel runs a second round of tiles on a fifth of the CTAs; slices even the work out.
//   kSmallLean (session 17, helper gemv20; plain A16 register path; the launcher takes it only where each tile's chunks
//     are a multiple of kDepth, bd_lean_form): one loop body for every group of kDepth steps, no per-step guards and
//     no checked loop: each group's refills at immediate offsets from row pointers computed once per group (all in one
//     tile), predicated off for the last group (no branch; steps % kDepth == 0); only the group's last step checks for
//     the end of a tile; the next tile's pointers by adding the stride (the clamped recompute only for a tile ending
//     past n); the block scales' sign bits dropped by |.| (scales_f32_abs). The same arithmetic in the same order (the
//     same bits); 131-134 instructions per M = 1 step against cb's 151 (plus cb's 31-34 per tile change), and one
//     loop body of ~10 KB against ~17 KB (layers with few steps per CTA pay the cold instruction fetch).
//   kSmallDepth5 (with kSmallLean, one token): 5 steps in flight instead of 4, for tiles of 5 chunks (K = 5120).
//   kSmallLean with kSmallSplit (session 17, helper gemv21; opt-in, bd_lean_split_form in gemv_bd_split.cuh): every
//     slice exactly kDepth chunks (Qwen3-32B down: 25 chunks in 5 slices at kDepth 5), so one group is one tile
//     (kTileGroup): the chunk of each step a constant, the epilogue at the group's last step without a check, and the
//     group's pointers rebuilt from the tile row (uniform) and one 32-bit per-thread offset instead of four 64-bit
//     pointers kept across the loop. The general lean loop on the split kernel spilled 12-48 bytes at 128 registers;
//     this one none (kDepth 4 and 5). Static per M = 1 step 129.2 (kDepth 5) / 130.2 (4), the warp reduction of the
//     tile epilogue included, against the cb split's 147.5 plus 31 per tile (bench/probes/sass_bd_split_instances.cu).
// PRO: a fused prologue (gemv_prologue.cuh) computes x while it is staged (A16).
// SILU: the silu_pair_tile epilogue (A16; n % 32 == 0): a CTA computes gate tile q then up tile q (the ring's
// producer walks the same order).
template <int XDT, bool W4A4, int TOK, bool FAST, int MINB, bool RING = false, int PRO = kProNone,
          bool SILU = false, int SMALL = 0>
__global__ void __launch_bounds__(RING ? kThreads + 32 : kThreads, MINB) gemv_bd_kernel(const GemvParams p, const __grid_constant__ RingMaps maps) {
  static_assert(!RING || FAST, "the weight ring serves the fast path only");
  static_assert(PRO == kProNone || !W4A4, "prologues: A16 kernels only");
  static_assert(!SILU || !W4A4, "the SiLU epilogue: A16 kernels only");
  static_assert(SMALL == 0 || !RING, "small-layer variants: register path only (the ring keeps SMALL = 0)");
  static_assert((SMALL & kSmallCompact) == 0 || 16 * TOK <= kThreads, "compact epilogue: one output per thread");
  constexpr bool kLean = (SMALL & kSmallLean) != 0;
  constexpr bool kQuantFast = W4A4 && (SMALL & kSmallQuantFast) != 0;
  static_assert((SMALL & (kSmallQuantFast | kSmallAmaxWide)) == 0 || (W4A4 && !RING), "W4A4 x staging forms");
  static_assert((SMALL & kSmallDepth5) == 0 || (kLean && TOK == 1 && MINB == 2), "depth 5: lean form, one token");
  static_assert(!kLean || (!RING && !SILU && PRO == kProNone && !W4A4 && FAST), "lean steps: plain A16 fast path");
  constexpr int kGroupBytes = 16;              // one 8-element group of one token (fp16)
  constexpr int kNG = (TOK + 1) / 2;           // token pairs = MMAs per A fragment and part
  // weight steps in flight per thread; with the ring, one step of shared-memory reads ahead. MINB 3 (80 registers)
  // decodes a slot's words in two halves and refills the slot after the second (kLateRefill): 3 slots fit then.
  constexpr int kDepth =
      RING ? 1 : (MINB == 1 ? 8 : MINB == 3 ? 3 : (TOK > 2 ? 3 : ((SMALL & kSmallDepth5) != 0 ? 5 : 4)));
  constexpr bool kLateRefill = MINB == 3;
  constexpr int kRows = 16;

  extern __shared__ uint4 smem_raw[];
  uint8_t* smem = reinterpret_cast<uint8_t*>(smem_raw);
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
  const int m = p.m;
  // K slice of this CTA (all of K unless kSplit): chunks [c_base, c_base + nchunks); CTA cta of ctas walking tiles.
  constexpr bool kSplit = (SMALL & kSmallSplit) != 0;
  static_assert(!kSplit || (FAST && !RING && PRO == kProNone && !SILU && !W4A4), "split K: plain A16 fast path");
  const int ks = kSplit ? p.ksplit : 1;
  const int all_chunks = (p.k + kChunk - 1) / kChunk;
  const int slice = kSplit ? int(blockIdx.x) % ks : 0;
  const int cta = kSplit ? int(blockIdx.x) / ks : int(blockIdx.x), ctas = kSplit ? int(gridDim.x) / ks : int(gridDim.x);
  const int c_base = slice * all_chunks / ks;
  const int nchunks = (slice + 1) * all_chunks / ks - c_base;
  const BdSmem L(kSplit ? bd_slice_k(p.k, ks) : p.k, m, TOK, bd_extra_bytes<PRO, SILU, TOK>());
  float* stash = reinterpret_cast<float*>(smem + L.pro_off + prologue_smem_bytes<PRO>());  // SILU only
  float* xf = reinterpret_cast<float*>(smem + L.xf_off);
  float* red = reinterpret_cast<float*>(smem + L.red_off);

  float act_gs = 1.0f, act_d = 6.0f;  // W4A4: set after pdl_wait (the amax pre-kernel writes it)

  // ---- weight ring: the producer warp streams every step of this CTA, then leaves
  const WeightRing<ring_stages<MINB>()> ring(smem, size_t(L.total));
  if constexpr (RING) {
    if (tid == 0) ring.init();
    __syncthreads();
    if (warp == kWarps) {
      if constexpr (SILU) {  // tile pairs: gate tile q, then its up tile n/2 rows further (next_tile's order)
        const int pairs = (p.n / 2 / kRows - int(blockIdx.x) + int(gridDim.x) - 1) / int(gridDim.x);
        ring.template produce<true>(maps, 2 * pairs * nchunks, int(blockIdx.x) * kRows, int(gridDim.x) * kRows,
                                    nchunks, p.n / 2);
      } else {
        const int tiles = ((p.n + kRows - 1) / kRows - int(blockIdx.x) + int(gridDim.x) - 1) / int(gridDim.x);
        ring.produce(maps, tiles * nchunks, int(blockIdx.x) * kRows, int(gridDim.x) * kRows, nchunks);
      }
      return;
    }
  }

  // ---- weight stream cursors (WHOLE mode of gemv_kernel): CTAs walk tiles blockIdx.x, +gridDim.x, ...
  // (SILU: tile pairs, the gate tile and then its up tile n/2 rows further)
  const int half_n = p.n / 2;
  const int units = SILU ? half_n / kRows : (p.n + kRows - 1) / kRows;
  const int my_units = (units - cta + ctas - 1) / ctas;
  const int steps = (SILU ? 2 : 1) * my_units * nchunks;
  const int kwarp = warp * kKStep + t * 32;
  const int kslice = c_base * kChunk + kwarp;  // this thread's K offset in the row (row pointers start there)
  const int tile_stride = ctas * kRows;
  auto next_tile = [&](int row0, bool& second) {  // the row of the tile after the one at row0
    if constexpr (SILU) {
      second = !second;
      return second ? row0 + half_n : row0 - half_n + tile_stride;
    } else {
      return row0 + tile_stride;
    }
  };
  bool f_second = false, c_second = false;
  const int64_t half_k = p.k / 2, sixteenth_k = p.k / 16;
  int f_row0 = cta * kRows, f_c = 0, f_step = 0;
  const uint8_t* f_w[2];
  const uint8_t* f_s[2];
  auto fetch_rows = [&]() { row_pointers(p, f_row0 + g, kslice, half_k, sixteenth_k, f_w, f_s); };
  fetch_rows();
  // kLean: the next tile's row pointers by the tile stride (rows tile_stride further, none clamped: the tile before
  // ends before the new one, which ends at or before n), else row_pointers' clamped recompute.
  const int64_t tile_w = int64_t(tile_stride) * half_k, tile_s = int64_t(tile_stride) * sixteenth_k;
  auto next_fetch_tile = [&]() {
    f_c = 0;
    f_row0 = next_tile(f_row0, f_second);
    if (kLean && f_row0 + kRows <= p.n) {
#pragma unroll
      for (int hr = 0; hr < 2; ++hr) f_w[hr] += tile_w, f_s[hr] += tile_s;
    } else {
      fetch_rows();
    }
  };
  auto fetch = [&](uint32_t (&w)[2][4], uint32_t (&sc)[2]) {
    if constexpr (RING) {
      ring.consume(f_step++, kwarp, w, sc);
      return;
    }
    load_weights<FAST>(f_w, f_s, f_c, f_c * kChunk + kslice, p.k, w, sc);
    if (++f_c == nchunks) next_fetch_tile();
  };
  uint32_t wv[kDepth][2][4], sc[kDepth][2];
  GEMV_TRACE(p.packed, 0);
  prefetch_then_wait<XDT, W4A4, W4A4 && (SMALL & kSmallAmaxWide) != 0>(p, steps, fetch, wv, sc, act_gs, act_d);
  GEMV_TRACE(p.packed, 1);

  // ---- stage x (every token, whole padded K or this CTA's K slice; beyond k load_unit gives zeros) while the
  // weights fly
  const int x_base = c_base * kChunk;
  {
    float* pro_smem = reinterpret_cast<float*>(smem + L.pro_off);
    if constexpr (PRO == kProRmsNorm) rms_prologue_scales<XDT, RING>(p, pro_smem);
    const int blocks = L.xf_row, units = m * blocks;
    if constexpr ((SMALL & kSmallBatchX) != 0) {  // two units' loads in flight before the first conversion
      const int count = units;
      for (int u0 = tid; u0 < count; u0 += 2 * kThreads) {
        RawUnit<XDT> raw[2];
        int tok[2], blk[2];
#pragma unroll
        for (int b = 0; b < 2; ++b) {
          const int u = min(u0 + b * kThreads, count - 1);
          tok[b] = u / blocks, blk[b] = u % blocks;
          if (u0 + b * kThreads < count) load_x_unit<XDT, PRO>(p, tok[b], x_base + blk[b] * 16, raw[b], pro_smem);
        }
        if (u0 == tid) GEMV_TRACE_WARP(p.packed, 5, raw[0].r[0].x);
#pragma unroll
        for (int b = 0; b < 2; ++b)
          if (u0 + b * kThreads < count)
            xf[tok[b] * blocks + blk[b]] = bd_store_unit<XDT, W4A4, kQuantFast>(
                smem + tok[b] * L.row_bytes + blk[b] * 2 * kGroupBytes, raw[b], act_gs, act_d);
      }
    } else {
      for (int u = tid; u < units; u += kThreads) {
        const int tok = u / blocks, blk = u % blocks;
        RawUnit<XDT> raw;
        load_x_unit<XDT, PRO>(p, tok, x_base + blk * 16, raw, pro_smem);
        xf[tok * blocks + blk] =
            bd_store_unit<XDT, W4A4, kQuantFast>(smem + tok * L.row_bytes + blk * 2 * kGroupBytes, raw, act_gs, act_d);
      }
    }
    for (int i = tid; i < 4 * kGroupBytes / 4; i += kThreads)
      reinterpret_cast<uint32_t*>(smem + L.zero_off)[i] = 0;
  }
  compute_sync<RING>();
  GEMV_TRACE(p.packed, 2);
  if (steps > 0) GEMV_TRACE_WARP(p.packed, 6, wv[0][0][0] ^ wv[kDepth - 1][1][3]);

  // B operand: lane (g, t) carries token 2q + (g & 1) of group q on thread (g >> 1)'s k-slots, which are
  // its own t's only when g >> 1 == t; every other lane (and absent tokens) reads the zero area.
  const uint8_t* b_base[kNG];
  int b_cstride[kNG];
  const float* f_base[kNG][2];
#pragma unroll
  for (int q = 0; q < kNG; ++q) {
    const int tok = 2 * q + (g & 1);
    const bool owner = (g >> 1) == t && tok < m;
    b_base[q] = owner ? smem + tok * L.row_bytes + (warp * 16 + t * 4) * kGroupBytes : smem + L.zero_off;
    b_cstride[q] = owner ? (kChunk / 8) * kGroupBytes : 0;
#pragma unroll
    for (int j = 0; j < 2; ++j)  // factors of this thread's two blocks for its accumulator columns
      f_base[q][j] = xf + min(2 * q + j, m - 1) * L.xf_row + warp * 8 + t * 2;
  }

  float acc[kNG][2][2];
#pragma unroll
  for (int q = 0; q < kNG; ++q) acc[q][0][0] = acc[q][0][1] = acc[q][1][0] = acc[q][1][1] = 0.0f;

  int c = 0, c_row0 = cta * kRows, red_half = 0;
  // kLean with kSplit (bd_lean_split_form): every slice is exactly kDepth chunks, so one group of steps is one tile:
  // the group's step d is chunk d (constants) and its last step ends the tile.
  constexpr bool kTileGroup = kLean && kSplit;
  const int tile_chunks = kTileGroup ? kDepth : nchunks;
  // mode (a constant): 0 checked; 1 (kLean) this step refills (unguarded; predicated off in the last group); 2 that and
  // this step cannot end a tile (kLean). refill(w, wsc) loads the slot's next step.
  auto run_step = [&](auto mode, int step, uint32_t (&w)[2][4], uint32_t (&wsc)[2], auto&& refill) {
    constexpr int kMode = decltype(mode)::value;
    constexpr bool kSteady = kMode >= 1, kNoEnd = kMode == 2;
    float2 sg, sg8;  // rows g, g+8: blocks 0 and 1
    if constexpr (kLean) {
      sg = scales_f32_abs(wsc[0]), sg8 = scales_f32_abs(wsc[1]);
    } else {
      sg = scales_f32(wsc[0]), sg8 = scales_f32(wsc[1]);
    }
    // Decode the whole slot before refilling it: the refill then needs no register copies of the words.
    // (kLateRefill: each block's two words just before its MMAs, the refill after the second block's.)
    uint32_t d[4][2][4];  // [word i][row half][pair]
    if constexpr (!kLateRefill) {
#pragma unroll
      for (int i = 0; i < 4; ++i) {
#ifdef GEMV_TRACE_NO_DECODE  // chain probe only, timing (wrong results): shifted words as A fragments, no decode
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          d[i][0][j] = w[0][i] & (0x8E008E00u >> j);
          d[i][1][j] = w[1][i] & (0x8E008E00u >> j);
        }
#else
        fp4_word<false>(w[0][i], d[i][0]);
        fp4_word<false>(w[1][i], d[i][1]);
#endif
      }
      if (kSteady || step + kDepth < steps) refill(w, wsc);  // slot free again: refill it now
    }
    float2 fx[kNG][2];
#pragma unroll
    for (int q = 0; q < kNG; ++q)
#pragma unroll
      for (int j = 0; j < 2; ++j)
        if (j == 0 || TOK > 1) fx[q][j] = *reinterpret_cast<const float2*>(f_base[q][j] + c * (kChunk / 16));
#pragma unroll
    for (int blk = 0; blk < 2; ++blk) {
      if constexpr (kLateRefill) {
#pragma unroll
        for (int i = 2 * blk; i < 2 * blk + 2; ++i) {
          fp4_word<false>(w[0][i], d[i][0]);
          fp4_word<false>(w[1][i], d[i][1]);
        }
        if (blk == 1 && (kSteady || step + kDepth < steps)) refill(w, wsc);
      }
      float cacc[kNG][4];
#pragma unroll
      for (int q = 0; q < kNG; ++q) cacc[q][0] = cacc[q][1] = cacc[q][2] = cacc[q][3] = 0.0f;
#pragma unroll
      for (int ii = 0; ii < 2; ++ii) {
        const int i = 2 * blk + ii;
        const uint32_t(&d0)[4] = d[i][0];
        const uint32_t(&d1)[4] = d[i][1];
#pragma unroll
        for (int q = 0; q < kNG; ++q) {
          const uint4 bv = *reinterpret_cast<const uint4*>(b_base[q] + c * b_cstride[q] + i * kGroupBytes);
          const uint32_t a_lo[4] = {d0[0], d1[0], d0[1], d1[1]}, a_hi[4] = {d0[2], d1[2], d0[3], d1[3]};
#ifdef GEMV_TRACE_NO_MMA  // chain probe only, timing (wrong results): one add on an XOR of the operands, no MMA
          cacc[q][0] += __uint_as_float((a_lo[0] ^ a_lo[1] ^ a_lo[2] ^ a_lo[3] ^ a_hi[0] ^ a_hi[1] ^ a_hi[2] ^ a_hi[3] ^
                                         bv.x ^ bv.y ^ bv.z ^ bv.w) & 0x3C00u);
#else
          mma16816<false>(cacc[q], a_lo, bv.x, bv.y);
          mma16816<false>(cacc[q], a_hi, bv.z, bv.w);
#endif
        }
      }
      // the block is complete: scale its dot products (rows g and g+8, the quad's two tokens) into acc
      const float s_g = blk ? sg.y : sg.x, s_g8 = blk ? sg8.y : sg8.x;
#pragma unroll
      for (int q = 0; q < kNG; ++q) {
        const float f0 = blk ? fx[q][0].y : fx[q][0].x;
        acc[q][0][0] = fmaf(cacc[q][0], s_g * f0, acc[q][0][0]);
        acc[q][1][0] = fmaf(cacc[q][2], s_g8 * f0, acc[q][1][0]);
        if constexpr (TOK > 1) {
          const float f1 = blk ? fx[q][1].y : fx[q][1].x;
          acc[q][0][1] = fmaf(cacc[q][1], s_g * f1, acc[q][0][1]);
          acc[q][1][1] = fmaf(cacc[q][3], s_g8 * f1, acc[q][1][1]);
        }
      }
    }

    // ---- epilogue of a tile: sum the quad's K slices (shuffles), then the 8 warps' (shared memory)
    if (!kNoEnd && c == tile_chunks - 1) {
      // Two reduction buffers, used by alternate tiles: this one is written again two tiles later, after the next
      // tile's barrier, which every thread reaches only once it has read this tile's sums. One barrier per tile.
      float* red_t = red + red_half * (kWarps * kRows * TOK);
      red_half ^= 1;
#pragma unroll
      for (int q = 0; q < kNG; ++q)
#pragma unroll
        for (int h = 0; h < 2; ++h)
#pragma unroll
          for (int j = 0; j < 2; ++j) {
            float v = acc[q][h][j];
            v += __shfl_xor_sync(0xFFFFFFFFu, v, 1);
            v += __shfl_xor_sync(0xFFFFFFFFu, v, 2);
            const int tok = 2 * q + j;
            if (t == 0 && tok < TOK) red_t[(warp * kRows + g + 8 * h) * TOK + tok] = v;
            acc[q][h][j] = 0.0f;
          }
      compute_sync<RING>();
      if constexpr (kSplit) {
        bd_write_partial<kLean>(p, red_t, c_row0, TOK, slice, int(threadIdx.x));
      } else if constexpr (SILU) {
        silu_pair_tile<XDT, (SMALL & kSmallCompact) != 0>(p, red_t, c_row0, TOK, kBdDecodeBias, stash,
                                                           c_second);  // stash: same thread per idx
      } else {
        write_tile<XDT, W4A4, (SMALL & kSmallCompact) != 0>(p, red_t, c_row0, TOK, kBdDecodeBias, act_gs,
                                                              int(threadIdx.x));
      }
      c = 0;
      c_row0 = next_tile(c_row0, c_second);
    } else {
      ++c;
    }
  };

  // kSmallHeadWait: slot 0's first word takes a zero that depends on the last slot's last word, so the one wait
  // for every weight load in flight sits at the head of the kDepth steps (see the SMALL bits above).
  const uint32_t runtime_zero = uint32_t(p.k) >> 31;  // p.k > 0: zero, but not known to the compiler
  // One lean group (kLean): its kDepth steps, each refilling its slot from the group's row pointers (cw, cs) when
  // `more`; mode 1 (the tile-end check) at the last step only.
  auto run_group = [&](int step0, bool more, const uint8_t* const (&cw)[2], const uint8_t* const (&cs)[2]) {
    unroll_seq(
        [&](auto dd) {
          constexpr int d = decltype(dd)::value;
          run_step(std::integral_constant<int, d == kDepth - 1 ? 1 : 2>{}, step0 + d, wv[d], sc[d],
                   [&](uint32_t (&w)[2][4], uint32_t (&s2)[2]) { load_if<d>(cw, cs, more, w, s2); });
        },
        std::make_integer_sequence<int, kDepth>{});
  };
  int step = 0;
  if constexpr (kTileGroup) {  // one tile per group (see kTileGroup); the checked loop is not run
    // The group's row pointers from the fetch tile's row (uniform: CTA-wide) and one 32-bit per-thread offset (row g's
    // FP4 bytes from the tile's first row at this slice; its scale bytes are an eighth of it), recomputed every group
    // instead of four 64-bit pointers kept across the loop: they die at the last refill, before the tile epilogue,
    // where the kDepth 5 instance spilled (bd_lean_split_form: no tile ends past n, the offset below 2^32).
    const uint32_t o_w = uint32_t(g) * uint32_t(half_k) + uint32_t(kslice) / 2;
    for (; step < steps; step += kDepth) {
      c = 0;  // it is (the last group ended a tile); said so, its steps' chunks are constants
      wv[0][0][0] |= wv[kDepth - 1][1][3] & runtime_zero;  // the one wait at the head (see kSmallHeadWait)
      const bool more = step + kDepth < steps;  // this group refills (all kDepth slots) or not at all
      const uint8_t* cw[2];
      const uint8_t* cs[2];
      cw[0] = p.packed + int64_t(f_row0) * half_k + o_w, cw[1] = cw[0] + 8 * half_k;
      cs[0] = p.scales + int64_t(f_row0) * sixteenth_k + (o_w >> 3), cs[1] = cs[0] + 8 * sixteenth_k;
      run_group(step, more, cw, cs);
      f_row0 += tile_stride;
      if (step == 0) GEMV_TRACE(p.packed, 3);
    }
  }
  if constexpr (kLean && !kTileGroup) {  // steps % kDepth == 0; every group's refills in one tile; no checked loop
    // cw / cs: the rows' pointers at chunk f_c of the fetch tile (the row starts are not kept: fewer live registers)
    const uint8_t* cw[2];
    const uint8_t* cs[2];
#pragma unroll
    for (int hr = 0; hr < 2; ++hr)
      cw[hr] = f_w[hr] + uint32_t(f_c) * (kChunk / 2), cs[hr] = f_s[hr] + uint32_t(f_c) * (kChunk / 16);
    // At a group's end cw is at chunk nchunks - kDepth of its tile: the next tile's chunk 0 is wrap_* further.
    const int64_t wrap_w = tile_w - int64_t(nchunks - kDepth) * (kChunk / 2),
                  wrap_s = tile_s - int64_t(nchunks - kDepth) * (kChunk / 16);
    for (; step < steps; step += kDepth) {
      wv[0][0][0] |= wv[kDepth - 1][1][3] & runtime_zero;  // the one wait at the head (see kSmallHeadWait)
      const bool more = step + kDepth < steps;  // this group refills (all kDepth slots) or not at all
      run_group(step, more, cw, cs);
      f_c += kDepth;
      if (f_c == nchunks) {  // the next tile: by the stride as next_fetch_tile, or its clamped recompute
        f_c = 0;
        f_row0 = next_tile(f_row0, f_second);
        if (f_row0 + kRows <= p.n) {
#pragma unroll
          for (int hr = 0; hr < 2; ++hr) cw[hr] += wrap_w, cs[hr] += wrap_s;
        } else {
          fetch_rows();
#pragma unroll
          for (int hr = 0; hr < 2; ++hr) cw[hr] = f_w[hr], cs[hr] = f_s[hr];
        }
      } else {
#pragma unroll
        for (int hr = 0; hr < 2; ++hr) cw[hr] += kDepth * (kChunk / 2), cs[hr] += kDepth * (kChunk / 16);
      }
      if (step == 0) GEMV_TRACE(p.packed, 3);
    }
  }
  if constexpr (!kLean) {
    for (; step < steps; step += kDepth) {
      if constexpr ((SMALL & kSmallHeadWait) != 0) wv[0][0][0] |= wv[kDepth - 1][1][3] & runtime_zero;
#pragma unroll
      for (int d = 0; d < kDepth; ++d)
        if (step + d < steps) run_step(std::false_type{}, step + d, wv[d], sc[d], fetch);
      if (step == 0) GEMV_TRACE(p.packed, 3);
    }
  }
  if constexpr (kSplit) {
    if (p.split_nonce != 0) split_fixup<XDT>(p);  // gemv_split_fixup.cuh
  }
  GEMV_TRACE(p.packed, 4);
}

// Session 15 decoded the first prefetched steps before the PDL wait (step 0 into registers, up to three more into
// shared memory as the A fragments; they need no x): the same bits, but no shorter after x (the one-tile 8B o steps
// 1.79 us either way), and 10-40% slower where CTAs walk several tiles (there ptxas also moved the main loop's one
// weight wait before every step; H200, bench/RESULTS.md session 15). Removed:
// bench/probes/trials/gemv_bd_early_decode.patch.
// 16-row tiles. Session 14 tried 8-row tiles (each lane's A rows g + 8 zero, twice the steps in flight): the same
// bits, but 118 instructions per half-size step against 150 per step, and slower on every shape measured, also where
// 16-row tiles leave half the CTA slots idle (N = 2048, K = 4096: 4.11 vs 3.04 us; bench/RESULTS.md). Removed.
// The grid fills every CTA slot (two per SM). Session 14 timed a cap of one CTA per SM (and two of three at the
// 80-register form), which leaves room for the next PDL kernel's CTAs to load their weights early: slower or level
// on every Qwen3 layer (8B q/k/v 6.8 -> 7.4 us at M = 1; bench/RESULTS.md, session 14 call 1). Removed.
template <int XDT, bool W4A4, int TOK, bool FAST, int MINB, bool RING = false, int PRO = kProNone, bool SILU = false,
          int SMALL = 0>
void launch_bd(const GemvParams& p, const RingMaps& maps, int sms, size_t smem, cudaStream_t stream) {
  auto kernel = gemv_bd_kernel<XDT, W4A4, TOK, FAST, MINB, RING, PRO, SILU, SMALL>;
  const int threads = RING ? kThreads + 32 : kThreads;
  check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
             "nvfp4 gemv: cudaFuncSetAttribute");
  int per_sm = 1;
  check_cuda(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, smem),
             "nvfp4 gemv: occupancy");
  const int units = SILU ? p.n / 32 : (p.n + 15) / 16;  // row tiles, or gate/up tile pairs
  const int slots = sms * (per_sm > 0 ? per_sm : 1);
  const GemvParams q = with_activation_amax<XDT, W4A4>(p, !RING, stream);
  check_cuda(cuda_core::launch_pdl(kernel, dim3(units < slots ? units : slots), dim3(threads), smem, stream, q, maps),
             "nvfp4 gemv: launch");
}

// The plain A16 register kernel's SMALL bits and CTAs per SM: kSmallCompact | kSmallBatchX at two CTAs per SM by
// default. RESET_NATIVE_GEMV_BD_SMALL (read at every call, a benchmark switch) overrides it: "legacy" = neither (the
// kernel before session 10), or letters: c = kSmallCompact, b = kSmallBatchX, 3 = three CTAs per SM (80 registers,
// three steps in flight, where x fits three times: kWholeSmemLimitThree), e.g. "c", "cb3". Anything else: the
// default. None changes a bit of the output: each tile is still summed by one CTA in the same order.
struct BdSmall {
  int bits = kSmallCompact | kSmallBatchX;
  bool three = false;
};
inline BdSmall bd_small_choice() {
  const char* v = std::getenv("RESET_NATIVE_GEMV_BD_SMALL");
  if (v == nullptr) return {};
  if (std::strcmp(v, "legacy") == 0) return BdSmall{0, false};
  BdSmall r{0, false};
  for (const char* c = v; *c != '\0'; ++c) {
    if (*c == 'c') {
      r.bits |= kSmallCompact;
    } else if (*c == 'b') {
      r.bits |= kSmallBatchX;
    } else if (*c == '3') {
      r.three = true;
    } else {
      return {};
    }
  }
  return (r.bits != 0 || r.three) ? r : BdSmall{};
}

// The W4A4 kernels' register-path form: kSmallCompact | kSmallBatchX by default (the plain A16 default), SMALL = 0
// (the kernels before session 11) where RESET_NATIVE_GEMV_BD_SMALL_W4A4, read at every call (a benchmark switch), is
// "legacy" (fast path and K % 1024 != 0 alike). Any other value: the default. The same bits either way (each tile
// still summed by one CTA in the same order). The fused kernels' form: kBdFusedForm.
constexpr const char* kBdSmallFusedEnv = "RESET_NATIVE_GEMV_BD_SMALL_FUSED";
constexpr const char* kBdSmallW4a4Env = "RESET_NATIVE_GEMV_BD_SMALL_W4A4";
inline bool bd_cb_form(const char* env_name) {
  const char* v = std::getenv(env_name);
  return v == nullptr || std::strcmp(v, "legacy") != 0;
}

// The fused kernels' (RMSNorm prologue, SiLU * up epilogue, both) SMALL bits: kSmallCompact | kSmallBatchX |
// kSmallHeadWait since session 12 (ptxas had put the RMSNorm instances' one wait for every weight load in flight
// before each step instead of at the head of the kDepth steps; H200, bench/RESULTS.md, session 12 gemv15:
// Qwen3-32B gate/up + norm + SiLU 55.79 -> 45.54 us at M = 1, q/k/v + norm 14.52 -> 13.04, the SiLU-only kernels
// within 2%), SMALL = 0 (the kernels before session 11) where RESET_NATIVE_GEMV_BD_SMALL_FUSED, read at every
// call, is "legacy". The same bits either way.
constexpr int kBdFusedForm = kSmallCompact | kSmallBatchX | kSmallHeadWait;

// The lean form (kSmallLean, kSmallDepth5) of the plain A16 register kernel (cb, two CTAs per SM) where it fits: tiles
// of a multiple of 4 chunks, or of 5 at one token (kSmallDepth5); 0 = cb. On an H200 (bench/RESULTS.md, "Session 17
// final call" and "Session 17, helper gemv20"): bit-identical to cb and 0.955-0.988x of its time at M = 1 on six Qwen3
// rows (8B o 1.008), but 1.02-1.05x at M = 2 on 8B q/k/v and o and 32B o, where CTAs walk 1-2 tiles, and 0.967x on
// 8B gate_up (~6 tiles per CTA). So on by default (kBdLeanByDefault) at one token, and at two tokens where the CTAs
// walk at least kBdLeanM2MinTiles tiles each (two CTAs per SM). RESET_NATIVE_GEMV_BD_LEAN (read at every call, a
// benchmark switch): "0" = never, "1" = wherever it fits (M = 1, 2), else the default. The same bits in every form.
constexpr const char* kBdLeanEnv = "RESET_NATIVE_GEMV_BD_LEAN";
constexpr bool kBdLeanByDefault = true;
constexpr int kBdLeanM2MinTiles = 4;
inline int bd_lean_form(const GemvParams& p, int tokens, int sms) {
  const int forced = cuda_core::env_forced(kBdLeanEnv);
  const bool many_tiles = int64_t(p.n + 15) / 16 >= int64_t(kBdLeanM2MinTiles) * 2 * sms;
  if (forced == 0 || (forced < 0 && (!kBdLeanByDefault || (tokens > 1 && !many_tiles)))) return 0;
  const int nchunks = p.k / kChunk;  // the fast path: k % kChunk == 0
  if (nchunks % 4 == 0) return kSmallLean;
  return tokens == 1 && nchunks % 5 == 0 ? kSmallLean | kSmallDepth5 : 0;
}

template <int XDT, int TOK, int MINB>
void launch_bd_small(const GemvParams& p, const LaunchPlan& plan, size_t smem, int bits, cudaStream_t stream) {
  constexpr int kC = kSmallCompact, kB = kSmallBatchX;
  const RingMaps& maps = plan.maps;
  const int sms = plan.sms;
  if constexpr (MINB == 2) {
    const int lean = bits == (kC | kB) ? bd_lean_form(p, TOK, sms) : 0;
    if (lean == kSmallLean)
      return launch_bd<XDT, false, TOK, true, MINB, false, kProNone, false, kC | kB | kSmallLean>(p, maps, sms, smem,
                                                                                                  stream);
    if constexpr (TOK == 1) {
      if (lean == (kSmallLean | kSmallDepth5))
        return launch_bd<XDT, false, TOK, true, MINB, false, kProNone, false, kC | kB | kSmallLean | kSmallDepth5>(
            p, maps, sms, smem, stream);
    }
  }
  switch (bits) {
    case 0:
      return launch_bd<XDT, false, TOK, true, MINB, false, kProNone, false, 0>(p, maps, sms, smem, stream);
    case kC:
      return launch_bd<XDT, false, TOK, true, MINB, false, kProNone, false, kC>(p, maps, sms, smem, stream);
    case kB:
      return launch_bd<XDT, false, TOK, true, MINB, false, kProNone, false, kB>(p, maps, sms, smem, stream);
    default:
      return launch_bd<XDT, false, TOK, true, MINB, false, kProNone, false, kC | kB>(p, maps, sms, smem, stream);
  }
}

// PRO / SILU (the fused variants): the fast path only (with the ring when the plan has it, as the plain calls).
template <int XDT, bool W4A4, int TOK, int PRO, bool SILU>
bool try_bd_tokens(const GemvParams& p, const LaunchPlan& plan, cudaStream_t stream) {
  constexpr bool kFused = PRO != kProNone || SILU;
  const bool fast = plan.fast;
  const int sms = plan.sms;
  const size_t smem = size_t(BdSmem(p.k, p.m, TOK, bd_extra_bytes<PRO, SILU, TOK>()).total);
  if (fast && plan.ring) {
    const size_t ring_smem = ring_smem_bytes<ring_stages<2>()>(smem);
    if (ring_smem <= kWholeSmemLimit) {
      launch_bd<XDT, W4A4, TOK, true, 2, true, PRO, SILU>(p, plan.maps, sms, ring_smem, stream);
      return true;
    }
  }
  // Only where two CTAs fit an SM: with one CTA per SM (x over ~100 KiB) the 16-bit kernel's chunked
  // staging was faster (H100, Qwen3-32B down at M = 2: 50 vs 58 us), as it was at M = 3..4 (measured).
  if (smem > kWholeSmemLimit) return false;
  if constexpr (!W4A4 && !kFused) {  // plain A16 calls: the SMALL form and CTAs per SM of bd_small_choice
    if (fast) {
      const BdSmall v = bd_small_choice();
      if (v.three && smem <= kWholeSmemLimitThree) {
        launch_bd_small<XDT, TOK, 3>(p, plan, smem, v.bits, stream);
      } else {
        launch_bd_small<XDT, TOK, 2>(p, plan, smem, v.bits, stream);
      }
      return true;
    }
    launch_bd<XDT, false, TOK, false, 2>(p, plan.maps, sms, smem, stream);
    return true;
  } else {  // fused (A16, fast path only) and W4A4 calls: cb (fused: + kSmallHeadWait) unless the switch says legacy
    constexpr int kCb = kSmallCompact | kSmallBatchX;
    constexpr int kForm = kFused ? kBdFusedForm : kCb;
    const bool cb = bd_cb_form(kFused ? kBdSmallFusedEnv : kBdSmallW4a4Env);
    if constexpr (W4A4 && !kFused) {  // the fast path's cb form plus kSmallQuantFast | kSmallAmaxWide (unless w4a4old)
      if (fast && cb && plan.form16 != kForceW4A4Old) {
        launch_bd<XDT, W4A4, TOK, true, 2, false, PRO, SILU, kCb | kSmallQuantFast | kSmallAmaxWide>(p, plan.maps, sms,
                                                                                                     smem, stream);
        return true;
      }
    }
    if (fast) {
      if (cb) {
        launch_bd<XDT, W4A4, TOK, true, 2, false, PRO, SILU, kForm>(p, plan.maps, sms, smem, stream);
      } else {
        launch_bd<XDT, W4A4, TOK, true, 2, false, PRO, SILU, 0>(p, plan.maps, sms, smem, stream);
      }
      return true;
    }
    if constexpr (kFused) {
      return false;
    } else {
      if (cb) {
        launch_bd<XDT, true, TOK, false, 2, false, kProNone, false, kCb>(p, plan.maps, sms, smem, stream);
      } else {
        launch_bd<XDT, true, TOK, false, 2>(p, plan.maps, sms, smem, stream);
      }
      return true;
    }
  }
}

// Where the block-diagonal kernel takes a plain (unfused) M <= 2 call that it can run. Measured on an H200
// (bench/RESULTS.md, session 7 last call): at K >= 8192 (the down projections, Qwen3-32B o) the 16-bit kernel was
// 5-11% faster with bf16 x at M = 1 and 2 (32B o 11.8 vs 13.2 us at M = 1); at K <= 5120 the block-diagonal kernel
// was ahead at M = 1 (8B q/k/v 7.0 vs 7.5 us) and within ~3% either way at M = 2. So A16 takes it below
// K = 8192. Session 10's register form (cb, SMALL bits) moved the limits (H200, bench/probes/gemv_bd_small_sweep.py,
// bench/RESULTS.md): at one token it beat the 16-bit kernel on 8B down (K = 12288: 11.19 / 11.45 us vs 12.1 /
// 12.27 in session 10's final call / session 11's first) and 32B o (K = 8192: 10.10 / 10.18 vs 11.5 / 12.08) and lost
// on 32B down (K = 25600: 34.8 / 35.65 vs 32.7 / 34.33); at two tokens (session 11, call 2) it won on 32B o (11.82 vs
// 13.07) and lost on 8B down (13.73 vs 13.40). So one token takes it below K = 16384, two below K = 12288, and one
// token at any K with the weight ring (opt-in; it beat the 16-bit kernel on 32B down: 33.0 us). W4A4 keeps it at
// every K at one token; at two tokens where gemv_bd_w4a4_rule.cuh does not give the call to the 16-bit kernel's two
// teams (since session 21, measured there; never where that kernel would not take two teams: fp32 x by default). The
// fused prologue and epilogue exist only in this kernel, and fused_fits asks the same question, so that a fused call
// and the separate ops it replaces run the same kernel (the same bits).
// RESET_NATIVE_GEMV_BD (read at every call, a benchmark switch): 0 = never (the 16-bit kernel), 1 = at every K
// (the rule before session 8, W4A4 included), unset = this rule; "w4a4k" / "w4a4kt" / "w4a4bd": this rule with that
// W4A4 two-token rule (gemv_bd_w4a4_rule.cuh; "w4a4bd": none, every K).
constexpr int kBdMaxKOneToken = 16384;
constexpr int kBdMaxKTwoTokens = 12288;

template <int XDT, bool W4A4>
bool bd_chosen(const GemvParams& p, const LaunchPlan& plan) {
  if (p.m > 2) return false;
  const int max_k = p.m == 1 ? kBdMaxKOneToken : kBdMaxKTwoTokens;
  if (W4A4 && bd_w4a4_rule_declines(p, teams_here<XDT, true>(p, plan.sms), plan.sms)) return false;
  return cuda_core::env_switch("RESET_NATIVE_GEMV_BD", W4A4 || p.k < max_k || (plan.ring && p.m == 1));
}

// Runs the block-diagonal kernel when it applies (M <= 2, x dtype/activation supported, x fits shared
// memory next to a second CTA, bd_chosen for plain calls); returns false to leave the call to the 16-bit kernel.
template <int XDT, bool W4A4, int PRO = kProNone, bool SILU = false>
bool try_bd(const GemvParams& p, const LaunchPlan& plan, cudaStream_t stream) {
  if constexpr (!BdMode<XDT, W4A4>::kEnabled) {
    return false;
  } else {
    if constexpr (PRO == kProNone && !SILU) {
      if (!bd_chosen<XDT, W4A4>(p, plan)) return false;
    }
    if (p.m == 1) return try_bd_tokens<XDT, W4A4, 1, PRO, SILU>(p, plan, stream);
    if (p.m == 2) return try_bd_tokens<XDT, W4A4, 2, PRO, SILU>(p, plan, stream);
    return false;
  }
}

}  // namespace detail
}  // namespace reset_native::nvfp4_cuda
