// Session 25: how fast can NVFP4 -> bf16 dequantization stream (the prefill route's expansion, bf16 written)?
// Variants of the package's dequantize loop (the same decode functions, nvfp4_device.cuh), timed on Qwen3 layer shapes
// with the packed weights rotated past the L2, against a device-to-device copy of the bf16 layer (same mix of reads and
// writes) and checked to give the same bytes:
//   codes per thread 8 (one 32-bit word, 16-byte stores side by side), 16 (8-byte load, two 16-byte stores) or 32
//   (16-byte load, four 16-byte stores), each with the grid capped at 4096 CTAs (a grid-stride loop, the package's
//   launch before session 25) or one thread per unit (no loop).
//   nvcc -O3 -std=c++17 -arch=sm_90 -I cuda -I cpp/include -o /tmp/dequant_variants bench/probes/dequant_variants.cu
//   /tmp/dequant_variants
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

#include "nvfp4/nvfp4_device.cuh"

namespace nd = reset_native::nvfp4_cuda::detail;

// Eight codes -> eight bf16 (global scale 1: e2m1 * e4m3 is exact in bf16) as four 32-bit words.
__device__ __forceinline__ uint4 eight_values(uint32_t codes, float s) {
  uint32_t w[4];
#pragma unroll
  for (int p = 0; p < 4; ++p) {
    uint32_t two[2];
#pragma unroll
    for (int q = 0; q < 2; ++q) {
      const uint32_t code = (codes >> (8 * p + 4 * q)) & 0xFu;
      const float mag = __fmul_rn(nd::e2m1_magnitude_value(code & 7u), s);
      two[q] = __bfloat16_as_ushort(__float2bfloat16_rn(code & 8u ? -mag : mag));
    }
    w[p] = two[0] | two[1] << 16;
  }
  return make_uint4(w[0], w[1], w[2], w[3]);
}

// H half blocks (8 codes each) per thread and unit.
template <int H, bool kLoop>
__global__ void dequant(const uint8_t* __restrict__ packed, const uint8_t* __restrict__ scales, int64_t units,
                        uint4* __restrict__ out) {
  const int64_t stride = kLoop ? int64_t(gridDim.x) * blockDim.x : units;
  for (int64_t u = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; u < units; u += stride) {
    uint32_t codes[H];
    float s[H];
    if (H == 1) {
      codes[0] = reinterpret_cast<const uint32_t*>(packed)[u];
      s[0] = nd::e4m3_decode(scales[u / 2]);
    } else if (H == 2) {
      const uint2 c = reinterpret_cast<const uint2*>(packed)[u];
      codes[0] = c.x;
      codes[H - 1] = c.y;
      s[0] = s[H - 1] = nd::e4m3_decode(scales[u]);
    } else {
      const uint4 c = reinterpret_cast<const uint4*>(packed)[u];
      const uint32_t sb = reinterpret_cast<const uint16_t*>(scales)[u];  // the unit's two blocks
      const uint32_t cw[4] = {c.x, c.y, c.z, c.w};
#pragma unroll
      for (int i = 0; i < H; ++i) {
        codes[i] = cw[i % 4];
        s[i] = nd::e4m3_decode((sb >> (8 * (i / 2))) & 0xFFu);
      }
    }
#pragma unroll
    for (int i = 0; i < H; ++i) out[u * H + i] = eight_values(codes[i], s[i]);
  }
}

struct Variant {
  const char* name;
  void (*launch)(const uint8_t*, const uint8_t*, int64_t, uint4*);
};

template <int H, bool kLoop>
void launch(const uint8_t* p, const uint8_t* s, int64_t halves, uint4* o) {
  const int64_t units = halves / H;
  int64_t blocks = (units + 255) / 256;
  if (kLoop && blocks > 4096) blocks = 4096;
  dequant<H, kLoop><<<unsigned(blocks), 256>>>(p, s, units, o);
}

