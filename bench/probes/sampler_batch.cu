// Batch probe of the ReSET CUDA decode step's kernels path (cuda/sampler/): how the step's time
// grows from B = 1 to 64 and what the grouped passes (several chunks per block: environment
// RESET_NATIVE_SAMPLER_STATS_CHUNKS / _SAMPLE_CHUNKS / _BIN_CHUNKS, read at every call, so at every
// graph capture) change. V = 151936 fp32 N(0, 3^2) logits, CUDA-graph replays.
//   sampler_batch           graph-replay times of this tree's kernels at B = 1, 8, 16, 64 for the bench's
//                           configs (SWEEPS=1: with main's grouping ("mg") and the defaults ("def") at
//                           B = 1 ... 64, and sweeps of the chunks per block at B = 8 ... 64); every timed
//                           variant checked bit for bit against main's grouping over three steps; and, when
//                           the baseline ran first, every case compared with main's kernels: tokens,
//                           temperatures and errors bit for bit, entropies by their largest relative
//                           difference (the row combine's rounding may move their last bits).
//   sampler_batch baseline  (built against the baseline's cuda/ tree: bench/probes/base_tree.sh <ref> <dir>,
//                           then -I<dir>/cuda) the baseline's times at B = 1, 8, 64 and its outputs, written
//                           for the comparison above.
//   sampler_batch trace     (built with -DRESET_NATIVE_SAMPLER_TRACE) row 0's phase timeline at B = 1, 8, 64.
//   sampler_batch trace-bins  (the same build) B = 1, 64 with each bins block timing its add again after its flush.
//   sampler_batch ncu       two steps per case (B = 1, 8, 64 main's grouping; B = 64 defaults) for ncu
//                           (bench/probes/ncu_sampler.py turns its CSV into a table).
// bench/probes/sampler_batch.sh builds and runs all of them in one GPU call.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "sampler/decode_step.cu"
#include "sampler_probe_step.cuh"

using namespace reset_native::sampler;
using namespace sampler_probe;

namespace {

constexpr int kSteps = 3;  // steps compared bit for bit

// A grouping: chunks per block of the stats, bins and sample passes; 0 = the default (unset).
struct Grouping {
  int stats = 0, bins = 0, sample = 0;
};
// main's grouping: a block per chunk in stats and sample, main's bins default (1 / 2 / 4 / 8 chunks per
// block from B = 1 / 8 / 16 / 32).
Grouping main_grouping(std::int64_t rows) { return Grouping{1, rows < 8 ? 1 : (rows < 16 ? 2 : (rows < 32 ? 4 : 8)), 1}; }

void set_env(const char* name, int v) {
  if (v > 0) {
    setenv(name, std::to_string(v).c_str(), 1);
  } else {
    unsetenv(name);
  }
}

void apply(const Grouping& g) {
  set_env("RESET_NATIVE_SAMPLER_STATS_CHUNKS", g.stats);
  set_env("RESET_NATIVE_SAMPLER_BIN_CHUNKS", g.bins);
  set_env("RESET_NATIVE_SAMPLER_SAMPLE_CHUNKS", g.sample);
}

struct Outputs {
  std::vector<std::int64_t> tokens;
  std::vector<float> temperatures, entropies;
  int error = 0;
};

// kSteps steps of a fresh state on logits[0..kSteps), every output copied back.
Outputs outputs_of(const Config& config, std::int64_t rows, const std::vector<const float*>& logits, cudaStream_t s) {
  Step st = make_step(config, rows, logits[0]);
  Outputs o;
  for (int k = 0; k < kSteps; ++k) {
    st.run(s, logits[k]);
    CHECK(cudaStreamSynchronize(s));
    std::vector<std::int64_t> t(rows);
    std::vector<float> temp(rows), ent(rows);
    CHECK(cudaMemcpy(t.data(), st.tokens, rows * 8, cudaMemcpyDeviceToHost));
    CHECK(cudaMemcpy(temp.data(), st.temperatures, rows * 4, cudaMemcpyDeviceToHost));
    CHECK(cudaMemcpy(ent.data(), st.entropies, rows * 4, cudaMemcpyDeviceToHost));
    o.tokens.insert(o.tokens.end(), t.begin(), t.end());
    o.temperatures.insert(o.temperatures.end(), temp.begin(), temp.end());
    o.entropies.insert(o.entropies.end(), ent.begin(), ent.end());
    CHECK(cudaMemcpy(st.last, st.tokens, rows * 8, cudaMemcpyDeviceToDevice));
  }
  CHECK(cudaMemcpy(&o.error, st.scratch.error_flag, 4, cudaMemcpyDeviceToHost));
  free_step(st);
  return o;
}

// Tokens, temperatures and the error flag the same bits.
bool same_draws(const Outputs& a, const Outputs& b) {
  return a.tokens == b.tokens && a.error == b.error &&
         std::memcmp(a.temperatures.data(), b.temperatures.data(), a.temperatures.size() * 4) == 0;
}

bool same_entropies(const Outputs& a, const Outputs& b) {
  return std::memcmp(a.entropies.data(), b.entropies.data(), a.entropies.size() * 4) == 0;
}

bool same_bits(const Outputs& a, const Outputs& b) { return same_draws(a, b) && same_entropies(a, b); }

// Largest |a - b| / |b| over the entropies (NaN pairs count as equal).
double entropy_rel_diff(const Outputs& a, const Outputs& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.entropies.size(); ++i) {
    const double x = a.entropies[i], y = b.entropies[i];
    if (std::isnan(x) && std::isnan(y)) continue;
    if (std::isnan(x) || std::isnan(y)) return INFINITY;
    worst = std::max(worst, std::fabs(x - y) / std::max(std::fabs(y), 1e-30));
  }
  return worst;
}

