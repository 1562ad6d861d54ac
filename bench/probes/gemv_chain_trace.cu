// Timeline probe of a chain of NVFP4 GEMVs (bf16 x): the block-diagonal kernel at M = 1 (the package's default plain
// form), or, with a token count of 3..16 as the third argument, the 16-bit kernel the package picks for it
// (dispatch_tokens: at 16 tokens two teams of 8 warps per CTA, one CTA per SM; session 35): where the fixed cost per
// call goes when calls follow each other in a CUDA graph with PDL, as in bench/bench_nvfp4_gpu.py. Built with
// -DRESET_NATIVE_GEMV_TRACE (cuda/nvfp4/gemv_trace.cuh): thread 0 of every CTA stamps %globaltimer before its weight
// prefetch (0), after its PDL wait (1), once x is staged (2), after the first kDepth steps (3; the 16-bit kernel: its
// first tile written) and at its end (4). For each layer shape: a graph of `calls` launches over weight copies rotated
// past the L2, replayed; per call, times are relative to the previous call's last CTA end ("prev end"), medians over
// the middle calls of the chain and over replays:
//   period      = this call's last CTA end - prev end (the per-call time the benchmark sees)
//   first/med/last start = CTA stamp 0 (earliest, median, latest CTA; negative = before the previous call ended)
//   wait        = median stamp 1 (the PDL wait returns once the previous grid has finished and flushed)
//   x staged, first steps, median end / last end = stamps 2, 3, 4
//   xload / wlanded (session 15) = per CTA the latest warp's stamp 5 / 6 (its first x unit in registers / after x is
//     staged, its prefetched weight steps in registers: later than xstaged where the steps after x wait for weights),
//     median over CTAs (the block-diagonal kernel's stamps only: nan at 3..16 tokens)
// (The stamps cost a few instructions per CTA; the per-call time without them: bench/bench_nvfp4_gpu.py.)
// The 16-bit kernel's launch reads the package's switches, e.g. RESET_NATIVE_GEMV_TEAM_ORDER=cta for the walker order
// before session 36 (whose A/B builds used a probe-only -DGEMV_TRACE_TEAM_MAJOR, since replaced by that switch).
// -DGEMV_TRACE_PREFETCH=P (P < 4) loads only P weight steps before the PDL wait and the rest right after it.
// Timing-only variants (session 15; wrong outputs, the probe checks none): -DGEMV_TRACE_NO_DECODE (the raw weight words
// as the MMA A fragments: no FP4 decode, ~90 of the ~150 instructions per step gone) and -DGEMV_TRACE_NO_MMA (one
// float add on an XOR of each MMA's operands instead of the MMA): what the steps after x are waiting on. The same two
// for the 16-bit kernel (3..16 tokens; session 36, not yet run): -DGEMV_TRACE16_NO_DECODE (masked words as the pairs,
// the scale multiplies kept) and -DGEMV_TRACE16_NO_MMA; whether the 16-token loop, which streams at 64-72% of the
// bandwidth (session 34), is held back by its decode or by its MMAs (the package build: the same cubin without them).
// Session 37 added -DGEMV_TRACE16_NO_LDS (register values instead of the B-fragment loads of x) and
// -DGEMV_TRACE16_NO_SYNC (no team barrier before a tile's reduction); all four together leave the read-only loop.
// Session 37 measured them (bench/RESULTS.md): no one of them is the limit. -DRESET_NATIVE_GEMV_TEAM_SLOTS_NT2=N builds
// the two-team kernel at 9..16 tokens with N weight slots per thread (the package's 2; 3 before session 37),
// -DRESET_NATIVE_GEMV_TEAM_SLOTS_NT1=N the same at 3..8 tokens (the package's 3). (Session 38 built each two-team
// tile's write one step late here, -DRESET_NATIVE_GEMV_LATE_TILE_WRITE=1: slower in the package, removed;
// bench/probes/trials/gemv16_late_tile_write.patch.)
// (Session 14 also timed x staged by one bulk copy (TMA) instead of per-thread loads: slower, removed; RESULTS.md;
// the variant is bench/probes/trials/gemv_bd_tma_x.patch, built with -DGEMV_TRACE_TMA_X.)
// On the GPU machine, from the repository root:
//   nvcc -std=c++17 -O3 -arch=sm_90 -DRESET_NATIVE_GEMV_TRACE -Icuda -Icpp/include -Icpp/src
//     -o /tmp/gemv_chain_trace bench/probes/gemv_chain_trace.cu && /tmp/gemv_chain_trace [calls] [replays] [tokens]
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <random>
#include <vector>

#include "nvfp4/gemv_dispatch.cuh"
#include "probe_check.cuh"

namespace nd = reset_native::nvfp4_cuda::detail;

#ifdef GEMV_TRACE_PREFETCH
constexpr int kPrefetch = GEMV_TRACE_PREFETCH;
#else
constexpr int kPrefetch = 4;  // the M = 1 kernel's kDepth: every slot
#endif


