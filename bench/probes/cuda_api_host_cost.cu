// Host cost of the CUDA runtime calls an NVFP4 GEMV launch makes (session 24): cudaGetDevice, cudaDeviceGetAttribute,
// cudaFuncSetAttribute (max dynamic shared memory), cudaOccupancyMaxActiveBlocksPerMultiprocessor and
// cudaLaunchKernelEx with the programmatic-stream-serialization attribute (PDL), each timed alone over many calls on
// an empty kernel with 100 KiB of dynamic shared memory (the launch queue drained between rounds); for comparison the
// same launch without the attribute, a triple-chevron launch, and cudaStreamIsCapturing (the query a launcher
// would need to add PDL only inside graph capture).
//   nvcc -O2 -std=c++17 -arch=sm_90 -o /tmp/cuda_api_host_cost bench/probes/cuda_api_host_cost.cu && /tmp/cuda_api_host_cost
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

__global__ void empty_kernel(int* out) {
  extern __shared__ int smem[];
  if (out != nullptr && threadIdx.x == 0) out[blockIdx.x] = smem[0];
}

template <class F>
double us_per_call(F&& f, int calls) {
  std::vector<double> rounds;
  for (int r = 0; r < 7; ++r) {
    cudaDeviceSynchronize();
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; ++i) f();
    const auto t1 = std::chrono::steady_clock::now();
    rounds.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count() / calls);
  }
  cudaDeviceSynchronize();
  std::sort(rounds.begin(), rounds.end());
  return rounds[rounds.size() / 2];
}

int main() {
  const int smem = 100 * 1024, threads = 256, calls = 2000;
  cudaFree(nullptr);
  cudaFuncSetAttribute(empty_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  cudaStream_t stream;
  cudaStreamCreate(&stream);
  int sink = 0;
  auto get_device = [&] { int d = 0; cudaGetDevice(&d); sink += d; };
  auto attribute = [&] { int v = 0; cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, 0); sink += v; };
  auto set_attr = [&] { cudaFuncSetAttribute(empty_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem); };
  auto occupancy = [&] {
    int per_sm = 0;
    cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, empty_kernel, threads, smem);
    sink += per_sm;
  };
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  auto launch_ex = [&](unsigned num_attrs) {  // 0: no attribute, 1: PDL
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(264);
    cfg.blockDim = dim3(threads);
    cfg.dynamicSmemBytes = smem;
    cfg.stream = stream;
    cfg.attrs = attr;
    cfg.numAttrs = num_attrs;
    cudaLaunchKernelEx(&cfg, empty_kernel, static_cast<int*>(nullptr));
  };
  auto launch = [&] { launch_ex(1); };
  auto launch_plain = [&] { launch_ex(0); };
  auto chevrons = [&] { empty_kernel<<<264, threads, smem, stream>>>(nullptr); };
  auto capturing = [&] {
    cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
    cudaStreamIsCapturing(stream, &st);
    sink += int(st);
  };
  std::printf("# us per call (median of 7 rounds of %d)\n", calls);
  std::printf("cudaGetDevice                      %6.3f\n", us_per_call(get_device, calls));
  std::printf("cudaDeviceGetAttribute             %6.3f\n", us_per_call(attribute, calls));
  std::printf("cudaFuncSetAttribute               %6.3f\n", us_per_call(set_attr, calls));
  std::printf("cudaOccupancyMaxActiveBlocks...    %6.3f\n", us_per_call(occupancy, calls));
  std::printf("cudaLaunchKernelEx (PDL)           %6.3f\n", us_per_call(launch, calls));
  std::printf("cudaLaunchKernelEx (no attribute)  %6.3f\n", us_per_call(launch_plain, calls));
  std::printf("<<<grid, block, smem, stream>>>    %6.3f\n", us_per_call(chevrons, calls));
  std::printf("cudaStreamIsCapturing              %6.3f\n", us_per_call(capturing, calls));
  std::printf("cudaLaunchKernelEx (PDL), again    %6.3f\n", us_per_call(launch, calls));
  std::printf("errors: %s (sink %d)\n", cudaGetErrorString(cudaGetLastError()), sink % 7);
  return 0;
}
