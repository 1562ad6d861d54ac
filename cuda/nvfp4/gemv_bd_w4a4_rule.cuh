// Opt-in rules (session 20 helper w4a4bd36, not measured yet) for where a W4A4 call at two tokens leaves the
// block-diagonal kernel to the 16-bit kernel, which then takes two teams (gemv_kernel.cuh kTeamsDefault). Why: every
// block-diagonal CTA (two per SM) computes the amax of all of x and quantizes all of it, while two teams do that once
// per SM; the block-diagonal kernel's steps are cheaper (no scale multiply per weight pair, every MMA column used).
// Measured on an H200 (bench/RESULTS.md, session 20 calls 2 and 3, RESET_NATIVE_GEMV_BD unset vs 0 at M = 2): two
// teams won on Qwen3-8B down (K = 12288, one row tile per CTA: 18.5 -> 15.5 us), 8B q/k/v and 32B q/k/v (K <= 5120,
// 1.5 and 2.4 row tiles per CTA: -0.5, -0.8 us), level on 8B o (one tile) and 8B gate_up, lost on 32B o (K = 8192,
// 1.2 tiles: +1.2) and 32B gate_up (12 tiles: +1.4). NOTES-w4a4bd36.md has the cost model.
// RESET_NATIVE_GEMV_BD (read at every call, a benchmark switch; "0" / "1" keep their meaning in bd_chosen):
//   "w4a4k"  = two tokens from K = kBdW4a4RuleMaxK (A16's two-token limit): moves 8B down.
//   "w4a4kt" = that, and at K <= kBdW4a4RuleShortK with more row tiles than CTA slots (two per SM) and at most
//              kBdW4a4RuleMaxTilesPerSlot per slot: also moves 8B q/k/v and 32B q/k/v.
// Any other value (unset included): the default rule (the block-diagonal kernel at every K). Host only.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "core/env_switch.hpp"
#include "nvfp4/gemv_params.cuh"

namespace reset_native::nvfp4_cuda {
namespace detail {

constexpr int kBdW4a4RuleMaxK = 12288;
constexpr int kBdW4a4RuleShortK = 6144;
constexpr int kBdW4a4RuleMaxTilesPerSlot = 3;

enum BdW4a4Rule : int { kBdW4a4RuleOff, kBdW4a4RuleK, kBdW4a4RuleKT };

inline int bd_w4a4_rule() {
  const char* v = std::getenv("RESET_NATIVE_GEMV_BD");
  if (v == nullptr) return kBdW4a4RuleOff;
  if (std::strcmp(v, "w4a4k") == 0) return kBdW4a4RuleK;
  if (std::strcmp(v, "w4a4kt") == 0) return kBdW4a4RuleKT;
  return kBdW4a4RuleOff;
}

// True where the opt-in rule gives a plain W4A4 call to the 16-bit kernel (m == 2 only; one token keeps the
// block-diagonal kernel: the 16-bit kernel there runs two CTAs per SM, each quantizing all of x as well).
inline bool bd_w4a4_rule_declines(const GemvParams& p) {
  if (p.m != 2) return false;
  const int rule = bd_w4a4_rule();
  if (rule == kBdW4a4RuleOff) return false;
  if (p.k >= kBdW4a4RuleMaxK) return true;
  if (rule != kBdW4a4RuleKT || p.k > kBdW4a4RuleShortK) return false;
  const int sms = cuda_core::device_sms();
  if (sms <= 0) return false;
  const int64_t tiles = (int64_t(p.n) + 15) / 16, slots = 2 * int64_t(sms);
  return tiles > slots && tiles <= kBdW4a4RuleMaxTilesPerSlot * slots;
}

}  // namespace detail
}  // namespace reset_native::nvfp4_cuda
