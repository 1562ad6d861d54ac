// Launcher of the medium-M NVFP4 GEMM (gemm_mid_kernel.cuh on mma.sync, gemm_wg_kernel.cuh and the warp-specialised
// gemm_ws_kernel.cuh on wgmma): kernel, tile and K-split choice, workspace, argument checks.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/env_switch.hpp"
#include "nvfp4/gemm_mid_kernel.cuh"
#include "nvfp4/gemm_wg_kernel.cuh"
#include "nvfp4/gemm_ws_kernel.cuh"
#include "nvfp4/launch_check.hpp"
#include "reset_native/error.hpp"
#include "reset_native/nvfp4_cuda.hpp"

namespace reset_native::nvfp4_cuda {
namespace detail {

// wgmma kernels exist only in sm_90a builds (CMake defines RESET_NATIVE_WGMMA when the architectures name 90a).
constexpr bool kWgBuilt =
#ifdef RESET_NATIVE_WGMMA
    true;
#else
    false;
#endif

// mma.sync kernel: token column tiles per CTA (4: 32 tokens, 8: 64) and CTAs per SM (1 or 2: registers and the ring's
// depth); wgmma kernel (wg > 0): wg tokens per CTA (32, 64 or 128), `groups` warpgroups (2 or 4; 64 rows each) and
// the serial loop instead of the pipelined one (gemm_wg_kernel.cuh; only for 128 tokens on 4 warpgroups); `ws`: the
// warp-specialised wgmma kernel (gemm_ws_kernel.cuh) with `groups` consumer warpgroups and minb CTAs per SM.
struct MidShape {
  int ntt, minb, wg, groups;
  bool serial = false;
  bool ws = false;
  int rows() const { return wg > 0 ? 64 * groups : kMidRows; }
  int tokens() const { return wg > 0 ? wg : 8 * ntt; }
  int blocks_per_sm() const { return ws ? minb : wg > 0 ? wg_min_blocks(groups, wg) : minb; }
};

std::string mid_shape_name(const MidShape& s) {
  if (s.ws) return "ws" + std::to_string(s.wg) + "c" + std::to_string(s.groups) + (s.minb == 2 ? "m2" : "");
  if (s.wg > 0) return "wg" + std::to_string(s.wg) + (s.groups == 4 ? "g4" : "") + (s.serial ? "s" : "");
  return "n" + std::to_string(s.ntt) + "m" + std::to_string(s.minb);
}

// The warp-specialised shapes that are built (launch_ws_shape), named "ws<tokens>c<consumer warpgroups>[m2]" (m2:
// two CTAs per SM) by mid_shape_name; a shape with ws == false for any other name. (ws128c4 is not built: ptxas
// serialises its wgmmas for want of registers, C7511.)
MidShape ws_shape(const std::string& s) {
  constexpr struct { int tokens, groups, minb; } kBuilt[] = {{16, 2, 1}, {32, 2, 1}, {64, 2, 1}, {128, 2, 1},
                                                            {32, 3, 1}, {64, 3, 1}, {128, 3, 1}, {32, 4, 1},
                                                            {64, 4, 1}, {32, 2, 2}, {64, 2, 2}};
  for (const auto& b : kBuilt) {
    const MidShape shape{0, b.minb, b.tokens, b.groups, false, true};
    if (s == mid_shape_name(shape)) return shape;
  }
  return MidShape{0, 0, 0, 0};
}

// The rule, or RESET_NATIVE_GEMM_MID = n4m1 | n4m2 | n8m1 (mma.sync) | wg32 | wg64 | wg128 | wg64g4 | wg128g4 |
// wg128g4s (wgmma, 2 warpgroups unless g4, s = the serial loop) | ws16c2 | ws32c2 | ws64c2 | ws128c2 | ws32c3 |
// ws64c3 | ws128c3 | ws32c4 | ws64c4 | ws32c2m2 | ws64c2m2 (warp-specialised wgmma: tokens per CTA, consumer
// warpgroups, m2 = two CTAs per SM) for A/B runs; any other value, or a wgmma shape where the build has no wgmma, the
// GPU is not compute capability 9.0 or the rows overflow the grid: the rule.
// The rule (H200, session 30, bench/RESULTS.md): the warp-specialised kernel with 32 tokens per CTA and 4 consumer
// warpgroups up to 32 tokens, 64 and 2 up to 64, 128 and 2 beyond; 3 consumer warpgroups (192 rows) instead where
// that grid fills one wave of `sms` CTAs to at least 90% (Qwen3-8B gate/up: 128 CTAs on 132 SMs, against 96 or 192
// with 256 or 128 rows: 8B gate_up at 32 / 64 / 128 tokens 32.6 / 38.1 / 49.6 us against 41.1 / 51.1 / 61.6, call 3;
// elsewhere 192 rows were level or slower). Against session 29's rule (below, still taken without wgmma or where the
// rows overflow) on the eight Qwen3 layers, same run (call 4): 0.97-1.48x faster at 32 tokens (8B o 0.97x),
// 1.04-1.68x at 64, 1.43-2.07x at 128. (Sessions 27-29: n4m2 up to 32 tokens, the pipelined wg64g4 at 33-64,
// wg128g4s past 64; n8m2 spilled and was slower everywhere: removed; 128-row mma.sync CTAs: session 28, reverted.)
// `request`: RESET_NATIVE_GEMM_MID's value (nullptr: unset). No device access (gemm_mid_shape_name tests it on CPUs).
// (wg32g4 is no shape: 32 tokens per 4 warpgroups was never built; it falls back to the rule like any other value.)
MidShape mid_shape_rule(std::int64_t m, std::int64_t n, bool hopper, const char* request, int sms) {
  const auto wg_fits = [&](int groups) { return kWgBuilt && hopper && n <= std::int64_t(65535) * 64 * groups; };
  const MidShape before = m <= 32 ? MidShape{4, 2, 0, 0}
                          : !wg_fits(4) ? MidShape{8, 1, 0, 0}
                          : m <= 64     ? MidShape{0, 0, 64, 4}
                                        : MidShape{0, 0, 128, 4, true};
  const int ntok = m <= 32 ? 32 : m <= 64 ? 64 : 128;
  const std::int64_t ctas3 = (m + ntok - 1) / ntok * ((n + 191) / 192);  // CTAs of 192 rows
  const int cg = 10 * ctas3 >= 9 * std::int64_t(sms) && ctas3 <= sms ? 3 : ntok == 32 ? 4 : 2;
  const MidShape ws{0, 1, ntok, cg, false, true};
  const MidShape rule = wg_fits(cg) ? ws : before;
  if (request == nullptr) return rule;
  const std::string s(request);
  if (s == "n4m1" || s == "n4m2" || s == "n8m1") return MidShape{s[1] - '0', s[3] - '0', 0, 0};
  if (s == "wg128g4s") return wg_fits(4) ? MidShape{0, 0, 128, 4, true} : rule;
  if (s.compare(0, 2, "ws") == 0) {
    const MidShape w = ws_shape(s);
    return w.ws && wg_fits(w.groups) ? w : rule;
  }
  const int groups = s.size() > 2 && s.compare(s.size() - 2, 2, "g4") == 0 ? 4 : 2;
  const std::string tokens = s.substr(0, s.size() - (groups == 4 ? 2 : 0));
  const int wg = tokens == "wg32" ? 32 : tokens == "wg64" ? 64 : tokens == "wg128" ? 128 : 0;
  return wg > 0 && wg_fits(groups) && !(wg == 32 && groups == 4) ? MidShape{0, 0, wg, groups} : rule;
}

struct MidPlan {
  MidShape shape;
  int row_blocks, tok_blocks, splits, stages_per_split;
  int sk_ctas = 0;  // stream-K CTAs of the ws kernel (gemm_ws_kernel.cuh); 0: the grid above (K split by `splits`)
  int sk_work = 0;  // stream-K: the K stages of all blocks, which the sk_ctas CTAs share (< 2^31)
};

// Stream-K of the warp-specialised kernel: RESET_NATIVE_GEMM_MID_SK = 0 (never) | 1 (wherever the ws kernel runs,
// in the shape chosen); unset or any other value: the rule (mid_plan_for). Read at every call.
int mid_sk_request() { return cuda_core::env_forced("RESET_NATIVE_GEMM_MID_SK"); }
// Each stream-K CTA takes at least this many K stages (fewer CTAs where the call is small).
constexpr int kSkMinStages = 4;

// Stream-K CTAs for `work` stages of `shape` (one per resident slot: owners wait for lower CTAs, so all must be
// resident at once), 0 where the stage count passes 2^31 (the kernel's 32-bit walk).
int sk_ctas_for(const MidShape& shape, std::int64_t work, int sms) {
  const int64_t slots = int64_t(sms) * shape.blocks_per_sm(), most = work / kSkMinStages > 0 ? work / kSkMinStages : 1;
  return work < (int64_t(1) << 31) ? int(most < slots ? most : slots) : 0;
}

// RESET_NATIVE_GEMM_MID_SPLITS = N (1..64) forces the grid with N K splits (A/B runs; still at most one per 4 K
// stages; stream-K only if RESET_NATIVE_GEMM_MID_SK=1 asks for it too); 0: not set or out of range.
int forced_splits() {
  const char* v = std::getenv("RESET_NATIVE_GEMM_MID_SPLITS");
  const int f = v != nullptr ? std::atoi(v) : 0;
  return f >= 1 && f <= 64 ? f : 0;
}

// The plan for a shape: row and token blocks, then K splits only where those blocks leave more than half the SMs
// idle: as many as keep every split's CTAs within one wave (at least 4 stages each), or `forced` (forced_splits) when
// > 0; the last split may be shorter, none is empty. (Splits cost an fp32 workspace write and read of m x n per split.)
MidPlan grid_plan(const MidShape& shape, std::int64_t n, std::int64_t k, std::int64_t m, int sms, int forced) {
  MidPlan plan{};
  plan.shape = shape;
  plan.row_blocks = int((n + shape.rows() - 1) / shape.rows());
  plan.tok_blocks = int((m + shape.tokens() - 1) / shape.tokens());
  const int total = int(k / kMidK);
  const int most = total / 4 > 1 ? total / 4 : 1;
  const int64_t ctas = int64_t(plan.row_blocks) * plan.tok_blocks;
  // (Splitting wherever resident CTA slots stay empty measured no better: session 27 call 2.)
  int splits = 2 * ctas > sms ? 1 : int(int64_t(sms) * shape.blocks_per_sm() / ctas);
  if (forced > 0) splits = forced;
  if (splits > most) splits = most;
  plan.stages_per_split = (total + splits - 1) / splits;
  plan.splits = (total + plan.stages_per_split - 1) / plan.stages_per_split;
  return plan;
}

// The whole plan, host only (no device access: the CPU tests call it through gemm_mid_plan_rule). Stream-K rule (H200,
// session 31 call 3 and session 32 call 2, bench/RESULTS.md): where the grid leaves >= 20% of its waves' CTA slots
// idle (Qwen3-32B gate/up: 200 or 400 CTAs on 132 SMs; 32B q/k/v at 33..128 tokens: 80), stream-K with 3 consumer
// warpgroups up to 32 tokens (ws32c4 spills under stream-K) and 2 beyond, if each CTA then takes at least half a
// block's stages (so a block has at most ~2 pieces to add), and never on fewer CTAs than the grid runs at once (short
// K: at least 4 stages per stream-K CTA). At 128 tokens per CTA a piece is 64 KiB (publishing it ~2 us, adding it
// ~1.8 us, session 32's timeline), so there stream-K also needs 2 whole blocks per CTA, or an unsplit grid of one wave
// at most 2/3 full with K of at least 32 stages: the case measured, 32B q/k/v's 80 CTAs of 40 stages on 132 SMs, 35.8
// against 40.7 us with a dependent op after each call (session 32 call 2; 36.0 against 39.8 in call 3). Measured wins:
// 32B gate_up 102.6 -> 80.2 us at 32 tokens, 114.4 -> 95.7 at 64, 153.7 -> 133.2 at 128; 32B q/k/v 30.1 -> 26.1 at
// 64. (A chain of one repeated GEMM, without the dependent op, flatters a grid that leaves SMs idle: session 31 had 32B
// q/k/v at 128 tokens at 38.9 us on the grid against 43.0 with stream-K, session 32 36.9 against 41.8. In a model the
// GEMM follows other ops.) A shape request that is honoured (not one that falls back to the rule, such as "" or "auto")
// and forced splits keep the grid unless RESET_NATIVE_GEMM_MID_SK=1.
MidPlan mid_plan_for(std::int64_t n, std::int64_t k, std::int64_t m, bool hopper, const char* request, int sms) {
  const int forced = forced_splits(), sk = mid_sk_request();
  MidPlan plan = grid_plan(mid_shape_rule(m, n, hopper, request, sms), n, k, m, sms, forced);
  if (!plan.shape.ws || sk == 0) return plan;
  if (sk == -1 && ((request != nullptr && mid_shape_name(plan.shape) == request) || forced > 0)) {
    return plan;  // an honoured shape request or forced splits run as asked
  }
  const int ntok = plan.shape.wg, total = int(k / kMidK);
  MidPlan skp =
      grid_plan(sk == 1 ? plan.shape : MidShape{0, 1, ntok, ntok == 32 ? 3 : 2, false, true}, n, k, m, sms, forced);
  const int64_t blocks = int64_t(skp.row_blocks) * skp.tok_blocks;
  const int ctas = sk_ctas_for(skp.shape, blocks * total, sms);
  if (ctas == 0) return plan;
  if (sk == -1) {
    const int64_t slots = int64_t(sms) * plan.shape.blocks_per_sm();
    const int64_t grid = int64_t(plan.row_blocks) * plan.tok_blocks * plan.splits;
    const int64_t waves = (grid + slots - 1) / slots;
    const bool idle = 5 * grid < 4 * waves * slots, wide = ctas >= (grid < slots ? grid : slots);
    const bool long_enough = 2 * (blocks * total / ctas) >= total;
    const bool one_long_wave = plan.splits == 1 && 3 * grid <= 2 * slots && total >= 32;
    const bool pays_at_128 = ntok < 128 || blocks >= 2 * ctas || one_long_wave;
    if (!(idle && wide && long_enough && pays_at_128)) return plan;
  }
  skp.sk_ctas = ctas;
  skp.sk_work = int(blocks * total);  // < 2^31: sk_ctas_for gives 0 otherwise
  skp.splits = 1;
  skp.stages_per_split = total;
  return skp;
}

MidPlan mid_plan(std::int64_t n, std::int64_t k, std::int64_t m) {
  int device = 0, sms = 132, major = 0, minor = 0;
  check_cuda(cudaGetDevice(&device), "nvfp4 gemm_mid: cudaGetDevice");
  check_cuda(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device), "nvfp4 gemm_mid: SM count");
  check_cuda(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device), "nvfp4 gemm_mid: CC");
  check_cuda(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device), "nvfp4 gemm_mid: CC");
  // sm_90a machine code runs on compute capability 9.0 only
  return mid_plan_for(n, k, m, major == 9 && minor == 0, std::getenv("RESET_NATIVE_GEMM_MID"), sms);
}

