"""NVFP4 GEMV: RESET_NATIVE_GEMV_BD's W4A4 two-token rules (session 20 helper w4a4bd36;
cuda/nvfp4/gemv_bd_w4a4_rule.cuh; "w4a4kt" the default since session 21). W4A4 calls at two tokens with 16-bit x
leave the block-diagonal kernel for the 16-bit kernel (two teams) from K = 12288 ("w4a4k" alone) and at K <= 6144
with 2 * SMs < row tiles <= 3 * 2 * SMs (the default, "w4a4kt" and unknown values); "w4a4bd" keeps the block-diagonal
kernel at every K (the routing before session 21), as "1" does; "0" forces the 16-bit kernel. One token, fp32 x, A16
and other M keep their kernels, and so does every call the 16-bit kernel would not give two teams
(RESET_NATIVE_GEMV_TEAMS=1 / measured). Which kernel runs is read from the CUDA kernel names the torch profiler
records; the instances are an H100 / H200's (132 SMs: 264 CTA slots of the block-diagonal kernel), as
bench/probes/gemv_teams_routing.py models them (--bd-rule). Both kernels of a moved shape stay within the fp64 bound
(another summation order: not the same bits). GPU tests skip without a device."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nvfp4_gpu_reference as ref  # noqa: E402

from reset_native import _nvfp4_cuda as nc  # noqa: E402

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.gpu

ENV = "RESET_NATIVE_GEMV_BD"
BD, TEAMS = "bd", (1, 0, 2)  # the block-diagonal kernel; the 16-bit kernel (MINB, SPLIT, TEAMS) with two teams
SLOTS = 2 * ref.H200_SMS  # 264 row tiles

# (activation, n, k, m, unset (= "w4a4kt"), "w4a4k", "w4a4bd"): Qwen3 rows (8B down, 8B q/k/v and 32B q/k/v move; 8B
# o, 32B o, the gate/up projections, one token and A16 stay), the tiles bounds at K = 4096 (264 and 792 tiles stay /
# move, 265 and 793), the K bounds (6144 with tiles: kt; 8192 never; 12288 and 16384 both rules).
KERNEL_CHOICE = [
    ("nvfp4", 4096, 12288, 2, TEAMS, TEAMS, BD),
    ("nvfp4", 6144, 4096, 2, TEAMS, BD, BD),
    ("nvfp4", 10240, 5120, 2, TEAMS, BD, BD),
    ("nvfp4", 4096, 4096, 2, BD, BD, BD),
    ("nvfp4", 5120, 8192, 2, BD, BD, BD),
    ("nvfp4", 24576, 4096, 2, BD, BD, BD),
    ("nvfp4", 51200, 5120, 2, BD, BD, BD),
    ("nvfp4", 4096, 12288, 1, BD, BD, BD),
    ("nvfp4", 6144, 4096, 1, BD, BD, BD),
    ("nvfp4", 16 * SLOTS, 4096, 2, BD, BD, BD),
    ("nvfp4", 16 * SLOTS + 16, 4096, 2, TEAMS, BD, BD),
    ("nvfp4", 16 * 3 * SLOTS, 4096, 2, TEAMS, BD, BD),
    ("nvfp4", 16 * 3 * SLOTS + 16, 4096, 2, BD, BD, BD),
    ("nvfp4", 8448, 6144, 2, TEAMS, BD, BD),
    ("nvfp4", 8448, 7168, 2, BD, BD, BD),
    ("nvfp4", 4096, 11264, 2, BD, BD, BD),
    ("nvfp4", 4096, 16384, 2, TEAMS, TEAMS, BD),
    ("bf16", 6144, 4096, 2, BD, BD, BD),
    ("bf16", 4096, 12288, 2, TEAMS, TEAMS, TEAMS),
]


def _kernels(fn):
    """'bd' per W4A4 or A16 block-diagonal launch, then the 16-bit kernels' (MINB, SPLIT, TEAMS)."""
    return [BD for _ in ref.kernel_template_args(fn, "gemv_bd_kernel")] + ref.gemv16_instances(fn)


@pytest.mark.parametrize("act,n,k,m,unset,rule_k,rule_bd", KERNEL_CHOICE)
def test_bd_w4a4_rule_kernel_choice(act, n, k, m, unset, rule_k, rule_bd, monkeypatch):
    """The kernel unset (the default), with "w4a4kt", an unknown value (the default), "w4a4k", "w4a4bd" and the
    forcing values."""
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch)
    fn = ref.random_gemv_call(n, k, m, m, act)
    for value, want in ((None, unset), ("w4a4kt", unset), ("w4a4", unset), ("w4a4k", rule_k), ("w4a4bd", rule_bd),
                        ("1", BD)):
        ref.set_env(monkeypatch, ENV, value)
        assert _kernels(fn) == [want], value
    ref.set_env(monkeypatch, ENV, "0")
    assert _kernels(fn)[0] != BD


