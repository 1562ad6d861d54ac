// Host side of the 16-bit NVFP4 GEMV (gemv_kernel.cuh): shared-memory sizes, the FORM bits an instance runs
// (form16_rule and the RESET_NATIVE_GEMV_16_FORM switch), the launch plan, the launchers (one, two and three CTAs per
// SM, two warp teams, W4A4 clusters) and the rules that pick them by shape (dispatch_tokens). Host only; the kernel
// itself and its device helpers stay in gemv_kernel.cuh.
#pragma once
#include <cuda_runtime.h>

#include <cstdlib>
#include <cstring>

#include "nvfp4/gemv_kernel.cuh"
#include "nvfp4/launch_check.hpp"
#include "reset_native/nvfp4_cuda.hpp"

namespace reset_native::nvfp4_cuda {
namespace detail {

// Shared memory of one CTA: staged x (+ zero rows) and the reduction buffer (two in WHOLE mode).
template <int XDT, bool W4A4, int NT, bool WHOLE, int TEAMS = 1>
size_t smem_bytes(int k, int m) {
  using M = Mode<XDT, W4A4>;
  const int nchunks = (k + kChunk - 1) / kChunk;
  const size_t rows = WHOLE ? size_t(M::kSplits) * (size_t(nchunks) * m + 1) : size_t(2) * M::kSplits * 8 * NT;
  return rows * kTokStride * sizeof(uint16_t) + size_t(WHOLE ? 2 * TEAMS : 1) * kWarps * 16 * 8 * NT * sizeof(float);
}

// RESET_NATIVE_GEMV_16_FORM (read once per call into LaunchPlan::form16, for benchmarks), on the instances
// form16_eligible admits: "0" = the form before session 13, "2" = only the bf16 decode, "13" = session 13's rule
// (decode, phased loop), "15" = the rule of sessions 14-15 (without session 16's scale word, one-pass epilogue and
// predicated refill), "nopad" = form16_rule without kForm16RedPad (the default through session 18, for A/B: the
// routing then sizes shared memory without the pad, as it did); "pad", unset or anything else = form16_rule. On the
// W4A4 instances w4a4_pad_eligible admits (their rule since session 20: the pad, kForm16QuantFast and kForm16AmaxWide)
// "0", "2", "13" and "15" run FORM 0, the form through session 18, routed without the pad; "nopad" drops only the pad
// (kForm16QuantFast | kForm16AmaxWide, routed without the pad); "w4a4old" runs session 19's W4A4 rule, the pad alone
// (and, at M <= 2, the W4A4 block-diagonal kernel's cb form without kSmallQuantFast / kSmallAmaxWide; split K: the
// amax source rule of session 19, split_amax_inline), the opt-out for A/B. A16 ignores "w4a4old" (its rule). Session
// 19's values "w4a4pad", "w4a4q" and "w4a4qa" are now "anything else", the rule. "head" (session 20 helper gemv32) =
// the W4A4 rule plus kForm16HeadRefill on every W4A4 instance (the rule has it on split K since session 20's lead
// merge: the two-team / two-CTA / one-CTA W4A4 kernels then take it too, for A/B); "nohead" = the rule without it
// (W4A4 split K as before). Both leave shared memory, routing, amax source and, at M <= 2, the block-diagonal kernel
// as the rule has them; A16 ignores both (its rule). "w4a4old" drops kForm16HeadRefill too.
enum Form16Force : int {
  kForceRule = -1,
  kForceZero,
  kForceDecode,
  kForceSession13,
  kForceSession15,
  kForceNoPad,
  kForceW4A4Old,
  kForceHeadRefill,
  kForceNoHeadRefill
};
inline Form16Force form16_override() {
  const char* v = std::getenv("RESET_NATIVE_GEMV_16_FORM");
  if (v == nullptr) return kForceRule;
  const char* names[] = {"0", "2", "13", "15", "nopad", "w4a4old", "head", "nohead"};
  for (int i = 0; i < 8; ++i)
    if (std::strcmp(v, names[i]) == 0) return Form16Force(i);
  return kForceRule;
}

// The W4A4 two-team kernel in clusters (kForm16Cluster, launch_w4a4_cluster) by default from kW4a4ClusterMinTokens
// tokens: clusters of 4 with both cluster forms (kForm16ClusterAmax | kForm16ClusterCompact, gemv_w4a4_cluster.cuh)
// where 2 x SMs < row tiles <= 5 x SMs, else clusters of 2 without a form. Measured on an H200 (session 21, W4A4
// dynamic scale, us, C = 2 without a form / C = 4 with both, the same bits on every row; tiles = N / 16, 132 SMs):
// 8B q/k/v (384 tiles) M = 16 18.1 / 15.7, 12 16.3 / 14.8, 8 12.8 / 12.8; 32B q/k/v (640) 28.8 / 25.9, 23.2 / 21.1,
// 19.7 / 18.4; 8B o (256) 15.3 / 14.9, 13.7 / 14.0, 10.8 / 12.0; 8B gate_up (1536) 33.0 / 32.7, 31.1 / 31.2, 25.6 /
// 26.9; 32B gate_up (3200) 79.7 / 80.3, 63.5 / 64.4, 54.8 / 56.2. Against no clusters (session 21 round 1) C = 2 won
// on every row. Below 8 tokens (not measured) the quantization a cluster saves is smallest: no clusters there.
constexpr int kW4a4ClusterDefault = 2;
constexpr int kW4a4ClusterBandLo = 2, kW4a4ClusterBandHi = 5;  // the band: Lo x SMs < row tiles <= Hi x SMs ...
constexpr int kW4a4ClusterBand = 4;                             // ... its cluster size and form
constexpr int kW4a4ClusterBandForm = kForm16ClusterAmax | kForm16ClusterCompact;
constexpr int kW4a4ClusterMinTokens = 8;
constexpr int kW4a4ClusterRule = 0;  // w4a4_cluster_override: no value forced

// RESET_NATIVE_GEMV_W4A4_CLUSTER (read once per call into LaunchPlan::w4a4_cluster, for A/B runs): "1" = no clusters,
// "2" .. "8" = clusters of that many CTAs at every token count the two-team kernel serves (where the instance runs its
// rule's form; the cluster form then RESET_NATIVE_GEMV_W4A4_CLUSTER_FORM's, none if unset); unset or anything else =
// the rule above (kW4a4ClusterRule).
inline int w4a4_cluster_override() {
  const char* v = std::getenv("RESET_NATIVE_GEMV_W4A4_CLUSTER");
  if (v == nullptr || v[0] < '1' || v[0] > '8' || v[1] != '\0') return kW4a4ClusterRule;
  return v[0] - '0';
}

// A W4A4 two-team call's clusters: CTAs per cluster (1: none) and the cluster form bits the rule gives them.
struct W4a4Cluster {
  int size;
  int form;
};

// The clusters of a W4A4 two-team call of m tokens and `tiles` row tiles on `sms` multiprocessors under the switch
// value `planned`: a forced size has no form of its own (RESET_NATIVE_GEMV_W4A4_CLUSTER_FORM may add one).
inline W4a4Cluster w4a4_cluster_size(int planned, int m, int tiles, int sms) {
  if (planned != kW4a4ClusterRule) return {planned, 0};
  if (m < kW4a4ClusterMinTokens) return {1, 0};
  if (tiles > kW4a4ClusterBandLo * sms && tiles <= kW4a4ClusterBandHi * sms)
    return {kW4a4ClusterBand, kW4a4ClusterBandForm};
  return {kW4a4ClusterDefault, 0};
}

// How a call launches, decided once on the host (gemv.cu).
struct LaunchPlan {
  bool fast;          // K % 1024 == 0 and aligned weight rows: 16-byte loads
  bool ring;          // fast path through the shared-memory weight ring (opt-in: RESET_NATIVE_GEMV_RING=1)
  int sms;            // multiprocessors
  size_t smem_optin;  // largest dynamic shared memory one CTA may opt into (227 KiB on H100/H200)
  RingMaps maps;      // TMA descriptors of this call's weights (ring only)
  int bd_ksplit = 1;  // K slices of the block-diagonal kernel's split (gemv_bd_split.cuh; 1: it does not split)
  Form16Force form16 = form16_override();  // the 16-bit kernel's form switch: its routing and launch read this one
  int w4a4_cluster = w4a4_cluster_override();  // the cluster switch's value (w4a4_cluster_size gives the CTAs)
};

// Shared memory of the whole-x kernel, with the weight ring when RING.
template <int XDT, bool W4A4, int NT, int MINB, bool RING>
size_t whole_smem_bytes(int k, int m) {
  const size_t base = smem_bytes<XDT, W4A4, NT, true>(k, m);
  return RING ? ring_smem_bytes<ring_stages<MINB>()>(base) : base;
}

// W4A4 with a device-computed activation scale (p.act_amax set by the launcher): a kernel that stages all of x
// (in_kernel: whole x without the ring; split K, which reads all of x once for the max and stages its slice)
// reduces amax(|x|) itself; for the others the amax pre-kernel runs first
// (a memset and a kernel: ~6 us in a CUDA graph on an H200, as much as a small layer's GEMV). Returns the params
// to launch with.
template <int XDT, bool W4A4>
GemvParams with_activation_amax(const GemvParams& p, bool in_kernel, cudaStream_t stream) {
  GemvParams q = p;
  if (!W4A4) return q;  // (A16: amax_inline's bytes hold split_nonce)
  q.amax_inline = 0;
  if (p.act_amax == nullptr) return q;
  if (in_kernel) {
    q.amax_inline = 1;
    return q;
  }
  auto* amax = const_cast<float*>(p.act_amax);  // the launcher's workspace
  check_cuda(cudaMemsetAsync(amax, 0, sizeof(float), stream), "nvfp4 gemv: memset");
  launch_amax(p.x, static_cast<DType>(XDT), int64_t(p.m) * p.k, amax, nullptr, stream);
  return q;
}

// The 16-bit kernel's forms (kForm16* bits) by instance, measured on an H200 (bench/RESULTS.md: session 13 helper
// gemv16, session 14 helper gemv17). The persistent fast-path kernels without the ring at A16 with 16-bit x, except
// the three-CTA one (form16_eligible), take
// * the bf16 decode (with bf16 x);
// * the phased loop on split K with 8 token columns (M <= 8): Qwen3-32B down 36.1 -> 31.1 us at M = 3, 8B down
//   16.1 -> 14.6 at M = 4 (with 16 columns it was level, on the whole-x kernels it lost: 32B gate_up M = 16 75.8 ->
//   95.8, 8B q/k/v M = 4 7.9 -> 8.6);
// * the division-free x staging, everywhere but on the two-CTA kernel with 8 columns (M = 3, and 32B gate_up to
//   M = 8: level at M = 4..8, 49.4 -> 49.5 / 52.1 -> 51.7 us, and its main loop came out 7 instructions per step
//   longer with it): at M = 16 8B gate_up 29.2 -> 28.1 us, 32B q/k/v 22.1 -> 21.1, 32B gate_up 75.3 -> 73.7,
//   8B q/k/v 12.3 -> 11.3, o 9.5 -> 8.6; fixed cost per call at M = 16, K = 4096 6.93 -> 5.76 us (with the late
//   refill);
// * the late refill on split K with 16 columns (M = 9..16): 8B down 21.7 -> 20.7 us at M = 16, 32B down 48.1 ->
//   45.9, 32B o 19.2 -> 18.4 (with the staging); on the two-team kernels it lost (8B gate_up 28.1 -> 29.6);
// * the scale word (session 16, helper gemv19; bench/RESULTS.md): faster or level on every row at M = 4, 8, 16,
//   e.g. M = 16 8B gate_up 27.7 -> 27.2 us, 32B q/k/v 21.0 -> 20.5, 32B gate_up 72.5 -> 70.8, M = 4 32B gate_up
//   48.0 -> 46.3, 32B down 30.7 -> 29.6;
// * the one-pass tile epilogue on split K (late refill or phased there), on top of the scale word: 32B down M = 4
//   29.6 -> 28.4 us, M = 8 30.7 -> 29.7, 8B down M = 8 14.4 -> 14.0, 32B o M = 8 13.2 -> 12.8, M = 16 level or better;
// * the predicated refill on the two-team and split-K kernels with 16 token columns (M = 9..16), on top of both: M = 16
//   32B q/k/v 20.5 -> 19.1 us, 32B gate_up 71.6 -> 68.0, 32B down 44.8 -> 43.5, 8B gate_up 27.3 -> 26.9, 8B down
//   20.2 -> 19.9, 8B o 8.4 -> 8.5 (its one loss); with 8 columns level but 8B o (6.1 -> 6.3 at M = 4), so not there;
// * the padded reduction rows everywhere (session 18's final call, then opt-in: M = 16 -9 to -16% on every Qwen3 layer,
//   e.g. 8B gate_up 28.2 -> 25.8 us, 32B down 45.7 -> 38.5; M = 8 level to -0.4 us); the default since session 19.
// The W4A4 instances of the same kernels take the padded rows and their own forms (w4a4_pad_eligible, below).
template <int XDT, bool W4A4, int NT, bool FAST, bool WHOLE, int MINB, bool RING, bool SPLIT>
constexpr bool form16_eligible() {
  return FAST && WHOLE && !RING && MINB != 3 && !W4A4 && XDT != kF32;
}
// The W4A4 instances (any x) of the same persistent fast-path kernels without the ring (W4A4 has no three-CTA kernel):
// their rule is kForm16RedPad (session 19 helper gemv24 opt-in, the default since session 19 helper gemv25) plus,
// since session 20 helper w4a4x30, kForm16QuantFast and kForm16AmaxWide (gemv_w4a4_quant.cuh; the same bits), and
// on split K kForm16HeadRefill (session 20, measured above at its definition; the same bits). Those
// two, session 20 round 1, H200 2026-11-29 (RESET_NATIVE_GEMV_16_FORM unset = the pad alone then, vs w4a4qa = all
// three; same bits every row): M = 16 8B q/k/v 25.8 -> 21.9 us, o 23.5 -> 19.5, gate_up 42.8 -> 34.0, down 40.4 ->
// 32.9, 32B q/k/v 41.1 -> 30.2, gate_up 89.1 -> 76.7, down 62.8 -> 55.4; M = 4 8B q/k/v 14.1 -> 11.7, gate_up 24.6 ->
// 22.5; M = 2 8B down (block-diagonal kernel) 25.0 -> 18.3; M = 1 32B down (split) 38.0 -> 34.6.
// The pad (FORM 0 without it, whose tile epilogue is the one the pad was measured on): write_tile / write_partial
// read red[(w * 16 + rl) * stride + tok] with the same lanes (rl = lane % 16, tok = 2 * warp + lane / 16 in the one
// pass m <= 16 needs), so the same 8-way (16 columns) / 4-way (8 columns) conflicts; the pad changes nothing else
// there.
// Session 19 round 1, H200 (means of two copies, same bits every row), FORM 0 -> pad: M = 16 8B q/k/v 28.0 -> 25.9 us,
// o 24.8 -> 23.8, gate_up 46.0 -> 43.5, down 42.7 -> 41.1, 32B q/k/v 42.7 -> 41.5, o 40.2 -> 38.6, gate_up 92.1 ->
// 88.6, down 69.4 -> 64.0; M = 11 8B q/k/v 23.1 -> 21.7, o 20.3 -> 19.5, down 36.6 -> 35.1, gate_up 54.0 -> 37.2
// (the one routing change: two CTAs per SM -> two teams, bench/probes/gemv16_w4a4_pad_routing.py).
// fp32 x at A16 shares the epilogue but is left out: its three staged copies of x sit at the limits, where the 2 KB
// would move Qwen3-8B down, 32B o and down at M = 14 from split K to the chunked kernel, and other shapes from two
// teams to one CTA or from one CTA to the chunked kernel (bench/probes/gemv16_w4a4_pad_routing.py models both).
template <int XDT, bool W4A4, int NT, bool FAST, bool WHOLE, int MINB, bool RING, bool SPLIT>
constexpr bool w4a4_pad_eligible() {
  return W4A4 && FAST && WHOLE && !RING && MINB != 3;
}
// The instances RESET_NATIVE_GEMV_16_FORM acts on (form16_forced): A16 with 16-bit x and W4A4, as above.
template <int XDT, bool W4A4, int NT, bool FAST, bool WHOLE, int MINB, bool RING, bool SPLIT>
constexpr bool form16_switchable() {
  return form16_eligible<XDT, W4A4, NT, FAST, WHOLE, MINB, RING, SPLIT>() ||
         w4a4_pad_eligible<XDT, W4A4, NT, FAST, WHOLE, MINB, RING, SPLIT>();
}
template <int XDT, bool W4A4, int NT, bool FAST, bool WHOLE, int MINB, bool RING, bool SPLIT, int TEAMS>
constexpr int form16_rule() {
  if (w4a4_pad_eligible<XDT, W4A4, NT, FAST, WHOLE, MINB, RING, SPLIT>())
    return kForm16RedPad | kForm16QuantFast | kForm16AmaxWide | (SPLIT ? kForm16HeadRefill : 0);
  if (!form16_eligible<XDT, W4A4, NT, FAST, WHOLE, MINB, RING, SPLIT>()) return 0;
  const bool two_cta_8 = MINB == 2 && !SPLIT && NT == 1;
  return (XDT == kBF16 ? kForm16Decode : 0) | (SPLIT && NT == 1 ? kForm16Phased : 0) |
         (two_cta_8 ? 0 : kForm16Stage) | (SPLIT && NT == 2 ? kForm16LateRefill : 0) | kForm16Scale |
         (SPLIT ? kForm16OnePass : 0) | (NT == 2 && (SPLIT || TEAMS > 1) ? kForm16PredRefill : 0) | kForm16RedPad;
}

// The FORM bits a switch value gives a switchable instance whose rule is `rule`: one table for the kernel
// (form16_kernel) and its shared memory (red_pad_bytes), so that both always agree on kForm16RedPad. kForm16QuantFast
// and kForm16AmaxWide are only ever in the W4A4 rule: "w4a4old" and "head" leave A16's rule as it is, and "0", "2",
// "13", "15" give W4A4 FORM 0.
constexpr int form16_forced(int rule, Form16Force force) {
  switch (force) {
    case kForceZero:
      return 0;
    case kForceDecode:
      return rule & kForm16Decode;
    case kForceSession13:
      return rule & (kForm16Decode | kForm16Phased);
    case kForceSession15:
      return rule & ~(kForm16Scale | kForm16OnePass | kForm16PredRefill | kForm16RedPad | kForm16QuantFast |
                      kForm16AmaxWide | kForm16HeadRefill);
    case kForceNoPad:
      return rule & ~kForm16RedPad;
    case kForceW4A4Old:
      return rule & ~(kForm16QuantFast | kForm16AmaxWide | kForm16HeadRefill);
    case kForceHeadRefill:  // (the W4A4 rule: the only one with kForm16QuantFast)
      return (rule & kForm16QuantFast) != 0 ? rule | kForm16HeadRefill : rule;
    case kForceNoHeadRefill:
      return rule & ~kForm16HeadRefill;
    default:
      return rule;
  }
}

// The FORM bits of the kernel form16_kernel returns for this instance now (the switch read once per call).
template <int XDT, bool W4A4, int NT, bool FAST, bool WHOLE, int MINB, bool RING, bool SPLIT, int TEAMS>
int form16_bits(Form16Force force) {
  constexpr int kRule = form16_rule<XDT, W4A4, NT, FAST, WHOLE, MINB, RING, SPLIT, TEAMS>();
  if (!form16_switchable<XDT, W4A4, NT, FAST, WHOLE, MINB, RING, SPLIT>()) return kRule;
  return form16_forced(kRule, force);
}

// The kernel of one instance in the form form16_rule gives it, or the one RESET_NATIVE_GEMV_16_FORM asks for.
template <int XDT, bool W4A4, int NT, bool FAST, bool WHOLE, int MINB, bool RING, bool SPLIT, int TEAMS>
auto form16_kernel(Form16Force force) {
  constexpr int kRule = form16_rule<XDT, W4A4, NT, FAST, WHOLE, MINB, RING, SPLIT, TEAMS>();
  if constexpr (form16_switchable<XDT, W4A4, NT, FAST, WHOLE, MINB, RING, SPLIT>()) {
    switch (force) {
      case kForceZero:
        return gemv_kernel<XDT, W4A4, NT, FAST, WHOLE, MINB, RING, SPLIT, TEAMS, form16_forced(kRule, kForceZero)>;
      case kForceDecode:
        return gemv_kernel<XDT, W4A4, NT, FAST, WHOLE, MINB, RING, SPLIT, TEAMS, form16_forced(kRule, kForceDecode)>;
      case kForceSession13:
        return gemv_kernel<XDT, W4A4, NT, FAST, WHOLE, MINB, RING, SPLIT, TEAMS,
                           form16_forced(kRule, kForceSession13)>;
      case kForceSession15:
        return gemv_kernel<XDT, W4A4, NT, FAST, WHOLE, MINB, RING, SPLIT, TEAMS,
                           form16_forced(kRule, kForceSession15)>;
      case kForceNoPad:
        return gemv_kernel<XDT, W4A4, NT, FAST, WHOLE, MINB, RING, SPLIT, TEAMS, form16_forced(kRule, kForceNoPad)>;
      case kForceW4A4Old:  // (A16: the rule's kernel)
        return gemv_kernel<XDT, W4A4, NT, FAST, WHOLE, MINB, RING, SPLIT, TEAMS, form16_forced(kRule, kForceW4A4Old)>;
      case kForceHeadRefill:  // (A16: the rule's kernel)
        return gemv_kernel<XDT, W4A4, NT, FAST, WHOLE, MINB, RING, SPLIT, TEAMS,
                           form16_forced(kRule, kForceHeadRefill)>;
      case kForceNoHeadRefill:  // (A16 and W4A4 without split K: the rule's kernel)
        return gemv_kernel<XDT, W4A4, NT, FAST, WHOLE, MINB, RING, SPLIT, TEAMS,
                           form16_forced(kRule, kForceNoHeadRefill)>;
      default:
        break;
    }
  }
  return gemv_kernel<XDT, W4A4, NT, FAST, WHOLE, MINB, RING, SPLIT, TEAMS, kRule>;
}

// Extra shared memory of kForm16RedPad's reduction rows (2 * TEAMS buffers of kWarps * 16 rows, kRedPad floats more
// each: 2 KB per team) where the instance's form has them (form16_bits); 0 for the switch values without the pad, the
// ring, three CTAs per SM, the chunked and general-path kernels and fp32 x at A16.
template <int XDT, bool W4A4, int NT, bool FAST, bool WHOLE, int MINB, bool RING, bool SPLIT, int TEAMS>
size_t red_pad_bytes(Form16Force force) {
  if ((form16_bits<XDT, W4A4, NT, FAST, WHOLE, MINB, RING, SPLIT, TEAMS>(force) & kForm16RedPad) == 0 || !WHOLE)
    return 0;
  return size_t(2 * TEAMS) * kWarps * 16 * kRedPad * sizeof(float);
}

// Shared memory launch_tile gives one (non-split) instance, the pad of its form included: the routing
// (dispatch_tokens) checks exactly these bytes against the limits.
template <int XDT, bool W4A4, int NT, bool FAST, bool WHOLE, int MINB = 2, bool RING = false, int TEAMS = 1>
size_t tile_smem_bytes(int k, int m, Form16Force force) {
  const size_t base = TEAMS > 1 ? smem_bytes<XDT, W4A4, NT, true, TEAMS>(k, m)
                      : WHOLE   ? whole_smem_bytes<XDT, W4A4, NT, MINB, RING>(k, m)
                                : smem_bytes<XDT, W4A4, NT, WHOLE>(k, m);
  return base + red_pad_bytes<XDT, W4A4, NT, FAST, WHOLE, MINB, RING, false, TEAMS>(force);
}

// Walker order of the two-team kernel (GemvParams::team_major). Row tiles go round-robin to the walkers; where they
// do not divide evenly, the last round's tiles go to the lowest walkers. CTA-major (walker = CTA * 2 + team) puts them
// on both teams of fewer SMs, team-major (team * CTAs + CTA) on one team of more SMs, which finish sooner: the 16 warps
// of an SM compete for its issue slots. Measured faster or level on every Qwen3 row at 3..16 tokens, A16 and W4A4
// (H200, bench/RESULTS.md "Session 36", calls 4 and 6: e.g. 32B o at 3 tokens 12.8 -> 11.4 us, 32B gate_up at 16
// 60.6 -> 58.9; none slower by more than 0.1 us), and the same bits (each tile is computed the same way), so it is the
// default at every token count. RESET_NATIVE_GEMV_TEAM_ORDER (read at every call, for A/B runs): "cta" = CTA-major;
// unset or any other value = team-major.
inline bool team_major_on() {
  const char* v = std::getenv("RESET_NATIVE_GEMV_TEAM_ORDER");
  return v == nullptr || std::strcmp(v, "cta") != 0;
}

// For a launch of smem bytes per CTA (the two reduction buffers per team of tile_smem_bytes): where one buffer per
// team keeps the SM within the 196 KB carve-out (red_one_fits; the static shared memory of the W4A4 amax, 128 bytes,
// is left to the 1 KB slack under it), takes the second buffer's bytes off smem and returns the GemvParams::team_major
// bit that tells the kernel; else 0. Two-team kernels only (the kernel ignores the bit elsewhere), the W4A4 cluster
// launch included (bits of its rule form; the compact form then keeps its codes in the one buffer per team where they
// fit, else copies shares, as its kernel decides). Giving the other whole-x kernels the branch moved their registers
// (the three-CTA kernel at 80 then spilled 16 bytes), and none of the Qwen3 rows puts them past 196 KB per SM.
template <int XDT, bool W4A4, int NT, bool FAST, bool WHOLE, int MINB, bool RING, int TEAMS>
int red_one_launch(size_t& smem, Form16Force force) {
  if constexpr (TEAMS == 1) {
    return 0;
  } else {  // (two teams: WHOLE, no ring, MINB = 1, no split K, as gemv_kernel asserts or its launchers give)
    const int bits = form16_bits<XDT, W4A4, NT, FAST, WHOLE, MINB, RING, false, TEAMS>(force);
    const int stride = red_row_floats(NT, (bits & kForm16RedPad) != 0);  // the kernel's kRedStride
    const size_t buffer = size_t(TEAMS) * kWarps * 16 * stride * sizeof(float);
    if (!red_one_fits(smem, smem - buffer, MINB)) return 0;
    smem -= buffer;
    return kRedOneBit;
  }
}

// kForm16Cluster: the W4A4 two-team kernel in its rule's form plus the cluster bit, launched in clusters of `cluster`
// CTAs (one per SM: 512 threads of up to 128 registers), as many as fit at once (cudaOccupancyMaxActiveClusters; at
// most one CTA per two-team walker, rounded up to whole clusters: a CTA without a tile still quantizes its share).
// The same shared memory as the plain launch. Returns false, launching nothing, where the switch value gives the
// instance another form than its rule's or no cluster of that size fits (the caller then launches the plain kernel).
// The cluster form bits (kForm16ClusterAmax / kForm16ClusterCompact): RESET_NATIVE_GEMV_W4A4_CLUSTER_FORM's
// (w4a4_cluster_form_override), where unset or unknown `rule_form` (w4a4_cluster_size's).
template <int XDT, int NT>
bool launch_w4a4_cluster(const GemvParams& p, const RingMaps& maps, Form16Force force, int cluster, int rule_form,
                         cudaStream_t stream) {
  constexpr int kRule = form16_rule<XDT, true, NT, true, true, 1, false, false, 2>();
  static_assert((kRule & kForm16QuantFast) != 0, "the W4A4 rule");
  if (form16_bits<XDT, true, NT, true, true, 1, false, false, 2>(force) != kRule) return false;
  constexpr int kBase = kRule | kForm16Cluster;
  auto kernel = gemv_kernel<XDT, true, NT, true, true, 1, false, false, 2, kBase>;
  const int forced_form = w4a4_cluster_form_override();
  switch (forced_form == kW4a4ClusterFormRule ? rule_form : forced_form) {
    case kForm16ClusterAmax:
      kernel = gemv_kernel<XDT, true, NT, true, true, 1, false, false, 2, kBase | kForm16ClusterAmax>;
      break;
    case kForm16ClusterCompact:
      kernel = gemv_kernel<XDT, true, NT, true, true, 1, false, false, 2, kBase | kForm16ClusterCompact>;
      break;
    case kForm16ClusterAmax | kForm16ClusterCompact:
      kernel = gemv_kernel<XDT, true, NT, true, true, 1, false, false, 2,
                           kBase | kForm16ClusterAmax | kForm16ClusterCompact>;
      break;
    default:
      break;
  }
  size_t smem = tile_smem_bytes<XDT, true, NT, true, true, 1, false, 2>(p.k, p.m, force);
  const int red_one = red_one_launch<XDT, true, NT, true, true, 1, false, 2>(smem, force);  // (kRule's pad)
  const int threads = 2 * kThreads;
  check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
             "nvfp4 gemv: cudaFuncSetAttribute");
  const int clusters = cuda_core::max_active_clusters(kernel, threads, smem, cluster, stream);
  if (clusters < 1) return false;
  const int walkers = ((p.n + 15) / 16 + 1) / 2;
  const int grid = walkers < clusters * cluster ? (walkers + cluster - 1) / cluster * cluster : clusters * cluster;
  GemvParams q = with_activation_amax<XDT, true>(p, true, stream);
  q.team_major = (team_major_on() ? 1 : 0) | red_one;
  check_cuda(cuda_core::launch_pdl_cluster(kernel, dim3(grid), dim3(threads), smem, cluster, stream, q, maps),
             "nvfp4 gemv: cluster launch");
  return true;
}

// cluster: plan.w4a4_cluster, read by the W4A4 two-team instances only (w4a4_cluster_size, launch_w4a4_cluster).
template <int XDT, bool W4A4, int NT, bool FAST, bool WHOLE, int MINB = 2, bool RING = false, int TEAMS = 1>
void launch_tile(const GemvParams& p, const RingMaps& maps, int sms, Form16Force force, cudaStream_t stream,
                 int cluster = 1) {
  if constexpr (W4A4 && FAST && WHOLE && !RING && TEAMS == 2) {
    const W4a4Cluster c = w4a4_cluster_size(cluster, p.m, (p.n + 15) / 16, sms);
    if (c.size > 1 && launch_w4a4_cluster<XDT, NT>(p, maps, force, c.size, c.form, stream)) return;
  }
  auto kernel = form16_kernel<XDT, W4A4, NT, FAST, WHOLE, MINB, RING, false, TEAMS>(force);
  size_t smem = tile_smem_bytes<XDT, W4A4, NT, FAST, WHOLE, MINB, RING, TEAMS>(p.k, p.m, force);
  const int red_one = red_one_launch<XDT, W4A4, NT, FAST, WHOLE, MINB, RING, TEAMS>(smem, force);
  const int threads = RING ? kThreads + 32 : kThreads * TEAMS;
  check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
             "nvfp4 gemv: cudaFuncSetAttribute");
  const int ntiles = (p.n + 15) / 16;
  constexpr int kG = group<WHOLE, NT, MINB>();
  int grid = (ntiles + kG - 1) / kG;
  if (WHOLE) {  // persistent: as many CTAs as fit at once, each walking several row tiles
    int per_sm = 1;
    check_cuda(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, smem),
               "nvfp4 gemv: occupancy");
    const int walkers = (ntiles + TEAMS - 1) / TEAMS;  // CTAs that get at least one tile per team
    grid = walkers < sms * per_sm ? walkers : sms * (per_sm > 0 ? per_sm : 1);
  }
  GemvParams q = with_activation_amax<XDT, W4A4>(p, WHOLE && !RING, stream);
  q.team_major = (TEAMS > 1 && team_major_on() ? 1 : 0) | red_one;
  check_cuda(cuda_core::launch_pdl(kernel, dim3(grid), dim3(threads), smem, stream, q, maps), "nvfp4 gemv: launch");
}

