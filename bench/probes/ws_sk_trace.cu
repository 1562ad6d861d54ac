// Timeline probe of the warp-specialised medium-M kernel (cuda/nvfp4/gemm_ws_kernel.cuh) and its x permutation, the
// grid against stream-K, and how programmatic dependent launch (PDL) chains two calls. Built with
// -DRESET_NATIVE_WS_TRACE (cuda/nvfp4/gemm_ws_trace.cuh): thread 0 of every CTA stamps %globaltimer (GEMM: entry,
// first weights and first x landed, first segment's stages done and published or stored, last segment's stages done
// and the lower pieces added, end; permutation: entry, after its PDL wait, end). Calls alternate two x buffers, so the
// stamps of the last call and of the one before it are both kept. The stamps cost registers: ptxas spills a little more
// in some stream-K instances of the trace build (ws128c3: 32 / 88 bytes stored / loaded against 12 / 44), so the
// probe times a slightly different binary than the package's.
// For one shape (n x k, m tokens, bf16 x, random bytes: timing only), RESET_NATIVE_GEMM_MID_SK = 0 and 1, the probe
// launches the package's launcher (launch_gemm_mid, the rule's kernel shape) `calls` times, with a device
// synchronisation between calls (isolated, PDL on) or back to back on one stream (chain) with
// RESET_NATIVE_GEMM_MID_PDL = 1 (both launched with PDL), `gemm` (the permutation launched without PDL, the GEMM
// with it) and 0 (no PDL). One line per case, in us from the previous call's last CTA end, min / median / max over
// CTAs:
//   ctas, pctas = the GEMM's and the permutation's CTAs (at most 2048 are stamped: a warning says when more ran)
//   prvEnd      = the previous call's CTA ends (median, min: how its tail spreads)
//   perm in     = the permutation's CTA entries; early = how many entered before the previous call ended
//   waited, end = the permutation's PDL wait returned (median), its last CTA end
//   GEMM in     = the GEMM's CTA entries; firstX = its first x landed; end = its CTA ends (the max: the call's end)
//   us/stg      = the first segment's time per K stage from its first x (the grid: over the split's stages, so a
//                 shorter last split reads low), out0 = its publish or store (a stream-K CTA with one segment that
//                 owns its block: also the wait for and addition of the lower pieces), add = the last segment's wait
//                 for and addition of the lower CTAs' pieces (stream-K CTAs with 2+ segments)
// On the GPU machine, from the repository root (one command):
//   nvcc -std=c++17 -O3 -arch=sm_90a -DRESET_NATIVE_WGMMA -DRESET_NATIVE_WS_TRACE -Icuda -Icpp/include
//     -Ibench/probes -o /tmp/ws_sk_trace bench/probes/ws_sk_trace.cu && /tmp/ws_sk_trace 10240 5120 128 [calls]
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "nvfp4/gemm_mid.cu"
#include "probe_check.cuh"

namespace rn = reset_native::nvfp4_cuda;
namespace nd = reset_native::nvfp4_cuda::detail;