namespace {

using Stamps = unsigned long long[nd::kGemvTraceCalls][nd::kGemvTraceEvents][nd::kGemvTraceCtas];

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Shape {
  const char* name;
  int n, k;
};

void run_shape(const Shape& sh, int calls, int replays, int sms, int l2, int m) {
  const size_t wbytes = size_t(sh.n) * sh.k / 2, sbytes = size_t(sh.n) * sh.k / 16;
  const size_t stride = wbytes + sbytes;  // one copy: packed weights, then its scales
  const int copies = calls;               // every call its own copy: calls x stride must pass the L2
  if (size_t(copies) * stride < size_t(3) * l2) std::printf("# %s: %d copies do not pass 3x the L2\n", sh.name, copies);
  uint8_t* pool = nullptr;
  CHECK(cudaMalloc(&pool, stride * copies));
  {  // random FP4 bytes; scales 0x30..0x3f (E4M3 around 1, no NaN)
    std::vector<uint8_t> h(stride);
    std::mt19937 rng(1);
    for (size_t i = 0; i < wbytes; ++i) h[i] = uint8_t(rng());
    for (size_t i = 0; i < sbytes; ++i) h[wbytes + i] = uint8_t(0x30 + rng() % 16);
    for (int c = 0; c < copies; ++c) CHECK(cudaMemcpy(pool + c * stride, h.data(), stride, cudaMemcpyHostToDevice));
  }
  std::vector<__nv_bfloat16> hx(size_t(m) * sh.k);
  for (size_t i = 0; i < hx.size(); ++i) hx[i] = __float2bfloat16(float(int(i % 7) - 3) * 0.25f);
  __nv_bfloat16 *x = nullptr, *out = nullptr;
  CHECK(cudaMalloc(&x, hx.size() * 2));
  CHECK(cudaMalloc(&out, size_t(m) * sh.n * 2));
  CHECK(cudaMemcpy(x, hx.data(), hx.size() * 2, cudaMemcpyHostToDevice));

  const uint8_t* base = pool;
  const unsigned long long st = stride;
  CHECK(cudaMemcpyToSymbol(nd::g_gemv_trace_base, &base, sizeof(base)));
  CHECK(cudaMemcpyToSymbol(nd::g_gemv_trace_stride, &st, sizeof(st)));

  constexpr int kForm = nd::kSmallCompact | nd::kSmallBatchX;  // the package's default plain A16 form
  const size_t smem = size_t(nd::BdSmem(sh.k, 1, 1).total);  // (the block-diagonal kernel's, m = 1)
  int optin = 0;
  CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0));
  cudaStream_t s;
  CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  auto launch_chain = [&]() {
    for (int c = 0; c < calls; ++c) {
      nd::GemvParams p{};
      p.packed = pool + c * stride;
      p.scales = pool + c * stride + wbytes;
      p.x = x;
      p.out = out;
      p.act_gs = 1.0f;
      p.w_gs = 1.0f;
      p.n = sh.n;
      p.k = sh.k;
      p.m = m;
      p.x_aligned = 1;
      p.ksplit = 1;
      if (m == 1) {
        nd::launch_bd<nd::kBF16, false, 1, true, 2, false, nd::kProNone, false, kForm>(p, nd::RingMaps{}, sms, smem, s);
      } else {  // the 16-bit kernel of the package's rule for m tokens (fast path, no ring, no split)
        const nd::LaunchPlan plan{true, false, sms, size_t(optin), nd::RingMaps{}};
        if (m > 8) {
          nd::dispatch_tokens<nd::kBF16, false, 2>(p, plan, s);
        } else {
          nd::dispatch_tokens<nd::kBF16, false, 1>(p, plan, s);
        }
      }
    }
  };
  launch_chain();  // sets the kernel attributes outside the capture
  CHECK(cudaStreamSynchronize(s));
  cudaGraph_t g;
  cudaGraphExec_t ge;
  CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  launch_chain();
  CHECK(cudaStreamEndCapture(s, &g));
  CHECK(cudaGraphInstantiate(&ge, g, 0));

  int ctas = 0;  // the CTAs of a call: those that stamped their end (the grid depends on the kernel chosen)
  static Stamps h;
  enum { kPeriod, kFirst, kMedStart, kLastStart, kWait, kX, kSteps, kMedEnd, kLastEnd, kXLoad, kWLanded, kCols };
  std::vector<double> col[kCols];
  void* stamps = nullptr;
  CHECK(cudaGetSymbolAddress(&stamps, nd::g_gemv_trace));
  for (int r = 0; r < replays + 3; ++r) {
    CHECK(cudaMemsetAsync(stamps, 0, sizeof(Stamps), s));  // the per-warp stamps (5..7) keep the latest warp's
    CHECK(cudaGraphLaunch(ge, s));
    CHECK(cudaStreamSynchronize(s));
    if (r < 3) continue;  // warm-up replays
    CHECK(cudaMemcpyFromSymbol(h, nd::g_gemv_trace, sizeof(Stamps)));
    if (ctas == 0)
      while (ctas < nd::kGemvTraceCtas && h[calls / 2][4][ctas] != 0) ++ctas;
    auto ev = [&](int c, int e) {
      std::vector<double> v(ctas);
      for (int b = 0; b < ctas; ++b) v[b] = double(h[c][e][b]);
      return v;
    };
    for (int c = calls / 4; c < calls - 1; ++c) {  // the middle of the chain: a previous call, a next one
      const std::vector<double> pe = ev(c - 1, 4);
      const double prev_end = *std::max_element(pe.begin(), pe.end());
      auto rel = [&](std::vector<double> v) {
        for (double& t : v) t = (t - prev_end) / 1000.0;
        return v;
      };
      const std::vector<double> s0 = rel(ev(c, 0)), e4 = rel(ev(c, 4));
      col[kPeriod].push_back(*std::max_element(e4.begin(), e4.end()));
      col[kFirst].push_back(*std::min_element(s0.begin(), s0.end()));
      col[kMedStart].push_back(median(s0));
      col[kLastStart].push_back(*std::max_element(s0.begin(), s0.end()));
      col[kWait].push_back(median(rel(ev(c, 1))));
      col[kX].push_back(median(rel(ev(c, 2))));
      col[kSteps].push_back(median(rel(ev(c, 3))));
      col[kMedEnd].push_back(median(e4));
      col[kLastEnd].push_back(*std::max_element(e4.begin(), e4.end()));
      // stamps 5 and 6: the block-diagonal kernel's only (the 16-bit kernel leaves them 0: no value, not -now)
      const double nan = std::numeric_limits<double>::quiet_NaN();
      col[kXLoad].push_back(m == 1 ? median(rel(ev(c, 5))) : nan);
      col[kWLanded].push_back(m == 1 ? median(rel(ev(c, 6))) : nan);
    }
  }
  const double mb = double(stride) / 1e6;
  std::printf("%-10s %6d %6d %5d %6.1f %7.2f %7.2f %7.2f %7.2f %7.2f %7.2f %7.2f %7.2f %7.2f %7.2f\n", sh.name, sh.n,
              sh.k, ctas, mb, median(col[kPeriod]), median(col[kFirst]), median(col[kMedStart]),
              median(col[kLastStart]), median(col[kWait]), median(col[kXLoad]), median(col[kX]),
              median(col[kWLanded]), median(col[kSteps]), median(col[kMedEnd]));
  CHECK(cudaGraphExecDestroy(ge));
  CHECK(cudaGraphDestroy(g));
  CHECK(cudaStreamDestroy(s));
  CHECK(cudaFree(pool));
  CHECK(cudaFree(x));
  CHECK(cudaFree(out));
}

}  // namespace

