// Host-only check of bench/probes/gemv16_w4a4_pad_routing.py against the headers: the shared-memory sizes the routing
// of the 16-bit GEMV checks (tile_smem_bytes, split_launch_smem_bytes) and choose_ksplit's slices, for W4A4 with bf16 x
// on the fast path, with RESET_NATIVE_GEMV_16_FORM=nopad (no pad) and unset (the pad: the default since session 19
// helper gemv25). Runs no kernel (no GPU needed); prints one line per (n, k, m) that the Python model prints too with
// --check:
//   nvcc -std=c++17 -arch=sm_90 -Icpp/include -Icuda -Icpp/src --expt-relaxed-constexpr
//     -o /tmp/w4a4_pad_check bench/probes/gemv16_w4a4_pad_routing_check.cu   (one line), then
//   /tmp/w4a4_pad_check > /tmp/c.txt; python3 bench/probes/gemv16_w4a4_pad_routing.py --check > /tmp/p.txt;
//   diff /tmp/c.txt /tmp/p.txt
#include <cstdio>

#include "nvfp4/gemv_kernel.cuh"
#include "nvfp4/gemv_split.cuh"

using namespace reset_native::nvfp4_cuda::detail;

template <int NT>
void sizes(int n, int k, int m, Form16Force f, const LaunchPlan& plan) {
  GemvParams p{};
  p.n = n, p.k = k, p.m = m;
  const int s = choose_ksplit<kBF16, true>(p, plan);
  std::printf(" ks=%d split=%zu two=%zu one=%zu teams=%zu", s,
              split_launch_smem_bytes<kBF16, true, NT>(k, m, s > 1 ? s : 1, f),
              tile_smem_bytes<kBF16, true, NT, true, true, 2>(k, m, f),
              tile_smem_bytes<kBF16, true, NT, true, true, 1>(k, m, f),
              tile_smem_bytes<kBF16, true, NT, true, true, 1, false, 2>(k, m, f));
}

int main() {
  const int shapes[][2] = {{6144, 4096}, {4096, 4096}, {24576, 4096}, {4096, 12288}, {10240, 5120}, {5120, 8192},
                           {51200, 5120}, {5120, 25600}, {200, 1024}, {200, 2048}, {200, 4096}, {8448, 4096},
                           {200, 12288}};
  for (const auto& nk : shapes) {
    for (int m = 3; m <= 16; ++m) {
      for (Form16Force f : {kForceNoPad, kForceRule}) {
        LaunchPlan plan{true, false, 132, size_t(227 * 1024), RingMaps{}};
        plan.form16 = f;
        std::printf("w4a4 %d %d %d %s", nk[0], nk[1], m, f == kForceRule ? "unset" : "nopad");
        if (m > 8) {
          sizes<2>(nk[0], nk[1], m, f, plan);
        } else {
          sizes<1>(nk[0], nk[1], m, f, plan);
        }
        std::printf("\n");
      }
    }
  }
  return 0;
}
