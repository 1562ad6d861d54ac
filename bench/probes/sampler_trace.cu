// Latency probe of the ReSET CUDA decode step (cuda/sampler/): where the microseconds of one step go.
// Builds decode_step.cu into this program with -DRESET_NATIVE_SAMPLER_TRACE (cuda/sampler/trace.cuh),
// so thread 0 of every block of row 0 stamps %globaltimer at the phase boundaries of each kernel.
// Prints, for a B = 1 step through the resident step (V = 151936, N(0, 3^2) logits, the bench's
// ReSET config with top-p 0.95, CUDA-graph replay), the median over replays of the earliest and
// latest block at every mark, and the last block's phases in cycles; then graph-replay times of the
// step at B = 1 ... 64 for the bench's configs, resident step and kernels in turn
// (RESET_NATIVE_SAMPLER_RESIDENT=1 / =0), and a few floors (empty graphs, kernels that only do the
// last-block hand-off).
// On the GPU machine, from the repository root:
//   nvcc -std=c++17 -O3 -arch=sm_90 -DRESET_NATIVE_SAMPLER_TRACE -Icuda -Icpp/include -Icpp/src
//     -o /tmp/sampler_trace bench/probes/sampler_trace.cu cpp/src/sampler/state.cpp
//     cpp/src/sampler/device_workspace.cpp && /tmp/sampler_trace
#include <algorithm>
#include <cstdlib>
#include <cstdio>
#include <random>
#include <vector>

#include "sampler/decode_step.cu"
#include "sampler_probe_step.cuh"

using namespace reset_native::sampler;
using namespace sampler_probe;
using cuda_detail::g_trace_clock;
using cuda_detail::g_trace_time;
using cuda_detail::kTraceBlocks;
using cuda_detail::kTraceEvents;
using cuda_detail::kTraceKernels;

namespace {

// Floors: an empty kernel; a 75-block kernel whose blocks only do the last-block hand-off.
__global__ void empty_kernel() {}
__global__ void handoff_kernel(unsigned* counter, unsigned blocks) {
  reset_native::cuda_core::pdl_wait();
  reset_native::cuda_core::pdl_trigger();
  __shared__ int s_last;
  if (cuda_detail::last_block_of_row(counter, blocks, &s_last) && threadIdx.x == 0) counter[1] += 1;
}

double median(std::vector<double> v) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void trace_b1(const Step& st, cudaStream_t s, int replays) {
  static unsigned long long times[kTraceKernels][kTraceEvents][kTraceBlocks];
  static long long clocks[kTraceKernels][kTraceEvents][kTraceBlocks];
  static unsigned long long zero_t[kTraceKernels][kTraceEvents][kTraceBlocks] = {};
  // first[k][e], last[k][e]: earliest / latest block (ns from the first stats block's start)
  std::vector<double> first[kTraceKernels][kTraceEvents], lastv[kTraceKernels][kTraceEvents];
  std::vector<double> cyc[kTraceKernels][kTraceEvents];  // last block: cycles since its previous mark
  std::vector<double> lastblock[kTraceKernels];
  cudaGraph_t g;
  cudaGraphExec_t ge;
  st.run(s);
  CHECK(cudaStreamSynchronize(s));
  CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  st.run(s);
  CHECK(cudaStreamEndCapture(s, &g));
  CHECK(cudaGraphInstantiate(&ge, g, 0));
  for (int r = 0; r < replays + 3; ++r) {
    CHECK(cudaMemcpyToSymbol(g_trace_time, zero_t, sizeof(zero_t)));
    CHECK(cudaMemcpyToSymbol(g_trace_clock, zero_t, sizeof(zero_t)));
    CHECK(cudaGraphLaunch(ge, s));
    CHECK(cudaStreamSynchronize(s));
    CHECK(cudaMemcpyFromSymbol(times, g_trace_time, sizeof(times)));
    CHECK(cudaMemcpyFromSymbol(clocks, g_trace_clock, sizeof(clocks)));
    if (r < 3) continue;
    unsigned long long t0 = ~0ull;  // the first block's start, whichever path ran
    for (int k = 0; k < kTraceKernels; ++k)
      for (int b = 0; b < kTraceBlocks; ++b)
        if (times[k][0][b]) t0 = std::min(t0, times[k][0][b]);
    for (int k = 0; k < kTraceKernels; ++k) {
      int lb = -1;  // the last block: the one with the highest mark index stamped
      int lb_event = -1;
      for (int e = 0; e < kTraceEvents; ++e) {
        unsigned long long lo = ~0ull, hi = 0;
        for (int b = 0; b < kTraceBlocks; ++b) {
          if (!times[k][e][b]) continue;
          lo = std::min(lo, times[k][e][b]);
          hi = std::max(hi, times[k][e][b]);
          if (e > lb_event) {
            lb_event = e;
            lb = b;
          }
        }
        if (hi == 0) continue;
        first[k][e].push_back(static_cast<double>(lo - t0));
        lastv[k][e].push_back(static_cast<double>(hi - t0));
      }
      if (lb < 0) continue;
      lastblock[k].push_back(lb);
      long long prev = 0;
      for (int e = 0; e < kTraceEvents; ++e) {
        if (!clocks[k][e][lb]) continue;
        if (prev) cyc[k][e].push_back(static_cast<double>(clocks[k][e][lb] - prev));
        prev = clocks[k][e][lb];
      }
    }
  }
  CHECK(cudaGraphExecDestroy(ge));
  CHECK(cudaGraphDestroy(g));
  const char* names[] = {"stats", "top-p bins", "sample", "resident"};
  std::printf("trace B=1 (%d replays; ns from the first block start; median of earliest/latest block; "
              "last block: cycles since its previous mark)\n", replays);
  for (int k = 0; k < kTraceKernels; ++k) {
    if (lastblock[k].empty()) continue;
    std::printf("  %s (last block typically %.0f)\n", names[k], median(lastblock[k]));
    for (int e = 0; e < kTraceEvents; ++e) {
      if (first[k][e].empty()) continue;
      std::printf("    mark %2d: first %7.0f  last %7.0f  (n=%zu)  last-block dcycles %7.0f\n", e, median(first[k][e]),
                  median(lastv[k][e]), first[k][e].size(), median(cyc[k][e]));
    }
  }
}

}  // namespace

