// Host launcher of the NVFP4 GEMV: validates, runs the W4A4 activation-amax pre-kernel when asked, picks
// the tile and launches. Kernel and design notes: gemv_kernel.cuh.
#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/env_switch.hpp"
#include "nvfp4/gemv_dispatch.cuh"
#include "nvfp4/launch_check.hpp"
#include "nvfp4/ring_maps.hpp"
#include "reset_native/error.hpp"
#include "reset_native/nvfp4_cuda.hpp"

namespace reset_native::nvfp4_cuda {
namespace detail {
#define RESET_NATIVE_NVFP4_GEMV_EXTERN(XDT)                                                          \
  extern template void dispatch_mode<XDT, false>(const GemvParams&, const LaunchPlan&, cudaStream_t); \
  extern template void dispatch_mode<XDT, true>(const GemvParams&, const LaunchPlan&, cudaStream_t);
RESET_NATIVE_NVFP4_GEMV_EXTERN(kF32)
RESET_NATIVE_NVFP4_GEMV_EXTERN(kF16)
RESET_NATIVE_NVFP4_GEMV_EXTERN(kBF16)
#undef RESET_NATIVE_NVFP4_GEMV_EXTERN
#define RESET_NATIVE_NVFP4_GEMV_FUSED_EXTERN(XDT)                                                            \
  extern template void dispatch_fused<XDT, kProRmsNorm, false>(const GemvParams&, const LaunchPlan&, cudaStream_t); \
  extern template void dispatch_fused<XDT, kProNone, true>(const GemvParams&, const LaunchPlan&, cudaStream_t);     \
  extern template void dispatch_fused<XDT, kProRmsNorm, true>(const GemvParams&, const LaunchPlan&, cudaStream_t);
RESET_NATIVE_NVFP4_GEMV_FUSED_EXTERN(kF16)
RESET_NATIVE_NVFP4_GEMV_FUSED_EXTERN(kBF16)
#undef RESET_NATIVE_NVFP4_GEMV_FUSED_EXTERN

template <int XDT>
void dispatch_dtype(const GemvParams& p, bool w4a4, const LaunchPlan& plan, cudaStream_t stream) {
  if (w4a4) return dispatch_mode<XDT, true>(p, plan, stream);
  return dispatch_mode<XDT, false>(p, plan, stream);
}

// The TMA weight ring (gemv_ring.cuh) instead of register-pipelined loads: opt-in only,
// RESET_NATIVE_GEMV_RING=1 (read at every call, a benchmark switch; a captured CUDA graph keeps the choice made at
// capture) takes it wherever it applies (fast path, 16-byte aligned scale rows). It was the default by a measured
// rule in sessions 9-10 (docs/nvfp4_cuda.md "TMA weight ring"); off since session 10's final call, first for an
// intermittent wrong-output failure (not reproduced since, with or without the cross-proxy fence session 11 added:
// bench/RESULTS.md), then for speed: with the fence the block-diagonal register kernel (cb) was faster on 7 of the
// 8 Qwen3 layers at M = 1 (8B gate_up 17.87 vs 20.62 us, 32B gate_up 42.93 vs 49.07), the ring only on 32B down
// (33.02 vs 34.33 us with the 16-bit kernel).
}  // namespace detail

namespace {
using namespace detail;

void check_args(const GemvArgs& a) {
  require(a.n > 0 && a.k > 0 && a.k % 16 == 0, "nvfp4 gemv: need n > 0 and k > 0 with k % 16 == 0, got n=" +
                                                   std::to_string(a.n) + " k=" + std::to_string(a.k));
  require(a.m >= 1 && a.m <= kGemvMaxTokens,
          "nvfp4 gemv: m (tokens) must be in [1, 16], got " + std::to_string(a.m));
  require(a.n < (int64_t(1) << 31) && a.k < (int64_t(1) << 31), "nvfp4 gemv: n and k must be < 2^31");
  require(a.packed && a.block_scales && a.x && a.out, "nvfp4 gemv: null pointer");
  require(reinterpret_cast<uintptr_t>(a.packed) % 8 == 0, "nvfp4 gemv: packed must be 8-byte aligned");
}

GemvParams make_params(const GemvArgs& a) {
  GemvParams p{};
  p.packed = a.packed;
  p.scales = a.block_scales;
  p.x = a.x;
  p.bias = a.bias;
  p.residual = a.residual;
  p.out = a.out;
  p.w_gs = a.global_scale;
  p.n = int(a.n), p.k = int(a.k), p.m = int(a.m);
  p.x_aligned = reinterpret_cast<uintptr_t>(a.x) % 16 == 0;
  p.act_gs = a.act_global_scale;
  p.act_amax = nullptr;
  p.pro_w = a.prologue_weight;
  p.pro_eps = a.prologue_eps;
  p.split_ws = nullptr;
  p.ksplit = 1;
  p.amax_inline = 0;
  return p;
}

// The launch plan without the ring's tensor maps (add_ring_maps adds them when the ring is on), with the
// block-diagonal kernel's K split decided once for the call (ksplit_for, dispatch_mode and fused_fits read it).
LaunchPlan make_plan(const GemvArgs& a) {
  const bool fast = a.k % kChunk == 0 && reinterpret_cast<uintptr_t>(a.packed) % 16 == 0 &&
                    reinterpret_cast<uintptr_t>(a.block_scales) % 2 == 0;
  int device = 0, sms = 132;
  check_cuda(cudaGetDevice(&device), "nvfp4 gemv: cudaGetDevice");
  check_cuda(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device), "nvfp4 gemv: SM count");
  int optin = 0;  // largest dynamic shared memory one CTA may opt into (227 KiB on H100/H200)
  check_cuda(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
             "nvfp4 gemv: shared memory limit");
  // The ring's bulk copies need 16-byte aligned scale rows too (K % 1024 == 0 keeps every row aligned then).
  const bool ring = fast && reinterpret_cast<uintptr_t>(a.block_scales) % 16 == 0 &&
                    cuda_core::env_forced("RESET_NATIVE_GEMV_RING") == 1;
  LaunchPlan plan{fast, ring, sms, size_t(optin), RingMaps{}};
  const bool x16 = a.x_dtype != DType::F32, w4a4 = a.activation == Activation::NVFP4;
  plan.bd_ksplit = bd_split_slices(make_params(a), plan, x16, w4a4);
  return plan;
}

// The ring's tensor maps of this call's weights and scales, when the plan streams them through the ring.
void add_ring_maps(LaunchPlan& plan, const GemvArgs& a) {
  if (!plan.ring) return;
  encode_rows(&plan.maps.w, a.packed, a.n, a.k / 2, kChunk / 2, true);
  encode_rows(&plan.maps.s, a.block_scales, a.n, a.k / 16, kChunk / 16, false);
}

// K slices for this call (1: no split): the block-diagonal kernel's split (plan.bd_ksplit) where it applies, else
// what choose_ksplit picks for this call's x dtype and activation (the 16-bit kernel's split).
int ksplit_for(const GemvArgs& a, const GemvParams& p, const LaunchPlan& plan) {
  const bool w4a4 = a.activation == Activation::NVFP4;
  if (plan.bd_ksplit > 1) return plan.bd_ksplit;
  switch (a.x_dtype) {
    case DType::F32:
      return w4a4 ? choose_ksplit<kF32, true>(p, plan) : choose_ksplit<kF32, false>(p, plan);
    case DType::F16:
      return w4a4 ? choose_ksplit<kF16, true>(p, plan) : choose_ksplit<kF16, false>(p, plan);
    case DType::BF16:
      return w4a4 ? choose_ksplit<kBF16, true>(p, plan) : choose_ksplit<kBF16, false>(p, plan);
  }
  return 1;
}

// Whether a split call adds its slices in the split kernel (gemv_split_fixup.cuh) rather than in the second kernel,
// gemv_split_reduce: A16 calls of at most kSplitFixupMaxTokens tokens. There the last CTA of a walker group adds
// at most one output per thread; with more tokens one CTA per group adds many while the rest of the GPU idles (H200,
// session 35 call 1, second kernel -> fixup: 32B down 22.9 -> 22.4 us at one token, but 25.6 -> 26.7 at two, 8B down
// 13.3 -> 15.4 at four and 17.7 -> 22.7 at sixteen, 32B down 35.4 -> 51.2 at sixteen). W4A4 always takes the second
// kernel (its activation scale may come from a pre-kernel). RESET_NATIVE_GEMV_SPLIT_FIXUP (read at every call): "1" =
// every A16 split call, "0" = none, else the rule.
constexpr int kSplitFixupMaxTokens = 1;
bool split_fixup_on(const GemvArgs& a) {
  const int forced = cuda_core::env_forced("RESET_NATIVE_GEMV_SPLIT_FIXUP");
  return a.activation != Activation::NVFP4 && (forced < 0 ? a.m <= kSplitFixupMaxTokens : forced == 1);
}

// Split K's workspace: the slices' fp32 partial sums [ksplit][m][n], then, with the fixup (split_fixup_on), its
// tags (split_tag_bytes).
int64_t split_bytes(const GemvArgs& a, int ksplit, bool fixup) {
  if (ksplit <= 1) return 0;
  const int64_t partial = int64_t(ksplit) * a.m * a.n * 4;
  return fixup ? partial + split_tag_bytes(a.n) : partial;
}

// A fresh nonce for a call's tags (gemv_split_fixup.cuh), never 0: the clock and the call's pointers mixed by
// splitmix64's finaliser. It need not be unique, only unlikely to match the garbage of a workspace.
unsigned make_split_nonce(const GemvArgs& a) {
  uint64_t z = uint64_t(std::chrono::steady_clock::now().time_since_epoch().count()) ^
               uint64_t(reinterpret_cast<uintptr_t>(a.out)) * 0x9E3779B97F4A7C15ull ^
               uint64_t(reinterpret_cast<uintptr_t>(a.split_workspace));
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  const auto nonce = unsigned(z >> 32);
  return nonce != 0 ? nonce : 1u;
}

bool aligned16(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }

// The fused kernels' own conditions (16-bit x, A16, m <= 2, 16-byte rows, no residual with the SiLU epilogue)
// before the shared-memory fit.
bool fused_args_ok(const GemvArgs& a) {
  const bool x16 = a.x_dtype == DType::F16 || a.x_dtype == DType::BF16;
  const bool pro_ok = a.prologue == Prologue::None ||
                      (a.prologue == Prologue::RmsNorm && a.prologue_weight != nullptr && aligned16(a.prologue_weight));
  const bool epi_ok = a.epilogue == Epilogue::None ||
                      (a.epilogue == Epilogue::SiluMul && a.residual == nullptr && a.n % 32 == 0);
  return x16 && pro_ok && epi_ok && a.activation == Activation::A16 && a.m >= 1 && a.m <= 2 && a.k > 0 &&
         a.k % kChunk == 0 && aligned16(a.x) && aligned16(a.packed) && aligned16(a.block_scales);
}

// Whether a kernel with args' fusions fits this call (after fused_args_ok), given its params and launch plan.
bool fusion_fits(const GemvArgs& a, const GemvParams& p, const LaunchPlan& plan) {
  const bool norm = a.prologue == Prologue::RmsNorm, silu = a.epilogue == Epilogue::SiluMul;
  if (norm && silu) return fused_fits<kProRmsNorm, true>(p, plan);
  return norm ? fused_fits<kProRmsNorm, false>(p, plan) : fused_fits<kProNone, true>(p, plan);
}

template <int XDT>
void launch_fused(const GemvArgs& a, const GemvParams& p, const LaunchPlan& plan, cudaStream_t stream) {
  const bool norm = a.prologue == Prologue::RmsNorm, silu = a.epilogue == Epilogue::SiluMul;
  if (norm && silu) return dispatch_fused<XDT, kProRmsNorm, true>(p, plan, stream);
  if (norm) return dispatch_fused<XDT, kProRmsNorm, false>(p, plan, stream);
  return dispatch_fused<XDT, kProNone, true>(p, plan, stream);
}

// The shape checks of launch_gemv that the queries below need (out may not exist yet); launch_gemv validates the
// call itself.
bool shape_queryable(const GemvArgs& a) {
  return a.n > 0 && a.k > 0 && a.k % 16 == 0 && a.m >= 1 && a.m <= kGemvMaxTokens && a.n < (int64_t(1) << 31) &&
         a.k < (int64_t(1) << 31);
}
bool wants_fusion(const GemvArgs& a) { return a.prologue != Prologue::None || a.epilogue != Epilogue::None; }
}  // namespace

