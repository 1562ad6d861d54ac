// Bit-identity and speed probe of the NVFP4 GEMV across builds: runs dispatch_mode<PROBE_XDT, PROBE_W4A4> (the
// whole small-M GEMV: block-diagonal kernel for M <= 2, 16-bit kernel above, split along K where the package's
// choose_ksplit splits) on fixed pseudo-random inputs over shapes that take the fast and the general path, the
// two-CTA, one-CTA, two-team, chunked and split kernels, odd row-tile counts, M = 1..16, and prints one FNV-1a
// hash of the output per case; then times it on the Qwen3-8B and Qwen3-32B layer shapes at the M listed in
// PROBE_MS (default 1,2,4,8,16; empty: no timing) (weights rotated over copies > 3x the L2, median of 11 replays of
// a CUDA graph of 20 calls, per call). bench/probes/gemv_probe.sh builds it against two source trees, diffs the
// hashes and compares the times.
// Build: nvcc -std=c++17 -O3 -arch=sm_90 -Icpp/include -I<tree>/cuda --expt-relaxed-constexpr
//        -DPROBE_XDT=2 -DPROBE_W4A4=0 bench/probes/gemv_bits_probe.cu   (XDT: 0 f32, 1 f16, 2 bf16)
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "nvfp4/gemv_dispatch.cuh"

using namespace reset_native::nvfp4_cuda::detail;

static uint32_t rng(uint64_t& s) {
  s = s * 6364136223846793005ull + 1442695040888963407ull;
  return uint32_t(s >> 33);
}

// An x element of the probe's dtype from 32 random bits: magnitudes 2^-6 .. 2^5, some exact zeros.
static void put_x(void* x, size_t i, uint32_t r) {
  const int e = int((r >> 8) % 12) - 6;
  const float v = (r % 53 == 0) ? 0.0f : ((r & 1) ? -1.0f : 1.0f) * (1.0f + float((r >> 12) & 0xFF) / 256.0f) *
                                             float(1 << (e + 6)) / 64.0f;
  if (PROBE_XDT == kF32) static_cast<float*>(x)[i] = v;
  if (PROBE_XDT == kF16) static_cast<__half*>(x)[i] = __float2half_rn(v);
  if (PROBE_XDT == kBF16) static_cast<__nv_bfloat16*>(x)[i] = __float2bfloat16_rn(v);
}

// Split K as the package chooses it (choose_ksplit, RESET_NATIVE_GEMV_KSPLIT), with a workspace of ksplit * m * n.
static void set_split(GemvParams& p, const LaunchPlan& plan, float* ws) {
  p.ksplit = choose_ksplit<PROBE_XDT, bool(PROBE_W4A4)>(p, plan);
  p.split_ws = p.ksplit > 1 ? ws : nullptr;
}

