"""NVFP4 GEMV: the two-team default where x would fit two (or three) CTAs per SM (session 19 helper teams27;
cuda/nvfp4/gemv_launch.cuh kTeamsDefault): two warp teams sharing one staged x at 2..16 tokens with 16-bit x, at A16
with at most 12 row tiles per SM (any K), with W4A4 without a K or tiles limit. RESET_NATIVE_GEMV_TEAMS=measured keeps
session 10's rule (kTeamsMeasured: A16 at 4..8 tokens, K <= 5120, <= 12 row tiles per SM; W4A4 never), "1" never
takes two teams, "2" wherever x fits whole. A team computes a row tile exactly as a CTA does (the same chunk order per
warp, the same 8-warp reduction in the tile epilogue), so the default gives "measured"'s outputs bit for bit, and both
are within the fp64 bound. Which kernel runs is read from the CUDA kernel names the torch profiler records. The
instances are an H100 / H200's (132 SMs, 227 KiB of opt-in shared memory), as bench/probes/gemv_teams_routing.py
models them. GPU tests skip without a device."""
from __future__ import annotations

import functools
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nvfp4_gpu_reference as ref  # noqa: E402

from reset_native import _nvfp4_cuda as nc  # noqa: E402

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.gpu

ENV = "RESET_NATIVE_GEMV_TEAMS"


@functools.lru_cache(maxsize=8)
def _ref_weights(n, k):
    return ref.quantize(torch.randn((n, k), generator=torch.Generator().manual_seed(n * 11 + k)).numpy())


TWO_CTAS, THREE_CTAS, ONE_CTA, TEAMS, SPLIT4 = (2, 0, 1), (3, 0, 1), (1, 0, 1), (1, 0, 2), (2, 1, 1)
LIMIT = 16 * 12 * ref.H200_SMS  # rows of 12 row tiles per SM