// The K split's sums over splits, in split order (deterministic).
template <int XDT>
void launch_mid_finish(const MidParams& p, const MidPlan& plan, cudaStream_t stream) {
  const int64_t count = int64_t(p.m) * p.n;
  const int blocks = int((count + 255) / 256 < 4096 ? (count + 255) / 256 : 4096);
  mid_finish_kernel<XDT><<<blocks, 256, 0, stream>>>(p.ws, plan.splits, p.m, p.n, p.gs, p.bias, p.out);
  check_launch("nvfp4 gemm_mid: finish launch");
}

template <int XDT, int NTT, int MINB>
void launch_mid(const MidParams& p, const MidPlan& plan, cudaStream_t stream) {
  const auto kernel = gemm_mid_kernel<XDT, NTT, MINB>;
  constexpr int smem = mid_smem_bytes(NTT, MINB);
  check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem),
             "nvfp4 gemm_mid: cudaFuncSetAttribute");
  const dim3 grid(plan.tok_blocks, plan.row_blocks, plan.splits);
  kernel<<<grid, kMidThreads, smem, stream>>>(p);
  check_launch("nvfp4 gemm_mid: launch");
  if (plan.splits > 1) launch_mid_finish<XDT>(p, plan, stream);
}

template <int XDT, int NTOK, int GROUPS, bool PIPE = true>
void launch_wg(const MidParams& p, const MidPlan& plan, cudaStream_t stream) {
  const auto kernel = gemm_wg_kernel<XDT, NTOK, GROUPS, PIPE>;
  constexpr int smem = wg_smem_bytes<GROUPS>(NTOK, PIPE);
  check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem),
             "nvfp4 gemm_mid: cudaFuncSetAttribute (wgmma)");
  const dim3 grid(plan.tok_blocks, plan.row_blocks, plan.splits);
  kernel<<<grid, WgTile<GROUPS>::kThreads, smem, stream>>>(p);
  check_launch("nvfp4 gemm_mid: launch (wgmma)");
  if (plan.splits > 1) launch_mid_finish<XDT>(p, plan, stream);
}

