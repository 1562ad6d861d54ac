"""NVFP4 GEMV: the two-team kernel's walker order (cuda/nvfp4/gemv_launch.cuh team_major_on, session 36). Row tiles go
round-robin to the tile walkers, numbered team-major (walker = team * CTAs + CTA) by default and CTA-major (CTA * 2 +
team) with RESET_NATIVE_GEMV_TEAM_ORDER=cta. Either order must compute every row tile exactly once and each the same
way, so they give the same bits, within the fp64 bound, on shapes where the tiles do not divide evenly over the walkers
(a last, partial round), with one tile only (the second team idle), a partial last tile (n = 200), at 3..16 tokens,
A16 with bf16 and fp16 x and W4A4 (its cluster launch from 8 tokens). The output is poisoned before each call. GPU
tests skip without a device."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nvfp4_gpu_reference as ref  # noqa: E402

from reset_native import _nvfp4_cuda as nc  # noqa: E402

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.gpu

ENV = "RESET_NATIVE_GEMV_TEAM_ORDER"

# (activation, n, k, m): 8B q/k/v-like (384 tiles on 264 walkers), 32B q/k/v (640 tiles), a partial last tile
# (13 tiles on 7 CTAs), one tile (one CTA, its second team idle); 8 and 16 token columns; W4A4 from 8 tokens in
# clusters of CTAs.
CASES = [("bf16", 6144, 4096, 16), ("bf16", 6144, 4096, 9), ("bf16", 6144, 4096, 8), ("bf16", 10240, 5120, 12),
         ("bf16", 200, 4096, 16), ("bf16", 200, 4096, 3), ("bf16", 8, 4096, 9),
         ("nvfp4", 8448, 4096, 16), ("nvfp4", 8448, 4096, 6), ("nvfp4", 200, 1024, 10), ("nvfp4", 8, 1024, 9)]


@pytest.mark.parametrize("act,n,k,m", CASES)
def test_team_order_cases_run_two_teams(act, n, k, m, monkeypatch):
    """Every case reaches the two-team kernel (read from the kernel names the profiler records)."""
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch)
    fn = ref.random_gemv_call(n, k, m, m, act)
    for value in (None, "cta"):
        ref.set_env(monkeypatch, ENV, value)
        assert ref.gemv16_instances(fn) == [ref.TWO_TEAMS], value


@pytest.mark.parametrize("act,n,k,m", CASES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_team_order_same_bits_and_fp64(act, n, k, m, dtype, monkeypatch):
    """(No profiler here: bench/run_sanitizers.sh runs these under memcheck, where it records nothing.)"""
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch)
    packed, scales, gs, p, s = ref.seeded_weights(n, k, n + k)
    x, bias, residual = ref.gemv_inputs(n, k, m, dtype)

    def fn():
        return nc.gemv(p, s, float(gs), x, act, None, bias, residual)

    outs = {}
    for value in (None, "cta", "other"):  # "other": an unknown value keeps the default
        ref.set_env(monkeypatch, ENV, value)
        ref.poison_next_block(m * n * 4)
        outs[value] = fn()
    ref.check_vs_fp64(outs["cta"], packed, scales, float(gs), x, act, bias, residual)
    for value in (None, "other"):
        assert torch.equal(outs[value], outs["cta"]), value


def test_team_order_graph_replay(monkeypatch):
    """Team-major (the default) captured in a CUDA graph: replays with fresh x give the bits of an eager
    CTA-major call (32B q/k/v-like)."""
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch)
    p, s, gs = ref.random_gpu_weights(10240, 5120)
    x = torch.randn((16, 5120), generator=torch.Generator().manual_seed(3)).to(torch.bfloat16).cuda()
    ref.assert_graph_replay_matches_eager(monkeypatch, lambda: nc.gemv(p, s, gs, x, "bf16"), x, ENV, "cta")
