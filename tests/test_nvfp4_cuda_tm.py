"""NVFP4 GEMV at 9..16 tokens with warp steps of two 16-row tiles (gemv_kernel TM = 2: each B fragment read from
shared memory feeds both tiles' MMAs): the same bits as 16-row steps (RESET_NATIVE_GEMV_TM=1), each tile keeping its
own accumulation and reduction order, and within the fp64 bound. Covers the persistent whole-x kernels (two CTAs per
SM, one CTA with one or two warp teams, fast and general load path), split K, odd row-tile counts, partial last
tiles, bias and residual. GPU tests skip without a device."""
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

_CODES = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}


@functools.lru_cache(maxsize=16)
def _ref_weights(n, k):
    return ref.quantize(torch.randn((n, k), generator=torch.Generator().manual_seed(n * 7 + k)).numpy())


def _split_bytes(p, s, x, activation):
    """Split-K workspace the launcher asks for (0: this call does not split K)."""
    n, k, m = p.shape[0], p.shape[1] * 2, x.shape[0]
    return int(nc._native.cuda_gemv_workspace_bytes(p.data_ptr(), s.data_ptr(), n, k, x.data_ptr(), _CODES[x.dtype], m,
                                                    activation == "nvfp4"))


def _gemv(p, s, gs, x, activation, bias, residual):
    n, m = p.shape[0], x.shape[0]
    ws = _split_bytes(p, s, x, activation)
    torch.full(((m * n * 4 + ws + (1 << 20)) // 4,), float("nan"), device="cuda")  # poison the allocator's next block
    return nc.gemv(p, s, gs, x, activation, None, bias, residual)


def _both(p, s, gs, x, activation, bias, residual, monkeypatch):
    monkeypatch.setenv("RESET_NATIVE_GEMV_TM", "2")  # opt-in (off by default: slower on an H200)
    tm2 = _gemv(p, s, gs, x, activation, bias, residual)
    monkeypatch.setenv("RESET_NATIVE_GEMV_TM", "1")
    tm1 = _gemv(p, s, gs, x, activation, bias, residual)
    monkeypatch.delenv("RESET_NATIVE_GEMV_TM")
    return tm2, tm1


# (n, k, m, kernel the shape takes at these tokens on an H100/H200; tiles = n / 16 rounded up)
_SHAPES = [
    (200, 2048, 12, "two CTAs per SM, 13 tiles (odd), partial last tile"),
    (24, 1024, 16, "two CTAs per SM, 2 tiles"),
    (8, 1024, 9, "two CTAs per SM, one partial tile"),
    (37, 1040, 16, "two CTAs per SM, general load path, 3 tiles"),
    (1000, 4112, 16, "one CTA per SM, general load path, 63 tiles"),
    (200, 4096, 16, "two warp teams, 13 tiles"),
    (136, 5120, 12, "two warp teams, 9 tiles, 12 tokens"),
    (8, 4096, 16, "two warp teams, one tile: the second team has none"),
    (72, 8192, 16, "split K (4 slices), 5 tiles"),
    (40, 12288, 10, "split K (6 slices), 3 tiles"),
]
_COMBOS = [(torch.bfloat16, "bf16"), (torch.float16, "bf16"), (torch.float32, "bf16"), (torch.bfloat16, "nvfp4"),
           (torch.float32, "nvfp4")]


@pytest.mark.parametrize("n,k,m,what", _SHAPES, ids=[f"{n}x{k}m{m}" for n, k, m, _ in _SHAPES])
@pytest.mark.parametrize("dtype,activation", _COMBOS, ids=[f"{str(d)[6:]}-{a}" for d, a in _COMBOS])
def test_tm2_same_bits_as_16_row_steps_and_fp64(n, k, m, what, dtype, activation, monkeypatch):
    monkeypatch.delenv("RESET_NATIVE_GEMV_RING", raising=False)
    monkeypatch.delenv("RESET_NATIVE_GEMV_KSPLIT", raising=False)
    monkeypatch.delenv("RESET_NATIVE_GEMV_TEAMS", raising=False)
    packed, scales, gs = _ref_weights(n, k)
    p, s = torch.from_numpy(packed).cuda(), torch.from_numpy(scales).cuda()
    gen = torch.Generator().manual_seed(n + k + m)
    x = torch.randn((m, k), generator=gen).to(dtype).cuda()
    bias = torch.randn(n, generator=gen).to(dtype).cuda()
    residual = torch.randn((m, n), generator=gen).to(dtype).cuda()
    if what.startswith("split K") and not (dtype == torch.float32 and activation == "bf16"):
        assert _split_bytes(p, s, x, activation) > 0, "the case must exercise split K"
    tm2, tm1 = _both(p, s, float(gs), x, activation, bias, residual, monkeypatch)
    assert torch.equal(tm2, tm1), what
    # fp64 reference: output rounding + (K/16 + 16) fp32 ulps of sum |x w| (as tests/test_nvfp4_cuda.py).
    x32 = x.float().cpu().numpy()
    x64 = ref.dequantize(*ref.quantize(x32)).astype(np.float64) if activation == "nvfp4" else x32.astype(np.float64)
    w = ref.dequantize(packed, scales, gs).astype(np.float64)
    r64 = residual.double().cpu().numpy()
    yref = x64 @ w.T + bias.double().cpu().numpy()[None, :] + r64
    abs_sum = np.abs(x64) @ np.abs(w).T + np.abs(r64)
    out_eps = {torch.float32: 0.0, torch.float16: 2.0**-11, torch.bfloat16: 2.0**-8}[dtype]
    y = tm2.double().cpu().numpy()
    assert np.isfinite(y).all(), "unwritten (poisoned) or non-finite outputs"
    tol = out_eps * np.abs(yref) + 2.0**-24 * (k / 16 + 16) * abs_sum + 1e-30
    assert (np.abs(y - yref) <= tol).all(), f"{what}: max err/tol {float((np.abs(y - yref) / tol).max()):.3g}"


# Many tiles per walker (one, two or three: 530 tiles over the H200's 264 team walkers, 625 over 264 two-CTA
# walkers), with one team per CTA too (RESET_NATIVE_GEMV_TEAMS=1) and a forced uneven split (8 chunks in 2 + 3 + 3):
# bits only, on random weight bytes (no reference quantization of a large matrix needed; scales 2^-3 .. 2^3).
@pytest.mark.parametrize("n,k,m,env", [(8472, 4096, 16, {}), (8472, 4096, 13, {"RESET_NATIVE_GEMV_TEAMS": "1"}),
                                       (10000, 1024, 11, {}), (1000, 8192, 12, {"RESET_NATIVE_GEMV_KSPLIT": "3"})])
@pytest.mark.parametrize("dtype,activation", [(torch.bfloat16, "bf16"), (torch.float16, "nvfp4")])
def test_tm2_same_bits_many_tiles_per_walker(n, k, m, env, dtype, activation, monkeypatch):
    monkeypatch.delenv("RESET_NATIVE_GEMV_RING", raising=False)
    monkeypatch.delenv("RESET_NATIVE_GEMV_KSPLIT", raising=False)
    monkeypatch.delenv("RESET_NATIVE_GEMV_TEAMS", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    gen = torch.Generator().manual_seed(n + m)
    p = torch.randint(0, 256, (n, k // 2), generator=gen, dtype=torch.uint8).cuda()
    s = torch.randint(0x20, 0x50, (n, k // 16), generator=gen, dtype=torch.uint8).cuda()
    x = torch.randn((m, k), generator=gen).to(dtype).cuda()
    bias = torch.randn(n, generator=gen).to(dtype).cuda()
    residual = torch.randn((m, n), generator=gen).to(dtype).cuda()
    if "RESET_NATIVE_GEMV_KSPLIT" in env:
        assert _split_bytes(p, s, x, activation) == 3 * m * n * 4, "the case must split K in 3"
    tm2, tm1 = _both(p, s, 0.5, x, activation, bias, residual, monkeypatch)
    assert torch.isfinite(tm2).all()
    assert torch.equal(tm2, tm1)