// Stream-K workspace after the permuted x: each CTA's published piece (fp32 accumulators of its consumer threads),
// then one flag per CTA and consumer warp (the per-CTA sizes are the kernel's, gemm_ws_kernel.cuh).
std::int64_t ws_sk_part_bytes(const MidPlan& plan) {
  return std::int64_t(plan.sk_ctas) * ws_sk_piece_float4s(plan.shape.wg, plan.shape.groups) * 16;
}
std::int64_t ws_sk_flag_count(const MidPlan& plan) {
  return std::int64_t(plan.sk_ctas) * ws_sk_flags_per_cta(plan.shape.groups);
}

// Programmatic dependent launch of the ws path, RESET_NATIVE_GEMM_MID_PDL (read at every call; RESET_NATIVE_PDL=0
// turns PDL off everywhere): unset or 1, the permutation and the GEMM both with it (the permutation may start beside
// the kernel before, the GEMM streams its weights while the permutation runs); 0, neither; `gemm`, only the GEMM (the
// permutation starts once the kernel before has completed). The default is the fastest whole-model decode
// (bench_e2e.py, Qwen3-8B shapes, H200: 1.28 / 1.12x BF16 at batch 64 / 128 against 1.25 / 1.10 with `gemm`, session
// 32 call 5; session 31: 1-3% faster than PDL off on the 3-warpgroup shape). In a chain of one repeated GEMM it is
// not: where the GEMM fills every SM (3 consumer warpgroups, stream-K) some permutation CTA that started beside the
// previous call's CTAs ends 11-13 us after that call and every GEMM CTA waits for it (bench/probes/ws_sk_trace.cu; why
// it ends so late is not known; Qwen3-8B gate/up at 128 tokens 54.4 us against 49.6 with `gemm`, 32B q/k/v 42.2
// against 33.7). A model's GEMMs follow light ops. Any other value of the variable acts as unset.
enum class WsPdl { kOff, kBoth, kGemmOnly };
WsPdl ws_pdl_mode() {
  const char* v = std::getenv("RESET_NATIVE_GEMM_MID_PDL");
  if (v == nullptr) return WsPdl::kBoth;
  return std::strcmp(v, "0") == 0 ? WsPdl::kOff : std::strcmp(v, "gemm") == 0 ? WsPdl::kGemmOnly : WsPdl::kBoth;
}