int64_t gemv_workspace_bytes(const GemvArgs& a) {
  if (!shape_queryable(a) || wants_fusion(a)) return 0;
  return split_bytes(a, ksplit_for(a, make_params(a), make_plan(a)), split_fixup_on(a));
}

bool gemv_uses_weight_ring(const GemvArgs& a) {
  if (!shape_queryable(a)) return false;
  const LaunchPlan plan = make_plan(a);
  if (wants_fusion(a)) return plan.ring && fused_args_ok(a) && fusion_fits(a, make_params(a), plan);  // the same rule
  return plan.ring;
}

bool gemv_fusion_supported(const GemvArgs& a) {
  if (!wants_fusion(a)) return true;
  return fused_args_ok(a) && fusion_fits(a, make_params(a), make_plan(a));
}

int64_t launch_gemv(const GemvArgs& a, void* stream_ptr) {
  check_args(a);
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  GemvParams p = make_params(a);
  if (wants_fusion(a)) {
    require(a.prologue == Prologue::None || a.prologue == Prologue::RmsNorm, "nvfp4 gemv: unknown prologue");
    require(a.epilogue == Epilogue::None || a.epilogue == Epilogue::SiluMul, "nvfp4 gemv: unknown epilogue");
    require(a.prologue_eps >= 0.0f, "nvfp4 gemv: RMSNorm eps must be >= 0");
    LaunchPlan plan = make_plan(a);
    if (!fused_args_ok(a) || !fusion_fits(a, p, plan))
      throw Unsupported("nvfp4 gemv: no fused kernel for the call (needs 16-bit x, A16, m <= 2, k % 1024 == 0, "
                        "k < 8192, 16-byte aligned x/weights, x fitting shared memory, a shape the plain GEMV does not "
                        "split along K; SiLU: n % 32 == 0, no residual): "
                        "check gemv_fusion_supported first");
    add_ring_maps(plan, a);
    if (a.x_dtype == DType::BF16) {
      launch_fused<kBF16>(a, p, plan, stream);
    } else {
      launch_fused<kF16>(a, p, plan, stream);
    }
    return 0;
  }
  const bool w4a4 = a.activation == Activation::NVFP4;
  // The kernel launcher computes amax(|x|) into the workspace, or has the kernel reduce it itself
  // (with_activation_amax in gemv_launch.cuh).
  if (w4a4 && a.act_amax_workspace != nullptr) p.act_amax = a.act_amax_workspace;
  LaunchPlan plan = make_plan(a);
  const int ksplit = ksplit_for(a, p, plan);
  const bool fixup = split_fixup_on(a);  // (read once: the workspace's size and the launch agree)
  const int64_t ws_bytes = split_bytes(a, ksplit, fixup);
  const bool short_workspace = a.split_workspace == nullptr || a.split_workspace_bytes < ws_bytes;
  if (ws_bytes > 0 && short_workspace && a.defer_short_workspace) return ws_bytes;  // the caller allocates, calls again
  if (ws_bytes > 0 && !short_workspace) {
    require(reinterpret_cast<uintptr_t>(a.split_workspace) % 4 == 0, "nvfp4 gemv: split_workspace must be 4-byte aligned");
    p.ksplit = ksplit;
    p.split_ws = static_cast<float*>(a.split_workspace);
    if (fixup) p.split_nonce = make_split_nonce(a);
  }
  add_ring_maps(plan, a);
  switch (a.x_dtype) {
    case DType::F32:
      dispatch_dtype<kF32>(p, w4a4, plan, stream);
      return ws_bytes;
    case DType::F16:
      dispatch_dtype<kF16>(p, w4a4, plan, stream);
      return ws_bytes;
    case DType::BF16:
      dispatch_dtype<kBF16>(p, w4a4, plan, stream);
      return ws_bytes;
  }
  throw InvalidType("nvfp4 gemv: unknown x dtype");
}

}  // namespace reset_native::nvfp4_cuda
