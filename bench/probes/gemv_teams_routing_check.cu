// Host-only check of bench/probes/gemv_teams_routing.py against the headers: the quantities its routing model reads
// (bd_split_slices, choose_ksplit, bd_chosen, BdSmem, teams_where_two_ctas_fit under kTeamsMeasured and kTeamsDefault,
// three_ctas_balance_better, smem_bytes) for bf16 x at A16 and W4A4 on the fast path without the ring, 132 SMs, 227 KiB
// opt-in. Runs no kernel (no GPU needed); one line per (act, n, k, m), as the Python model prints with --check:
//   nvcc -std=c++17 -arch=sm_90 -Icpp/include -Icuda -Icpp/src --expt-relaxed-constexpr
//     -o /tmp/teams_check bench/probes/gemv_teams_routing_check.cu   (one line), then /tmp/teams_check > /tmp/c.txt
//   python3 bench/probes/gemv_teams_routing.py --check > /tmp/p.txt && diff /tmp/c.txt /tmp/p.txt
#include <cstdio>

#include "nvfp4/gemv_bd_split.cuh"
#include "nvfp4/gemv_launch.cuh"
#include "nvfp4/gemv_split.cuh"

using namespace reset_native::nvfp4_cuda::detail;

template <bool W4A4>
void line(int n, int k, int m) {
  constexpr int kSms = 132;
  LaunchPlan plan{true, false, kSms, size_t(227 * 1024), RingMaps{}};
  GemvParams p{};
  p.n = n, p.k = k, p.m = m;
  const int bds = bd_split_slices(p, plan, true, W4A4);
  const int ks = choose_ksplit<kBF16, W4A4>(p, plan);
  const size_t whole = m > 8 ? smem_bytes<kBF16, W4A4, 2, true>(k, m) : smem_bytes<kBF16, W4A4, 1, true>(k, m);
  std::printf("%s %d %d %d bds=%d ks=%d bd=%d bdsmem=%d measured=%d default=%d three=%d whole=%zu\n",
              W4A4 ? "nvfp4" : "bf16", n, k, m, bds, ks, int(bd_chosen<kBF16, W4A4>(p, plan)), BdSmem(k, m, m).total,
              int(teams_where_two_ctas_fit<kBF16, W4A4>(p, kSms, kTeamsMeasured)),
              int(teams_where_two_ctas_fit<kBF16, W4A4>(p, kSms, kTeamsDefault)),
              int(three_ctas_balance_better((n + 15) / 16, kSms)), whole);
}

template <bool W4A4>
void lines() {
  const int shapes[][2] = {{6144, 4096}, {4096, 4096}, {24576, 4096}, {4096, 12288}, {10240, 5120}, {5120, 8192},
                           {51200, 5120}, {5120, 25600}, {200, 4096}, {8, 4096}, {16 * 12 * 132, 4096},
                           {16 * 12 * 132 + 16, 4096}};
  for (const auto& nk : shapes)
    for (int m = 1; m <= 16; ++m) line<W4A4>(nk[0], nk[1], m);
}

int main() {
  lines<false>();
  lines<true>();
  return 0;
}
