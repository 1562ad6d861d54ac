"""NVFP4 GEMV: W4A4's split K for few row tiles (cuda/nvfp4/gemv_split.cuh choose_ksplit; session 20 helper
w4a4split31). From 4 tokens W4A4 splits K by 4 where there are fewer than 4 row tiles per SM and either at least 8 K
chunks (kSplitW4A4MinChunks: Qwen3-32B o, K = 8192) or fewer row tiles than SMs (n = 200: 13 tiles). At K = 4096 with
one or more row tiles per SM (Qwen3-8B q/k/v, 384 tiles, and o, 256) it no longer splits: with the fast x quantizer
and two teams the unsplit kernel was faster at M = 4..8 and level at 16 (H200, 2026-11-29); two teams run instead.
From 14 tokens (kSplitW4A4OneTileMinTokens, session 23) shapes with at most one row tile per CTA slot (<= 2 x SMs
tiles: 8B o) split by 4 again (8B o at M = 16 14.0 vs 15.4 us); 8B q/k/v (384 tiles) does not.
RESET_NATIVE_GEMV_KSPLIT keeps its meaning: "4" splits those shapes by 4 again, "1" turns every split off. Both
kernels are within the fp64 bound on a moved shape. Instances for 132 SMs (bench/probes/gemv_teams_routing.py). GPU
tests skip without a device."""
from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nvfp4_gpu_reference as ref  # noqa: E402

from reset_native import _nvfp4_cuda as nc  # noqa: E402

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.gpu

TEAMS, SPLIT4 = (1, 0, 2), (2, 1, 1)  # (MINB, SPLIT, TEAMS) of the 16-bit kernel
_workspace_bytes = ref.gemv_workspace_bytes


def _x(m, k, dtype=torch.bfloat16):
    return torch.randn((m, k), generator=torch.Generator().manual_seed(m + k)).to(dtype).cuda()


# (n, k, m, instance, slices): Qwen3-8B q/k/v (6144 x 4096: 4 chunks, 384 row tiles) at M = 4, 8, 16 and o (4096 x
# 4096: 256 tiles) at M = 8..13 moved from split K by 4 to two teams, from M = 14 split again up to 264 tiles (2 x 132
# SMs; 265 tiles: two teams); 32B o (5120 x 8192: 8 chunks, 320 tiles, x under kSplitMinWholeBytes at M <= 8) and
# n = 200 at K = 4096 (13 tiles) keep the split.
RULE = [
    (6144, 4096, 4, TEAMS, 1),
    (6144, 4096, 8, TEAMS, 1),
    (6144, 4096, 16, TEAMS, 1),
    (4096, 4096, 8, TEAMS, 1),
    (4096, 4096, 13, TEAMS, 1),
    (4096, 4096, 14, SPLIT4, 4),
    (4096, 4096, 16, SPLIT4, 4),
    (4224, 4096, 16, SPLIT4, 4),
    (4240, 4096, 16, TEAMS, 1),
    (5120, 8192, 4, SPLIT4, 4),
    (5120, 8192, 8, SPLIT4, 4),
    (200, 4096, 5, SPLIT4, 4),
]


@pytest.mark.parametrize("n,k,m,instance,slices", RULE)
def test_w4a4_split_rule_kernel_choice(n, k, m, instance, slices, monkeypatch):
    """The kernel the rule runs (bf16 and fp16 x) and the split workspace the op asks for; A16 (never split
    automatically below 8 K chunks) does not split at K = 4096 either."""
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch, "RESET_NATIVE_GEMV_16_FORM", "RESET_NATIVE_GEMV_SPLIT_AMAX")
    p, s, gs = ref.random_gpu_weights(n, k)
    for dtype in (torch.bfloat16, torch.float16):
        x = _x(m, k, dtype)
        assert ref.gemv16_instances(lambda: nc.gemv(p, s, gs, x, "nvfp4")) == [instance], dtype
        assert _workspace_bytes(p, s, x, "nvfp4") == (slices * m * n * 4 if slices > 1 else 0), dtype
        if k < 8192:
            assert _workspace_bytes(p, s, x, "bf16") == 0, dtype


@pytest.mark.parametrize("n,k,m,instance,slices", RULE)
def test_ksplit_switch_keeps_its_meaning(n, k, m, instance, slices, monkeypatch):
    """RESET_NATIVE_GEMV_KSPLIT=4: split by 4 on every row (the moved ones as before the rule changed); =1: no split."""
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch, "RESET_NATIVE_GEMV_16_FORM", "RESET_NATIVE_GEMV_SPLIT_AMAX")
    p, s, gs = ref.random_gpu_weights(n, k)
    x = _x(m, k)
    monkeypatch.setenv("RESET_NATIVE_GEMV_KSPLIT", "4")
    assert ref.gemv16_instances(lambda: nc.gemv(p, s, gs, x, "nvfp4")) == [SPLIT4]
    assert _workspace_bytes(p, s, x, "nvfp4") == 4 * m * n * 4
    monkeypatch.setenv("RESET_NATIVE_GEMV_KSPLIT", "1")
    assert [inst[1] for inst in ref.gemv16_instances(lambda: nc.gemv(p, s, gs, x, "nvfp4"))] == [0]
    assert _workspace_bytes(p, s, x, "nvfp4") == 0


@functools.lru_cache(maxsize=2)
def _dequantized(n, k):
    """random_gpu_weights(n, k) dequantized on the host (fp64): the host quantizer is slow at 4096 x 4096."""
    p, s, gs = ref.random_gpu_weights(n, k)
    return ref.dequantize(p.cpu().numpy(), s.cpu().numpy(), np.float32(gs)).astype(np.float64)


# Qwen3-8B o at M = 5 (8 token columns, bias and residual; two teams by default) and 16 (16 columns; split by 4 by
# default), under the rule, with RESET_NATIVE_GEMV_KSPLIT=4 and with =1: each within the fp64 bound (they differ by
# the fp32 summation order only).
@pytest.mark.parametrize("m", [5, 16])
@pytest.mark.parametrize("ksplit", [None, "4", "1"])
def test_moved_shape_vs_fp64(m, ksplit, monkeypatch):
    instance = SPLIT4 if ksplit == "4" or (ksplit is None and m >= 14) else TEAMS
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch, "RESET_NATIVE_GEMV_16_FORM", "RESET_NATIVE_GEMV_SPLIT_AMAX")
    ref.set_env(monkeypatch, "RESET_NATIVE_GEMV_KSPLIT", ksplit)
    n, k = 4096, 4096
    p, s, gs = ref.random_gpu_weights(n, k)
    gen = torch.Generator().manual_seed(m)
    x = torch.randn((m, k), generator=gen).to(torch.bfloat16).cuda()
    bias = torch.randn(n, generator=gen).to(torch.bfloat16).cuda()
    residual = torch.randn((m, n), generator=gen).to(torch.bfloat16).cuda()

    def fn():
        return nc.gemv(p, s, gs, x, "nvfp4", None, bias, residual)

    assert ref.gemv16_instances(fn) == [instance]
    ref.poison_next_block(m * n * 4)
    y = fn()
    ref.check_vs_fp64_weights(y, x, _dequantized(n, k), "nvfp4", bias, residual)
    assert torch.equal(fn(), y)  # the same bits on every call