// x permuted into B layout (into the workspace, p.xp), then the warp-specialised kernel.
template <int XDT, int NTOK, int CG, int MINB = 1>
void launch_ws(const MidParams& p, const MidPlan& plan, cudaStream_t stream) {
  const int64_t units = int64_t(plan.tok_blocks) * (p.k / kMidK) * 4 * NTOK;
  const int pblocks = int((units + 255) / 256 < 2048 ? (units + 255) / 256 : 2048);
  // Both with programmatic dependent launch where ws_pdl_mode says so (gemm_ws_kernel.cuh).
  const WsPdl mode = ws_pdl_mode();
  const bool pdl = mode != WsPdl::kOff, permute_pdl = mode == WsPdl::kBoth;
  check_cuda(cuda_core::launch_maybe_pdl(permute_pdl, ws_permute_x_kernel<NTOK>, dim3(pblocks), dim3(256), 0, stream,
                                         static_cast<const uint16_t*>(p.x), p.m, p.k, plan.tok_blocks,
                                         const_cast<uint8_t*>(p.xp), p.sk_flags, int(ws_sk_flag_count(plan))),
             "nvfp4 gemm_mid: x permute launch");
  constexpr int smem = ws_smem_bytes(CG, NTOK, MINB);
  // The stream-K kernel on a 1-D grid of sk_ctas CTAs, or the grid of (token, row) blocks and K splits.
  const auto kernel =
      plan.sk_ctas > 0 ? gemm_ws_kernel<XDT, NTOK, CG, MINB, true> : gemm_ws_kernel<XDT, NTOK, CG, MINB, false>;
  const dim3 grid = plan.sk_ctas > 0 ? dim3(plan.sk_ctas) : dim3(plan.tok_blocks, plan.row_blocks, plan.splits);
  check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem),
             "nvfp4 gemm_mid: cudaFuncSetAttribute (ws)");
  check_cuda(cuda_core::launch_maybe_pdl(pdl, kernel, grid, dim3(WsTile<CG>::kThreads), smem, stream, p),
             plan.sk_ctas > 0 ? "nvfp4 gemm_mid: launch (ws stream-K)" : "nvfp4 gemm_mid: launch (ws)");
  if (plan.splits > 1) launch_mid_finish<XDT>(p, plan, stream);
}

