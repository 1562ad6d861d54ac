// Repro of the weight ring's intermittent wrong outputs (session 10) and check of the fix: launches the
// block-diagonal GEMV (bf16 x, one token) through the ring many times, back to back with PDL as the package
// does, and compares every output with the register kernel's. The consumers' release of a ring stage is
// replaced by the variant under test (hooks in gemv_ring.cuh, compiled in only here):
//   0 none: __syncwarp + arrive (the code before the fix; ptxas issues the arrive while the LDS are in flight)
//   1 fence.proxy.async.shared::cta by every lane (the package's fix)
//   2 a data dependency: every lane branches on its loaded words before the arrive (no fence)
//   3 fence.acq_rel.cta (__threadfence_block) by every lane
// "scribble": before each ring call a kernel fills every SM's shared memory with bytes that change per call (a
// read of shared memory the kernel never wrote would then differ between calls: the other suspect).
// With --check each consumed fragment is also compared, after the release, with the weights in global memory;
// a wrong one is re-read from the stage after a pause: "late" (the copy had not landed), "next" (the stage
// already holds the next copy's bytes) or "other".
//
//   nvcc -std=c++17 -O3 -arch=sm_90 -Icpp/include -Icuda --expt-relaxed-constexpr \
//        -o /tmp/ring_race_probe bench/probes/ring_race_probe.cu && /tmp/ring_race_probe [reps] [n] [k]
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

namespace ring_probe {
struct Config {
  int variant;  // release variant above
  int check;    // compare every fragment with global memory (after the release)
  const uint8_t* packed;
  const uint8_t* scales;
  int k, stages;
  unsigned long long* counters;  // [0] bad fragments, [1] late, [2] next, [3] other, [4] records, [5] dep hits
  unsigned* records;             // 16 x 8 words
};
constexpr int kRecords = 16;
}  // namespace ring_probe

__constant__ ring_probe::Config g_probe;

__device__ __forceinline__ void ring_probe_before_release(const uint32_t (&w)[2][4], const uint32_t (&sc)[2]) {
  if (g_probe.variant == 1) {
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
  } else if (g_probe.variant == 2) {
    uint32_t d = sc[0] ^ (sc[1] << 16);
#pragma unroll
    for (int i = 0; i < 4; ++i) d ^= w[0][i] ^ w[1][i];
    if (d == 0x9E3779B9u) atomicAdd(&g_probe.counters[5], 1ull);  // a side effect the arrive may not pass
  } else if (g_probe.variant == 3) {
    __threadfence_block();
  }
}

__device__ __forceinline__ bool fragment_ok(const uint8_t* wp, const uint8_t* sp, const uint32_t (&w)[4], uint32_t s) {
  const uint4 ew = *reinterpret_cast<const uint4*>(wp);
  const uint32_t es = *reinterpret_cast<const uint16_t*>(sp);
  return ew.x == w[0] && ew.y == w[1] && ew.z == w[2] && ew.w == w[3] && es == s;
}

