// Times the block-diagonal NVFP4 GEMV (gemv_bd_kernel.cuh, bf16 x, W4A16, M = 1 and 2) on the Qwen3 layer
// shapes of bench_nvfp4_gpu.py, outside the Python package, and prints a checksum of every output: built once
// against this tree's cuda/ and once against a baseline copy (bench/probes/bd_probe.sh), the two runs give a
// same-machine speed comparison and a bit-identity check of the outputs.
// Weights rotate over copies totalling > 3x the L2 so every call streams from HBM; each time is the median
// of 15 replays of a CUDA graph of 40 calls, per call.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

#include "nvfp4/gemv_bd_kernel.cuh"

using namespace reset_native::nvfp4_cuda::detail;

#define CK(x)                                                                      \
  do {                                                                             \
    cudaError_t e_ = (x);                                                          \
    if (e_ != cudaSuccess) {                                                       \
      std::printf("CUDA error %s at %s:%d\n", cudaGetErrorString(e_), __FILE__, __LINE__); \
      return 1;                                                                    \
    }                                                                              \
  } while (0)

static uint32_t rng(uint64_t& s) {
  s = s * 6364136223846793005ull + 1442695040888963407ull;
  return uint32_t(s >> 33);
}

struct Layer {
  const char* name;
  int n, k;
};

int main() {
  const Layer layers[] = {{"8b qkv", 6144, 4096},    {"8b o", 4096, 4096},      {"8b gate_up", 24576, 4096},
                          {"8b down", 4096, 12288},  {"32b qkv", 10240, 5120},  {"32b o", 5120, 8192},
                          {"32b gate_up", 51200, 5120}, {"32b down", 5120, 25600}};
  int dev = 0, sms = 0, optin = 0, l2 = 0;
  CK(cudaGetDevice(&dev));
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  CK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  CK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev));
  cudaStream_t st;
  CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  double sum_m1_8b = 0;
  for (const Layer& L : layers) {
    const size_t wbytes = size_t(L.n) * L.k / 2, sbytes = size_t(L.n) * L.k / 16;
    const int copies = std::max(2, std::min(16, int((3.0 * l2) / double(wbytes + sbytes)) + 1));
    std::vector<uint8_t> hw(wbytes), hs(sbytes);
    std::vector<uint16_t> hx(size_t(2) * L.k);
    uint64_t seed = 12345 + L.n * 7 + L.k;
    for (auto& b : hw) b = uint8_t(rng(seed));
    for (auto& b : hs) b = uint8_t(0x28 + rng(seed) % 0x20);  // E4M3 scales 2^-2 .. 2^2
    for (auto& v : hx) {  // bf16 in about [-4, 4], a few exact zeros
      const uint32_t r = rng(seed);
      v = (r % 61 == 0) ? 0 : uint16_t(((r & 1) << 15) | ((124 + (r >> 1) % 6) << 7) | ((r >> 4) & 0x7F));
    }
    std::vector<uint8_t*> dw(copies), ds(copies);
    for (int c = 0; c < copies; ++c) {
      CK(cudaMalloc(&dw[c], wbytes));
      CK(cudaMalloc(&ds[c], sbytes));
      CK(cudaMemcpy(dw[c], hw.data(), wbytes, cudaMemcpyHostToDevice));
      CK(cudaMemcpy(ds[c], hs.data(), sbytes, cudaMemcpyHostToDevice));
    }
    void *dx, *dout;
    CK(cudaMalloc(&dx, hx.size() * 2));
    CK(cudaMalloc(&dout, size_t(2) * L.n * 2));
    CK(cudaMemcpy(dx, hx.data(), hx.size() * 2, cudaMemcpyHostToDevice));
    for (int m = 1; m <= 2; ++m) {
      auto params = [&](int c) {
        GemvParams p{};
        p.packed = dw[c], p.scales = ds[c], p.x = dx, p.out = dout;
        p.w_gs = 1.0f, p.n = L.n, p.k = L.k, p.m = m, p.x_aligned = 1, p.act_gs = 1.0f;
        return p;
      };
      const LaunchPlan plan{true, false, sms, size_t(optin), RingMaps{}};
      auto call = [&](int c) {
        return try_bd<kBF16, false>(params(c), plan, st);
      };
      if (!call(0)) {
        std::printf("%-12s M=%d: not served by the bd kernel\n", L.name, m);
        continue;
      }
      CK(cudaStreamSynchronize(st));
      std::vector<uint16_t> out(size_t(m) * L.n);
      CK(cudaMemcpy(out.data(), dout, out.size() * 2, cudaMemcpyDeviceToHost));
      uint64_t h = 1469598103934665603ull;
      for (uint16_t v : out) h = (h ^ v) * 1099511628211ull;
      cudaGraph_t g;
      cudaGraphExec_t ge;
      CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
      for (int i = 0; i < 40; ++i) call(i % copies);
      CK(cudaStreamEndCapture(st, &g));
      CK(cudaGraphInstantiate(&ge, g, 0));
      for (int i = 0; i < 3; ++i) CK(cudaGraphLaunch(ge, st));
      cudaEvent_t a, b;
      CK(cudaEventCreate(&a));
      CK(cudaEventCreate(&b));
      std::vector<float> t;
      for (int r = 0; r < 15; ++r) {
        CK(cudaEventRecord(a, st));
        CK(cudaGraphLaunch(ge, st));
        CK(cudaEventRecord(b, st));
        CK(cudaEventSynchronize(b));
        float ms = 0;
        CK(cudaEventElapsedTime(&ms, a, b));
        t.push_back(ms * 1e3f / 40);
      }
      std::sort(t.begin(), t.end());
      const double us = t[t.size() / 2];
      if (m == 1 && L.name[0] == '8') sum_m1_8b += us;
      std::printf("%-12s M=%d %8.2f us  %6.3f TB/s  out %016llx\n", L.name, m, us, (wbytes + sbytes) / us * 1e-6,
                  (unsigned long long)h);
      CK(cudaGraphExecDestroy(ge));
      CK(cudaGraphDestroy(g));
      CK(cudaEventDestroy(a));
      CK(cudaEventDestroy(b));
    }
    for (int c = 0; c < copies; ++c) {
      CK(cudaFree(dw[c]));
      CK(cudaFree(ds[c]));
    }
    CK(cudaFree(dx));
    CK(cudaFree(dout));
  }
  std::printf("Qwen3-8B layer sum M=1: %.2f us\n", sum_m1_8b);
  return 0;
}