int main() {
  cudaDeviceProp prop;
  CHECK(cudaGetDeviceProperties(&prop, 0));
  int clock_khz = 0;
  cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, 0);
  std::printf("%s, %d SMs, clock attr %d kHz\n", prop.name, prop.multiProcessorCount, clock_khz);
  cudaStream_t s;
  CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  const std::int64_t max_rows = 64;
  std::vector<float> host(max_rows * kVocab);
  std::mt19937 rng(0);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (float& v : host) v = normal(rng);
  float* logits = device_alloc<float>(host.size());
  CHECK(cudaMemcpy(logits, host.data(), host.size() * 4, cudaMemcpyHostToDevice));

  Config reset{0.1, 0.5505, 1.0, 32, 0.95, 0};
  Config fixed_nop{0.6, 0.0, 0.6, 32, 1.0, 0};
  Config greedy{0.0, 0.0, 0.0, 32, 1.0, 0};

  setenv("RESET_NATIVE_SAMPLER_RESIDENT", "1", 1);  // the trace of the resident step (the kernels': session 5)
  trace_b1(make_step(reset, 1, logits), s, 30);
  unsetenv("RESET_NATIVE_SAMPLER_RESIDENT");

  // The resident step against the kernels, same process (RESET_NATIVE_SAMPLER_RESIDENT is read at
  // every call, so at every capture).
  std::printf("graph replays, us per step (one step per graph / inside a 16-step graph)\n");
  for (std::int64_t rows : {1, 2, 4, 8, 16, 64}) {
    const Step st = make_step(reset, rows, logits), fx = make_step(fixed_nop, rows, logits),
               gr = make_step(greedy, rows, logits);
    const auto f = [&](const Step& x) { return [&x](cudaStream_t ss) { x.run(ss); }; };
    for (const char* resident : {"1", "0"}) {
      setenv("RESET_NATIVE_SAMPLER_RESIDENT", resident, 1);
      std::printf("  B=%2lld %-8s reset top-p %6.2f / %6.2f   fixed T no top-p %6.2f / %6.2f   greedy %6.2f / %6.2f\n",
                  static_cast<long long>(rows), decode_step_cuda_path(reset, rows, kVocab, DType::kFloat32),
                  graph_us(s, f(st)), graph_us(s, f(st), 16), graph_us(s, f(fx)), graph_us(s, f(fx), 16),
                  graph_us(s, f(gr)), graph_us(s, f(gr), 16));
    }
    unsetenv("RESET_NATIVE_SAMPLER_RESIDENT");
  }
  unsigned* counter = device_alloc<unsigned>(4);
  const auto empty = [](cudaStream_t ss) { empty_kernel<<<1, 32, 0, ss>>>(); };
  const auto handoff = [&](cudaStream_t ss) {
    reset_native::cuda_core::launch_pdl(handoff_kernel, dim3(1, 1), dim3(256), 0, ss, counter, 1u);
  };
  const auto handoff75 = [&](cudaStream_t ss) {
    reset_native::cuda_core::launch_pdl(handoff_kernel, dim3(75, 1), dim3(256), 0, ss, counter, 75u);
  };
  const auto three75 = [&](cudaStream_t ss) {
    for (int i = 0; i < 3; ++i) {
      reset_native::cuda_core::launch_pdl(handoff_kernel, dim3(75, 1), dim3(256), 0, ss, counter, 75u);
    }
  };
  std::printf("floors, us per graph replay: empty kernel %.2f; 1-block hand-off %.2f; 75-block hand-off %.2f; "
              "three 75-block hand-off kernels (PDL) %.2f (in a 16x graph: %.2f per kernel trio)\n",
              graph_us(s, empty), graph_us(s, handoff), graph_us(s, handoff75), graph_us(s, three75),
              graph_us(s, three75, 16));
  CHECK(cudaDeviceSynchronize());
  std::printf("done\n");
  return 0;
}
