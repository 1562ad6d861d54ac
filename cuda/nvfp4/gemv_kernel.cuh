// The NVFP4 small-M GEMV kernel for Hopper: y[m, n] = x[m, k] @ dequantize(w)[n, k]^T (+ bias), m <= 16.
// Templates only; instantiated once per (x dtype, activation) in gemv_<dtype>_<act>.cu. The host side (shared-memory
// sizes, FORM rules, launchers, routing by shape) is gemv_launch.cuh.
//
// Memory bound: every weight byte is read from HBM once per call, whatever m is. Each warp streams 16-byte
// weight fragments (ld.global.nc.L1::no_allocate) of 16 rows, decodes FP4 in registers into fp16/bf16
// pairs already multiplied by their E4M3 block scale (exact), and feeds them to mma.sync m16n8k16 as the
// A operand (weights on the m side). The tokens are the n side (padded to 8 or 16), read from a shared-
// memory copy of x, already permuted into the B-fragment order (padded tokens read zero rows).
// WHOLE tiles stage all of x once and then loop over row tiles with no barrier in the weight stream;
// otherwise x is staged per 1024-wide K chunk into a double buffer, one barrier per chunk.
// Accumulation is fp32 throughout; the weight global scale, the 2^7 decode bias and (W4A4) the activation
// global scale are applied once in the epilogue.
// The dot product does not care about the order along K, so a thread's k-slots are simply the
// nibble pairs (j, j+4) of its own 16-byte load: no shuffles, no repacked weight layout.
// See docs/nvfp4_cuda.md for the tile choices and measured numbers.
#pragma once
#include <cuda_runtime.h>

#include <cmath>

#include "core/cluster.cuh"
#include "core/mbarrier.cuh"
#include "core/pdl.cuh"
#include "nvfp4/gemv_params.cuh"
#include "nvfp4/gemv_prologue.cuh"
#include "nvfp4/gemv_ring.cuh"
#include "nvfp4/gemv_split_fixup.cuh"
#include "nvfp4/gemv_trace.cuh"
#include "nvfp4/gemv_w4a4_cluster.cuh"
#include "nvfp4/fp4_fragments.cuh"
#include "nvfp4/gemv_w4a4_quant.cuh"
#include "nvfp4/nvfp4_device.cuh"

namespace reset_native::nvfp4_cuda {
namespace detail {

template <int XDT, bool W4A4>
struct Mode {
  static constexpr bool kABf16 = !W4A4 && XDT != kF16;            // A/B fragments in bf16 (else fp16)
  static constexpr int kSplits = (!W4A4 && XDT == kF32) ? 3 : 1;  // fp32 x = sum of 3 bf16 parts (exact)
};

__device__ __forceinline__ uint32_t pack_pair(float lo, float hi, bool bf16) {
  if (bf16) {
    const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&h);
  }
  const __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&h);
}

// W4A4: the activation global scale from amax(|x|) (amax/2688, 1 for all-zero x) and the quantizer's divisor.
__device__ __forceinline__ void scales_from_amax(float amax, float& act_gs, float& act_d) {
  act_gs = amax == 0.0f ? 1.0f : __fdiv_rn(amax, kAmaxToGlobal);
  act_d = __fmul_rn(6.0f, act_gs);
}

// W4A4: the activation global scale (static, or amax/2688 from the pre-kernel) and the quantizer's divisor
// 6 * scale. Reads what the amax pre-kernel wrote: call after pdl_wait().
__device__ __forceinline__ void activation_scales(const GemvParams& p, float& act_gs, float& act_d) {
  if (p.act_amax != nullptr) {
    scales_from_amax(*p.act_amax, act_gs, act_d);
  } else {
    act_gs = p.act_gs;
    act_d = __fmul_rn(6.0f, act_gs);
  }
}

// W4A4, p.amax_inline: amax(|x|) over all m * k elements of x by the whole CTA (every thread gets it), with the
// amax pre-kernel's semantics (fmaxf: NaN dropped, inf kept; the max does not depend on the order). x is read
// from L2 once more before it is staged. All threads of the CTA must call it (one barrier).
template <int XDT>
__device__ float cta_amax(const GemvParams& p) {
  using E = Elem<XDT>;
  constexpr int kPer16B = 16 / int(sizeof(typename E::T));
  const int64_t count = int64_t(p.m) * p.k;
  const auto* x = static_cast<const typename E::T*>(p.x);
  float amax = 0.0f;
  if (p.x_aligned) {  // k % 16 == 0: whole 16-byte units
    const uint4* xv = static_cast<const uint4*>(p.x);
    for (int64_t i = threadIdx.x; i < count / kPer16B; i += blockDim.x) {
      const uint4 u = __ldg(xv + i);
      const auto* e = reinterpret_cast<const typename E::T*>(&u);
#pragma unroll
      for (int j = 0; j < kPer16B; ++j) amax = fmaxf(amax, fabsf(E::to_float(e[j])));
    }
  } else {
    for (int64_t i = threadIdx.x; i < count; i += blockDim.x) amax = fmaxf(amax, fabsf(E::to_float(x[i])));
  }
  return cta_max_to_all(amax);
}

// W4A4: one 16-element block of x quantized per SPEC section 2 (steps 2-5, with the activation global
// scale), replaced in place by its exact values e2m1 * e4m3 (<= 6 significant bits: exact in fp16); the
// activation global scale itself is applied in the epilogue.
// b: activation_block_scale(v, act_gs, act_d) (the overload below).
__device__ __forceinline__ void quantize_activation_block(float (&v)[16], const ActivationBlockScale& b) {
#pragma unroll
  for (int i = 0; i < 16; ++i)
    v[i] = copysignf(e2m1_magnitude_value(e2m1_round_magnitude(__fdiv_rn(fabsf(v[i]), b.s))) * b.sdec, v[i]);
}
__device__ __forceinline__ void quantize_activation_block(float (&v)[16], float act_gs, float act_d) {
  quantize_activation_block(v, activation_block_scale(v, act_gs, act_d));
}

// One output of a 16-row tile before the residual and the rounding: the 8 warps' partial sums of local row rl
// and token tok (red: [warp][16 rows][tok_stride]) in warp order, the decode bias, the global scale(s), the bias.
// Every step rounded on its own (__fmul_rn / __fadd_rn: never contracted): with plain operators nvcc fused the last
// scale multiply and the bias add into one FFMA in some inlined copies of the epilogue and not in others (which
// depends on how each kernel instance's epilogue loop is unrolled), so two kernels (e.g. a fused call and the
// separate ops, or two forms of one kernel) could differ in the last bit of an output with a bias.
template <int XDT, bool W4A4>
__device__ __forceinline__ float tile_value(const GemvParams& p, const float* red, int rl, int tok, int row,
                                            int tok_stride, float decode_bias, float act_gs) {
  using E = Elem<XDT>;
  float sum = 0.0f;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) sum += red[(w * 16 + rl) * tok_stride + tok];
  float y = __fmul_rn(__fmul_rn(sum, decode_bias), p.w_gs);
  if constexpr (W4A4) y = __fmul_rn(y, act_gs);
  if (p.bias != nullptr) y = __fadd_rn(y, E::to_float(static_cast<const typename E::T*>(p.bias)[row]));
  return y;
}

// Epilogue of a 16-row tile: sums the 8 warps' partial results in red ([warp][16 rows][tokens]), applies
// the decode bias, the global scale(s), the bias and the residual, and writes the rows < n of every real token.
// ONE_PASS: the caller guarantees 16 * m <= kThreads (one output per thread), so no loop for ptxas to unroll.
template <int XDT, bool W4A4, bool ONE_PASS = false>
__device__ __forceinline__ void write_tile(const GemvParams& p, const float* red, int row0, int tok_stride,
                                           float decode_bias, float act_gs, int tid) {
  using E = Elem<XDT>;
  auto* out = static_cast<typename E::T*>(p.out);
  const auto* residual = static_cast<const typename E::T*>(p.residual);
  for (int idx = tid; idx < 16 * p.m; idx += kThreads) {
    const int rl = idx % 16, tok = idx / 16, row = row0 + rl;
    if (row >= p.n) continue;
    float y = tile_value<XDT, W4A4>(p, red, rl, tok, row, tok_stride, decode_bias, act_gs);
    if (residual != nullptr) y = __fadd_rn(y, E::to_float(residual[int64_t(tok) * p.n + row]));
    out[int64_t(tok) * p.n + row] = E::from_float(y);
    if constexpr (ONE_PASS) break;
  }
}

// Split-K epilogue of a 16-row tile: the 8 warps' partial sums (in warp order, as tile_value adds them) of K
// slice `slice`, unscaled, to split_ws[slice][token][row]; gemv_split_reduce finishes them.
template <bool ONE_PASS = false>
__device__ __forceinline__ void write_partial(const GemvParams& p, const float* red, int row0, int tok_stride,
                                              int slice, int tid) {
  float* ws = p.split_ws + int64_t(slice) * p.m * p.n;
  for (int idx = tid; idx < 16 * p.m; idx += kThreads) {
    const int rl = idx % 16, tok = idx / 16, row = row0 + rl;
    if (row >= p.n) continue;
    float sum = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) sum += red[(w * 16 + rl) * tok_stride + tok];
    ws[int64_t(tok) * p.n + row] = sum;
    if constexpr (ONE_PASS) break;
  }
}

// Barrier of one team of 8 warps (named barriers 1, 2, ...; id 0 is __syncthreads).
__device__ __forceinline__ void team_sync(int team) {
  asm volatile("bar.sync %0, %1;" ::"r"(1 + team), "r"(kThreads) : "memory");
}