// Tile choice by shape (docs/nvfp4_cuda.md): tokens padded to 8 or 16 (MMA n side); x staged whole when it
// fits next to a second (or, when that balances the tiles better, a third) CTA on the SM: persistent CTAs,
// no barrier in the weight stream; or else when it fits one CTA per SM (which then keeps twice the loads in
// flight); otherwise staged per K chunk for a group of row tiles. On the fast path the whole-x kernels take
// their weights through the ring (gemv_ring.cuh) when it fits too.
constexpr size_t kWholeSmemLimit = 110 * 1024;
constexpr size_t kWholeSmemLimitThree = 72 * 1024;

// Persistent CTAs walk row tiles in rounds; a round with few tiles leaves SMs idle. Three CTAs per SM
// (80 registers, 24 warps) win when they even out the rounds, e.g. 384 tiles on 132 SMs: one round of
// 396 slots instead of 1.45 rounds of 264 (measured on H200: Qwen3-8B qkv, Qwen3-32B o and down at M=1).
inline bool three_ctas_balance_better(int ntiles, int sms) {
  auto balance = [&](int per_sm) {
    const double rounds = double(ntiles) / double(sms * per_sm);
    return rounds / std::ceil(rounds);
  };
  return balance(3) > balance(2) + 1e-9;
}