template <int XDT>
void launch_ws_shape(const MidParams& p, const MidPlan& plan, cudaStream_t stream) {
  const MidShape s = plan.shape;
  if (s.minb == 2) {
    s.wg == 32 ? launch_ws<XDT, 32, 2, 2>(p, plan, stream) : launch_ws<XDT, 64, 2, 2>(p, plan, stream);
  } else if (s.groups == 4) {
    s.wg == 32 ? launch_ws<XDT, 32, 4>(p, plan, stream) : launch_ws<XDT, 64, 4>(p, plan, stream);
  } else if (s.groups == 3) {
    s.wg == 32   ? launch_ws<XDT, 32, 3>(p, plan, stream)
    : s.wg == 64 ? launch_ws<XDT, 64, 3>(p, plan, stream)
                 : launch_ws<XDT, 128, 3>(p, plan, stream);
  } else {
    s.wg == 16   ? launch_ws<XDT, 16, 2>(p, plan, stream)
    : s.wg == 32 ? launch_ws<XDT, 32, 2>(p, plan, stream)
    : s.wg == 64 ? launch_ws<XDT, 64, 2>(p, plan, stream)
                 : launch_ws<XDT, 128, 2>(p, plan, stream);
  }
}

template <int XDT>
void launch_mid_shape(const MidParams& p, const MidPlan& plan, cudaStream_t stream) {
  const MidShape s = plan.shape;
  if (s.ws) {
    launch_ws_shape<XDT>(p, plan, stream);
  } else if (s.wg == 32) {
    launch_wg<XDT, 32, 2>(p, plan, stream);
  } else if (s.wg == 64) {
    s.groups == 4 ? launch_wg<XDT, 64, 4>(p, plan, stream) : launch_wg<XDT, 64, 2>(p, plan, stream);
  } else if (s.wg == 128 && s.serial) {
    launch_wg<XDT, 128, 4, false>(p, plan, stream);
  } else if (s.wg == 128) {
    s.groups == 4 ? launch_wg<XDT, 128, 4>(p, plan, stream) : launch_wg<XDT, 128, 2>(p, plan, stream);
  } else if (s.ntt == 4) {
    s.minb == 2 ? launch_mid<XDT, 4, 2>(p, plan, stream) : launch_mid<XDT, 4, 1>(p, plan, stream);
  } else {
    launch_mid<XDT, 8, 1>(p, plan, stream);
  }
}