// 8 16-bit elements as the B operand holds them: pairs (j, j + 4).
__device__ __forceinline__ uint4 pair_permuted(uint4 q) {
  return make_uint4(__byte_perm(q.x, q.z, 0x5410), __byte_perm(q.x, q.z, 0x7632), __byte_perm(q.y, q.w, 0x5410),
                    __byte_perm(q.y, q.w, 0x7632));
}

// Where element e0 (a multiple of 8) of a chunk's K lies in its staged token row (u16 index): word planes.
__host__ __device__ constexpr int staged_offset(int e0) { return ((e0 % 32) / 8) * kPlane + (e0 / 32) * 8; }

// Converts one staged unit (16 elements of a token row) into the B operand values for each split and
// stores them, permuted (pairs (j, j+4) of every 8 elements), at column kk of the staged token row `row0`
// (split s at row0 + s * split_stride). W4A4 quantizes the block here (SPEC section 2 steps 2-5); QFAST
// (kForm16QuantFast): quantize_activation_block_fast where it applies, the same bits.
template <int XDT, bool W4A4, bool QFAST = false>
__device__ __forceinline__ void store_unit(uint16_t* row0, int split_stride, int kk, const RawUnit<XDT>& u,
                                           float act_gs, float act_d) {
  using M = Mode<XDT, W4A4>;
  using E = Elem<XDT>;
  if constexpr (!W4A4 && XDT != kF32) {
    // 16-bit x passes through: only the pair permutation (j, j+4) of every 8 elements.
#pragma unroll
    for (int h = 0; h < 2; ++h) *reinterpret_cast<uint4*>(row0 + staged_offset(kk + 8 * h)) = pair_permuted(u.r[h]);
    return;
  }
  float v[16];
  const auto* e = reinterpret_cast<const typename E::T*>(u.r);
#pragma unroll
  for (int i = 0; i < 16; ++i) v[i] = E::to_float(e[i]);
  float part[M::kSplits][16];
  if constexpr (W4A4) {
    if (!QFAST || !quantize_activation_block_fast(v, act_gs, act_d)) quantize_activation_block(v, act_gs, act_d);
#pragma unroll
    for (int i = 0; i < 16; ++i) part[0][i] = v[i];
  } else if constexpr (M::kSplits == 3) {
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const float hi = __bfloat162float(__float2bfloat16_rn(v[i]));
      const float r1 = v[i] - hi;
      const float mid = __bfloat162float(__float2bfloat16_rn(r1));
      part[0][i] = hi;
      part[1][i] = mid;
      part[2][i] = r1 - mid;
    }
  } else {
#pragma unroll
    for (int i = 0; i < 16; ++i) part[0][i] = v[i];
  }
#pragma unroll
  for (int s = 0; s < M::kSplits; ++s) {
    uint16_t* row = row0 + s * split_stride;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int e0 = kk + 8 * h;  // first element of these 8, a multiple of 8
      uint4 o;
      const float* f = &part[s][8 * h];
      o.x = pack_pair(f[0], f[4], M::kABf16);
      o.y = pack_pair(f[1], f[5], M::kABf16);
      o.z = pack_pair(f[2], f[6], M::kABf16);
      o.w = pack_pair(f[3], f[7], M::kABf16);
      *reinterpret_cast<uint4*>(row + staged_offset(e0)) = o;
    }
  }
}

// kForm16ClusterCompact (gemv_w4a4_cluster.cuh): store_unit<XDT, true, true> (the same staged values), and the
// unit's E2M1 codes (encode_unit_codes) and its decoded block scale as fp16 (exact).
template <int XDT>
__device__ __forceinline__ void store_unit_codes(uint16_t* row0, int kk, const RawUnit<XDT>& u, float act_gs,
                                                 float act_d, uint2* codes, __half* scale) {
  using E = Elem<XDT>;
  float v[16];
  const auto* e = reinterpret_cast<const typename E::T*>(u.r);
#pragma unroll
  for (int i = 0; i < 16; ++i) v[i] = E::to_float(e[i]);
  const ActivationBlockScale b = activation_block_scale(v, act_gs, act_d);
  if (!quantize_activation_block_fast(v, b)) quantize_activation_block(v, b);
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const float* f = &v[8 * h];
    *reinterpret_cast<uint4*>(row0 + staged_offset(kk + 8 * h)) =
        make_uint4(pack_pair(f[0], f[4], false), pack_pair(f[1], f[5], false), pack_pair(f[2], f[6], false),
                   pack_pair(f[3], f[7], false));
  }
  if (codes != nullptr) {
    *codes = encode_unit_codes(v, b.sdec);
    *scale = __float2half_rn(b.sdec);
  }
}

// Weight and scale pointers of rows row_g and row_g + 8 at this thread's K offset kwarp inside a chunk.
// Rows past n are clamped to the last row: valid memory, results unused.
__device__ __forceinline__ void row_pointers(const GemvParams& p, int row_g, int kwarp, int64_t half_k,
                                             int64_t sixteenth_k, const uint8_t* (&w)[2], const uint8_t* (&s)[2]) {
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    const int64_t row = min(row_g + hr * 8, p.n - 1);
    w[hr] = p.packed + row * half_k + kwarp / 2;
    s[hr] = p.scales + row * sixteenth_k + kwarp / 16;
  }
}

// One step's weights for this thread: 16-byte fragments (32 FP4) of rows g and g + 8 of the tile at K
// offset kbase, and the two E4M3 scale bytes of each. w_row / s_row point at the rows' starts plus this
// thread's K offset inside a chunk; chunk c adds c * kChunk elements.
template <bool FAST>
__device__ __forceinline__ void load_weights(const uint8_t* const (&w_row)[2], const uint8_t* const (&s_row)[2],
                                             int c, int kbase, int k, uint32_t (&wv)[2][4], uint32_t (&sc)[2]) {
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    const uint8_t* wp = w_row[hr] + uint32_t(c) * (kChunk / 2);
    const uint8_t* sp = s_row[hr] + uint32_t(c) * (kChunk / 16);
    if constexpr (FAST) {
      const uint4 v = ld_stream_v4(wp);
      wv[hr][0] = v.x, wv[hr][1] = v.y, wv[hr][2] = v.z, wv[hr][3] = v.w;
      sc[hr] = __ldg(reinterpret_cast<const uint16_t*>(sp));
    } else {
      uint2 a = make_uint2(0, 0), b = make_uint2(0, 0);
      uint32_t s0 = 0, s1 = 0;  // scale 0 => exact zeros beyond k
      if (kbase + 16 <= k) a = ld_stream_v2(wp), s0 = __ldg(sp);
      if (kbase + 32 <= k) b = ld_stream_v2(wp + 8), s1 = __ldg(sp + 1);
      wv[hr][0] = a.x, wv[hr][1] = a.y, wv[hr][2] = b.x, wv[hr][3] = b.y;
      sc[hr] = s0 | (s1 << 8);
    }
  }
}

// load_weights<true> as predicated loads (kForm16Phased, kForm16PredRefill): no branch around the refills. When !on
// the slot's values are undefined (steps past the end are never computed).
// dep (zero) is added to the addresses: a value loaded earlier, so the loads cannot be issued before it has landed.
__device__ __forceinline__ void load_weights_if(const uint8_t* const (&w_row)[2], const uint8_t* const (&s_row)[2],
                                                int c, bool on, uint32_t (&wv)[2][4], uint32_t (&sc)[2],
                                                uint32_t dep = 0) {
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    const uint8_t* wp = w_row[hr] + (uint32_t(c) * (kChunk / 2) + dep);
    const uint8_t* sp = s_row[hr] + (uint32_t(c) * (kChunk / 16) + dep);
    asm volatile(
        "{\n .reg .pred p;\n setp.ne.b32 p, %6, 0;\n"
        " @p ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0,%1,%2,%3}, [%5];\n"
        " @p ld.global.nc.u16 %4, [%7];\n}"
        : "=r"(wv[hr][0]), "=r"(wv[hr][1]), "=r"(wv[hr][2]), "=r"(wv[hr][3]), "=r"(sc[hr])
        : "l"(wp), "r"(int(on)), "l"(sp));
  }
}

// Block-scale pair (s, s) for the A operand, times 2^7: fp16 or bf16 bits.
template <bool BF16>
__device__ __forceinline__ void scale_pairs(uint32_t two_bytes, uint32_t& s0, uint32_t& s1) {
  uint32_t h = e4m3x2_to_half2(two_bytes);
  if constexpr (BF16) {
    const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&h));
    // fp4 pairs decode as e2m1 * 2^-126 in bf16: bring the scale to e4m3 * 2^119 (exact, < 2^128).
    constexpr float kBias = 6.6461399789245794e35f;  // 2^119
    h = pack_pair(f.x * kBias, f.y * kBias, true);
  } else {
    // fp4 pairs decode as e2m1 * 2^-14 in fp16: scale by e4m3 * 2^7 (<= 57344, exact).
    const __half2 b = __float2half2_rn(kDecodeBias);
    const __half2 r = __hmul2(*reinterpret_cast<const __half2*>(&h), b);
    h = *reinterpret_cast<const uint32_t*>(&r);
  }
  s0 = __byte_perm(h, 0, 0x1010);
  s1 = __byte_perm(h, 0, 0x3232);
}