int main() {
  const Variant variants[] = {{"8 codes, capped grid", launch<1, true>}, {"8 codes, full grid", launch<1, false>},
                              {"16 codes, capped grid", launch<2, true>}, {"16 codes, full grid", launch<2, false>},
                              {"32 codes, capped grid", launch<4, true>}, {"32 codes, full grid", launch<4, false>}};
  const struct { const char* name; int64_t n, k; } shapes[] = {
      {"8b o", 4096, 4096}, {"8b gate_up", 24576, 4096}, {"32b down", 5120, 25600}, {"32b gate_up", 51200, 5120}};
  cudaDeviceProp prop;
  cudaGetDeviceProperties(&prop, 0);
  printf("# %s, dequantize variants (bf16 out), TB/s = (packed + scales + bf16) bytes / median time of 15\n",
         prop.name);
  printf("| shape | variant | us | TB/s |\n| --- | --- | --- | --- |\n");
  for (const auto& sh : shapes) {
    const int64_t elems = sh.n * sh.k, halves = elems / 8;
    const int copies = int(std::max<int64_t>(2, (3LL * prop.l2CacheSize) / (elems * 9 / 16) + 1));
    std::vector<uint8_t> hp(elems / 2), hs(elems / 16);
    uint32_t rng = 12345u;
    for (auto& b : hp) b = uint8_t((rng = rng * 1664525u + 1013904223u) >> 24);
    for (auto& b : hs) b = uint8_t(((rng = rng * 1664525u + 1013904223u) >> 24) % 0x7Eu + 1u);  // finite scales
    std::vector<uint8_t*> p(copies), s(copies);
    for (int c = 0; c < copies; ++c) {
      cudaMalloc(&p[c], hp.size());
      cudaMalloc(&s[c], hs.size());
      cudaMemcpy(p[c], hp.data(), hp.size(), cudaMemcpyHostToDevice);
      cudaMemcpy(s[c], hs.data(), hs.size(), cudaMemcpyHostToDevice);
    }
    uint4 *out[2], *src;
    for (auto& o : out) cudaMalloc(&o, elems * 2);
    cudaMalloc(&src, elems * 2);
    std::vector<uint8_t> first(elems * 2), now(elems * 2);
    cudaEvent_t a, b;
    cudaEventCreate(&a);
    cudaEventCreate(&b);
    auto median_us = [&](auto&& run) {
      for (int w = 0; w < 3; ++w) run(w % copies);  // session 25 ran run(w): out of range at 2 copies
      std::vector<float> t;
      for (int r = 0; r < 15; ++r) {
        cudaEventRecord(a);
        for (int c = 0; c < copies; ++c) run(c);
        cudaEventRecord(b);
        cudaEventSynchronize(b);
        float ms;
        cudaEventElapsedTime(&ms, a, b);
        t.push_back(ms * 1e3f / copies);
      }
      std::sort(t.begin(), t.end());
      return t[t.size() / 2];
    };
    const double bytes = elems * (0.5 + 1.0 / 16 + 2);
    for (size_t v = 0; v < sizeof(variants) / sizeof(variants[0]); ++v) {
      const float us = median_us([&](int c) { variants[v].launch(p[c], s[c], halves, out[c % 2]); });
      variants[v].launch(p[0], s[0], halves, out[0]);
      cudaMemcpy(v == 0 ? first.data() : now.data(), out[0], elems * 2, cudaMemcpyDeviceToHost);
      const bool same = v == 0 || std::memcmp(first.data(), now.data(), first.size()) == 0;
      printf("| %s | %s | %.1f | %.2f%s |\n", sh.name, variants[v].name, us, bytes / us * 1e-6,
             same ? "" : " (DIFFERENT BYTES)");
    }
    const float copy_us =
        median_us([&](int c) { cudaMemcpyAsync(out[c % 2], src, elems * 2, cudaMemcpyDeviceToDevice); });
    printf("| %s | bf16 copy (reference, 4 B per value) | %.1f | %.2f |\n", sh.name, copy_us,
           elems * 4.0 / copy_us * 1e-6);
    for (int c = 0; c < copies; ++c) {
      cudaFree(p[c]);
      cudaFree(s[c]);
    }
    for (auto& o : out) cudaFree(o);
    cudaFree(src);
  }
  const cudaError_t e = cudaDeviceSynchronize();
  if (e != cudaSuccess) {
    printf("CUDA error: %s\n", cudaGetErrorString(e));
    return 1;
  }
  return 0;
}