// Workspace: x in B layout for the warp-specialised kernel (rounded up to 256 bytes), then the fp32 partial sums of
// the plan's K split. 0: neither.
std::int64_t mid_permuted_x_bytes(const MidPlan& plan, std::int64_t m, std::int64_t k) {
  return plan.shape.ws ? (ws_permuted_x_bytes(m, k, plan.shape.wg) + 255) / 256 * 256 : 0;
}
std::int64_t mid_workspace_bytes(const MidPlan& plan, std::int64_t m, std::int64_t n, std::int64_t k) {
  return mid_permuted_x_bytes(plan, m, k) + (plan.splits > 1 ? std::int64_t(plan.splits) * m * n * 4 : 0) +
         ws_sk_part_bytes(plan) + ws_sk_flag_count(plan) * 4;
}

bool aligned_to(const void* ptr, std::uintptr_t bytes) { return reinterpret_cast<std::uintptr_t>(ptr) % bytes == 0; }

}  // namespace detail

bool gemm_mid_wgmma_built() { return detail::kWgBuilt; }

std::string gemm_mid_shape_name(std::int64_t m, std::int64_t n, bool hopper, const std::string& request, int sms) {
  return detail::mid_shape_name(
      detail::mid_shape_rule(m, n, hopper, request.empty() ? nullptr : request.c_str(), sms));
}