// Where x fits only one CTA per SM whole, two teams of 8 warps share it (TEAMS = 2) instead of one CTA of 8 warps
// with six steps in flight. RESET_NATIVE_GEMV_TEAMS (read at every call, for benchmarks): "1" = never two teams,
// "2" = two teams wherever x fits whole on the fast path (also where two CTAs per SM would fit), "measured" = session
// 10's rule below where two CTAs fit (kTeamsMeasured, for A/B runs), unset or any other value = the default rule
// (kTeamsDefault). (Three teams, 24 warps with two steps in flight at 80 registers, lost in session 14 at M = 16:
// Qwen3-8B o 8.7 -> 11.1 us, gate_up 29.9 -> 32.1, q/k/v level; removed.)
enum TeamsForce : int { kTeamsRule, kTeamsNever, kTeamsAlways, kTeamsForceMeasured };
inline int teams_override() {
  const char* v = std::getenv("RESET_NATIVE_GEMV_TEAMS");
  if (v == nullptr) return kTeamsRule;
  const char* names[] = {"1", "2", "measured"};
  for (int i = 0; i < 3; ++i)
    if (std::strcmp(v, names[i]) == 0) return i + 1;
  return kTeamsRule;
}
inline bool teams_enabled() { return teams_override() != kTeamsNever; }