__device__ void ring_probe_after_release(int step, int kwarp, const uint8_t* st, const uint32_t (&w)[2][4],
                                         const uint32_t (&sc)[2]) {
  if (!g_probe.check) return;
  const int k = g_probe.k, nchunks = k / 1024, g = (threadIdx.x % 32) / 4;
  auto rows_of = [&](int stp, int hr) { return int(blockIdx.x) * 16 + (stp / nchunks) * int(gridDim.x) * 16 + g + 8 * hr; };
  for (int hr = 0; hr < 2; ++hr) {
    const int row = rows_of(step, hr), c = step % nchunks;
    const uint8_t* wp = g_probe.packed + size_t(row) * (k / 2) + c * 512 + kwarp / 2;
    const uint8_t* sp = g_probe.scales + size_t(row) * (k / 16) + c * 64 + kwarp / 16;
    if (fragment_ok(wp, sp, w[hr], sc[hr])) continue;
    atomicAdd(&g_probe.counters[0], 1ull);
    const long long t0 = clock64();
    while (clock64() - t0 < 20000) {
    }
    const int lr = g + 8 * hr;
    const volatile uint32_t* rp = reinterpret_cast<const volatile uint32_t*>(st + lr * 512 + kwarp / 2);
    const uint32_t r4[4] = {rp[0], rp[1], rp[2], rp[3]};
    const uint32_t rs = *reinterpret_cast<const volatile uint16_t*>(st + 8192 + lr * 64 + kwarp / 16);
    const int nstep = step + g_probe.stages, nrow = rows_of(nstep, hr), nc = nstep % nchunks;
    const bool late = fragment_ok(wp, sp, r4, rs);
    const bool next = !late && fragment_ok(g_probe.packed + size_t(nrow) * (k / 2) + nc * 512 + kwarp / 2,
                                           g_probe.scales + size_t(nrow) * (k / 16) + nc * 64 + kwarp / 16, r4, rs);
    atomicAdd(&g_probe.counters[late ? 1 : next ? 2 : 3], 1ull);
    const unsigned idx = unsigned(atomicAdd(&g_probe.counters[4], 1ull));
    if (idx < ring_probe::kRecords) {
      unsigned* r = g_probe.records + idx * 8;
      r[0] = blockIdx.x, r[1] = threadIdx.x, r[2] = step, r[3] = hr;
      r[4] = w[hr][0], r[5] = *reinterpret_cast<const uint32_t*>(wp), r[6] = r4[0], r[7] = sc[hr] | (rs << 16);
    }
  }
}

#define RESET_NATIVE_RING_PROBE 1
#include "nvfp4/gemv_bd_kernel.cuh"
#include "nvfp4/ring_maps.hpp"

using namespace reset_native::nvfp4_cuda::detail;

