// Shared by the sampler probes (sampler_trace.cu, sampler_batch.cu): a B-row decode step on the CUDA path of
// cuda/sampler/ (included through decode_step.cu before this header) over V = 151936 fp32 logits, with every
// buffer the step needs in device memory, and a CUDA-error check that exits.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "probe_check.cuh"

namespace sampler_probe {

using namespace reset_native::sampler;

constexpr std::int64_t kVocab = 151936;

template <class T>
T* device_alloc(std::size_t n) {
  T* p = nullptr;
  CHECK(cudaMalloc(&p, n * sizeof(T) + 16));
  CHECK(cudaMemset(p, 0, n * sizeof(T) + 16));
  return p;
}

struct Step {
  Config config;
  std::int64_t rows = 0;
  StateView state;
  DeviceScratch scratch;
  std::uint8_t* classes = nullptr;
  std::int64_t* last = nullptr;
  const float* logits = nullptr;
  std::int64_t* tokens = nullptr;
  float* temperatures = nullptr;
  float* entropies = nullptr;
  void run(cudaStream_t s, const float* z = nullptr) const {
    decode_step_cuda(config, classes, kVocab, state, Batch{rows, last, nullptr}, z ? z : logits, DType::kFloat32,
                     kVocab, tokens, temperatures, entropies, scratch, s);
  }
};

Step make_step(const Config& config, std::int64_t rows, const float* logits) {
  Step st;
  st.config = config;
  st.rows = rows;
  st.state.slots = rows;
  st.state.window = config.window;
  st.state.window_entropies = device_alloc<float>(rows * config.window);
  st.state.sums = device_alloc<double>(rows * kSlotSums);
  st.state.ints = device_alloc<std::int64_t>(rows * kSlotInts);
  std::vector<std::int64_t> ints(rows * kSlotInts, 0);
  for (std::int64_t s = 0; s < rows; ++s) {
    std::int64_t* r = ints.data() + s * kSlotInts;
    r[kLastToken] = r[kPrevToken] = -1;
    r[kSeed] = static_cast<std::int64_t>(default_slot_seed(0, s));
  }
  CHECK(cudaMemcpy(st.state.ints, ints.data(), ints.size() * 8, cudaMemcpyHostToDevice));
  st.scratch.error_flag = device_alloc<std::int32_t>(1);
  st.scratch.slot_busy = device_alloc<std::int32_t>(rows);
  st.scratch.workspace_bytes = device_workspace_bytes(rows, kVocab);
  st.scratch.workspace = device_alloc<char>(st.scratch.workspace_bytes);
  st.classes = device_alloc<std::uint8_t>(kVocab);
  std::vector<std::int64_t> minus(rows, -1);
  st.last = device_alloc<std::int64_t>(rows);
  CHECK(cudaMemcpy(st.last, minus.data(), rows * 8, cudaMemcpyHostToDevice));
  st.logits = logits;
  st.tokens = device_alloc<std::int64_t>(rows);
  st.temperatures = device_alloc<float>(rows);
  st.entropies = device_alloc<float>(rows);
  return st;
}

void free_step(Step& st) {
  for (void* p : {static_cast<void*>(st.state.window_entropies), static_cast<void*>(st.state.sums),
                  static_cast<void*>(st.state.ints), static_cast<void*>(st.scratch.error_flag),
                  static_cast<void*>(st.scratch.slot_busy), st.scratch.workspace, static_cast<void*>(st.classes),
                  static_cast<void*>(st.last), static_cast<void*>(st.tokens), static_cast<void*>(st.temperatures),
                  static_cast<void*>(st.entropies)}) {
    CHECK(cudaFree(p));
  }
}

// Microseconds per call of fn in a CUDA graph that holds `steps` calls (warm-up outside the graph, 20 replays
// before timing): the best of `series` series of `repeats` replays, divided by steps.
template <class Fn>
double graph_us(cudaStream_t s, Fn fn, int steps = 1, int repeats = 300, int series = 1) {
  cudaGraph_t g;
  cudaGraphExec_t ge;
  fn(s);
  CHECK(cudaStreamSynchronize(s));
  CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  for (int i = 0; i < steps; ++i) fn(s);
  CHECK(cudaStreamEndCapture(s, &g));
  CHECK(cudaGraphInstantiate(&ge, g, 0));
  for (int i = 0; i < 20; ++i) CHECK(cudaGraphLaunch(ge, s));
  cudaEvent_t a, b;
  CHECK(cudaEventCreate(&a));
  CHECK(cudaEventCreate(&b));
  double best = 1e30;
  for (int k = 0; k < series; ++k) {
    CHECK(cudaEventRecord(a, s));
    for (int i = 0; i < repeats; ++i) CHECK(cudaGraphLaunch(ge, s));
    CHECK(cudaEventRecord(b, s));
    CHECK(cudaEventSynchronize(b));
    float ms = 0;
    CHECK(cudaEventElapsedTime(&ms, a, b));
    const double us = ms * 1e3 / repeats / steps;
    best = us < best ? us : best;
  }
  CHECK(cudaEventDestroy(a));
  CHECK(cudaEventDestroy(b));
  CHECK(cudaGraphExecDestroy(ge));
  CHECK(cudaGraphDestroy(g));
  return best;
}

}  // namespace sampler_probe
