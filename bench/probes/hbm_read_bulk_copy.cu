// Probe: HBM read rate of a bulk-copy (TMA 1-D) ring into shared memory, consumers touching every byte.
#include <cstdio>
#include <cstdint>
#include <cuda_runtime.h>
__device__ __forceinline__ uint32_t smem_u32(const void* p) { return uint32_t(__cvta_generic_to_shared(p)); }
__device__ __forceinline__ void mbar_init(uint64_t* b, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" :: "r"(smem_u32(b)), "r"(count));
}
__device__ __forceinline__ void mbar_expect_tx(uint64_t* b, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" :: "r"(smem_u32(b)), "r"(bytes));
}
__device__ __forceinline__ void mbar_arrive(uint64_t* b) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" :: "r"(smem_u32(b)));
}
__device__ __forceinline__ void mbar_wait(uint64_t* b, uint32_t parity) {
  asm volatile("{\n .reg .pred p;\n W: mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n @!p bra W;\n}" :: "r"(smem_u32(b)), "r"(parity));
}
__device__ __forceinline__ void bulk_g2s(void* dst, const void* src, uint32_t bytes, uint64_t* bar) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
               :: "r"(smem_u32(dst)), "l"(src), "r"(bytes), "r"(smem_u32(bar)) : "memory");
}
template <int STAGES, int UNIT>
__global__ void __launch_bounds__(256) rd(const uint8_t* w, int units, uint32_t* sink) {
  extern __shared__ __align__(128) uint8_t smem[];
  __shared__ uint64_t full[STAGES], empty[STAGES];
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int my = (units - int(blockIdx.x) + int(gridDim.x) - 1) / int(gridDim.x);
  if (tid == 0) {
    for (int s = 0; s < STAGES; ++s) { mbar_init(&full[s], 1); mbar_init(&empty[s], 8); }
    asm volatile("fence.mbarrier_init.release.cluster;");
  }
  __syncthreads();
  if (tid == 0)
    for (int s = 0; s < STAGES && s < my; ++s) {
      mbar_expect_tx(&full[s], UNIT);
      bulk_g2s(smem + s * UNIT, w + int64_t(blockIdx.x + s * gridDim.x) * UNIT, UNIT, &full[s]);
    }
  uint32_t acc = 0;
  for (int j = 0; j < my; ++j) {
    const int s = j % STAGES;
    const uint32_t ph = (j / STAGES) & 1;
    mbar_wait(&full[s], ph);
    const uint4* p = reinterpret_cast<const uint4*>(smem + s * UNIT + warp * (UNIT / 8));
    for (int i = lane; i < UNIT / 8 / 16; i += 32) { uint4 v = p[i]; acc ^= v.x ^ v.w; }
    __syncwarp();
    if (lane == 0) mbar_arrive(&empty[s]);
    if (tid == 0 && j + STAGES < my) {
      mbar_wait(&empty[s], ph);
      mbar_expect_tx(&full[s], UNIT);
      bulk_g2s(smem + s * UNIT, w + int64_t(blockIdx.x + (j + STAGES) * gridDim.x) * UNIT, UNIT, &full[s]);
    }
  }
  if (acc == 0x12345678u) sink[0] = acc;
}
int main() {
  const size_t bytes = size_t(24576) * 4096 / 2 + size_t(24576) * 256;  // gate_up packed + scales
  const int copies = 8;
  uint8_t* buf; uint32_t* sink;
  cudaMalloc(&buf, bytes * copies + (1 << 20)); cudaMalloc(&sink, 4);
  cudaMemset(buf, 1, bytes * copies);
  int sms; cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
  auto run = [&](auto kern, int unit, int stages, int per_sm, const char* name) {
    const int units = int(bytes / unit);
    cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, unit * stages);
    for (int rep = 0; rep < 3; ++rep) {
      cudaEventRecord(a);
      for (int it = 0; it < 40; ++it) kern<<<sms * per_sm, 256, unit * stages>>>(buf + (it % copies) * bytes, units, sink);
      cudaEventRecord(b); cudaEventSynchronize(b);
      float ms; cudaEventElapsedTime(&ms, a, b);
      if (rep == 2) printf("%-30s %.1f us/call  %.2f TB/s  (%s)\n", name, ms * 1000 / 40, double(units) * unit * 40 / (ms * 1e-3) / 1e12, cudaGetErrorString(cudaGetLastError()));
    }
  };
  run(rd<4, 8704>, 8704, 4, 2, "8.5K x4 stages 2cta");
  run(rd<6, 8704>, 8704, 6, 2, "8.5K x6 stages 2cta");
  run(rd<8, 8704>, 8704, 8, 1, "8.5K x8 stages 1cta");
  run(rd<12, 8704>, 8704, 12, 1, "8.5K x12 stages 1cta");
  run(rd<4, 17408>, 17408, 4, 1, "17K x4 stages 1cta");
  run(rd<3, 17408>, 17408, 3, 2, "17K x3 stages 2cta");
  // Deeper rings (session 5, H200: does more in flight per SM convert the extra bandwidth?)
  run(rd<16, 8704>, 8704, 16, 1, "8.5K x16 stages 1cta");
  run(rd<24, 8704>, 8704, 24, 1, "8.5K x24 stages 1cta");
  run(rd<8, 8704>, 8704, 8, 2, "8.5K x8 stages 2cta");
  run(rd<10, 17408>, 17408, 10, 1, "17K x10 stages 1cta");
  run(rd<6, 17408>, 17408, 6, 2, "17K x6 stages 2cta");
  return 0;
}
