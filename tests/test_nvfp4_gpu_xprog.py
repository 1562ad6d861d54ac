"""NVFP4 GEMV with other x stagings (gemv_kernel PROG, RESET_NATIVE_GEMV_XPROG=1 progressive through registers, =2
progressive through cp.async for 16-bit x at A16, else as 1, =3 all of x through cp.async, also in the 3-CTA kernel,
for 16-bit x at A16, else the plain staging). Progressive: the whole-x 16-bit kernels
(two CTAs per SM, two teams, split K) stage chunk 0 of x before the first MMA and each further chunk during the
first tile's steps (slices of one chunk stage it at once). Only where the bytes land in shared memory changes, so every output must equal the switch-off
call bit for bit, and both must agree with fp64 math. GPU tests skip without a device."""
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

# (n, k, m) and the kernel each runs (H100/H200: 132 SMs, 227 KiB of shared memory per CTA):
SHAPES = [
    (200, 4096, 3),    # two CTAs per SM, 8-token MMA side, a partial last tile
    (200, 4096, 8),    # two CTAs per SM, 8 tokens: 2 staging units per thread and chunk (the most PROG takes)
    (8, 4096, 16),     # two teams, the second without a tile (it still joins every staging barrier)
    (200, 4096, 16),   # two teams, odd tile count
    (136, 5120, 12),   # two teams, 5 chunks, padded token side
    (200, 2048, 16),   # two CTAs per SM at 16 tokens: 4 units per thread and chunk (2 held across the step)
    (64, 12288, 4),    # split K (6 slices of 2 chunks)
    (64, 12288, 16),   # split K at 16 tokens (4 units per thread and chunk)
    (48, 9216, 8),     # split K, uneven slices (1 or 2 chunks: one-chunk slices stage at once)
    (40, 4160, 5),     # K % 1024 != 0: the general path, which PROG does not touch
]


@functools.lru_cache(maxsize=16)
def _ref_weights(n, k):
    return ref.quantize(torch.randn((n, k), generator=torch.Generator().manual_seed(n * 7 + k)).numpy())


def _call(p, s, gs, x, activation, bias, residual, mode, monkeypatch):
    monkeypatch.setenv("RESET_NATIVE_GEMV_XPROG", mode)
    return nc.gemv(p, s, gs, x, activation, None, bias, residual)


def _check_vs_fp64(y, packed, scales, gs, x, activation, bias, residual):
    """|y - fp64| within the output rounding plus (K/16 + 16) fp32 ulps of sum |x w| (tests/test_nvfp4_cuda.py's bound)."""
    k = x.shape[1]
    x32 = x.float().cpu().numpy()
    x64 = ref.dequantize(*ref.quantize(x32)).astype(np.float64) if activation == "nvfp4" else x32.astype(np.float64)
    w = ref.dequantize(packed, scales, gs).astype(np.float64)
    yref = x64 @ w.T + bias.double().cpu().numpy()[None, :] + residual.double().cpu().numpy()
    abs_sum = np.abs(x64) @ np.abs(w).T + np.abs(residual.double().cpu().numpy())
    out_eps = {torch.float32: 0.0, torch.float16: 2.0**-11, torch.bfloat16: 2.0**-8}[y.dtype]
    yd = y.double().cpu().numpy()
    assert np.isfinite(yd).all(), "unwritten (poisoned) or non-finite outputs"
    tol = out_eps * np.abs(yref) + 2.0**-24 * (k / 16 + 16) * abs_sum + 1e-30
    err = np.abs(yd - yref)
    assert (err <= tol).all(), f"max err/tol {float((err / tol).max()):.3g}"