// The outputs of every (B, config) case, in a fixed order: written by the baseline build (main's kernels),
// compared bit for bit by this tree's build.
constexpr const char* kMainOutputs = "/tmp/sampler_batch_main_outputs.bin";

void write_outputs(std::FILE* f, const Outputs& o) {
  std::fwrite(o.tokens.data(), 8, o.tokens.size(), f);
  std::fwrite(o.temperatures.data(), 4, o.temperatures.size(), f);
  std::fwrite(o.entropies.data(), 4, o.entropies.size(), f);
  std::fwrite(&o.error, 4, 1, f);
}

bool read_outputs(std::FILE* f, Outputs& o, std::size_t n) {
  o.tokens.resize(n);
  o.temperatures.resize(n);
  o.entropies.resize(n);
  return std::fread(o.tokens.data(), 8, n, f) == n && std::fread(o.temperatures.data(), 4, n, f) == n &&
         std::fread(o.entropies.data(), 4, n, f) == n && std::fread(&o.error, 4, 1, f) == 1;
}

struct Probe {
  cudaStream_t s;
  std::vector<const float*> logits;  // kSteps buffers of 64 rows
  Config reset{0.1, 0.5505, 1.0, 32, 0.95, 0};
  Config fixed{0.6, 0.0, 0.6, 32, 1.0, 0};
  Config greedy{0.0, 0.0, 0.0, 32, 1.0, 0};
  Config topk{0.1, 0.5505, 1.0, 32, 0.95, 50};
  int checked = 0, mismatched = 0;

  // Every (B, config) case's outputs with the current defaults, written (baseline build) or compared with
  // the baseline's file (this tree's build): main's kernels against these, bit for bit.
  void main_outputs(bool write) {
    apply(Grouping{});
    std::FILE* f = std::fopen(kMainOutputs, write ? "wb" : "rb");
    if (!f) {
      std::printf("no %s: not compared with main's kernels\n", kMainOutputs);
      return;
    }
    int cases = 0, differ = 0, entropies_differ = 0;
    long rows_total = 0, tokens_differ = 0;
    double worst = 0;
    for (std::int64_t rows : {1, 8, 9, 16, 64}) {
      for (const Config* c : {&reset, &fixed, &greedy, &topk}) {
        const Outputs got = outputs_of(*c, rows, logits, s);
        if (write) {
          write_outputs(f, got);
          continue;
        }
        Outputs want;
        ++cases;
        if (!read_outputs(f, want, got.tokens.size())) {
          ++differ;
          std::printf("  no baseline outputs for B=%lld\n", static_cast<long long>(rows));
          continue;
        }
        rows_total += static_cast<long>(got.tokens.size());
        for (std::size_t i = 0; i < got.tokens.size(); ++i) tokens_differ += got.tokens[i] != want.tokens[i];
        if (!same_draws(got, want)) {
          ++differ;
          std::printf("  tokens/temperatures DIFFER from main's kernels: B=%lld config %d\n",
                      static_cast<long long>(rows), static_cast<int>(c - &reset));
        }
        if (!same_entropies(got, want)) ++entropies_differ;
        worst = std::max(worst, entropy_rel_diff(got, want));
      }
    }
    std::fclose(f);
    if (!write) {
      std::printf("against main's kernels (baseline build; B = 1, 8, 9, 16, 64 x reset, fixed T, greedy, top-k 50 + "
                  "top-p; 3 steps each): %d cases, tokens+temperatures+errors differ in %d (%ld of %ld tokens); "
                  "entropies not bit-identical in %d cases, max relative difference %.3g\n",
                  cases, differ, tokens_differ, rows_total, entropies_differ, worst);
    }
  }

