// Where a W4A4 call at two tokens leaves the block-diagonal kernel to the 16-bit kernel's two teams (only where that
// kernel takes two teams: gemv_launch.cuh teams_here, kTeamsDefault: 16-bit x). Why: every block-diagonal CTA (two per
// SM) computes the amax of all of x and quantizes all of it, while two teams do that once per SM; the block-diagonal
// kernel's steps are cheaper (no scale multiply per weight pair, every MMA column used). Session 20 helper w4a4bd36's
// rules (NOTES-w4a4bd36.md has the cost model); "w4a4kt" is the default since session 21. Measured on an H200
// (session 21 round 1, W4A4 dynamic scale at M = 2, the block-diagonal kernel -> w4a4kt, us): Qwen3-8B down (K =
// 12288, one row tile per CTA) 18.4 -> 15.5, 8B q/k/v 9.6 -> 9.2, 32B q/k/v 15.5 -> 14.8, every other Qwen3 row level
// (8B o, the gate/up projections and 32B o keep the block-diagonal kernel; session 20: two teams lost there on 32B o
// (K = 8192) and 32B gate_up); static scale likewise (8B down 17.2 -> 14.5). One token: unaffected. Where the 16-bit
// kernel would not run two teams (fp32 x, RESET_NATIVE_GEMV_TEAMS=1 or =measured) the call keeps the block-diagonal
// kernel: two CTAs per SM would each quantize all of x again.
// RESET_NATIVE_GEMV_BD (read at every call, a benchmark switch; "0" still forces the 16-bit kernel in bd_chosen):
//   unset, "w4a4kt" or any other value: from K = kBdW4a4RuleMaxK (A16's two-token limit: 8B down), and at
//              K <= kBdW4a4RuleShortK with more row tiles than CTA slots (two per SM) and at most
//              kBdW4a4RuleMaxTilesPerSlot per slot (8B q/k/v and 32B q/k/v).
//   "w4a4k"  = from K = kBdW4a4RuleMaxK only.
//   "w4a4bd" = never (the block-diagonal kernel at every K, the routing before session 21, for A/B runs); "1" likewise
//              (it forces the block-diagonal kernel everywhere). Host only.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "nvfp4/gemv_params.cuh"

namespace reset_native::nvfp4_cuda {
namespace detail {

constexpr int kBdW4a4RuleMaxK = 12288;
constexpr int kBdW4a4RuleShortK = 6144;
constexpr int kBdW4a4RuleMaxTilesPerSlot = 3;

enum BdW4a4Rule : int { kBdW4a4RuleOff, kBdW4a4RuleK, kBdW4a4RuleKT };

inline int bd_w4a4_rule() {
  const char* v = std::getenv("RESET_NATIVE_GEMV_BD");
  if (v == nullptr) return kBdW4a4RuleKT;
  if (std::strcmp(v, "w4a4k") == 0) return kBdW4a4RuleK;
  if (std::strcmp(v, "w4a4bd") == 0 || std::strcmp(v, "1") == 0) return kBdW4a4RuleOff;
  return kBdW4a4RuleKT;
}

// True where the rule gives a plain W4A4 call to the 16-bit kernel (m == 2 where that kernel would take two teams
// (teams, gemv_launch.cuh teams_here) only; one token keeps the block-diagonal kernel: the 16-bit kernel there runs two
// CTAs per SM, each quantizing all of x as well). sms: the launch plan's multiprocessors.
inline bool bd_w4a4_rule_declines(const GemvParams& p, bool teams, int sms) {
  if (p.m != 2 || !teams) return false;
  const int rule = bd_w4a4_rule();
  if (rule == kBdW4a4RuleOff) return false;
  if (p.k >= kBdW4a4RuleMaxK) return true;
  if (rule != kBdW4a4RuleKT || p.k > kBdW4a4RuleShortK || sms <= 0) return false;
  const int64_t tiles = (int64_t(p.n) + 15) / 16, slots = 2 * int64_t(sms);
  return tiles > slots && tiles <= kBdW4a4RuleMaxTilesPerSlot * slots;
}

}  // namespace detail
}  // namespace reset_native::nvfp4_cuda
