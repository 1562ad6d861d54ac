"""Split K for the block-diagonal NVFP4 GEMV (cuda/nvfp4/gemv_bd_split.cuh, session 13): 1..2 tokens, plain A16
calls. CTA b takes K slice b % s of its row tiles, writes fp32 partial sums, and the slices are added in order (at one
token by the split kernel's last CTA per walker group, gemv_split_fixup.cuh; else by the reduction kernel). Checked:
the fp64 bound (as the unsplit kernel's), bias and residual, uneven slices and partial tiles, the same bits on
repeated calls and in CUDA-graph replays, the workspace the op asks for (= the slice count), and the
automatic rule against a Python re-implementation of its cost model for this GPU's SM count. GPU tests skip
without a device."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nvfp4_gpu_reference as ref  # noqa: E402
from test_nvfp4_gpu_bd_small import _fp64_check, _weights, tiny_block_x  # noqa: E402

from reset_native import _nvfp4_cuda as nc  # noqa: E402

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.gpu

SWITCHES = ("RESET_NATIVE_GEMV_RING", "RESET_NATIVE_GEMV_BD", "RESET_NATIVE_GEMV_KSPLIT", "RESET_NATIVE_GEMV_BD_SPLIT",
            "RESET_NATIVE_GEMV_BD_SMALL", "RESET_NATIVE_GEMV_BD_SMALL_W4A4", "RESET_NATIVE_GEMV_BD_SMALL_FUSED")


@pytest.fixture(autouse=True)
def _default_rules(monkeypatch):
    for name in SWITCHES:
        monkeypatch.delenv(name, raising=False)


def _slices_asked(p, s, x, activation="bf16"):
    """K slices of the call, read from the split workspace the op asks for (slices x m x n x 4 bytes)."""
    return max(1, ref.gemv_workspace_bytes(p, s, x, activation) // (x.shape[0] * p.shape[0] * 4))


def _long_k_slices(n, k, m, tiles, chunks, slots):
    """bd_long_k_slices, written out: one token from K = 16384, where the model declines, the fewest slices of 4 or 5
    chunks each (the lean split form: n % 16 == 0), none where the tiles fill at least 0.9 of one round."""
    if m != 1 or k < 16384 or slots * 0.9 <= tiles <= slots:
        return 1
    for s in range(2, min(chunks, 16, slots) + 1):
        if chunks % s == 0 and chunks // s <= 5:
            return s if chunks // s in (4, 5) and n % 16 == 0 else 1
    return 1


def _rule(n, k, m, sms):
    """bd_split_slices' cost model, written out (only where the tiles fill the two-CTA slots at least once): chunk-steps
    of the busiest CTA (two CTAs per SM), rounds of tiles x
    (chunks per slice + 0.5 for a tile epilogue) + 4 for the reduction when split; the cheapest s in 2..16 if it
    costs at most 0.9x the unsplit call, or the cheapest s dividing the chunks evenly within 1.05x of that (x of a
    slice always fits here). Where it declines or the tiles are fewer: _long_k_slices."""
    tiles, chunks, slots = -(-n // 16), k // 1024, 2 * sms
    if tiles < slots:
        return _long_k_slices(n, k, m, tiles, chunks, slots)

    def cost(s):
        per_slice = min(slots // s, tiles)
        return math.ceil(tiles / per_slice) * (math.ceil(chunks / s) + 0.5) + (4.0 if s > 1 else 0.0)

    candidates = range(2, min(chunks, 16, slots) + 1)
    best = min(candidates, key=lambda s: (cost(s), s), default=1)
    if best == 1 or cost(best) > 0.9 * cost(1):
        return _long_k_slices(n, k, m, tiles, chunks, slots)
    even = [s for s in candidates if chunks % s == 0 and cost(s) <= 1.05 * cost(best)]
    return min(even, key=lambda s: (cost(s), s)) if even else best


# (n, k): a partial tile, one tile, uneven slices (K = 5 and 7 chunks), several tiles per CTA (n = 12008, K = 2 chunks)
SHAPES = [(200, 8192), (16, 4096), (136, 5120), (264, 7168), (12008, 2048)]


@pytest.mark.parametrize("n,k", SHAPES)
@pytest.mark.parametrize("m", [1, 2])
@pytest.mark.parametrize("slices", [2, 3, 5])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_forced_slices_within_fp64_bound_and_stable(n, k, m, slices, dtype, monkeypatch):
    monkeypatch.setenv("RESET_NATIVE_GEMV_BD_SPLIT", str(slices))
    p, s, gs, w64, gen = _weights(n, k, n + k + m + slices)
    x = (torch.randn((m, k), generator=gen) * 3).to(dtype).cuda()
    assert _slices_asked(p, s, x) == min(slices, k // 1024)
    ref.poison_next_block(m * n * 2)
    y = nc.gemv(p, s, gs, x, "bf16")
    _fp64_check(y, x, w64, "bf16")
    assert torch.equal(nc.gemv(p, s, gs, x, "bf16"), y)  # the slices are added in a fixed order


@pytest.mark.parametrize("m", [1, 2])
def test_split_with_bias_residual_and_tiny_blocks(m, monkeypatch):
    n, k = 312, 6144
    p, s, gs, w64, gen = _weights(n, k, 91 + m)
    x = tiny_block_x(m, k, gen, zero_at=1024)  # the all-zero block at a slice start
    bias = torch.randn(n, generator=gen).to(torch.bfloat16).cuda()
    residual = torch.randn((m, n), generator=gen).to(torch.bfloat16).cuda()
    monkeypatch.setenv("RESET_NATIVE_GEMV_BD_SPLIT", "4")
    y = nc.gemv(p, s, gs, x, "bf16", None, bias, residual)
    _fp64_check(y, x, w64, "bf16", bias, residual)


def test_split_in_a_cuda_graph_gives_the_eager_bits(monkeypatch):
    monkeypatch.setenv("RESET_NATIVE_GEMV_BD_SPLIT", "3")
    n, k, m = 1000, 6144, 2
    p, s, gs, _, gen = _weights(n, k, 5)
    x = torch.randn((m, k), generator=gen).to(torch.bfloat16).cuda()
    want = nc.gemv(p, s, gs, x, "bf16")
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        nc.gemv(p, s, gs, x, "bf16")  # warm-up outside capture
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=stream):
            y = nc.gemv(p, s, gs, x, "bf16")
    for _ in range(3):
        y.fill_(float("nan"))
        graph.replay()
        torch.cuda.synchronize()
        assert torch.equal(y, want)


# The last six: one token at K >= 16384 (bd_long_k_slices): split where the model declines (10240 x 25600, 8192 x
# 28672, 8192 x 16384) or the tiles are fewer than one round (2560 x 25600), not at one full round (4096 x 16384) nor
# where n is not a multiple of 16 (2500 x 25600: no lean form).
@pytest.mark.parametrize("n,k", [(5120, 8192), (5120, 25600), (6144, 4096), (24576, 4096), (4096, 12288), (320, 8192),
                                 (1056, 7168), (10240, 25600), (8192, 28672), (8192, 16384), (2560, 25600),
                                 (4096, 16384), (2500, 25600)])
@pytest.mark.parametrize("m", [1, 2])
def test_automatic_rule_matches_its_cost_model(n, k, m, monkeypatch):
    """Where the model splits, the op asks for exactly its slices; elsewhere the block-diagonal rule stays out of
    the way (the call asks for what it asks with the split switched off: the 16-bit kernel's own rule)."""
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    gen = torch.Generator().manual_seed(n + k)
    # the rule reads shapes only: small stand-in tensors would do for the query, but keep the real layout
    p = torch.zeros((n, k // 2), dtype=torch.uint8, device="cuda")
    s = torch.zeros((n, k // 16), dtype=torch.uint8, device="cuda")
    x = torch.randn((m, k), generator=gen).to(torch.bfloat16).cuda()
    want = _rule(n, k, m, sms)
    if want == 1:
        monkeypatch.setenv("RESET_NATIVE_GEMV_BD_SPLIT", "0")
        want = _slices_asked(p, s, x)
        monkeypatch.delenv("RESET_NATIVE_GEMV_BD_SPLIT")
    assert _slices_asked(p, s, x) == want


def test_long_k_one_token_split_by_the_rule(monkeypatch):
    """One token at K = 16384 with 10 row tiles: the rule takes the lean split of 4 slices (bd_long_k_slices). Its
    output is within the fp64 bound, has the bits of the same split forced, and is the 16-bit kernel's (the call
    without the block-diagonal split) to rounding."""
    n, k = 160, 16384
    p, s, gs, w64, gen = _weights(n, k, 23)
    x = torch.randn((1, k), generator=gen).to(torch.bfloat16).cuda()
    assert _slices_asked(p, s, x) == 4
    ref.poison_next_block(n * 2)
    y = nc.gemv(p, s, gs, x, "bf16")
    _fp64_check(y, x, w64, "bf16")
    monkeypatch.setenv("RESET_NATIVE_GEMV_BD_SPLIT", "4")
    assert torch.equal(nc.gemv(p, s, gs, x, "bf16"), y)
    monkeypatch.setenv("RESET_NATIVE_GEMV_BD_SPLIT", "0")
    base = nc.gemv(p, s, gs, x, "bf16").float()
    assert torch.allclose(y.float(), base, rtol=2**-6, atol=1e-3 * float(base.abs().max()))


def test_switches_turn_the_split_off(monkeypatch):
    n, k = 5120, 8192  # Qwen3-32B o (not split by the rule)
    p = torch.zeros((n, k // 2), dtype=torch.uint8, device="cuda")
    s = torch.zeros((n, k // 16), dtype=torch.uint8, device="cuda")
    x = torch.randn((1, k)).to(torch.bfloat16).cuda()
    monkeypatch.setenv("RESET_NATIVE_GEMV_BD_SPLIT", "0")
    assert _slices_asked(p, s, x) == 1
    monkeypatch.setenv("RESET_NATIVE_GEMV_BD_SPLIT", "4")
    assert _slices_asked(p, s, x) == 4
    w4a4_forced = _slices_asked(p, s, x, "nvfp4")
    monkeypatch.setenv("RESET_NATIVE_GEMV_BD_SPLIT", "0")
    assert _slices_asked(p, s, x, "nvfp4") == w4a4_forced  # W4A4 keeps its own rule (choose_ksplit)
    monkeypatch.setenv("RESET_NATIVE_GEMV_BD_SPLIT", "4")
    monkeypatch.setenv("RESET_NATIVE_GEMV_BD", "0")  # no block-diagonal kernel: no block-diagonal split
    assert _slices_asked(p, s, x) == 1


def test_split_gives_the_unsplit_kernels_values_to_rounding(monkeypatch):
    """Same call split and unsplit: outputs differ only by the summation order (a few bf16 ulps at most)."""
    n, k, m = 640, 8192, 1
    p, s, gs, _, gen = _weights(n, k, 17)
    x = torch.randn((m, k), generator=gen).to(torch.bfloat16).cuda()
    monkeypatch.setenv("RESET_NATIVE_GEMV_BD_SPLIT", "0")
    base = nc.gemv(p, s, gs, x, "bf16").float()
    monkeypatch.setenv("RESET_NATIVE_GEMV_BD_SPLIT", "4")
    y = nc.gemv(p, s, gs, x, "bf16").float()
    assert torch.allclose(y, base, rtol=2**-6, atol=1e-3 * float(base.abs().max()))


def test_fused_kernels_stand_aside_where_the_plain_call_splits(monkeypatch):
    """The fused RMSNorm / SiLU kernels do not split K, so they report no kernel where the plain GEMV would (the
    model path then runs the separate ops, whose bits it compares against)."""
    from reset_native import _nvfp4_fused

    n, k = 1024, 4096
    p = torch.zeros((n, k // 2), dtype=torch.uint8, device="cuda")
    s = torch.zeros((n, k // 16), dtype=torch.uint8, device="cuda")
    x = torch.randn((1, k)).to(torch.bfloat16).cuda()
    nw = torch.ones(k, dtype=torch.bfloat16, device="cuda")
    monkeypatch.setenv("RESET_NATIVE_GEMV_BD_SPLIT", "0")
    assert _nvfp4_fused.supported(p, s, x, nw, silu_mul=True)
    monkeypatch.setenv("RESET_NATIVE_GEMV_BD_SPLIT", "2")
    assert _slices_asked(p, s, x) == 2
    assert not _nvfp4_fused.supported(p, s, x, nw, silu_mul=True)
    assert not _nvfp4_fused.supported(p, s, x, nw)