  // us per step with grouping g (one step per graph); every timed variant is also checked bit for bit
  // against main's grouping on the same config and B.
  double time(const Config& config, std::int64_t rows, const Grouping& g, bool check = true) {
    apply(g);
    Step st = make_step(config, rows, logits[0]);
    const double us = graph_us(s, [&](cudaStream_t q) { st.run(q); }, 1, 200, 3);  // best of 3 x 200
    free_step(st);
    if (check) {
      const Outputs got = outputs_of(config, rows, logits, s);
      apply(main_grouping(rows));
      const Outputs want = outputs_of(config, rows, logits, s);
      ++checked;
      if (!same_bits(got, want)) {
        ++mismatched;
        std::printf("  MISMATCH: B=%lld grouping stats %d bins %d sample %d\n", static_cast<long long>(rows), g.stats,
                    g.bins, g.sample);
      }
    }
    apply(Grouping{});
    return us;
  }
};

#ifdef RESET_NATIVE_SAMPLER_TRACE
// Phase timeline of row 0 (cuda/sampler/trace.cuh marks; the probe built with -DRESET_NATIVE_SAMPLER_TRACE),
// default grouping, reset top-p, one step per graph: per kernel and mark, the median over replays of the
// earliest and the latest of row 0's blocks, in us from the first stats block's start.
void run_trace(Probe& p, std::int64_t rows, int replays = 25) {
  using cuda_detail::g_trace_time;
  using cuda_detail::kTraceBlocks;
  using cuda_detail::kTraceEvents;
  using cuda_detail::kTraceKernels;
  static unsigned long long times[kTraceKernels][kTraceEvents][kTraceBlocks];
  static const unsigned long long zero[kTraceKernels][kTraceEvents][kTraceBlocks] = {};
  std::vector<double> lo[kTraceKernels][kTraceEvents], hi[kTraceKernels][kTraceEvents];
  // Which block of row 0 was the stats pass's last (mark 3: the only block that records it), per replay: with a
  // block per chunk, blockIdx.y == chunks is the extra preparing block.
  std::vector<int> stats_last;
  // The sample pass's last block (the one with mark 4): cycles (clock64, one SM) from its mark 4 to its marks 5 ... 9.
  using cuda_detail::g_trace_clock;
  static long long clocks[kTraceKernels][kTraceEvents][kTraceBlocks];
  std::vector<double> draw_cycles[kTraceEvents];
  std::vector<double> combine_cycles[kTraceEvents];  // the stats pass's last block (mark 3): cycles to its later marks
  // trace-bins (g_trace_bins_repeat): per bins block, cycles of its repeated add (marks 9 -> 10) and of the same
  // weights and bins alone (10 -> 11).
  std::vector<double> bins_add_cycles, bins_math_cycles;
  apply(Grouping{});
  Step st = make_step(p.reset, rows, p.logits[0]);
  cudaGraph_t g;
  cudaGraphExec_t ge;
  st.run(p.s);
  CHECK(cudaStreamSynchronize(p.s));
  CHECK(cudaStreamBeginCapture(p.s, cudaStreamCaptureModeThreadLocal));
  st.run(p.s);
  CHECK(cudaStreamEndCapture(p.s, &g));
  CHECK(cudaGraphInstantiate(&ge, g, 0));
  for (int r = 0; r < replays + 3; ++r) {
    CHECK(cudaMemcpyToSymbol(g_trace_time, zero, sizeof(zero)));
    CHECK(cudaGraphLaunch(ge, p.s));
    CHECK(cudaStreamSynchronize(p.s));
    CHECK(cudaMemcpyFromSymbol(times, g_trace_time, sizeof(times)));
    CHECK(cudaMemcpyFromSymbol(clocks, g_trace_clock, sizeof(clocks)));
    if (r < 3) continue;
    for (int b = 0; b < kTraceBlocks; ++b) {
      if (!times[0][3][b]) continue;
      for (int e = 4; e < kTraceEvents; ++e)
        if (times[0][e][b] && e != 12 && e != 13)
          combine_cycles[e].push_back(static_cast<double>(clocks[0][e][b] - clocks[0][3][b]));
    }
    for (int b = 0; b < kTraceBlocks; ++b) {
      if (!times[2][4][b]) continue;
      for (int e = 5; e < kTraceEvents; ++e)
        if (times[2][e][b]) draw_cycles[e].push_back(static_cast<double>(clocks[2][e][b] - clocks[2][4][b]));
    }
    for (int b = 0; b < kTraceBlocks; ++b) {
      if (!times[1][9][b] || !times[1][10][b] || !times[1][11][b]) continue;
      bins_add_cycles.push_back(static_cast<double>(clocks[1][10][b] - clocks[1][9][b]));
      bins_math_cycles.push_back(static_cast<double>(clocks[1][11][b] - clocks[1][10][b]));
    }
    for (int b = 0; b < kTraceBlocks; ++b)
      if (times[0][3][b]) stats_last.push_back(b);
    unsigned long long t0 = ~0ull;
    for (int b = 0; b < kTraceBlocks; ++b)
      if (times[0][0][b]) t0 = std::min(t0, times[0][0][b]);
    for (int k = 0; k < kTraceKernels; ++k) {
      for (int e = 0; e < kTraceEvents; ++e) {
        unsigned long long a = ~0ull, z = 0;
        for (int b = 0; b < kTraceBlocks; ++b) {
          if (!times[k][e][b]) continue;
          a = std::min(a, times[k][e][b]);
          z = std::max(z, times[k][e][b]);
        }
        if (z == 0) continue;
        lo[k][e].push_back((static_cast<double>(a) - static_cast<double>(t0)) * 1e-3);
        hi[k][e].push_back((static_cast<double>(z) - static_cast<double>(t0)) * 1e-3);
      }
    }
  }
  CHECK(cudaGraphExecDestroy(ge));
  CHECK(cudaGraphDestroy(g));
  free_step(st);
  const auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  const char* names[] = {"stats", "bins", "sample"};
  std::printf("trace B=%lld row 0 (us from the first stats block; mark: earliest/latest block)\n",
              static_cast<long long>(rows));
  for (int k = 0; k < 3; ++k) {
    std::printf("  %-6s", names[k]);
    for (int e = 0; e < kTraceEvents; ++e) {
      if (lo[k][e].empty()) continue;
      std::printf(" %d:%.1f/%.1f", e, median(lo[k][e]), median(hi[k][e]));
    }
    std::printf("\n");
  }
  std::printf("  stats last block, cycles from mark 3:");
  for (int e = 4; e < kTraceEvents; ++e)
    if (!combine_cycles[e].empty()) std::printf(" %d:%.0f", e, median(combine_cycles[e]));
  std::printf("\n");
  std::printf("  sample last block, cycles from mark 4:");
  for (int e = 5; e < kTraceEvents; ++e)
    if (!draw_cycles[e].empty()) std::printf(" %d:%.0f", e, median(draw_cycles[e]));
  std::printf("\n");
  if (!bins_add_cycles.empty()) {
    std::printf("  bins blocks, cycles (median over blocks and replays): the add again 9->10 %.0f, its weights and bins"
                " alone 10->11 %.0f\n", median(bins_add_cycles), median(bins_math_cycles));
  }
  std::sort(stats_last.begin(), stats_last.end());
  std::printf("  stats last block (blockIdx.y; %d = the extra preparing block where it runs):",
              static_cast<int>(detail::chunks_of(kVocab)));
  for (std::size_t i = 0; i < stats_last.size();) {
    std::size_t j = i;
    while (j < stats_last.size() && stats_last[j] == stats_last[i]) ++j;
    std::printf(" %d x%zu", stats_last[i], j - i);
    i = j;
  }
  std::printf("\n");
}
#endif

