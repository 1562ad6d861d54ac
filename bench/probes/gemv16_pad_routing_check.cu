// Host-only check of the two pad routing models against the headers: the shared-memory sizes the routing of the 16-bit
// GEMV checks (tile_smem_bytes, split_launch_smem_bytes) and choose_ksplit's slices, for bf16 x on the fast path, with
// the pad (the default since session 19) and without it (RESET_NATIVE_GEMV_16_FORM=nopad): A16 lines first
// (bench/probes/gemv16_pad_routing.py), then W4A4 lines, prefixed "w4a4" (bench/probes/gemv16_w4a4_pad_routing.py).
// Runs no kernel (no GPU needed); each model prints its own lines with --check:
//   nvcc -std=c++17 -arch=sm_90 -Icpp/include -Icuda -Icpp/src --expt-relaxed-constexpr
//     -o /tmp/pad_check bench/probes/gemv16_pad_routing_check.cu   (one line), then /tmp/pad_check > /tmp/c.txt
//   python3 bench/probes/gemv16_pad_routing.py --check | diff - <(grep -v '^w4a4' /tmp/c.txt)
//   python3 bench/probes/gemv16_w4a4_pad_routing.py --check | diff - <(grep '^w4a4' /tmp/c.txt)
#include <cstdio>

#include "nvfp4/gemv_launch.cuh"
#include "nvfp4/gemv_split.cuh"

using namespace reset_native::nvfp4_cuda::detail;

template <bool W4A4, int NT>
void sizes(int n, int k, int m, Form16Force f, const LaunchPlan& plan) {
  GemvParams p{};
  p.n = n, p.k = k, p.m = m;
  const int s = choose_ksplit<kBF16, W4A4>(p, plan);
  std::printf(" ks=%d split=%zu two=%zu one=%zu teams=%zu", s,
              split_launch_smem_bytes<kBF16, W4A4, NT>(k, m, s > 1 ? s : 1, f),
              tile_smem_bytes<kBF16, W4A4, NT, true, true, 2>(k, m, f),
              tile_smem_bytes<kBF16, W4A4, NT, true, true, 1>(k, m, f),
              tile_smem_bytes<kBF16, W4A4, NT, true, true, 1, false, 2>(k, m, f));
  if (!W4A4) std::printf(" three=%zu", tile_smem_bytes<kBF16, W4A4, NT, true, true, 3>(k, m, f));  // A16 only
}

// One line per (n, k, m, nopad / pad) of `shapes`, m = 3..16.
template <bool W4A4, size_t N>
void lines(const int (&shapes)[N][2]) {
  for (const auto& nk : shapes) {
    for (int m = 3; m <= 16; ++m) {
      for (Form16Force f : {kForceNoPad, kForceRule}) {
        LaunchPlan plan{true, false, 132, size_t(227 * 1024), RingMaps{}};
        plan.form16 = f;
        const char* pad = f == kForceRule ? (W4A4 ? "unset" : "pad") : "nopad";
        std::printf("%s%d %d %d %s", W4A4 ? "w4a4 " : "", nk[0], nk[1], m, pad);
        if (m > 8) {
          sizes<W4A4, 2>(nk[0], nk[1], m, f, plan);
        } else {
          sizes<W4A4, 1>(nk[0], nk[1], m, f, plan);
        }
        std::printf("\n");
      }
    }
  }
}

int main() {
  const int a16[][2] = {{6144, 4096}, {4096, 4096}, {24576, 4096}, {4096, 12288}, {10240, 5120}, {5120, 8192},
                        {51200, 5120}, {5120, 25600}, {200, 2048}, {200, 6144}, {200, 8192}, {200, 9216},
                        {64, 12288}};
  const int w4a4[][2] = {{6144, 4096}, {4096, 4096}, {24576, 4096}, {4096, 12288}, {10240, 5120}, {5120, 8192},
                         {51200, 5120}, {5120, 25600}, {200, 1024}, {200, 2048}, {200, 4096}, {8448, 4096},
                         {200, 12288}};
  lines<false>(a16);
  lines<true>(w4a4);
  return 0;
}