namespace {

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
double maximum(const std::vector<double>& v) { return v.empty() ? 0.0 : *std::max_element(v.begin(), v.end()); }

// The kernel's stream-K walk on the host (ws_sk_start / WsWalk): stages of CTA c's first and last segments.
struct Segs {
  int nseg, first, last;
};
Segs sk_segs(int work, int ctas, int total, int c) {
  auto start = [&](int q) { return nd::ws_sk_range_start(work, ctas, q); };
  const int w0 = start(c), w1 = start(c + 1), lastb = (w1 - 1) / total, firstb = w0 / total;
  auto stages = [&](int b) { return std::min(w1, (b + 1) * total) - std::max(w0, b * total); };
  return {lastb - firstb + 1, stages(lastb), stages(firstb)};
}

// Stamps of one call (trace slot `slot`) on the host: GEMM and permutation events [event][cta].
struct CallTrace {
  std::vector<std::vector<double>> g, perm;  // ns
};
CallTrace read_slot(int slot, int ctas, int pctas) {
  static unsigned long long g[2][nd::kWsTraceEvents][nd::kWsTraceCtas], pt[2][nd::kWsPermEvents][nd::kWsTraceCtas];
  CHECK(cudaMemcpyFromSymbol(g, nd::g_ws_trace, sizeof(g)));
  CHECK(cudaMemcpyFromSymbol(pt, nd::g_ws_perm_trace, sizeof(pt)));
  CallTrace t;
  t.g.assign(nd::kWsTraceEvents, std::vector<double>(ctas));
  t.perm.assign(nd::kWsPermEvents, std::vector<double>(pctas));
  for (int e = 0; e < nd::kWsTraceEvents; ++e)
    for (int c = 0; c < ctas; ++c) t.g[e][c] = double(g[slot][e][c]);
  for (int e = 0; e < nd::kWsPermEvents; ++e)
    for (int c = 0; c < pctas; ++c) t.perm[e][c] = double(pt[slot][e][c]);
  return t;
}

double minimum(const std::vector<double>& v) { return v.empty() ? 0.0 : *std::min_element(v.begin(), v.end()); }

void run(int n, int k, int m, int calls, bool chain, const char* sk, const char* pdl) {
  setenv("RESET_NATIVE_GEMM_MID_SK", sk, 1);
  setenv("RESET_NATIVE_GEMM_MID_PDL", pdl, 1);
  const nd::MidPlan plan = nd::mid_plan(n, k, m);
  const int total = k / nd::kMidK;
  const int all_ctas = plan.sk_ctas > 0 ? plan.sk_ctas : plan.row_blocks * plan.tok_blocks * plan.splits;
  const int ctas = std::min(all_ctas, nd::kWsTraceCtas);
  if (all_ctas > ctas) std::printf("warning: %d GEMM CTAs, only the first %d stamped\n", all_ctas, ctas);
  const int64_t units = int64_t(plan.tok_blocks) * total * 4 * plan.shape.wg;
  const int pctas = int(std::min<int64_t>((units + 255) / 256, 2048));
  std::mt19937 gen(1);
  std::vector<uint8_t> wbytes(size_t(n) * k / 2), sbytes(size_t(n) * k / 16);
  for (auto& b : wbytes) b = uint8_t(gen());
  for (auto& b : sbytes) b = uint8_t(0x30 + gen() % 16);  // E4M3 scales around 1
  std::vector<__nv_bfloat16> xh(size_t(m) * k);
  for (auto& v : xh) v = __float2bfloat16(float(int(gen() % 2001) - 1000) / 1000.0f);
  uint8_t *packed, *scales, *ws;
  void *x[2], *out;
  rn::GemmMidArgs a;
  a.n = n, a.k = k, a.m = m, a.x_dtype = reset_native::nvfp4_cuda::DType::BF16;
  const int64_t wsb = rn::gemm_mid_workspace_bytes(a);
  CHECK(cudaMalloc(&packed, wbytes.size()));
  CHECK(cudaMalloc(&scales, sbytes.size()));
  for (auto& xi : x) {
    CHECK(cudaMalloc(&xi, xh.size() * 2));
    CHECK(cudaMemcpy(xi, xh.data(), xh.size() * 2, cudaMemcpyHostToDevice));
  }
  CHECK(cudaMalloc(&out, size_t(m) * n * 2));
  CHECK(cudaMalloc(&ws, size_t(wsb > 0 ? wsb : 16)));
  CHECK(cudaMemcpy(packed, wbytes.data(), wbytes.size(), cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(scales, sbytes.data(), sbytes.size(), cudaMemcpyHostToDevice));
  const unsigned long long x1 = reinterpret_cast<unsigned long long>(x[1]);
  CHECK(cudaMemcpyToSymbol(nd::g_ws_trace_x1, &x1, sizeof(x1)));
  a.packed = packed, a.block_scales = scales, a.out = out, a.workspace = ws, a.workspace_bytes = wsb;
  cudaStream_t stream;
  CHECK(cudaStreamCreate(&stream));
  for (int i = 0; i < calls; ++i) {  // calls alternate x[0], x[1]: the last two calls' stamps stay in the two slots
    a.x = x[i & 1];
    rn::launch_gemm_mid(a, stream);
    if (!chain) CHECK(cudaStreamSynchronize(stream));
  }
  CHECK(cudaStreamSynchronize(stream));
  const CallTrace cur = read_slot((calls - 1) & 1, ctas, pctas), prev = read_slot((calls - 2) & 1, ctas, pctas);
  // Origin: the previous call's last CTA end (its completion, less the memory flush).
  const double t0 = maximum(prev.g[nd::kWsEnd]);
  auto rel = [&](const std::vector<double>& v) {
    std::vector<double> r;
    for (double t : v) r.push_back((t - t0) * 1e-3);
    return r;
  };
  const auto pe = rel(cur.perm[nd::kWsPermEntry]), pw = rel(cur.perm[nd::kWsPermWaited]),
             pend = rel(cur.perm[nd::kWsPermEnd]);
  const auto ge = rel(cur.g[nd::kWsEntry]), gx = rel(cur.g[nd::kWsFirstX]), gend = rel(cur.g[nd::kWsEnd]);
  const auto prev_end = rel(prev.g[nd::kWsEnd]);
  // Per-stage time of the first segment and the stream-K costs, as before.
  std::vector<double> st0, out0, add;
  for (int c = 0; c < ctas; ++c) {
    const Segs s = plan.sk_ctas > 0 ? sk_segs(plan.row_blocks * plan.tok_blocks * total, all_ctas, total, c)
                                    : Segs{1, plan.stages_per_split, 0};
    st0.push_back((cur.g[nd::kWsSeg0Done][c] - cur.g[nd::kWsFirstX][c]) * 1e-3 / std::max(s.first, 1));
    out0.push_back((cur.g[nd::kWsSeg0Out][c] - cur.g[nd::kWsSeg0Done][c]) * 1e-3);
    if (s.nseg > 1) add.push_back((cur.g[nd::kWsLastAdded][c] - cur.g[nd::kWsLastDone][c]) * 1e-3);
  }
  // Permutation CTAs that entered before the previous call ended (beside its CTAs).
  int early = 0;
  for (double t : pe) early += t < 0.0;
  std::printf("%-2s %-5s %-8s %4d %5d | %6.2f %6.2f | %6.2f %6.2f %6.2f %3d | %6.2f %6.2f | %6.2f %6.2f %6.2f | "
              "%6.2f %6.2f | %6.2f %6.2f | %5.3f %5.2f %5.2f\n",
              sk, pdl, chain ? "chain" : "isolated", ctas, pctas, median(prev_end), minimum(prev_end),
              minimum(pe), median(pe), maximum(pe), early, median(pw), maximum(pend), minimum(ge), median(ge),
              maximum(ge), median(gx), maximum(gx), median(gend), maximum(gend), median(st0), median(out0),
              median(add));
  CHECK(cudaStreamDestroy(stream));
  CHECK(cudaFree(packed));
  CHECK(cudaFree(scales));
  for (auto& xi : x) CHECK(cudaFree(xi));
  CHECK(cudaFree(out));
  CHECK(cudaFree(ws));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::printf("usage: ws_sk_trace n k m [calls]\n");
    return 2;
  }
  const int n = std::atoi(argv[1]), k = std::atoi(argv[2]), m = std::atoi(argv[3]);
  const int calls = std::max(argc > 4 ? std::atoi(argv[4]) : 20, 2);
  std::printf("# %d x %d, %d tokens, rule shape %s; us from the previous call's last CTA end\n", n, k, m,
              nd::mid_shape_name(nd::mid_plan(n, k, m).shape).c_str());
  std::printf("SK pdl   mode     ctas pctas | prvEnd   min | perm in: min    med    max early | waited  end  | "
              "GEMM in: min  med    max | firstX  max  | end med  max  | us/stg out0  add\n");
  try {
    for (const char* sk : {"0", "1"}) {
      run(n, k, m, calls, false, sk, "1");
      for (const char* pdl : {"1", "gemm", "0"}) run(n, k, m, calls, true, sk, pdl);
    }
  } catch (const std::exception& e) {
    std::printf("error: %s\n", e.what());
    return 1;
  }
  return 0;
}