int run_ncu(Probe& p) {
  // Two steps per case; the table keeps the second (logits already read once, as in a replay loop).
  // Cases (bench/probes/ncu_sampler.py knows this order): B = 1 and 8 with main's grouping (the defaults
  // are the same there), B = 64 with main's grouping and with the defaults.
  const std::pair<std::int64_t, Grouping> cases[] = {
      {1, main_grouping(1)}, {8, main_grouping(8)}, {64, main_grouping(64)}, {64, Grouping{}}};
  for (const auto& [rows, g] : cases) {
    {
      apply(g);
      Step st = make_step(p.reset, rows, p.logits[0]);
      for (int k = 0; k < 2; ++k) st.run(p.s);
      CHECK(cudaStreamSynchronize(p.s));
      free_step(st);
    }
  }
  apply(Grouping{});
  std::printf("ncu cases done\n");
  return 0;
}

// The opt-in resident step (RESET_NATIVE_SAMPLER_RESIDENT=1) at B = 1 and 8, reset top-p / fixed T / greedy,
// labelled `label` (where it does not apply the kernels run).
void print_resident(Probe& p, const char* label) {
  setenv("RESET_NATIVE_SAMPLER_RESIDENT", "1", 1);
  for (std::int64_t rows : {1, 8}) {
    std::printf("%s resident B=%2lld reset top-p %6.2f | fixed T %6.2f | greedy %6.2f\n", label,
                static_cast<long long>(rows), p.time(p.reset, rows, Grouping{}, false),
                p.time(p.fixed, rows, Grouping{}, false), p.time(p.greedy, rows, Grouping{}, false));
  }
  unsetenv("RESET_NATIVE_SAMPLER_RESIDENT");
}