// Two teams also where x would fit two (or three) CTAs per SM: each SM then stages one copy of x instead of two or
// three (half or a third of x's L2 traffic, and each thread's staging rounds halve with 512 threads), and with W4A4
// quantizes x once per SM instead of once per CTA. Which calls, per mode (TeamsRule; 16-bit x only: fp32 x never):
// kTeamsMeasured (session 10, bench/RESULTS-gemv12.md, H200, A16 bf16 x, two calls; "measured" keeps it for A/B): A16
// at 4..8 tokens, K <= 5120, at most 12 row tiles per SM; W4A4 never. It won at M = 4 / 8 on Qwen3-8B q/k/v 8.6 ->
// 8.1 / 10.6 -> 9.1 us, o 6.5 -> 6.2 / 8.1 -> 7.3, gate_up 22.0 -> 22.1 / 24.0 -> 23.0, 32B q/k/v 14.9 -> 14.1 /
// 16.8 -> 15.0, and lost on 32B gate_up (24 row tiles per SM: 51.5 -> 52.6 / 53.9 -> 54.9) and 32B o at M = 4 (K =
// 8192, three CTAs per SM: 13.7 -> 14.6), before the padded reduction rows (kForm16RedPad) and the W4A4 pad.
// kTeamsDefault (session 19 round 2, H200, bench/probes/gemv_env_sweep.py RESET_NATIVE_GEMV_TEAMS unset (the measured
// rule) vs 2, us, means of two copies, the same bits on every row): A16 at 2..16 tokens, any K, at most 12 row tiles
// per SM: 8B q/k/v M3 8.4 -> 7.7, M9 10.6 -> 9.5, M10 11.6 -> 9.8; o M9 8.2 -> 7.4, M10 9.0 -> 7.7; gate_up M9 24.6 ->
// 23.5, M10 26.4 -> 23.7; down (K = 12288) M2 12.1 -> 11.6, M3 13.4 -> 12.2; 32B q/k/v M3 13.1 -> 12.8, o (K = 8192) M3
// 13.9 -> 13.1, M4 / M5 level; 32B gate_up (24 row tiles per SM) lost at M3 46.1 -> 47.5 and M4 46.9 -> 47.4 (level or
// -0.5 at M5..8): the tiles limit stays for A16. W4A4 at 2..16 tokens, no K or tiles limit (every W4A4 CTA quantizes
// all of x): 8B gate_up M3 27.1 -> 24.0, M6 34.3 -> 27.6, M10 49.0 -> 34.8; 32B q/k/v M3 22.5 -> 17.5, M8 36.3 -> 25.0;
// 32B gate_up (24 row tiles per SM) M3 54.8 -> 51.9, M8 70.7 -> 59.3; 8B down M3 34.2 -> 22.9, 32B o M3 24.5 -> 20.2. A
// team computes a row tile exactly as a CTA does: only the time changes, never the bits.
struct TeamsRule {
  int a16_min_tokens, a16_max_tokens, a16_max_k, a16_max_tiles_per_sm;      // 16-bit x at A16
  int w4a4_min_tokens, w4a4_max_tokens, w4a4_max_k, w4a4_max_tiles_per_sm;  // 16-bit x with W4A4 (empty range: never)
};
constexpr int kTeamsNoLimit = 1 << 30;
constexpr TeamsRule kTeamsMeasured{4, 8, 5120, 12, 1, 0, 5120, 12};
constexpr TeamsRule kTeamsDefault{2, 16, kTeamsNoLimit, 12, 2, 16, kTeamsNoLimit, kTeamsNoLimit};
constexpr TeamsRule teams_rule_for(int forced) {
  return forced == kTeamsForceMeasured ? kTeamsMeasured : kTeamsDefault;
}
template <int XDT, bool W4A4>
bool teams_where_two_ctas_fit(const GemvParams& p, int sms, const TeamsRule& r = kTeamsDefault) {
  if (XDT == kF32) return false;
  const int lo = W4A4 ? r.w4a4_min_tokens : r.a16_min_tokens, hi = W4A4 ? r.w4a4_max_tokens : r.a16_max_tokens;
  const int max_k = W4A4 ? r.w4a4_max_k : r.a16_max_k;
  const int max_tiles = W4A4 ? r.w4a4_max_tiles_per_sm : r.a16_max_tiles_per_sm;
  return p.m >= lo && p.m <= hi && p.k <= max_k && (int64_t(p.n) + 15) / 16 <= int64_t(max_tiles) * sms;
}