int main(int argc, char** argv) {
  const int calls = argc > 1 ? std::atoi(argv[1]) : 24, replays = argc > 2 ? std::atoi(argv[2]) : 10;
  const int m = argc > 3 ? std::atoi(argv[3]) : 1;
  if (calls < 4 || calls > nd::kGemvTraceCalls) {
    std::printf("calls: 4..%d\n", nd::kGemvTraceCalls);
    return 2;
  }
  if (m != 1 && (m < 3 || m > 16)) {
    std::printf("tokens: 1 (the block-diagonal kernel) or 3..16 (the 16-bit kernel)\n");
    return 2;
  }
  int sms = 0, l2 = 0;
  CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, 0));
  std::printf("# chain of %d %s GEMVs (M = %d, bf16 x, PDL, CUDA graph), %d SMs, %d weight steps loaded"
              " before the PDL wait (GEMV_TRACE_PREFETCH; block-diagonal kernel only); us relative to the previous"
              " call's last CTA end; medians over the chain's middle calls x %d replays (%%globaltimer ticks: 0.256 us"
              " here)\n",
              calls, m == 1 ? "block-diagonal" : "16-bit", m, sms, kPrefetch, replays);
  std::printf("%-10s %6s %6s %5s %6s %7s %7s %7s %7s %7s %7s %7s %7s %7s %7s\n", "layer", "n", "k", "ctas", "MB",
              "period", "first", "medst", "lastst", "wait", "xload", "xstaged", "wlanded", "steps", "medend");
  const Shape shapes[] = {{"8b_o", 4096, 4096}, {"8b_qkv", 6144, 4096}, {"n2048", 2048, 4096},
                          {"8b_gate_up", 24576, 4096}, {"32b_qkv", 10240, 5120}};
  for (const Shape& sh : shapes) run_shape(sh, calls, replays, sms, l2, m);
  return 0;
}