# (activation, n, k, m, instance unset (the default), with "measured", with "1"), 132 SMs (gemv_teams_routing.py
# route(act, n, k, m, env); "2" gives TEAMS on every row but the split one): the Qwen3 rows the default moves (A16: 8B
# q/k/v at M = 3 from three CTAs per SM, 8B o / gate_up / q/k/v at M = 9, 10, 8B down (K = 12288) at M = 2, 3, 32B
# q/k/v at M = 3, 32B o (K = 8192) at M = 3 from three CTAs and at M = 4; W4A4: 8B gate_up at M = 3..10, 32B q/k/v at
# M = 8, 32B o at M = 3, 8B down at M = 3, 32B gate_up (24 row tiles per SM) at M = 6), the A16 limit of 12 row tiles
# per SM (M = 9: 16 token columns; W4A4 has none), and the rows it keeps: A16 32B gate_up (24 row tiles per SM), W4A4
# split K (32B o: fewer than 4 row tiles per SM, 8 K chunks), M = 4 (the measured rule's range) and M = 12 (x fits one
# CTA per SM: two teams under every rule). W4A4 8B q/k/v at M = 6 split K by 4 under every value until session 20
# helper w4a4split31 (gemv_split.cuh kSplitW4A4MinChunks: no W4A4 split at K = 4096 from one row tile per SM): now
# moved like 8B gate_up.
KERNEL_CHOICE = [
    ("bf16", 6144, 4096, 3, TEAMS, THREE_CTAS, THREE_CTAS),
    ("bf16", 6144, 4096, 4, TEAMS, TEAMS, THREE_CTAS),
    ("bf16", 6144, 4096, 9, TEAMS, TWO_CTAS, TWO_CTAS),
    ("bf16", 4096, 4096, 10, TEAMS, TWO_CTAS, TWO_CTAS),
    ("bf16", 24576, 4096, 9, TEAMS, TWO_CTAS, TWO_CTAS),
    ("bf16", 10240, 5120, 3, TEAMS, TWO_CTAS, TWO_CTAS),
    ("bf16", 4096, 12288, 2, TEAMS, TWO_CTAS, TWO_CTAS),
    ("bf16", 4096, 12288, 3, TEAMS, TWO_CTAS, TWO_CTAS),
    ("bf16", 5120, 8192, 3, TEAMS, THREE_CTAS, THREE_CTAS),
    ("bf16", 5120, 8192, 4, TEAMS, TWO_CTAS, TWO_CTAS),
    ("bf16", LIMIT, 4096, 9, TEAMS, TWO_CTAS, TWO_CTAS),
    ("bf16", LIMIT + 16, 4096, 9, TWO_CTAS, TWO_CTAS, TWO_CTAS),
    ("bf16", 51200, 5120, 6, TWO_CTAS, TWO_CTAS, TWO_CTAS),
    ("bf16", 6144, 4096, 12, TEAMS, TEAMS, ONE_CTA),
    ("nvfp4", 24576, 4096, 3, TEAMS, TWO_CTAS, TWO_CTAS),
    ("nvfp4", 24576, 4096, 6, TEAMS, TWO_CTAS, TWO_CTAS),
    ("nvfp4", 24576, 4096, 10, TEAMS, TWO_CTAS, TWO_CTAS),
    ("nvfp4", 10240, 5120, 8, TEAMS, TWO_CTAS, TWO_CTAS),
    ("nvfp4", 5120, 8192, 3, TEAMS, TWO_CTAS, TWO_CTAS),
    ("nvfp4", 4096, 12288, 3, TEAMS, TWO_CTAS, TWO_CTAS),
    ("nvfp4", 51200, 5120, 6, TEAMS, TWO_CTAS, TWO_CTAS),
    ("nvfp4", LIMIT + 16, 4096, 9, TEAMS, TWO_CTAS, TWO_CTAS),
    ("nvfp4", 6144, 4096, 6, TEAMS, TWO_CTAS, TWO_CTAS),
    ("nvfp4", 5120, 8192, 6, SPLIT4, SPLIT4, SPLIT4),
]


@pytest.mark.parametrize("act,n,k,m,unset,measured,never", KERNEL_CHOICE)
def test_default_kernel_choice(act, n, k, m, unset, measured, never, monkeypatch):
    """The instance unset (the default rule), with "measured" (session 10's rule), with "1" and with "2"."""
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch)
    fn = ref.random_gemv_call(n, k, m, m, act)
    always = SPLIT4 if unset == SPLIT4 else TEAMS
    # "wide" (session 19 helper teams26's opt-in) is gone: an unknown value, the default
    for value, want in ((None, unset), ("measured", measured), ("1", never), ("2", always), ("wide", unset)):
        ref.set_env(monkeypatch, ENV, value)
        assert ref.gemv16_instances(fn) == [want], value


def test_default_other_x_and_bd_switch(monkeypatch):
    """fp16 x moves as bf16 x; fp32 x never takes two teams by a rule; M = 2 reaches the 16-bit kernel at K = 4096 only
    with the block-diagonal kernel off (RESET_NATIVE_GEMV_BD=0): then A16 and W4A4 take two teams by default, two CTAs
    per SM with "measured"."""
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch)

    def inst(n, k, m, act, dtype=torch.bfloat16):
        p, s, gs = ref.random_gpu_weights(n, k)
        x = torch.randn((m, k), generator=torch.Generator().manual_seed(m)).to(dtype).cuda()
        return ref.gemv16_instances(lambda: nc.gemv(p, s, gs, x, act))

    assert inst(6144, 4096, 9, "bf16", torch.float16) == [TEAMS]
    assert inst(24576, 4096, 6, "nvfp4", torch.float16) == [TEAMS]
    assert inst(6144, 1024, 9, "bf16", torch.float32)[0][2] == 1
    assert inst(6144, 1024, 9, "nvfp4", torch.float32)[0][2] == 1
    ref.set_env(monkeypatch, ENV, "measured")
    assert inst(6144, 4096, 9, "bf16", torch.float16) == [TWO_CTAS]
    assert inst(24576, 4096, 6, "nvfp4", torch.float16) == [TWO_CTAS]
    ref.set_env(monkeypatch, ENV, None)
    monkeypatch.setenv("RESET_NATIVE_GEMV_BD", "0")
    assert inst(24576, 4096, 2, "nvfp4") == [TEAMS]
    assert inst(24576, 4096, 2, "bf16") == [TEAMS]
    ref.set_env(monkeypatch, ENV, "measured")
    assert inst(24576, 4096, 2, "nvfp4") == [TWO_CTAS]
    assert inst(24576, 4096, 2, "bf16") == [TWO_CTAS]