def test_bd_w4a4_rule_static_scale_and_x_dtypes(monkeypatch):
    """A static activation scale and fp16 x route as the dynamic scale with bf16 x does; fp32 x keeps the
    block-diagonal kernel under every rule (the 16-bit kernel would run two CTAs per SM for it, not two teams)."""
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch)
    for n, k in ((6144, 4096), (4096, 12288)):  # Qwen3-8B q/k/v ("w4a4kt" only), 8B down (both rules)
        p, s, gs = ref.random_gpu_weights(n, k)
        for dtype in (torch.bfloat16, torch.float16, torch.float32):
            x = torch.randn((2, k), generator=torch.Generator().manual_seed(2)).to(dtype).cuda()
            for act_gs in (None, 0.0013):
                def fn():
                    return nc.gemv(p, s, gs, x, "nvfp4", act_gs)

                k_rule = TEAMS if k >= 12288 else BD
                for value, want in ((None, TEAMS), ("w4a4k", k_rule), ("w4a4kt", TEAMS), ("w4a4bd", BD)):
                    ref.set_env(monkeypatch, ENV, value)
                    want = BD if dtype == torch.float32 else want
                    assert _kernels(fn) == [want], (n, k, dtype, act_gs, value)


def test_bd_w4a4_rule_follows_the_teams_switch(monkeypatch):
    """The rule moves a call only where the 16-bit kernel takes two teams (gemv_launch.cuh teams_here):
    RESET_NATIVE_GEMV_TEAMS=1 (never) and =measured (W4A4 never where two CTAs fit) keep the block-diagonal kernel,
    "2" moves as the default does."""
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch)
    for n, k in ((6144, 4096), (4096, 12288)):
        p, s, gs = ref.random_gpu_weights(n, k)
        x = torch.randn((2, k), generator=torch.Generator().manual_seed(2)).to(torch.bfloat16).cuda()
        for teams, want in ((None, TEAMS), ("2", TEAMS), ("1", BD), ("measured", BD)):
            ref.set_env(monkeypatch, "RESET_NATIVE_GEMV_TEAMS", teams)
            assert _kernels(lambda: nc.gemv(p, s, gs, x, "nvfp4")) == [want], (n, k, teams)


@pytest.mark.parametrize("n,k", [(4096, 12288), (6144, 4096)])
def test_bd_w4a4_rule_graph_replay(n, k, monkeypatch):
    """Captured under the default (two teams: Qwen3-8B down and q/k/v at M = 2) and under "w4a4bd" (the
    block-diagonal kernel), replayed after x changes: equal to eager calls under the same rule."""
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch)
    p, s, gs = ref.random_gpu_weights(n, k)
    x, bias, residual = ref.gemv_inputs(n, k, 2, torch.bfloat16)

    def fn():
        return nc.gemv(p, s, gs, x, "nvfp4", None, bias, residual)

    for capture, eager, want in ((None, "w4a4kt", TEAMS), ("w4a4bd", "w4a4bd", BD)):
        ref.set_env(monkeypatch, ENV, capture)
        assert _kernels(fn) == [want], capture
        ref.assert_graph_replay_matches_eager(monkeypatch, fn, x, ENV, eager)


# (n, k, rule): moved shapes (by the default too), each a bound of its rule: K = 12288 with a partial tile (n = 200), K
# = 16384, and 265 row tiles at K = 4096 (a partial last tile, the second team of the last CTA without one).
MOVED = [(200, 12288, "w4a4k"), (72, 16384, "w4a4k"), (16 * SLOTS + 8, 4096, "w4a4kt")]


@pytest.mark.parametrize("n,k,rule", MOVED)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_bd_w4a4_rule_fp64(n, k, rule, dtype, monkeypatch):
    """The moved call (two teams: the default and the rule) and "w4a4bd" (block-diagonal) within the fp64 bound, bias
    and residual on."""
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch)
    p, s, gs = ref.random_gpu_weights(n, k)
    w64 = ref.dequantize(p.cpu().numpy(), s.cpu().numpy(), np.float32(gs)).astype(np.float64)
    x, bias, residual = ref.gemv_inputs(n, k, 2, dtype)

    def fn():
        return nc.gemv(p, s, gs, x, "nvfp4", None, bias, residual)

    for value, want in (("w4a4bd", BD), (None, TEAMS), (rule, TEAMS)):
        ref.set_env(monkeypatch, ENV, value)
        assert _kernels(fn) == [want], value
        ref.poison_next_block(2 * n * 4)
        y = fn()
        ref.check_vs_fp64_weights(y, x, w64, "nvfp4", bias, residual)