// FORM bits of the 16-bit kernel (gemv_kernel; the launcher picks them per instance, form16_rule). All give the same
// bits as FORM 0, the form before session 13.
//   kForm16Decode (bf16 A/B): fp4_word_bf16_select2, 11 instructions per word instead of fp4_word's 13.
//   kForm16Phased (the persistent fast-path instances): ptxas gives every streaming weight load of the step loop one
//     scoreboard, so any wait for a slot's words waits for every weight load in flight. FORM 0 refills each slot
//     right after its step reads it; the whole-x instances then wait once per loop, at its head (right after the
//     last slot's refill), but the split-K ones waited 48 times per loop: ptxas loaded each refill into other
//     registers and copied it into the slot after the tile-epilogue branch (each step waited for the refill it had
//     just issued) and the tile epilogue's shared-memory loads, out of scoreboards, shared the weights' one. Phased:
//     two sets of kDepth slots, each refilled (predicated loads, no branch) right after the wait for the other
//     (the refill's addresses depend on the other set's first word, so ptxas cannot issue them earlier), then the
//     other set computed: two waits per 2 kDepth steps, each for loads issued kDepth steps of compute earlier;
//     twice the unrolled code, 30 registers more (the three-CTA kernel, 80 registers, would spill).
//     (Tried, removed in session 13: one slot set copied out at the loop head, an OR with a runtime zero, then all
//     refilled at once: one wait per loop, ~10 instructions per step more; the same wins and losses, see below.)
//   kForm16Stage (session 14; the whole-x kernels at A16 with 16-bit x, 16-byte aligned x): x staged without a
//     division per unit, 4 units in flight per thread (stage_wide in gemv_kernel); the same staged x. Form 0's loop
//     spent ~100 instructions per 16-element unit (two divisions by a runtime count, signed index math, per-unit load
//     checks) with two units in flight: ~800 instructions per thread before the first MMA at 16 tokens x K 4096.
//   kForm16LateRefill (session 14; not with kForm16Phased): a step refills its slot after its MMAs instead of right
//     after reading it, except the last slot of the unrolled loop. ptxas then loads straight into the slots (FORM 0
//     copies them out: 8-16 moves per step), and on the split-K kernel the per-step waits go (48 -> 17 per loop).
//     The last slot keeps the early refill: the loop waits once, at its head, for every weight load in flight, and
//     that one would otherwise have been issued right before the wait. (Every slot late: measured level with this.)
//   (Session 14, measured and removed: each walker's first two row tiles prefetched into L2 before the x staging,
//   slower on most rows, e.g. Qwen3-8B down M = 3 13.6 -> 16.7 us, q/k/v M = 4 7.9 -> 8.7; bench/RESULTS.md.)
//   kForm16Scale (session 16, helper gemv19; every eligible instance): the block scales as one word (scale_word), the
//     pair broadcast folded into the operand multiply's swizzle (mul_pair_half): 5 instructions per row and step
//     instead of 9 (bf16; fp16: 3 instead of 5), -0.5 per HMMA; the same bits for every scale byte but NaN.
//   kForm16OnePass (session 16; the split-K kernels): the tile epilogue as one pass (16 * m <= 256 outputs, one per
//     thread), which shrinks the unrolled loop's code to about a third; needs the late refill or the phased loop:
//     with the early refill ptxas loaded each refill into spare registers and copied it into the slot, waiting for it
//     in its own step (6-12 waits per loop on the two-team, two-CTA and one-CTA kernels; static SASS).
//   kForm16PredRefill (session 16; the two-team and split-K kernels with 16 token columns): the non-phased refills as
//     predicated loads (load_weights_if), no branch around them: -0.1 to -0.2 instructions per HMMA.
//   (Session 18, helper gemv22, measured and removed: split accumulators, the second k16 of each word into its own
//   fp32 registers: slower on the two-team kernels at M = 16; bench/RESULTS.md, session 18.)
//   kForm16HeadRefill (session 18 helper gemv22's idea, session 19 helper gemv28, W4A4 only since session 20 helper
//     gemv32; in the W4A4 rule on split K since session 20's last call, RESET_NATIVE_GEMV_16_FORM=nohead drops it,
//     =head adds it on every W4A4 instance; not with the phased loop, replaces the late refill): at the head
//     of the unrolled loop every slot is copied into this iteration's words and refilled at once, instead of each
//     slot at its own step. Every weight load sets one scoreboard, so the head's one wait waits for all loads in
//     flight: with per-step refills the youngest was issued one step before; here all were issued kDepth steps
//     before (W4A4 split K: 48 -> 1 waits per loop, static SASS). The same loads, MMAs and sums: the same bits.
//     Session 20 round 1, H200 2026-11-29 (W4A4 rule then the pad alone, bf16 x): split K gained (32B down M = 8
//     52.3 -> 44.8 us, 32B o M = 16 40.5 -> 37.8), two teams at M = 16 lost (32B gate_up 90.5 -> 111.3); A16 level
//     or slower (32B gate_up M = 16 63.2 -> 84.0), so A16 has no head kernels. Session 20 call 4a (H200, the
//     W4A4 rule with the fast quantizer, unset vs head, means of two copies, same bits): every split-K row gained,
//     8B down M = 4 / 8 / 16 19.8 -> 18.2, 25.6 -> 23.1, 33.2 -> 31.6 us; 32B o 17.2 -> 15.7, 21.6 -> 19.9, 30.8 ->
//     29.8; 32B down M = 2 / 4 / 8 / 16 38.1 -> 32.4, 42.2 -> 36.9, 45.2 -> 39.7, 55.7 -> 53.4; the two-team rows
//     lost or tied (32B gate_up M = 16 78.3 -> 98.1, 32B q/k/v 30.7 -> 33.6): so the rule has it on split K only.
//   (Session 16, measured and removed: a fourth slot on the two-team kernel, alone and with the late refill, and the
//   phased loop on it, with and without the one-pass epilogue: level or slower, the phased loop much slower at M = 16
//   (32B gate_up 70.8 -> 92.8 us; ncu: no-instruction stalls 0.22 -> 1.43 per instruction, 119 KB of loop code);
//   bench/RESULTS.md, session 16.)
constexpr int kForm16Decode = 2, kForm16Phased = 4, kForm16Stage = 8, kForm16LateRefill = 16, kForm16Scale = 32,
              kForm16OnePass = 128, kForm16PredRefill = 256, kForm16HeadRefill = 1024, kForm16RedPad = 2048;
// kForm16QuantFast, kForm16AmaxWide (session 19 helper w4a4x29; W4A4 only, in its rule since session 20 helper
// w4a4x30: w4a4_pad_eligible): the x quantization and the in-kernel activation amax of gemv_w4a4_quant.cuh, the same
// bits.
constexpr int kForm16QuantFast = 4096, kForm16AmaxWide = 8192;
// kForm16Cluster (session 20 helper w4a4cluster35; the default at M >= 8 since session 21, w4a4_cluster_size): the
// W4A4 two-team kernel (its rule's form plus this bit) launched in clusters of C CTAs, one per SM. Each CTA quantizes
// 1/C of x's staged token rows (stage_cluster; every CTA used to quantize all of them), then, after a cluster
// barrier, copies the other CTAs' rows from their shared memory (DSMEM) into its own: the same staged x, so the same
// bits. A second barrier phase (arrive after the copy, wait before exit) keeps every CTA's
// shared memory alive while a peer may still read it.
// On the W4A4 split-K kernel (opt-in, gemv_split_cluster.cuh) the C CTAs of a cluster share one K slice instead.
constexpr int kForm16Cluster = 16384;
// kForm16RedPad (session 18, helper gemv22; in form16_rule since session 19, RESET_NATIVE_GEMV_16_FORM=nopad drops
// it): the tile epilogue's reduction buffer with rows of kTok + 2 floats instead of kTok. write_tile / write_partial
// read red[(w * 16 + rl) * stride + tok] with lanes (rl = lane % 16, tok = 2q + lane / 16): at stride 16 (M = 9..16)
// the 32 lanes hit 4 banks (8-way conflicts, 8 wavefronts per LDS, 64 per warp and tile), at 18 none; at stride 8
// (M <= 8) 4-way, at 10 none; the fragment stores (STS.64) stay at 4 wavefronts each at 16 columns, 2 -> 4 at 8 (a
// lane model over the 32 lanes, not measured). ncu (round 2, two teams at 24576x4096x16): the tile epilogue took
// 21.5% of the warps' stall samples with 1.93 of 14.3 instructions per HMMA, its FADDs waiting on these loads (29% of
// its samples, short scoreboard) and the loads on the MIO queue (15%). The same sums in the same order: the same bits.
// Measured in session 18's final call (H200, bench/RESULTS.md): M = 16 -9 to -16% on every Qwen3 layer (means of two
// copies: 32B down 45.7 -> 38.5 us), M = 8 level to -0.4 us. 2 KB more shared memory per team (red_pad_bytes), which
// the routing counts (tile_smem_bytes, split_launch_smem_bytes: the bytes the launch asks for are the bytes checked
// against kWholeSmemLimit and the opt-in limit). That moves two fast-path (K, M) from two CTAs per SM to one (two
// teams): K = 4096 at M = 11 (Qwen3-8B q/k/v, o, gate_up; 111424 + 2048 B over 110 KB) and K = 6144 at M = 8
// (bench/probes/gemv16_pad_routing.py models every shape; gemv16_pad_routing_check.cu checks it against this header).
// Session 19 round 1 (H200, default vs nopad, two copies each): M = 11 8B q/k/v 12.7 -> 10.1 us, o 9.5 -> 7.9-8.1,
// gate_up 29.4-30.1 -> 24.9-25.3 (two teams beat the two CTAs they replace); M = 16 -0.5 to -6.3 us, M = 8 level.
constexpr int kRedPad = 2;
// Floats per row of a reduction buffer (kWarps x 16 rows per buffer): nt x 8 tokens, plus kRedPad where padded.
__host__ __device__ constexpr int red_row_floats(int nt, bool padded) { return 8 * nt + (padded ? kRedPad : 0); }