# (activation, n, k, m): shapes the default moves from two CTAs per SM to two teams (gemv_teams_routing.py): 8 token
# columns (M = 2, 3, 4) and 16 (M = 9, 10), K beyond 5120 (8192 at M = 4, 12288 at M = 2), a second team without a row
# tile (n = 8: one tile), a partial last tile (n = 200), W4A4 with one chunk (K = 1024: no split K at any M), at M = 3
# (no W4A4 split below 4 tokens) and at K = 8192.
SAME_BITS = [("bf16", 200, 4096, 3), ("bf16", 200, 4096, 9), ("bf16", 200, 4096, 10), ("bf16", 8, 4096, 9),
             ("bf16", 200, 8192, 4), ("bf16", 200, 12288, 2),
             ("nvfp4", 200, 4096, 3), ("nvfp4", 200, 1024, 6), ("nvfp4", 200, 1024, 10), ("nvfp4", 8, 1024, 9),
             ("nvfp4", 200, 8192, 3)]


@pytest.mark.parametrize("act,n,k,m", SAME_BITS)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_default_same_bits_as_measured_and_fp64(act, n, k, m, dtype, monkeypatch):
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch)
    packed, scales, gs = _ref_weights(n, k)
    p, s, x, bias, residual = ref.gemv_call_inputs((packed, scales, gs), m, dtype)

    def fn():
        return nc.gemv(p, s, float(gs), x, act, None, bias, residual)

    ref.set_env(monkeypatch, ENV, "measured")
    assert ref.gemv16_instances(fn) == [TWO_CTAS]
    y_measured = fn()
    ref.set_env(monkeypatch, ENV, None)
    assert ref.gemv16_instances(fn) == [TEAMS]
    ref.poison_next_block(m * n * 4)
    y_default = fn()
    ref.check_vs_fp64(y_measured, packed, scales, float(gs), x, act, bias, residual)
    ref.check_vs_fp64(y_default, packed, scales, float(gs), x, act, bias, residual)
    assert torch.equal(y_default, y_measured)


def test_default_same_bits_qwen3_w4a4_gate_up(monkeypatch):
    """W4A4 at a Qwen3-8B gate_up-like shape with 8 and 16 token columns (528 row tiles: no W4A4 split), dynamic
    activation scale (amax reduced in the kernel): the default (two teams) equals "measured" (two CTAs per SM) bit for
    bit."""
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch)
    p, s, gs = ref.random_gpu_weights(8448, 4096)
    for m in (6, 10):
        x = torch.randn((m, 4096), generator=torch.Generator().manual_seed(m)).to(torch.bfloat16).cuda()

        def fn():
            return nc.gemv(p, s, gs, x, "nvfp4")

        ref.set_env(monkeypatch, ENV, "measured")
        assert ref.gemv16_instances(fn) == [TWO_CTAS]
        want = fn()
        ref.set_env(monkeypatch, ENV, None)
        assert ref.gemv16_instances(fn) == [TEAMS]
        got = fn()
        assert torch.isfinite(got).all()
        assert torch.equal(got, want), m