int main() {
  // Row tiles (n / 16, rounded up): odd counts 13, 3, 63, 625, 1, 3, 530 (walkers with 1, 2 or 3 tiles).
  const int shapes[][2] = {{256, 1024},  {200, 2048},   {37, 1040},  {4096, 4096}, {40, 8192},  {6136, 2048},
                           {24, 12288}, {1000, 5120}, {1000, 4112}, {10000, 1024}, {8472, 4096}};
  const int ms[] = {1, 2, 3, 4, 5, 8, 9, 12, 16};
  float* ws = nullptr;  // split-K workspace, large enough for every case (ksplit <= nchunks <= 12, m <= 16)
  cudaMalloc(&ws, size_t(13) * 16 * 10000 * sizeof(float));
  int dev = 0, sms = 0, optin = 0;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
  cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
  const size_t esize = PROBE_XDT == kF32 ? 4 : 2;
  for (const auto& sh : shapes) {
    const int n = sh[0], k = sh[1];
    uint64_t seed = 777 + uint64_t(n) * 131 + k;
    std::vector<uint8_t> hw(size_t(n) * k / 2), hs(size_t(n) * k / 16);
    for (auto& b : hw) b = uint8_t(rng(seed));
    for (size_t i = 0; i < hs.size(); ++i) {  // mostly 2^-3 .. 2^3, plus 0, 0x7F and sign-bit bytes
      const uint32_t r = rng(seed);
      hs[i] = r % 97 == 0 ? uint8_t(r >> 8) : uint8_t(0x20 + (r >> 8) % 0x30);
    }
    std::vector<uint8_t> hx(size_t(16) * k * esize);
    for (size_t i = 0; i < size_t(16) * k; ++i) put_x(hx.data(), i, rng(seed));
    uint8_t *dw, *ds;
    void *dx, *dout;
    cudaMalloc(&dw, hw.size());
    cudaMalloc(&ds, hs.size());
    cudaMalloc(&dx, hx.size());
    cudaMalloc(&dout, size_t(16) * n * esize);
    cudaMemcpy(dw, hw.data(), hw.size(), cudaMemcpyHostToDevice);
    cudaMemcpy(ds, hs.data(), hs.size(), cudaMemcpyHostToDevice);
    cudaMemcpy(dx, hx.data(), hx.size(), cudaMemcpyHostToDevice);
    for (int m : ms) {
      GemvParams p{};
      p.packed = dw, p.scales = ds, p.x = dx, p.out = dout;
      p.w_gs = 0.75f, p.n = n, p.k = k, p.m = m, p.x_aligned = 1, p.act_gs = 0.05f;
      const LaunchPlan plan{k % kChunk == 0, false, sms, size_t(optin), RingMaps{}};
      set_split(p, plan, ws);
      cudaMemset(dout, 0, size_t(16) * n * esize);
      dispatch_mode<PROBE_XDT, bool(PROBE_W4A4)>(p, plan, 0);
      std::vector<uint8_t> out(size_t(m) * n * esize);
      const cudaError_t e = cudaMemcpy(out.data(), dout, out.size(), cudaMemcpyDeviceToHost);
      uint64_t h = 1469598103934665603ull;
      for (uint8_t v : out) h = (h ^ v) * 1099511628211ull;
      std::printf("xdt %d w4a4 %d n %5d k %5d m %2d s %2d %s %016llx\n", PROBE_XDT, PROBE_W4A4, n, k, m, p.ksplit,
                  e == cudaSuccess ? "ok" : cudaGetErrorString(e), (unsigned long long)h);
    }
    cudaFree(dw), cudaFree(ds), cudaFree(dx), cudaFree(dout);
  }
  int l2 = 0;
  cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev);
  cudaStream_t st;
  cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking);
  const struct {
    const char* name;
    int n, k;
  } layers[] = {{"8b_qkv", 6144, 4096},   {"8b_o", 4096, 4096},   {"8b_gate_up", 24576, 4096},
                {"8b_down", 4096, 12288}, {"32b_qkv", 10240, 5120}, {"32b_o", 5120, 8192},
                {"32b_gate_up", 51200, 5120}, {"32b_down", 5120, 25600}};
  std::vector<int> time_ms;
  {
    const char* env = std::getenv("PROBE_MS");
    std::string list = env ? env : "1,2,4,8,16";
    for (size_t pos = 0; pos < list.size();) {
      const size_t next = list.find(',', pos);
      time_ms.push_back(std::atoi(list.substr(pos, next - pos).c_str()));
      pos = next == std::string::npos ? list.size() : next + 1;
    }
  }
  cudaFree(ws);
  cudaMalloc(&ws, size_t(32) * 16 * 51200 * sizeof(float));  // split workspace of the timed layers
  for (const auto& L : layers) {
    if (time_ms.empty()) break;
    const size_t wb = size_t(L.n) * L.k / 2, sb = size_t(L.n) * L.k / 16;
    const int copies = std::max(2, std::min(16, int(3.0 * l2 / double(wb + sb)) + 1));
    std::vector<uint8_t> hw(wb), hs(sb), hx(size_t(16) * L.k * esize);
    uint64_t seed = 99 + L.n;
    for (auto& b : hw) b = uint8_t(rng(seed));
    for (auto& b : hs) b = uint8_t(0x28 + rng(seed) % 0x20);
    for (size_t i = 0; i < size_t(16) * L.k; ++i) put_x(hx.data(), i, rng(seed));
    std::vector<uint8_t*> dw(copies), ds(copies);
    void *dx, *dout;
    for (int c = 0; c < copies; ++c) {
      cudaMalloc(&dw[c], wb), cudaMalloc(&ds[c], sb);
      cudaMemcpy(dw[c], hw.data(), wb, cudaMemcpyHostToDevice);
      cudaMemcpy(ds[c], hs.data(), sb, cudaMemcpyHostToDevice);
    }
    cudaMalloc(&dx, hx.size()), cudaMalloc(&dout, size_t(16) * L.n * esize);
    cudaMemcpy(dx, hx.data(), hx.size(), cudaMemcpyHostToDevice);
    for (int m : time_ms) {
      const LaunchPlan plan{true, false, sms, size_t(optin), RingMaps{}};
      auto call = [&](int c) {
        GemvParams p{};
        p.packed = dw[c], p.scales = ds[c], p.x = dx, p.out = dout;
        p.w_gs = 0.75f, p.n = L.n, p.k = L.k, p.m = m, p.x_aligned = 1, p.act_gs = 0.05f;
        set_split(p, plan, ws);
        dispatch_mode<PROBE_XDT, bool(PROBE_W4A4)>(p, plan, st);
      };
      call(0);
      cudaGraph_t g;
      cudaGraphExec_t ge;
      cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal);
      for (int i = 0; i < 20; ++i) call(i % copies);
      cudaStreamEndCapture(st, &g);
      cudaGraphInstantiate(&ge, g, 0);
      for (int i = 0; i < 2; ++i) cudaGraphLaunch(ge, st);
      cudaEvent_t a, b;
      cudaEventCreate(&a), cudaEventCreate(&b);
      std::vector<float> t;
      for (int r = 0; r < 11; ++r) {
        cudaEventRecord(a, st);
        cudaGraphLaunch(ge, st);
        cudaEventRecord(b, st);
        cudaEventSynchronize(b);
        float ms = 0;
        cudaEventElapsedTime(&ms, a, b);
        t.push_back(ms * 1e3f / 20);
      }
      std::sort(t.begin(), t.end());
      const cudaError_t e = cudaGetLastError();
      std::printf("time xdt %d w4a4 %d %-10s m %2d %8.2f us %s\n", PROBE_XDT, PROBE_W4A4, L.name, m, t[t.size() / 2],
                  e == cudaSuccess ? "ok" : cudaGetErrorString(e));
      cudaGraphExecDestroy(ge), cudaGraphDestroy(g), cudaEventDestroy(a), cudaEventDestroy(b);
    }
    for (int c = 0; c < copies; ++c) cudaFree(dw[c]), cudaFree(ds[c]);
    cudaFree(dx), cudaFree(dout);
  }
  cudaFree(ws);
  return 0;
}