// Weight slots per thread of the two-team kernel (16 warps per SM) at 9..16 tokens (NT = 2): two since session 37,
// three before and still at 3..8 tokens. Session 37 (H200, bench/RESULTS.md): the chain probe timed 2 slots faster
// than 3 on every shape it runs (8B gate_up M = 16 25.60 -> 25.09 us, 8B o 8.70 -> 8.19, 32B q/k/v 18.94 -> 18.30),
// while a read-only loop at 4 or 6 slots was slower than at 3: more bytes in flight is not what this loop lacks. In
// the package (two builds, same bits) 2 slots gained on 11 of the 12 rows at 9..16 tokens (8B o M = 9 7.5 -> 6.9
// us, 32B gate_up M = 16 58.6-58.9 -> 58.1-58.3, W4A4 71.2 -> 70.0) but lost at 3..8 tokens on the long rows (32B o
// M = 3-4 +0.2-0.4 us, W4A4 32B gate_up M = 6 47.5 -> 49.0), hence the split by NT. Builds with
// -DRESET_NATIVE_GEMV_TEAM_SLOTS_NT2=N / -DRESET_NATIVE_GEMV_TEAM_SLOTS_NT1=N (3..8 tokens) set other counts for A/B
// runs (bench/probes/gemv_define_ab.sh); the slot count changes no output bit (the same loads, MMAs and sums).
#ifndef RESET_NATIVE_GEMV_TEAM_SLOTS_NT2
#define RESET_NATIVE_GEMV_TEAM_SLOTS_NT2 2
#endif
#ifndef RESET_NATIVE_GEMV_TEAM_SLOTS_NT1
#define RESET_NATIVE_GEMV_TEAM_SLOTS_NT1 3
#endif

// Weight slots per thread of the two-CTA whole-x kernels (MINB = 2), build-time so that other counts can be A/B'd
// (bench/probes/gemv_define_ab.sh). Split K (RESET_NATIVE_GEMV_SPLIT_SLOTS): 2 since session 38, 3 before. H200
// 2026-11-30 (bench/RESULTS.md "Session 38", call B: two rounds, 2 -> 3 slots, same bits), A16: 8B down M = 4 12.5 ->
// 13.2 us, 32B down M = 4 25.5-25.6 -> 27.4-27.5, M = 8 26.4-26.9 -> 28.0-28.1, 32B o M = 8 11.9-12.0 -> 12.5-12.6;
// W4A4: 32B down M = 16 47.4-47.8 -> 49.5-50.1; M = 1-2 level; one loss, A16 32B down M = 16 35.9-36.0 -> 35.3-35.4
// (level in call A). 3..8 tokens past the two teams' tile limit, e.g. Qwen3-32B gate_up
// (RESET_NATIVE_GEMV_TWO_CTA_SLOTS): 3, where 2 lost 0.1-0.4 us (M = 3, 4) or tied (M = 8) in call A.
#ifndef RESET_NATIVE_GEMV_SPLIT_SLOTS
#define RESET_NATIVE_GEMV_SPLIT_SLOTS 2
#endif
#ifndef RESET_NATIVE_GEMV_TWO_CTA_SLOTS
#define RESET_NATIVE_GEMV_TWO_CTA_SLOTS 3
#endif
// One reduction buffer per team instead of two where two push the SM's shared memory past the 196 KB carve-out
// (red_one_fits): at 228 KB the SM keeps 28 KB of L1, and returning weight sectors are staged in L1 even by
// L1::no_allocate loads. Session 39 (H200, bench/RESULTS.md, bench/probes/hbm_read_carveout.cu): a read-only loop of
// the 16-token kernel's shape streamed 3.99 TB/s with 0, 96 or 170 KB of shared memory reserved but 3.19 TB/s with
// 203 KB (2.86 with the 2-byte scale loads), and Qwen3-32B gate_up at 16 tokens (K = 5120: 208 KB with two buffers,
// 190 with one) ran at the lower rate. One buffer costs a second barrier per tile (before the buffer is written
// again); the sums and their order are unchanged, so are the bits. -DRESET_NATIVE_GEMV_RED_ONE=0 builds without it.
#ifndef RESET_NATIVE_GEMV_RED_ONE
#define RESET_NATIVE_GEMV_RED_ONE 1
#endif
constexpr size_t kCarveout196 = 196 * 1024, kSmemReservedPerCta = 1024;  // sm_90's carve-out step below 228 KB
constexpr int kRedOneBit = 2;  // GemvParams::team_major bit 1: this launch gave the kernel one reduction buffer
// Whether one reduction buffer per team (smem_one bytes per CTA) keeps ctas CTAs of an SM within the 196 KB
// carve-out where two (smem_two) do not.
constexpr bool red_one_fits(size_t smem_two, size_t smem_one, int ctas) {
  return RESET_NATIVE_GEMV_RED_ONE != 0 && ctas * (smem_two + kSmemReservedPerCta) > kCarveout196 &&
         ctas * (smem_one + kSmemReservedPerCta) <= kCarveout196;
}

constexpr bool slots_within(int slots, int most) { return slots >= 1 && slots <= most; }
static_assert(slots_within(RESET_NATIVE_GEMV_TEAM_SLOTS_NT2, 6) && slots_within(RESET_NATIVE_GEMV_TEAM_SLOTS_NT1, 6) &&
                  slots_within(RESET_NATIVE_GEMV_SPLIT_SLOTS, 4) && slots_within(RESET_NATIVE_GEMV_TWO_CTA_SLOTS, 4),
              "weight slots per thread: 1..6 for the two teams, 1..4 for two CTAs (build-time defines above)");

// Weight steps in flight per thread (each 32 B of FP4 + 4 scale bytes): deep when one CTA owns the SM
// (MINB == 1, registers to spare), else what fits 2 CTAs per SM in 128 registers.
template <bool WHOLE, int NT, int MINB, int TEAMS = 1, bool SPLIT = false>
__host__ __device__ constexpr int depth() {
  if (TEAMS > 1) return NT == 2 ? RESET_NATIVE_GEMV_TEAM_SLOTS_NT2 : RESET_NATIVE_GEMV_TEAM_SLOTS_NT1;  // 16 warps
  if (MINB == 1) return 6;
  if (MINB == 2 && WHOLE) return SPLIT ? RESET_NATIVE_GEMV_SPLIT_SLOTS : RESET_NATIVE_GEMV_TWO_CTA_SLOTS;
  return WHOLE ? 3 : 2;  // chunked: also the tiles per CTA, so small enough to leave CTAs for every SM
}

// Row tiles a CTA computes per staged x chunk: chunked mode stages each K chunk of x once for kDepth
// tiles (x traffic from L2 / kDepth); WHOLE mode stages x once for all its tiles anyway.
template <bool WHOLE, int NT, int MINB>
__host__ __device__ constexpr int group() {
  return WHOLE ? 1 : depth<WHOLE, NT, MINB>();
}

// Start of both GEMV kernels' main phase: the first kDepth weight steps go in flight before waiting for
// the previous kernel (weights do not depend on it; x, the activation amax and the output do), then the
// next kernel may launch and W4A4 reads its activation scales.
// AMAX_WIDE (kForm16AmaxWide): the in-kernel amax by cta_amax_wide (the same max). AMAX_CLUSTER
// (kForm16ClusterAmax): by cluster_amax, split over the cluster (the same max), through amax_bar (the kernel called
// cluster_amax_open(amax_bar) first).
template <int XDT, bool W4A4, bool AMAX_WIDE = false, bool AMAX_CLUSTER = false, int kDepth, class Fetch>
__device__ __forceinline__ void prefetch_then_wait(const GemvParams& p, int steps, Fetch& fetch,
                                                   uint32_t (&wv)[kDepth][2][4], uint32_t (&sc)[kDepth][2],
                                                   float& act_gs, float& act_d, uint64_t* amax_bar = nullptr) {
#ifdef GEMV_TRACE_PREFETCH  // probe-only (bench/probes/gemv_chain_trace.cu): steps loaded before the PDL wait
  constexpr int kPrefetch = GEMV_TRACE_PREFETCH;
#else
  constexpr int kPrefetch = kDepth;
#endif
#pragma unroll
  for (int d = 0; d < kDepth; ++d)
    if (d < steps && d < kPrefetch) fetch(wv[d], sc[d]);
  cuda_core::pdl_wait();
  cuda_core::pdl_trigger();
#pragma unroll
  for (int d = kPrefetch; d < kDepth; ++d)
    if (d < steps) fetch(wv[d], sc[d]);
  if constexpr (W4A4) {
    if (p.amax_inline) {
      float amax;
      if constexpr (AMAX_CLUSTER) {
        amax = cluster_amax<XDT>(p, amax_bar);
      } else if constexpr (AMAX_WIDE) {
        amax = cta_amax_wide<XDT>(p);
      } else {
        amax = cta_amax<XDT>(p);
      }
      // Split K: the reduction kernel applies the scale too and reads it here (after its pdl_wait, i.e. once
      // this grid has finished); every CTA computes the same max, so any one may store it.
      if (p.ksplit > 1 && blockIdx.x == 0 && threadIdx.x == 0) *const_cast<float*>(p.act_amax) = amax;
      scales_from_amax(amax, act_gs, act_d);
    } else {
      activation_scales(p, act_gs, act_d);
    }
  }
}

// RING: weights come through the shared-memory ring of gemv_ring.cuh (one more warp, the producer);
// otherwise each thread keeps kDepth steps of global loads in flight in registers.
// SPLIT (WHOLE only): CTA b takes K slice b % p.ksplit (a contiguous run of chunks, staged whole) and walks
// row tiles b / p.ksplit, + gridDim.x / p.ksplit, ...; tiles end in fp32 partial sums (write_partial) that
// gemv_split_reduce adds up (or, A16 at one token, the kernel's own last CTA per walker group: split_fixup). x of
// many tokens x long K then still fits next to a second CTA.
// TEAMS = 2 (WHOLE, one CTA per SM): two teams of 8 warps share one staged copy of x, each walking its own row
// tiles with its own reduction buffers and barrier: 16 warps stream weights where x fits only once per SM.
// FORM: bits of kForm16* (0 = the form before session 13).
template <int XDT, bool W4A4, int NT, bool FAST, bool WHOLE, int MINB, bool RING = false, bool SPLIT = false,
          int TEAMS = 1, int FORM = 0>