namespace {

void ck(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

// Per output buffer: does it differ from ref, and by how many elements (counters[0] calls, [1] max elements).
__global__ void count_diffs(const uint16_t* outs, const uint16_t* ref, int n, unsigned long long* counters) {
  const uint16_t* out = outs + size_t(blockIdx.x) * n;
  __shared__ unsigned bad;
  if (threadIdx.x == 0) bad = 0;
  __syncthreads();
  unsigned mine = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) mine += out[i] != ref[i];
  atomicAdd(&bad, mine);
  __syncthreads();
  if (threadIdx.x == 0 && bad > 0) {
    atomicAdd(&counters[0], 1ull);
    atomicMax(&counters[1], (unsigned long long)bad);
  }
}

// Fills its dynamic shared memory with bytes that change per call, so that the next kernel's CTAs on the SM find
// leftovers that differ from call to call: a kernel that reads shared memory it never wrote then differs too.
__global__ void scribble_smem(uint32_t seed, int words) {
  extern __shared__ uint32_t buf[];
  for (int i = threadIdx.x; i < words; i += blockDim.x) buf[i] = (seed + i) * 2654435761u ^ blockIdx.x;
  __syncthreads();
  if (buf[(seed + threadIdx.x) % words] == 0xFFFFFFFFu && seed == 0) buf[0] = 1;  // keep the stores
}

using Kernel = void (*)(const GemvParams, const RingMaps);

void launch(Kernel kernel, int grid, int threads, size_t smem, bool pdl, const GemvParams& p, const RingMaps& maps) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(grid);
  cfg.blockDim = dim3(threads);
  cfg.dynamicSmemBytes = smem;
  cfg.stream = 0;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = pdl ? 1 : 0;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  ck(cudaLaunchKernelEx(&cfg, kernel, p, maps), "launch");
}

}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::atoi(argv[1]) : 3000;
  const int n = argc > 2 ? std::atoi(argv[2]) : 8448;
  const int k = argc > 3 ? std::atoi(argv[3]) : 4096;
  constexpr int kOuts = 32, kStages = ring_stages<2>();
  int sms = 0;
  ck(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0), "sms");

  std::mt19937 rng(7);
  std::vector<uint8_t> hw(size_t(n) * k / 2), hs(size_t(n) * k / 16);
  std::vector<uint16_t> hx(k);
  for (auto& b : hw) b = uint8_t(rng());
  for (auto& b : hs) b = uint8_t(0x28 + rng() % 0x20);  // finite positive E4M3 scales
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (auto& v : hx) {
    const float f = nd(rng);
    uint32_t u;
    std::memcpy(&u, &f, 4);
    v = uint16_t(u >> 16);  // bf16 by truncation: any bf16 will do
  }
  uint8_t *dw, *ds;
  uint16_t *dx, *ref, *outs;
  unsigned long long* counters;
  unsigned* records;
  ck(cudaMalloc(&dw, hw.size()), "malloc");
  ck(cudaMalloc(&ds, hs.size()), "malloc");
  ck(cudaMalloc(&dx, hx.size() * 2), "malloc");
  ck(cudaMalloc(&ref, size_t(n) * 2), "malloc");
  ck(cudaMalloc(&outs, size_t(kOuts) * n * 2), "malloc");
  ck(cudaMalloc(&counters, 8 * sizeof(unsigned long long)), "malloc");
  ck(cudaMalloc(&records, ring_probe::kRecords * 8 * sizeof(unsigned)), "malloc");
  ck(cudaMemcpy(dw, hw.data(), hw.size(), cudaMemcpyHostToDevice), "copy");
  ck(cudaMemcpy(ds, hs.data(), hs.size(), cudaMemcpyHostToDevice), "copy");
  ck(cudaMemcpy(dx, hx.data(), hx.size() * 2, cudaMemcpyHostToDevice), "copy");

  GemvParams p{};
  p.packed = dw, p.scales = ds, p.x = dx, p.out = ref;
  p.act_gs = 1.0f, p.w_gs = 1.0f, p.n = n, p.k = k, p.m = 1, p.x_aligned = 1, p.ksplit = 1;
  RingMaps maps{};
  encode_rows(&maps.w, dw, n, k / 2, kChunk / 2, true);
  encode_rows(&maps.s, ds, n, k / 16, kChunk / 16, false);

  const size_t base = size_t(BdSmem(k, 1, 1, 0).total), ring_smem = ring_smem_bytes<kStages>(base);
  Kernel reg = gemv_bd_kernel<kBF16, false, 1, true, 2, false>;
  Kernel ring = gemv_bd_kernel<kBF16, false, 1, true, 2, true>;
  ck(cudaFuncSetAttribute(reg, cudaFuncAttributeMaxDynamicSharedMemorySize, int(base)), "attr");
  ck(cudaFuncSetAttribute(ring, cudaFuncAttributeMaxDynamicSharedMemorySize, int(ring_smem)), "attr");
  int per_reg = 0, per_ring = 0;
  ck(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_reg, reg, kThreads, base), "occ");
  ck(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_ring, ring, kThreads + 32, ring_smem), "occ");
  const int tiles = (n + 15) / 16;
  const int grid_reg = std::min(tiles, sms * per_reg), grid_ring = std::min(tiles, sms * per_ring);

  ring_probe::Config cfg{0, 0, dw, ds, k, kStages, counters, records};
  ck(cudaMemcpyToSymbol(g_probe, &cfg, sizeof(cfg)), "symbol");
  launch(reg, grid_reg, kThreads, base, false, p, maps);
  ck(cudaDeviceSynchronize(), "reference");

  std::printf("# ring race probe: n %d k %d, one token, %d ring calls per row (grid %d, %d stages), register grid %d\n",
              n, k, reps, grid_ring, kStages, grid_reg);
  std::printf("%7s %5s %5s %8s %10s %9s %10s %6s %5s %5s %5s %9s\n", "variant", "pdl", "check", "scribble", "calls bad",
              "max elems", "bad frags", "late", "next", "other", "deps", "us/call");
  cudaEvent_t e0, e1;
  ck(cudaEventCreate(&e0), "event");
  ck(cudaEventCreate(&e1), "event");
  struct Row { int variant, pdl, check, scribble; };
  const Row rows[] = {{0, 1, 0, 0}, {1, 1, 0, 0}, {2, 1, 0, 0}, {3, 1, 0, 0}, {0, 0, 0, 0}, {0, 1, 1, 0}, {1, 1, 1, 0},
                      {0, 1, 0, 1}, {1, 1, 0, 1}, {1, 1, 1, 1}};
  constexpr int kScribbleBytes = 200 * 1024;
  ck(cudaFuncSetAttribute(scribble_smem, cudaFuncAttributeMaxDynamicSharedMemorySize, kScribbleBytes), "attr");
  for (const Row& r : rows) {
    cfg.variant = r.variant, cfg.check = r.check;
    ck(cudaMemcpyToSymbol(g_probe, &cfg, sizeof(cfg)), "symbol");
    ck(cudaMemset(counters, 0, 8 * sizeof(unsigned long long)), "memset");
    std::vector<unsigned long long> out_counters(2, 0);
    unsigned long long* diff_counters = counters + 6;  // [6] calls, [7] max elements
    for (int rep = 0; rep < reps; ++rep) {
      GemvParams q = p;
      q.out = outs + size_t(rep % kOuts) * n;
      if (r.scribble) scribble_smem<<<sms, 1024, kScribbleBytes>>>(uint32_t(rep) * 7919u + 1u, kScribbleBytes / 4);
      launch(ring, grid_ring, kThreads + 32, ring_smem, r.pdl != 0, q, maps);
      if (rep % kOuts == kOuts - 1 || rep == reps - 1) count_diffs<<<rep % kOuts + 1, 256>>>(outs, ref, n, diff_counters);
    }
    ck(cudaDeviceSynchronize(), "run");
    // time: back-to-back ring calls only
    ck(cudaEventRecord(e0), "event");
    for (int rep = 0; rep < 500; ++rep) {
      GemvParams q = p;
      q.out = outs + size_t(rep % kOuts) * n;
      launch(ring, grid_ring, kThreads + 32, ring_smem, r.pdl != 0, q, maps);
    }
    ck(cudaEventRecord(e1), "event");
    ck(cudaEventSynchronize(e1), "event");
    float ms = 0.0f;
    ck(cudaEventElapsedTime(&ms, e0, e1), "elapsed");
    unsigned long long c[8];
    ck(cudaMemcpy(c, counters, sizeof(c), cudaMemcpyDeviceToHost), "counters");
    std::printf("%7d %5d %5d %8d %10llu %9llu %10llu %6llu %5llu %5llu %5llu %9.2f\n", r.variant, r.pdl, r.check,
                r.scribble, c[6], c[7], c[0], c[1], c[2], c[3], c[5], ms * 1000.0f / 500);
    if (r.check && c[4] > 0) {
      std::vector<unsigned> rec(ring_probe::kRecords * 8);
      ck(cudaMemcpy(rec.data(), records, rec.size() * 4, cudaMemcpyDeviceToHost), "records");
      for (unsigned i = 0; i < std::min<unsigned long long>(c[4], 4); ++i) {
        const unsigned* x = rec.data() + i * 8;
        std::printf("   block %u thread %u step %u half %u: got %08x want %08x reread %08x scales got|reread %08x\n",
                    x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7]);
      }
    }
  }
  // register kernel repeatability (the reference path), also after the scribbler
  for (int scribble = 0; scribble < 2; ++scribble) {
    ck(cudaMemset(counters, 0, 8 * sizeof(unsigned long long)), "memset");
    for (int rep = 0; rep < reps; ++rep) {
      GemvParams q = p;
      q.out = outs + size_t(rep % kOuts) * n;
      if (scribble) scribble_smem<<<sms, 1024, kScribbleBytes>>>(uint32_t(rep) * 7919u + 1u, kScribbleBytes / 4);
      launch(reg, grid_reg, kThreads, base, true, q, maps);
      if (rep % kOuts == kOuts - 1 || rep == reps - 1) count_diffs<<<rep % kOuts + 1, 256>>>(outs, ref, n, counters + 6);
    }
    ck(cudaDeviceSynchronize(), "run");
    unsigned long long c[8];
    ck(cudaMemcpy(c, counters, sizeof(c), cudaMemcpyDeviceToHost), "counters");
    std::printf("%7s %5d %5d %8d %10llu %9llu   (register kernel, same reps)\n", "reg", 1, 0, scribble, c[6], c[7]);
  }
  return 0;
}