// The preparing block of the stats pass (a block per chunk only: B = 1 and 8 here; the default since session 8)
// against RESET_NATIVE_SAMPLER_PREP_BLOCK=0 (chunk 0's block prepares): times, and every output bit for bit.
void print_prep_block(Probe& p) {
  int checked = 0, mismatched = 0;
  for (std::int64_t rows : {1, 8}) {
    double us[2][3];
    for (int on = 0; on < 2; ++on) {
      setenv("RESET_NATIVE_SAMPLER_PREP_BLOCK", on ? "1" : "0", 1);
      const Config* configs[3] = {&p.reset, &p.fixed, &p.greedy};
      for (int c = 0; c < 3; ++c) us[on][c] = p.time(*configs[c], rows, Grouping{}, false);
      unsetenv("RESET_NATIVE_SAMPLER_PREP_BLOCK");
    }
    std::printf("THIS prep block B=%2lld reset top-p %6.2f (off %6.2f) | fixed T %6.2f (%6.2f) | greedy %6.2f (%6.2f)\n",
                static_cast<long long>(rows), us[1][0], us[0][0], us[1][1], us[0][1], us[1][2], us[0][2]);
    for (const Config* c : {&p.reset, &p.fixed, &p.greedy, &p.topk}) {
      setenv("RESET_NATIVE_SAMPLER_PREP_BLOCK", "0", 1);
      const Outputs off = outputs_of(*c, rows, p.logits, p.s);
      setenv("RESET_NATIVE_SAMPLER_PREP_BLOCK", "1", 1);
      const Outputs on = outputs_of(*c, rows, p.logits, p.s);
      unsetenv("RESET_NATIVE_SAMPLER_PREP_BLOCK");
      ++checked;
      if (!same_bits(on, off)) ++mismatched;
    }
  }
  std::printf("prep block bit for bit against the default (B = 1, 8 x 4 configs, 3 steps each): %d checked, %d "
              "mismatched\n", checked, mismatched);
}

}  // namespace