__global__ void __launch_bounds__(RING ? kThreads + 32 : kThreads * TEAMS, MINB) gemv_kernel(const GemvParams p, const __grid_constant__ RingMaps maps) {
  static_assert(!RING || (FAST && WHOLE), "the weight ring serves the persistent fast-path kernel only");
  static_assert(!SPLIT || (WHOLE && !RING), "split K runs the persistent whole-slice kernel without the ring");
  static_assert(TEAMS == 1 || (WHOLE && !RING && MINB == 1), "teams share whole x, one CTA per SM, no ring");
  using M = Mode<XDT, W4A4>;
  constexpr bool kBf = M::kABf16;
  constexpr int kSplits = M::kSplits;
  constexpr int kRows = 16;           // one m16 tile of weight rows per CTA step
  constexpr int kTok = 8 * NT;
  constexpr int kDepth = RING ? 1 : depth<WHOLE, NT, MINB, TEAMS, SPLIT>();
  constexpr int kCtaThreads = kThreads * TEAMS;  // staging is shared by the teams
  constexpr int kGroup = group<WHOLE, NT, MINB>();  // == kDepth when chunked: slot d computes tile d

  extern __shared__ uint4 smem_raw[];
  uint16_t* xs = reinterpret_cast<uint16_t*>(smem_raw);
  const int ctid = threadIdx.x, team = TEAMS > 1 ? ctid / kThreads : 0;
  const int tid = TEAMS > 1 ? ctid % kThreads : ctid, warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
  // K slice of this CTA (all of K unless SPLIT): chunks [c_base, c_base + nchunks); CTA cta of ctas walking tiles.
  // kForm16Cluster on split K: a cluster's CTAs share one slice (split_cluster_slice, gemv_w4a4_cluster.cuh).
  constexpr bool kSplitCluster = SPLIT && (FORM & kForm16Cluster) != 0;
  const int slice = kSplitCluster ? split_cluster_slice(p.ksplit) : SPLIT ? int(blockIdx.x) % p.ksplit : 0;
  // Tile walker: two teams without split K number their walkers team-major where the launcher says so (team_major_on).
  const bool team_major = TEAMS > 1 && !SPLIT && (p.team_major & 1) != 0;
  const int cta = kSplitCluster ? split_cluster_walker(p.ksplit)
                  : team_major  ? team * int(gridDim.x) + int(blockIdx.x)
                                : (SPLIT ? int(blockIdx.x) / p.ksplit : int(blockIdx.x)) * TEAMS + team;
  const int ctas = (SPLIT ? int(gridDim.x) / p.ksplit : int(gridDim.x)) * TEAMS;
  const int all_chunks = (p.k + kChunk - 1) / kChunk;
  const int c_base = SPLIT ? slice * all_chunks / p.ksplit : 0;
  const int nchunks = SPLIT ? (slice + 1) * all_chunks / p.ksplit - c_base : all_chunks;
  const int m = p.m;

  // Staged-x row layout. WHOLE: [split][chunk * m + token] then one zero row per split.
  // Chunked: [buffer][split][token < kTok]; padded tokens stay zero.
  const int split_rows = WHOLE ? nchunks * m + 1 : kTok;
  const int zero_row = WHOLE ? nchunks * m : 0;
  auto xrow = [&](int s, int c, int tok) -> int {  // row index of token tok, chunk c, split s
    if constexpr (WHOLE) {
      return s * split_rows + (tok < m ? c * m + tok : zero_row);
    } else {
      return ((c & 1) * kSplits + s) * kTok + tok;
    }
  };
  constexpr int kRedStride = red_row_floats(NT, (FORM & kForm16RedPad) != 0 && WHOLE);  // floats per red row
  // One reduction buffer per team (red_one_launch: two-team kernels only).
  const bool red_one = RESET_NATIVE_GEMV_RED_ONE != 0 && TEAMS > 1 && (p.team_major & kRedOneBit) != 0;
  float* red = reinterpret_cast<float*>(xs + size_t(WHOLE ? kSplits * split_rows : 2 * kSplits * kTok) * kTokStride) +
               team * ((red_one ? 1 : 2) * kWarps * 16 * kRedStride);

  float act_gs = 1.0f, act_d = 6.0f;  // W4A4: set after pdl_wait (the amax pre-kernel writes it)

  // ---- weight ring: the producer warp streams every step of this CTA, then leaves
  const WeightRing<ring_stages<MINB>()> ring(reinterpret_cast<uint8_t*>(smem_raw),
                                             size_t(reinterpret_cast<uint8_t*>(red + 2 * kWarps * 16 * kTok) -
                                                    reinterpret_cast<uint8_t*>(smem_raw)));
  if constexpr (RING) {
    if (tid == 0) ring.init();
    __syncthreads();
    if (warp == kWarps) {
      const int tiles = ((p.n + 15) / 16 - int(blockIdx.x) + int(gridDim.x) - 1) / int(gridDim.x);
      ring.produce(maps, tiles * nchunks, int(blockIdx.x) * 16, int(gridDim.x) * 16, nchunks);
      return;
    }
  }

  // ---- zero rows (never rewritten): WHOLE's shared zero row, or the padded tokens of both buffers
  if constexpr (WHOLE) {
    for (int i = ctid; i < kSplits * kTokStride / 8; i += kCtaThreads) {
      const int s = i / (kTokStride / 8), off = i % (kTokStride / 8);
      reinterpret_cast<uint4*>(xs + size_t(s * split_rows + zero_row) * kTokStride)[off] = make_uint4(0, 0, 0, 0);
    }
  } else {
    for (int i = tid; i < 2 * kSplits * kTok * kTokStride / 8; i += kThreads) {
      const int row = i / (kTokStride / 8);
      if (row % kTok >= m) reinterpret_cast<uint4*>(xs)[i] = make_uint4(0, 0, 0, 0);
    }
  }

  // ---- x staging: units of 16 elements of one real token
  constexpr int kStageBatch = 2;  // units loaded before the first is converted (memory-level parallelism)
  // kForm16Stage (16-bit x at A16, 16-byte aligned x): the units of a token are its c_count chunks x 64 units; thread
  // ctid takes units ctid + i * kCtaThreads, i.e. always unit ctid % 64 of some (token, chunk): its shared-memory
  // column and x offset inside a chunk are fixed, and (token, chunk) advances by an incremental quotient and
  // remainder (no division per unit, unlike the loop below). kStageBatchWide units are in flight per thread, the
  // loads unconditional (past the last token they read its row again and are not stored). Every unit goes where the
  // loop below puts it: the staged x, and so every output, is the same.
  constexpr bool kWideStage = (FORM & kForm16Stage) != 0 && WHOLE && !W4A4 && XDT != kF32;
  constexpr bool kQuantFast = W4A4 && (FORM & kForm16QuantFast) != 0;
  constexpr bool kCluster = (FORM & kForm16Cluster) != 0;
  static_assert(!kCluster || (W4A4 && (TEAMS > 1 ? !SPLIT : SPLIT)), "clusters: the W4A4 two-team or split kernel");
  constexpr bool kClusterAmax = kCluster && (FORM & kForm16ClusterAmax) != 0;
  constexpr bool kCompact = kCluster && (FORM & kForm16ClusterCompact) != 0;
  static_assert(kCluster || (FORM & (kForm16ClusterAmax | kForm16ClusterCompact)) == 0, "cluster forms only");
#ifdef GEMV_TRACE_STAGE_BATCH  // probe-only (bench/probes/gemv_chain_trace.cu): units in flight per thread
  constexpr int kStageBatchWide = GEMV_TRACE_STAGE_BATCH;
#else
  constexpr int kStageBatchWide = 4;
#endif
  static_assert(kCtaThreads % kUnitsPerToken == 0, "a thread keeps its unit column");
  auto stage_wide = [&](int c_first, int c_count) {
    constexpr unsigned kStep = kCtaThreads / kUnitsPerToken;  // (token, chunk) pairs one round advances
    const unsigned cc = unsigned(c_count), dq = kStep / cc, dr = kStep % cc;
    const unsigned col = unsigned(ctid) % kUnitsPerToken;
    unsigned tok = unsigned(ctid) / kUnitsPerToken / cc, ch = unsigned(ctid) / kUnitsPerToken % cc;
    const unsigned last = unsigned(m - 1);
    const uint16_t* x = static_cast<const uint16_t*>(p.x) + (c_first * kChunk + col * 16);
    uint16_t* dst = xs + staged_offset(int(col) * 16);  // + 8 elements: + staged_offset(8)
    while (tok < unsigned(m)) {
      uint4 v[kStageBatchWide][2];
      unsigned row[kStageBatchWide];
#pragma unroll
      for (int b = 0; b < kStageBatchWide; ++b) {
        row[b] = tok < unsigned(m) ? ch * unsigned(m) + tok : ~0u;  // xrow(0, ch, tok)
        const auto* src = reinterpret_cast<const uint4*>(x + (size_t(min(tok, last)) * unsigned(p.k) + ch * kChunk));
        v[b][0] = __ldg(src);
        v[b][1] = __ldg(src + 1);
        tok += dq, ch += dr;
        if (ch >= cc) ch -= cc, ++tok;
      }
#pragma unroll
      for (int b = 0; b < kStageBatchWide; ++b) {
        if (row[b] == ~0u) continue;
        uint16_t* d = dst + size_t(row[b]) * kTokStride;
        *reinterpret_cast<uint4*>(d) = pair_permuted(v[b][0]);
        *reinterpret_cast<uint4*>(d + staged_offset(8)) = pair_permuted(v[b][1]);
      }
    }
  };
  auto stage = [&](int c_first, int c_count) {
    if (kWideStage && p.x_aligned) return stage_wide(c_first, c_count);
    const int units = m * c_count * kUnitsPerToken;
    for (int base = ctid; base < units; base += kStageBatch * kCtaThreads) {
      RawUnit<XDT> v[kStageBatch];
      int tok[kStageBatch], kidx[kStageBatch];
#pragma unroll
      for (int b = 0; b < kStageBatch; ++b) {
        const int u = base + b * kCtaThreads;
        tok[b] = u < units ? u / (c_count * kUnitsPerToken) : m;
        kidx[b] = c_first * kChunk + (u % (c_count * kUnitsPerToken)) * 16;
        load_unit<XDT>(p, tok[b], kidx[b], v[b]);
      }
#pragma unroll
      for (int b = 0; b < kStageBatch; ++b) {
        if (tok[b] >= m) continue;
        const int c = kidx[b] / kChunk - c_first, kk = kidx[b] % kChunk;
        store_unit<XDT, W4A4, kQuantFast>(xs + size_t(xrow(0, c, tok[b])) * kTokStride,
                                          (xrow(1, c, tok[b]) - xrow(0, c, tok[b])) * kTokStride, kk, v[b], act_gs,
                                          act_d);
      }
    }
  };

  // kForm16Cluster, after the barrier that publishes every share: the other CTAs' data columns (2048 of each staged
  // row's 2112 bytes) copied from their shared memory into the same place in this CTA's, then this thread's arrival
  // on the barrier's next phase (done reading the peers' shared memory).
  auto copy_shares = [&](int rank, int csize, auto share_start) {
    constexpr int kRowVecs = kChunk * 2 / 16;  // 16-byte vectors of a row's data columns
    constexpr int kCopyBatch = 4;              // remote loads in flight per thread
    const uint32_t xs_addr = cuda_core::smem_addr(xs);
    auto byte_offset = [&](unsigned i) {  // of 16-byte vector i of the data columns, in xs
      return (i / kRowVecs) * (kTokStride * 2) + (i % kRowVecs) * 16;
    };
    for (int q = 1; q < csize; ++q) {
      const int peer = (rank + q) % csize;
      const uint32_t remote = cuda_core::cluster_map_shared(xs_addr, uint32_t(peer));
      const unsigned v_end = unsigned(share_start(peer + 1)) * kRowVecs;
      for (unsigned base = unsigned(share_start(peer)) * kRowVecs + ctid; base < v_end;
           base += kCopyBatch * kCtaThreads) {
        uint4 v[kCopyBatch];
#pragma unroll
        for (int b = 0; b < kCopyBatch; ++b) {
          const unsigned i = base + b * kCtaThreads;
          if (i < v_end) v[b] = cuda_core::ld_cluster_v4(remote + byte_offset(i));
        }
#pragma unroll
        for (int b = 0; b < kCopyBatch; ++b) {
          const unsigned i = base + b * kCtaThreads;
          if (i < v_end) *reinterpret_cast<uint4*>(reinterpret_cast<char*>(xs) + byte_offset(i)) = v[b];
        }
      }
    }
    cuda_core::cluster_arrive();  // done reading the peers' shared memory
  };

  // kForm16Cluster: x's nchunks * m staged token rows (row c * m + tok, 64 units each) split into cluster_nctarank()
  // contiguous shares; this CTA quantizes its share (each unit exactly as stage() would: load_unit, store_unit), the
  // cluster barrier publishes every share, then this CTA copies the others' data columns (2048 of each row's 2112
  // bytes) from their shared memory into the same place in its own. Ends with this thread's arrival on the barrier's
  // next phase; the kernel waits for that phase before it exits (no CTA leaves while a peer may read its x).
  // kForm16ClusterCompact: the share also as E2M1 codes (8 bytes per unit u of the share, at 8 u) and fp16 block
  // scales (at scale_off + 2 u) in the reduction buffers, unused until the first tile epilogue, which waits for the
  // barrier phase after the copy (the peers are done reading them); the peers copy those (10 instead of 32 bytes per
  // unit) and decode them into their staged x (the same values). Where the largest share's codes do not fit there
  // (NT = 1 at C = 2 with more than 64 staged rows, e.g. M = 8 and K > 8192), copy_shares.
  auto stage_cluster = [&]() {
    const int rank = int(cuda_core::cluster_ctarank()), csize = int(cuda_core::cluster_nctarank());
    const int rows = nchunks * m;
    auto share_start = [&](int r) { return rows * r / csize; };  // first row of CTA r's share
    const int red_bytes = TEAMS * (red_one ? 1 : 2) * kWarps * kRows * kRedStride * int(sizeof(float));
    const int scale_off = (rows + csize - 1) / csize * kUnitsPerToken * 8;  // the largest share's codes
    const bool compact = kCompact && scale_off / 8 * 10 <= red_bytes;
    uint8_t* const codes = reinterpret_cast<uint8_t*>(xs + size_t(split_rows) * kTokStride);  // = red of team 0
    static_assert(!kCompact || kQuantFast, "the W4A4 rule's quantizer");
    // The share's units [u_first, u_end), in the order each form computed them before the two were merged (the order
    // decides whether (rank + 1) rows is a product or a sum: the same machine code as then).
    int u_first, u_end;
    if constexpr (kCompact) {
      u_first = share_start(rank) * kUnitsPerToken, u_end = share_start(rank + 1) * kUnitsPerToken;
    } else {
      u_end = share_start(rank + 1) * kUnitsPerToken, u_first = share_start(rank) * kUnitsPerToken;
    }
    for (int base = u_first + ctid; base < u_end; base += kStageBatch * kCtaThreads) {
      RawUnit<XDT> v[kStageBatch];
#pragma unroll
      for (int b = 0; b < kStageBatch; ++b) {  // units past the share: no load (zeros), no store
        const int u = base + b * kCtaThreads, row = u / kUnitsPerToken, ch = row / m;
        const int tok = u < u_end ? row - ch * m : m;
        load_unit<XDT>(p, tok, (c_base + ch) * kChunk + (u % kUnitsPerToken) * 16, v[b]);
      }
#pragma unroll
      for (int b = 0; b < kStageBatch; ++b) {
        const int u = base + b * kCtaThreads;  // staged row u / kUnitsPerToken = xrow(0, ch, tok)
        if (u >= u_end) continue;
        uint16_t* const row0 = xs + size_t(u / kUnitsPerToken) * kTokStride;
        if constexpr (kCompact) {
          const int i = u - u_first;  // the unit's codes at 8 i, its scale at scale_off + 2 i
          store_unit_codes<XDT>(row0, (u % kUnitsPerToken) * 16, v[b], act_gs, act_d,
                                compact ? reinterpret_cast<uint2*>(codes + 8 * i) : nullptr,
                                reinterpret_cast<__half*>(codes + scale_off + 2 * i));
        } else {
          store_unit<XDT, W4A4, kQuantFast>(row0, split_rows * kTokStride, (u % kUnitsPerToken) * 16, v[b], act_gs,
                                            act_d);
        }
      }
    }
    cuda_core::cluster_arrive();  // this share written (release) ...
    cuda_core::cluster_wait();    // ... and every peer's (acquire); every peer has started
    if (!compact) return copy_shares(rank, csize, share_start);
    constexpr int kPairBatch = 2;  // pairs of units (one row, adjacent columns: 16 bytes of codes, 4 of scales)
    const uint32_t codes_addr = cuda_core::smem_addr(codes);
    for (int q = 1; q < csize; ++q) {
      const int peer = (rank + q) % csize;
      const uint32_t remote = cuda_core::cluster_map_shared(codes_addr, uint32_t(peer));
      const int p_first = share_start(peer) * kUnitsPerToken;
      const int pairs = (share_start(peer + 1) * kUnitsPerToken - p_first) / 2;
      for (int base = ctid; base < pairs; base += kPairBatch * kCtaThreads) {
        uint4 cw[kPairBatch];
        uint32_t sw[kPairBatch];
#pragma unroll
        for (int b = 0; b < kPairBatch; ++b) {
          const int i = base + b * kCtaThreads;
          if (i < pairs) {
            cw[b] = cuda_core::ld_cluster_v4(remote + 16 * i);
            sw[b] = ld_cluster_u32(remote + scale_off + 4 * i);
          }
        }
#pragma unroll
        for (int b = 0; b < kPairBatch; ++b) {
          const int i = base + b * kCtaThreads;
          if (i >= pairs) continue;
          const int u = p_first + 2 * i, kk = (u % kUnitsPerToken) * 16;
          uint16_t* const row0 = xs + size_t(u / kUnitsPerToken) * kTokStride;
          const uint32_t s_lo = __byte_perm(sw[b], 0, 0x1010), s_hi = __byte_perm(sw[b], 0, 0x3232);
          const __half2 s0 = *reinterpret_cast<const __half2*>(&s_lo), s1 = *reinterpret_cast<const __half2*>(&s_hi);
          *reinterpret_cast<uint4*>(row0 + staged_offset(kk)) = decode_codes_word(cw[b].x, s0);
          *reinterpret_cast<uint4*>(row0 + staged_offset(kk + 8)) = decode_codes_word(cw[b].y, s0);
          *reinterpret_cast<uint4*>(row0 + staged_offset(kk + 16)) = decode_codes_word(cw[b].z, s1);
          *reinterpret_cast<uint4*>(row0 + staged_offset(kk + 24)) = decode_codes_word(cw[b].w, s1);
        }
      }
    }
    cuda_core::cluster_arrive();  // done reading the peers' codes
  };

  // Chunked mode: this thread's units of one chunk, loaded before the compute and stored after it.
  constexpr int kChunkUnits = kTok * kUnitsPerToken / kThreads;
  // part < 0: every unit; else only units u with u % kGroup == part (spread over a group's steps).
  auto chunk_load = [&](int c, RawUnit<XDT> (&v)[kChunkUnits], int part) {
#pragma unroll
    for (int u = 0; u < kChunkUnits; ++u) {
      if (part >= 0 && u % kGroup != part) continue;
      const int unit = u * kThreads + tid;
      load_unit<XDT>(p, unit / kUnitsPerToken, c * kChunk + (unit % kUnitsPerToken) * 16, v[u]);
    }
  };
  auto chunk_store = [&](int c, const RawUnit<XDT> (&v)[kChunkUnits], int part) {
#pragma unroll
    for (int u = 0; u < kChunkUnits; ++u) {
      if (part >= 0 && u % kGroup != part) continue;
      const int unit = u * kThreads + tid, tok = unit / kUnitsPerToken;
      if (tok >= m) continue;
      store_unit<XDT, W4A4, kQuantFast>(xs + size_t(xrow(0, c, tok)) * kTokStride,
                                        (xrow(1, c, tok) - xrow(0, c, tok)) * kTokStride, (unit % kUnitsPerToken) * 16,
                                        v[u], act_gs, act_d);
    }
  };

  // ---- the weight stream. WHOLE: step = (tile, chunk), CTAs walk tiles blockIdx.x, +gridDim.x, ...
  // Chunked: the CTA owns kGroup consecutive tiles, step = (chunk, tile) so each staged chunk serves all.
  // Two cursors advance without divisions: the fetch cursor runs kDepth steps ahead of the compute one.
  const int ntiles = (p.n + kRows - 1) / kRows;
  const int my_tiles = WHOLE ? (ntiles - cta + ctas - 1) / ctas : kGroup;
  const int steps = my_tiles * nchunks;
  const int kwarp = warp * kKStep + t * 32;  // this thread's K offset inside a chunk
  const int kslice = c_base * kChunk + kwarp;  // ... and inside K (row pointers start there)
  const int tile_stride = WHOLE ? ctas * kRows : kRows;
  const int first_row = cta * kRows * kGroup;
  const int64_t half_k = p.k / 2, sixteenth_k = p.k / 16;
  int f_row0 = first_row, f_c = 0, f_j = 0, f_step = 0;
  const uint8_t* f_w[2];
  const uint8_t* f_s[2];
  auto fetch_rows = [&]() { row_pointers(p, f_row0 + g, kslice, half_k, sixteenth_k, f_w, f_s); };
  if constexpr (WHOLE) fetch_rows();
  constexpr bool kPhased = (FORM & kForm16Phased) != 0 && FAST && WHOLE && !RING;
  // kForm16HeadRefill: every slot refilled at the head of the unrolled loop (the loop below), none by run_step
  constexpr bool kHeadRefill = (FORM & kForm16HeadRefill) != 0 && !kPhased && FAST && WHOLE && !RING;
  // kForm16LateRefill: slots 0 .. kDepth - 2 refilled after their step's MMAs (the last one right after its read)
  constexpr bool kLate = (FORM & kForm16LateRefill) != 0 && !kPhased && !kHeadRefill && FAST && WHOLE && !RING;
  constexpr int kLateSlots = kLate ? kDepth - 1 : 0;
  constexpr bool kPredRefill = (FORM & kForm16PredRefill) != 0 && !kPhased && FAST && WHOLE && !RING;
  auto fetch = [&](uint32_t (&w)[2][4], uint32_t (&sc)[2], bool on = true, uint32_t dep = 0) {
    if constexpr (RING) {
      ring.consume(f_step++, kwarp, w, sc);
      return;
    }
    if constexpr (!WHOLE) {  // pointers made where used: nothing 64-bit stays live between steps
      f_row0 = first_row + f_j * kRows;
      fetch_rows();
    }
    if constexpr (kPhased || kPredRefill) {
      load_weights_if(f_w, f_s, f_c, on, w, sc, dep);
    } else {
      load_weights<FAST>(f_w, f_s, f_c, f_c * kChunk + kslice, p.k, w, sc);
    }
    if constexpr (WHOLE) {
      if (++f_c == nchunks) {
        f_c = 0;
        f_row0 += tile_stride;
        fetch_rows();
      }
    } else {
      if (++f_j == kGroup) {
        f_j = 0;
        ++f_c;
      }
    }
  };

  uint32_t wv[kDepth][2][4], sc[kDepth][2];
  GEMV_TRACE(p.packed, 0);  // the chain probe's stamps (gemv_trace.cuh; empty in the package build)
  // kForm16ClusterAmax: its barrier and slots in staged row 0's padding (bytes 2048..2111, never read or written
  // otherwise)
  if constexpr (kClusterAmax) {
    static_assert(kTokStride - kChunk >= 4 + 8 * 2, "the barrier and 8 slots fit the padding");
    uint64_t* const amax_bar = reinterpret_cast<uint64_t*>(xs + kChunk);
    if (p.amax_inline) cluster_amax_open(amax_bar);
    prefetch_then_wait<XDT, W4A4, W4A4 && (FORM & kForm16AmaxWide) != 0, true>(p, steps, fetch, wv, sc, act_gs,
                                                                               act_d, amax_bar);
  } else {
    prefetch_then_wait<XDT, W4A4, W4A4 && (FORM & kForm16AmaxWide) != 0>(p, steps, fetch, wv, sc, act_gs, act_d);
  }
  GEMV_TRACE(p.packed, 1);

  if constexpr (kCluster) {
    stage_cluster();
  } else if constexpr (WHOLE) {
    stage(c_base, nchunks);
  } else {
    RawUnit<XDT> v[kChunkUnits];
    chunk_load(0, v, -1);
    chunk_store(0, v, -1);
  }
  compute_sync<RING>();
  GEMV_TRACE(p.packed, 2);

  // B-fragment addresses (u16 index into xs): row of token nt * 8 + g in split s, plus this thread's
  // column, for chunk 0; each chunk (WHOLE) or buffer parity (chunked) adds b_step.
  int b_off[kSplits][NT], b_step[kSplits][NT];
#pragma unroll
  for (int s = 0; s < kSplits; ++s)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      const int tok = nt * 8 + g;
      b_off[s][nt] = xrow(s, 0, tok) * kTokStride + (warp * 4 + t) * 8;
      b_step[s][nt] = (xrow(s, 1, tok) - xrow(s, 0, tok)) * kTokStride;
    }

  float acc[kGroup][NT][4];