@pytest.mark.parametrize("n,k,m", SHAPES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("activation", ["bf16", "nvfp4"])
def test_progressive_staging_same_bits_and_fp64(n, k, m, dtype, activation, monkeypatch):
    monkeypatch.delenv("RESET_NATIVE_GEMV_RING", raising=False)
    monkeypatch.delenv("RESET_NATIVE_GEMV_KSPLIT", raising=False)
    monkeypatch.delenv("RESET_NATIVE_GEMV_TEAMS", raising=False)
    packed, scales, gs = _ref_weights(n, k)
    p, s = torch.from_numpy(packed).cuda(), torch.from_numpy(scales).cuda()
    gen = torch.Generator().manual_seed(n + k + m)
    x = torch.randn((m, k), generator=gen).to(dtype).cuda()
    bias = torch.randn(n, generator=gen).to(dtype).cuda()
    residual = torch.randn((m, n), generator=gen).to(dtype).cuda()
    torch.full(((m * n * 4 + (1 << 20)) // 4,), float("nan"), device="cuda")  # poison the allocator's next block
    y_off = _call(p, s, float(gs), x, activation, bias, residual, "0", monkeypatch)
    for mode in ("1", "2", "3"):
        y_on = _call(p, s, float(gs), x, activation, bias, residual, mode, monkeypatch)
        assert torch.equal(y_on, y_off), f"mode {mode}"
    _check_vs_fp64(y_off, packed, scales, float(gs), x, activation, bias, residual)


@pytest.mark.parametrize("mode", ["1", "2", "3"])
@pytest.mark.parametrize("n,k,m", [(200, 4096, 16), (64, 12288, 4), (200, 4096, 4)])
def test_progressive_staging_in_cuda_graph(n, k, m, mode, monkeypatch):
    """Captured with the switch on (the choice made at capture holds at replay): replays equal eager switch-off calls,
    also after x changes in place (the graph re-stages it) and when replayed twice."""
    monkeypatch.delenv("RESET_NATIVE_GEMV_RING", raising=False)
    monkeypatch.delenv("RESET_NATIVE_GEMV_KSPLIT", raising=False)
    packed, scales, gs = _ref_weights(n, k)
    p, s = torch.from_numpy(packed).cuda(), torch.from_numpy(scales).cuda()
    gen = torch.Generator().manual_seed(5)
    x = torch.randn((m, k), generator=gen).to(torch.bfloat16).cuda()
    monkeypatch.setenv("RESET_NATIVE_GEMV_XPROG", mode)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        nc.gemv(p, s, float(gs), x, "bf16")  # warm-up outside the capture
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        y = nc.gemv(p, s, float(gs), x, "bf16")
    monkeypatch.setenv("RESET_NATIVE_GEMV_XPROG", "0")
    for _ in range(2):
        x.copy_(torch.randn((m, k), generator=gen).to(torch.bfloat16).cuda())
        graph.replay()
        torch.cuda.synchronize()
        assert torch.equal(y, nc.gemv(p, s, float(gs), x, "bf16"))


@pytest.mark.parametrize("mode", ["1", "2", "3"])
def test_progressive_staging_deterministic_across_calls(mode, monkeypatch):
    """Ten calls with the switch on give one result (the barriers order every staged chunk before its use)."""
    monkeypatch.setenv("RESET_NATIVE_GEMV_XPROG", mode)
    monkeypatch.delenv("RESET_NATIVE_GEMV_RING", raising=False)
    packed, scales, gs = _ref_weights(200, 4096)
    p, s = torch.from_numpy(packed).cuda(), torch.from_numpy(scales).cuda()
    x = torch.randn((16, 4096), generator=torch.Generator().manual_seed(3)).to(torch.bfloat16).cuda()
    first = nc.gemv(p, s, float(gs), x, "bf16")
    for _ in range(9):
        assert torch.equal(nc.gemv(p, s, float(gs), x, "bf16"), first)


@pytest.mark.parametrize("n,m", [(8464, 3), (8464, 4), (8464, 8), (8464, 16), (4800, 4), (4800, 8)])
@pytest.mark.parametrize("activation", ["bf16", "nvfp4"])
def test_progressive_staging_many_tiles_same_bits(n, m, activation, monkeypatch):
    """Layers with more than 4 row tiles per SM (8464 rows): persistent CTAs walk several tiles, W4A4 does not split
    K there, so its whole-x kernels (two CTAs, two teams) take PROG too; 4800 rows (300 tiles) run the 3-CTA kernel
    at M <= 8 (mode 3 only). Random FP4 bytes and scales 2^-3..2^3."""
    monkeypatch.delenv("RESET_NATIVE_GEMV_RING", raising=False)
    monkeypatch.delenv("RESET_NATIVE_GEMV_KSPLIT", raising=False)
    k = 4096
    gen = torch.Generator(device="cuda").manual_seed(m)
    p = torch.randint(0, 256, (n, k // 2), generator=gen, device="cuda", dtype=torch.uint8)
    s = torch.randint(0x20, 0x51, (n, k // 16), generator=gen, device="cuda", dtype=torch.uint8)
    x = torch.randn((m, k), generator=gen, device="cuda").to(torch.bfloat16)
    bias = torch.randn(n, generator=gen, device="cuda").to(torch.bfloat16)
    y_off = _call(p, s, 0.01, x, activation, bias, None, "0", monkeypatch)
    assert torch.isfinite(y_off).all()
    for mode in ("1", "2", "3"):
        assert torch.equal(_call(p, s, 0.01, x, activation, bias, None, mode, monkeypatch), y_off), f"mode {mode}"


def test_async_staging_unaligned_x_falls_back(monkeypatch):
    """x not 16-byte aligned (a view at an odd element offset): the cp.async kernels stage all of x the plain way
    (their copies need aligned sources); same bits as the switch off."""
    monkeypatch.delenv("RESET_NATIVE_GEMV_RING", raising=False)
    packed, scales, gs = _ref_weights(200, 4096)
    p, s = torch.from_numpy(packed).cuda(), torch.from_numpy(scales).cuda()
    base = torch.randn(8 * 4096 + 1, generator=torch.Generator().manual_seed(9)).to(torch.bfloat16).cuda()
    x = base[1:].view(8, 4096)
    y_off = _call(p, s, float(gs), x, "bf16", None, None, "0", monkeypatch)
    for mode in ("2", "3"):
        assert torch.equal(_call(p, s, float(gs), x, "bf16", None, None, mode, monkeypatch), y_off), f"mode {mode}"