// Whether dispatch_tokens takes two teams for the call where two CTAs per SM would fit, under RESET_NATIVE_GEMV_TEAMS
// (its first test, before the shared memory fits).
template <int XDT, bool W4A4>
bool teams_here(const GemvParams& p, int sms) {
  const int forced = teams_override();
  return forced == kTeamsAlways ||
         (forced != kTeamsNever && teams_where_two_ctas_fit<XDT, W4A4>(p, sms, teams_rule_for(forced)));
}

template <int XDT, bool W4A4, int NT>
void dispatch_tokens(const GemvParams& p, const LaunchPlan& plan, cudaStream_t stream) {
  const int sms = plan.sms;
  const bool fast = plan.fast;
  const Form16Force f = plan.form16;
  const int k = p.k, m = p.m;
  if (fast && plan.ring) {  // the ring kernels have no pad
    if (tile_smem_bytes<XDT, W4A4, NT, true, true, 2, true>(k, m, f) <= kWholeSmemLimit)
      return launch_tile<XDT, W4A4, NT, true, true, 2, true>(p, plan.maps, sms, f, stream);
    if (tile_smem_bytes<XDT, W4A4, NT, true, true, 1, true>(k, m, f) <= plan.smem_optin)
      return launch_tile<XDT, W4A4, NT, true, true, 1, true>(p, plan.maps, sms, f, stream);
  }
  // Each fit check below sizes the instance it launches (tile_smem_bytes: kForm16RedPad's pad included where its form
  // has it: the fast-path whole-x kernels at A16 with 16-bit x and at W4A4), the bytes launch_tile then asks for.
  const size_t whole = smem_bytes<XDT, W4A4, NT, true>(k, m);  // no pad: the three-CTA and general-path kernels
  const size_t teams2 = tile_smem_bytes<XDT, W4A4, NT, true, true, 1, false, 2>(k, m, f);
  if (fast && teams_here<XDT, W4A4>(p, sms) && teams2 <= plan.smem_optin)
    return launch_tile<XDT, W4A4, NT, true, true, 1, false, 2>(p, plan.maps, sms, f, stream, plan.w4a4_cluster);
  if constexpr (NT == 1 && !W4A4 && XDT != kF32) {  // the variants that fit 80 registers without spilling
    if (whole <= kWholeSmemLimitThree && three_ctas_balance_better((p.n + 15) / 16, sms)) {
      if (fast) return launch_tile<XDT, W4A4, NT, true, true, 3>(p, plan.maps, sms, f, stream);
      return launch_tile<XDT, W4A4, NT, false, true, 3>(p, plan.maps, sms, f, stream);
    }
  }
  if ((fast ? tile_smem_bytes<XDT, W4A4, NT, true, true, 2>(k, m, f) : whole) <= kWholeSmemLimit) {
    if (fast) return launch_tile<XDT, W4A4, NT, true, true>(p, plan.maps, sms, f, stream);
    return launch_tile<XDT, W4A4, NT, false, true>(p, plan.maps, sms, f, stream);
  }
  if ((fast ? tile_smem_bytes<XDT, W4A4, NT, true, true, 1>(k, m, f) : whole) <= plan.smem_optin) {
    if (fast && teams_enabled() && teams2 <= plan.smem_optin)
      return launch_tile<XDT, W4A4, NT, true, true, 1, false, 2>(p, plan.maps, sms, f, stream, plan.w4a4_cluster);
    if (fast) return launch_tile<XDT, W4A4, NT, true, true, 1>(p, plan.maps, sms, f, stream);
    return launch_tile<XDT, W4A4, NT, false, true, 1>(p, plan.maps, sms, f, stream);
  }
  if (fast) return launch_tile<XDT, W4A4, NT, true, false>(p, plan.maps, sms, f, stream);
  return launch_tile<XDT, W4A4, NT, false, false>(p, plan.maps, sms, f, stream);
}

}  // namespace detail
}  // namespace reset_native::nvfp4_cuda