#pragma unroll
  for (int j = 0; j < kGroup; ++j)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) acc[j][nt][0] = acc[j][nt][1] = acc[j][nt][2] = acc[j][nt][3] = 0.0f;

  // One step = one chunk of one row tile, computed from prefetch slot (w, s); the slot is refilled with
  // step + kDepth right after its use. The step loop is unrolled by kDepth so that slots are fixed
  // registers: copying a register whose load is still in flight would stall and defeat the prefetch.
  // Compute cursor: chunk c of the tile at row c_row0; chunked mode computes tile j = d (the slot).
  constexpr bool kCursorInEpilogue = WHOLE && MINB != 3;
  int c = 0, c_row0 = first_row, red_half = 0;
  auto run_step = [&](int step, int d, uint32_t (&w)[2][4], uint32_t (&wsc)[2]) {
    float (&acc_t)[NT][4] = acc[WHOLE ? 0 : d];
    // Chunked mode: chunk c+1 of x goes to the other buffer (free since the last barrier) while chunk c is
    // computed; each of the group's steps moves its share of the units, so few registers stay live.
    RawUnit<XDT> vn[WHOLE ? 1 : kChunkUnits];
    if constexpr (!WHOLE) {
      if (c + 1 < nchunks) chunk_load(c + 1, vn, d);
    }

    // ---- compute: 4 words x 2 MMAs per split and token tile
    constexpr bool kScaleWord = (FORM & kForm16Scale) != 0;
    uint32_t s_lo[2], s_hi[2], s_word[2];
    if constexpr (kScaleWord) {
      s_word[0] = scale_word<kBf>(wsc[0]);
      s_word[1] = scale_word<kBf>(wsc[1]);
    } else {
      scale_pairs<kBf>(wsc[0], s_lo[0], s_hi[0]);
      scale_pairs<kBf>(wsc[1], s_lo[1], s_hi[1]);
    }
    uint32_t words[2][4];
#pragma unroll
    for (int hr = 0; hr < 2; ++hr)
#pragma unroll
      for (int i = 0; i < 4; ++i) words[hr][i] = w[hr][i];
    if (!kPhased && !kHeadRefill && d >= kLateSlots) {  // (phased, head refill: the step loop refills the slots)
      if constexpr (kPredRefill) {
        fetch(w, wsc, step + kDepth < steps);
      } else if (step + kDepth < steps) {
        fetch(w, wsc);  // slot free again: refill it now
      }
    }
    const int cb = WHOLE ? c : (c & 1);
    const uint16_t* bbase[kSplits][NT];
#pragma unroll
    for (int s = 0; s < kSplits; ++s)
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) bbase[s][nt] = xs + (b_off[s][nt] + cb * b_step[s][nt]);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      uint4 bfr[kSplits][NT];
#pragma unroll
      for (int s = 0; s < kSplits; ++s)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