int main(int argc, char** argv) {
  cudaDeviceProp prop;
  CHECK(cudaGetDeviceProperties(&prop, 0));
  Probe p;
  CHECK(cudaStreamCreateWithFlags(&p.s, cudaStreamNonBlocking));
  const std::int64_t max_rows = 64;
  std::mt19937 rng(0);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> host(max_rows * kVocab);
  for (int k = 0; k < kSteps; ++k) {
    for (float& v : host) v = normal(rng);
    float* z = device_alloc<float>(host.size());
    CHECK(cudaMemcpy(z, host.data(), host.size() * 4, cudaMemcpyHostToDevice));
    p.logits.push_back(z);
  }
  if (argc > 1 && std::strcmp(argv[1], "ncu") == 0) return run_ncu(p);
#ifdef RESET_NATIVE_SAMPLER_TRACE
  if (argc > 1 && std::strcmp(argv[1], "trace") == 0) {
    for (std::int64_t rows : {1, 8, 64}) run_trace(p, rows);
    return 0;
  }
  if (argc > 1 && std::strcmp(argv[1], "trace-bins") == 0) {
    // Each bins block repeats its add after its flush (cuda/sampler/decode_step_topp.cuh, probe only): the later
    // passes' marks are late by the repeats; the bins line and its cycles are what this mode is for.
    const int on = 1;
    CHECK(cudaMemcpyToSymbol(cuda_detail::g_trace_bins_repeat, &on, sizeof(on)));
    for (std::int64_t rows : {1, 64}) run_trace(p, rows);
    return 0;
  }
#endif
  if (argc > 1 && std::strcmp(argv[1], "baseline") == 0) {
    // Built against main's cuda/ tree (bench/probes/base_tree.sh), this times main's step with its own
    // defaults and writes its outputs for this tree's build to compare.
    for (std::int64_t rows : {1, 8, 64}) {
      std::printf("MAIN B=%2lld reset top-p %6.2f | fixed T %6.2f | greedy %6.2f\n", static_cast<long long>(rows),
                  p.time(p.reset, rows, Grouping{}, false), p.time(p.fixed, rows, Grouping{}, false),
                  p.time(p.greedy, rows, Grouping{}, false));
    }
    print_resident(p, "MAIN");
    p.main_outputs(true);
    return 0;
  }

  std::printf("%s, %d SMs, L2 %d MB; us per step (graph replay, best of 3 x 200)\n", prop.name,
              prop.multiProcessorCount, prop.l2CacheSize >> 20);
  p.main_outputs(false);
  if (!std::getenv("SWEEPS")) {  // this tree's defaults at the baseline's batch sizes (and 16)
    for (std::int64_t rows : {1, 8, 16, 64}) {
      std::printf("THIS B=%2lld reset top-p %6.2f | fixed T %6.2f | greedy %6.2f\n", static_cast<long long>(rows),
                  p.time(p.reset, rows, Grouping{}), p.time(p.fixed, rows, Grouping{}), p.time(p.greedy, rows, Grouping{}));
    }
    print_resident(p, "THIS");
    print_prep_block(p);
    std::printf("bit-for-bit, each timed case against this tree's kernels with main's grouping (3 steps each): "
                "%d checked, %d mismatched\n", p.checked, p.mismatched);
    CHECK(cudaDeviceSynchronize());
    return p.mismatched == 0 ? 0 : 2;
  }
  std::printf("mg = this tree's kernels with main's grouping (a block per chunk in stats and sample, main's bins "
              "default), def = this tree's defaults\n");
  for (std::int64_t rows : {1, 2, 8, 16, 32, 64}) {
    const Grouping mg = main_grouping(rows);
    std::printf("B=%2lld reset top-p mg %6.2f def %6.2f | fixed T mg %6.2f def %6.2f | greedy mg %6.2f def %6.2f\n",
                static_cast<long long>(rows), p.time(p.reset, rows, mg, false), p.time(p.reset, rows, Grouping{}),
                p.time(p.fixed, rows, mg, false), p.time(p.fixed, rows, Grouping{}),
                p.time(p.greedy, rows, mg, false), p.time(p.greedy, rows, Grouping{}));
  }
  // Sweeps (reset top-p): the chunks per block of stats and sample together (bins default), then of the
  // bins alone (stats, sample default).
  std::printf("sweeps, reset top-p, us: stats = sample chunks per block 1 2 4 8 | bins chunks per block 1 2 4 8\n");
  for (std::int64_t rows : {8, 16, 32, 64}) {
    std::printf("  B=%2lld:", static_cast<long long>(rows));
    for (int n : {1, 2, 4, 8}) std::printf(" %6.2f", p.time(p.reset, rows, Grouping{n, 0, n}));
    std::printf(" |");
    for (int n : {1, 2, 4, 8}) std::printf(" %6.2f", p.time(p.reset, rows, Grouping{0, n, 0}));
    std::printf("\n");
  }
  std::printf("bit-for-bit, each timed variant against this tree's kernels with main's grouping (3 steps each): "
              "%d variants checked, %d mismatched\n", p.checked, p.mismatched);
  CHECK(cudaDeviceSynchronize());
  return p.mismatched == 0 ? 0 : 2;
}