namespace {
GemmMidPlanRule plan_summary(const detail::MidPlan& plan) {
  return {detail::mid_shape_name(plan.shape), plan.splits, plan.sk_ctas};
}
}  // namespace

GemmMidPlanRule gemm_mid_plan_rule(std::int64_t m, std::int64_t n, std::int64_t k, bool hopper, int sms) {
  return plan_summary(detail::mid_plan_for(n, k, m, hopper, std::getenv("RESET_NATIVE_GEMM_MID"), sms));
}

bool gemm_mid_supported(const GemmMidArgs& a) {
  using namespace detail;
  static_assert(kGemmMidMaxRows == 65535 * kMidRows, "row blocks go on the grid's y dimension (at most 65535)");
  return (a.x_dtype == DType::F16 || a.x_dtype == DType::BF16) && a.n > 0 && a.n <= kGemmMidMaxRows && a.k > 0 &&
         a.k % kMidK == 0 && a.k <= (1 << 30) && a.m > 0 && a.m <= kGemmMidMaxTokens && aligned_to(a.packed, 16) &&
         aligned_to(a.block_scales, 8) && aligned_to(a.x, 16) && aligned_to(a.out, 2) && aligned_to(a.bias, 2) &&
         a.m * a.n <= kGemmMidMaxOutputs;
}

GemmMidPlanRule gemm_mid_launch_plan(const GemmMidArgs& a) {
  if (!gemm_mid_supported(a)) return {"", 0, 0};  // (the plan divides by the stage and block counts)
  return plan_summary(detail::mid_plan(a.n, a.k, a.m));
}

std::int64_t gemm_mid_workspace_bytes(const GemmMidArgs& a) {
  if (!gemm_mid_supported(a)) return 0;  // (the plan divides by the stage and block counts)
  return detail::mid_workspace_bytes(detail::mid_plan(a.n, a.k, a.m), a.m, a.n, a.k);
}

void launch_gemm_mid(const GemmMidArgs& a, void* stream_ptr) {
  using namespace detail;
  require(a.packed && a.block_scales && a.x && a.out, "nvfp4 gemm_mid: null pointer");
  require(gemm_mid_supported(a),
          "nvfp4 gemm_mid: needs 16-bit x, k % 128 == 0, 1 <= m <= " + std::to_string(kGemmMidMaxTokens) +
              ", 1 <= n <= " + std::to_string(kGemmMidMaxRows) + ", m * n <= " +
              std::to_string(kGemmMidMaxOutputs) + ", packed / block_scales / x / out / bias aligned to 16 / 8 / 16 "
              "/ 2 / 2 bytes; got n=" + std::to_string(a.n) + " k=" + std::to_string(a.k) +
              " m=" + std::to_string(a.m));
  const MidPlan plan = mid_plan(a.n, a.k, a.m);
  const std::int64_t ws_bytes = mid_workspace_bytes(plan, a.m, a.n, a.k);
  require(a.workspace_bytes >= ws_bytes && (ws_bytes == 0 || (a.workspace && aligned_to(a.workspace, 16))),
          "nvfp4 gemm_mid: workspace needs " + std::to_string(ws_bytes) +
              " bytes (gemm_mid_workspace_bytes), 16-byte aligned, got " + std::to_string(a.workspace_bytes));
  const std::int64_t xp_bytes = mid_permuted_x_bytes(plan, a.m, a.k);
  auto* ws = static_cast<uint8_t*>(a.workspace);
  MidParams p{a.packed, a.block_scales, a.x,          a.bias,       a.out,
              reinterpret_cast<float*>(ws + xp_bytes), a.global_scale, int(a.n), int(a.k), int(a.m),
              plan.stages_per_split, xp_bytes > 0 ? ws : nullptr};
  if (plan.sk_ctas > 0) {  // the pieces (16-byte aligned: xp_bytes is a multiple of 256), then the flags
    p.sk_row_blocks = plan.row_blocks;
    p.sk_work = plan.sk_work;
    p.sk_part = reinterpret_cast<float*>(ws + xp_bytes);
    p.sk_flags = reinterpret_cast<unsigned*>(ws + xp_bytes + ws_sk_part_bytes(plan));
  }
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  if (a.x_dtype == DType::BF16) {
    launch_mid_shape<kBF16>(p, plan, stream);
  } else {
    launch_mid_shape<kF16>(p, plan, stream);
  }
}

}  // namespace reset_native::nvfp4_cuda