#ifdef GEMV_TRACE16_NO_LDS  // chain probe only, timing (wrong results): register values instead of the x loads
          const uint32_t v = uint32_t(b_off[s][nt] + i + cb);
          bfr[s][nt] = make_uint4(v, v ^ 1u, v ^ 2u, v ^ 3u);
#else
          bfr[s][nt] = *reinterpret_cast<const uint4*>(bbase[s][nt] + i * kPlane);
#endif
        }
      uint32_t d0[4], d1[4];
#ifdef GEMV_TRACE16_NO_DECODE  // chain probe only, timing (wrong results): masked words as the pairs, no FP4 decode
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        d0[j] = words[0][i] & (0x8E008E00u >> j);
        d1[j] = words[1][i] & (0x8E008E00u >> j);
      }
#else
      if constexpr (kBf && (FORM & kForm16Decode) != 0) {
        fp4_word_bf16_select2(words[0][i], d0);
        fp4_word_bf16_select2(words[1][i], d1);
      } else {
        fp4_word<kBf>(words[0][i], d0);
        fp4_word<kBf>(words[1][i], d1);
      }
#endif
#pragma unroll
      for (int jj = 0; jj < 2; ++jj) {
        uint32_t a[4];
        if constexpr (kScaleWord) {  // words 0, 1: the first block (low half), words 2, 3: the second
          a[0] = mul_pair_half(d0[2 * jj], s_word[0], i >= 2, kBf);
          a[1] = mul_pair_half(d1[2 * jj], s_word[1], i >= 2, kBf);
          a[2] = mul_pair_half(d0[2 * jj + 1], s_word[0], i >= 2, kBf);
          a[3] = mul_pair_half(d1[2 * jj + 1], s_word[1], i >= 2, kBf);
        } else {
          const uint32_t s0 = i < 2 ? s_lo[0] : s_hi[0], s1 = i < 2 ? s_lo[1] : s_hi[1];
          a[0] = mul_pair(d0[2 * jj], s0, kBf), a[1] = mul_pair(d1[2 * jj], s1, kBf);
          a[2] = mul_pair(d0[2 * jj + 1], s0, kBf), a[3] = mul_pair(d1[2 * jj + 1], s1, kBf);
        }
#pragma unroll
        for (int s = 0; s < kSplits; ++s)
#pragma unroll
          for (int nt = 0; nt < NT; ++nt) {
            const uint32_t* b = reinterpret_cast<const uint32_t*>(&bfr[s][nt]);
#ifdef GEMV_TRACE16_NO_MMA  // chain probe only, timing (wrong results): one add on an XOR of the operands, no MMA
            acc_t[nt][jj] += __uint_as_float((a[0] ^ a[1] ^ a[2] ^ a[3] ^ b[2 * jj] ^ b[2 * jj + 1]) & 0x3C00u);
#else
            mma16816<kBf>(acc_t[nt], a, b[2 * jj], b[2 * jj + 1]);
#endif
          }
      }
    }
    if (d < kLateSlots) {
      if constexpr (kPredRefill) {
        fetch(w, wsc, step + kDepth < steps);
      } else if (step + kDepth < steps) {
        fetch(w, wsc);  // after the slot's last use: loaded into the slot itself
      }
    }
    if constexpr (!WHOLE) {
      if (c + 1 < nchunks) chunk_store(c + 1, vn, d);
      if (d == kGroup - 1) compute_sync<RING>();  // buffer c&1 free again, buffer (c+1)&1 complete
    }
    // ---- epilogue of a tile: reduce the 8 warps' K slices through shared memory
    if (c == nchunks - 1) {
      // kForm16ClusterCompact: before this walker's first write to its reduction buffers, which may hold this CTA's
      // codes (stage_cluster), the peers must be done reading them
      if constexpr (kCompact) {
        if (c_row0 == first_row) cuda_core::cluster_wait();
      }
      const int row0 = WHOLE ? c_row0 : first_row + d * kRows;
      // WHOLE: two reduction buffers, used by alternate tiles. A thread writes this one again two tiles later,
      // after the next tile's barrier, which every thread reaches only once it has read this tile's sums: one
      // barrier per tile. (Chunked mode keeps one buffer and a second barrier: the second buffer's registers
      // made its NT = 2 kernels spill. So do two-team launches given one buffer: red_one.)
      float* red_t = red;
      if constexpr (WHOLE) {
        if (red_one) {
          team_sync(team);  // every thread of the team is done reading the last tile's sums
        } else {
          red_t += red_half * (kWarps * kRows * kRedStride);
          red_half ^= 1;
        }
      }
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int rl = g + (e / 2) * 8, tok = nt * 8 + 2 * t + (e % 2);
          red_t[(warp * kRows + rl) * kRedStride + tok] = acc_t[nt][e];
          acc_t[nt][e] = 0.0f;
        }
      if constexpr (TEAMS > 1) {
#ifndef GEMV_TRACE16_NO_SYNC  // chain probe only, timing (wrong results): no barrier before the tile's reduction
        team_sync(team);
#endif
      } else {
        compute_sync<RING>();
      }
      // kForm16OnePass: 16 * m <= 256 = kThreads outputs per tile (m <= 16), one per thread: no loop to unroll.
      constexpr bool kOnePass = (FORM & kForm16OnePass) != 0;
      static_assert(16 * 16 <= kThreads, "one output per thread at 16 tokens");
      if constexpr (SPLIT) {
        write_partial<kOnePass>(p, red_t, row0, kRedStride, slice, tid);
      } else {
        write_tile<XDT, W4A4, kOnePass>(p, red_t, row0, kRedStride, kDecodeBias, act_gs, tid);
      }
      if (row0 == first_row) GEMV_TRACE(p.packed, 3);  // the first tile written
      if constexpr (!WHOLE) compute_sync<RING>();  // red is rewritten by the next tile
      if constexpr (kCursorInEpilogue) {
        c = 0;
        c_row0 += tile_stride;
      }
    } else if (kCursorInEpilogue) {
      ++c;
    }
    // Where the compute cursor advances changes ptxas' schedule: inside the epilogue branch the 2-CTA
    // kernel gets 127 registers (106 otherwise), as in the build measured faster on H200 (Qwen3-32B down
    // M=1: 35.8 vs 42.6 us); the 3-CTA kernel advances it here (the other placement spills 150 bytes).
    if constexpr (WHOLE && !kCursorInEpilogue) {
      if (++c == nchunks) {
        c = 0;
        c_row0 += tile_stride;
      }
    } else if constexpr (!WHOLE) {
      if (d == kGroup - 1) ++c;
    }
  };

  if constexpr (kPhased) {
    const uint32_t runtime_zero = uint32_t(p.k) >> 31;  // p.k > 0: zero, but not known to the compiler
    // Two sets of kDepth slots, A (wv, filled by prefetch_then_wait) and B: [first use of A = the wait for A] ->
    // refill B (addresses depend on A's first word, so ptxas cannot issue them before that wait) -> compute A ->
    // [wait for B] -> refill A -> compute B.
    uint32_t wv_b[kDepth][2][4], sc_b[kDepth][2];
    for (int step = 0; step < steps; step += 2 * kDepth) {
      const uint32_t dep_a = wv[0][0][0] & runtime_zero;
#pragma unroll
      for (int d = 0; d < kDepth; ++d) fetch(wv_b[d], sc_b[d], step + kDepth + d < steps, dep_a);
#pragma unroll
      for (int d = 0; d < kDepth; ++d)
        if (step + d < steps) run_step(step + d, d, wv[d], sc[d]);
      const uint32_t dep_b = wv_b[0][0][0] & runtime_zero;
#pragma unroll
      for (int d = 0; d < kDepth; ++d) fetch(wv[d], sc[d], step + 2 * kDepth + d < steps, dep_b);
#pragma unroll
      for (int d = 0; d < kDepth; ++d)
        if (step + kDepth + d < steps) run_step(step + kDepth + d, d, wv_b[d], sc_b[d]);
    }
  } else if constexpr (kHeadRefill) {
    for (int step = 0; step < steps; step += kDepth) {
      // This iteration's words, read out of the slots (the one wait per loop: for loads issued kDepth steps ago)
      // before every slot takes its next step's loads.
      uint32_t w_now[kDepth][2][4], sc_now[kDepth][2];
#pragma unroll
      for (int d = 0; d < kDepth; ++d)
#pragma unroll
        for (int hr = 0; hr < 2; ++hr) {
          sc_now[d][hr] = sc[d][hr];
#pragma unroll
          for (int i = 0; i < 4; ++i) w_now[d][hr][i] = wv[d][hr][i];
        }
#pragma unroll
      for (int d = 0; d < kDepth; ++d) {
        const bool more = step + kDepth + d < steps;
        if constexpr (kPredRefill) {
          fetch(wv[d], sc[d], more);
        } else if (more) {
          fetch(wv[d], sc[d]);
        }
      }
#pragma unroll
      for (int d = 0; d < kDepth; ++d)
        if (step + d < steps) run_step(step + d, d, w_now[d], sc_now[d]);
    }
  } else {
    for (int step = 0; step < steps; step += kDepth) {
#pragma unroll
      for (int d = 0; d < kDepth; ++d)
        if (step + d < steps) run_step(step + d, d, wv[d], sc[d]);
    }
  }
  if constexpr (kCluster) {  // no peer still reads this CTA's staged x (stage_cluster)
    if (!kCompact || my_tiles == 0) cuda_core::cluster_wait();  // (compact: at the first tile epilogue, if any)
  }
  if constexpr (SPLIT && !W4A4 && !kSplitCluster) {
    if (p.split_nonce != 0) split_fixup<XDT>(p);  // gemv_split_fixup.cuh
  }
  GEMV_TRACE(p.packed, 4);
}

}  // namespace detail
}  // namespace reset_native::nvfp4_cuda
