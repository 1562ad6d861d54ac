"""The block-diagonal NVFP4 GEMV's early decode (RESET_NATIVE_GEMV_BD_EARLY_DECODE, gemv_bd_kernel.cuh, session 15):
the first prefetched weight steps decoded before the PDL wait, step 0 into registers ("r") and up to three more steps
into shared memory ("r1".."r3"), or steps into shared memory only ("s2", "s3"); "0" = none (the kernel before).
The same arithmetic, only moved: every form must give the form without it ("0") bit for bit, stay within the fp64
bound, and give the same bits in a CUDA graph chain. Shapes cover fewer steps than decoded early, a CTA with more
steps than in flight (the refills of the early steps), several tiles per CTA, and x too long for the shared-memory
steps next to a second CTA (they fall back to fewer). GPU tests skip without a device."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_nvfp4_gpu_bd_small import _fp64_check, _weights  # noqa: E402

from reset_native import _nvfp4_cuda as nc  # noqa: E402

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.gpu

ENV = "RESET_NATIVE_GEMV_BD_EARLY_DECODE"
FORMS = ("r", "r1", "r2", "r3", "s2", "s3", "1", "junk")


@pytest.fixture(autouse=True)
def _default_rules(monkeypatch):
    for name in ("RESET_NATIVE_GEMV_RING", "RESET_NATIVE_GEMV_BD", "RESET_NATIVE_GEMV_KSPLIT",
                 "RESET_NATIVE_GEMV_BD_SMALL", ENV):
        monkeypatch.delenv(name, raising=False)


def _poison(n, m):
    torch.full(((m * n * 2 + (1 << 20)) // 4,), float("nan"), device="cuda")  # the allocator's next block


# (n, k): one step per CTA (fewer than decoded early), 5 steps per tile (the early steps' slots refilled), 8B q/k/v
# (two tiles on some CTAs), a partial last tile, and K = 8192 / 12288 (x of two tokens leaves room for fewer
# shared-memory steps: the fallback).
SHAPES = [(264, 1024), (136, 5120), (6144, 4096), (200, 4096), (520, 8192), (136, 12288)]


@pytest.mark.parametrize("n,k", SHAPES)
@pytest.mark.parametrize("m", [1, 2])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_early_decode_forms_give_the_bits_of_the_kernel_without(n, k, m, dtype, monkeypatch):
    p, s, gs, w64, gen = _weights(n, k, 11 * n + k + m)
    x = (torch.randn((m, k), generator=gen) * 3).to(dtype).cuda()
    bias = torch.randn(n, generator=gen).to(dtype).cuda()
    monkeypatch.setenv(ENV, "0")
    base = nc.gemv(p, s, gs, x, "bf16")
    base_bias = nc.gemv(p, s, gs, x, "bf16", None, bias)
    _fp64_check(base, x, w64, "bf16")
    for form in FORMS:
        monkeypatch.setenv(ENV, form)
        _poison(n, m)
        y = nc.gemv(p, s, gs, x, "bf16")
        assert torch.equal(y, base), f"form {form}"
        _fp64_check(y, x, w64, "bf16")
        assert torch.equal(nc.gemv(p, s, gs, x, "bf16", None, bias), base_bias), f"form {form}, bias"
    monkeypatch.delenv(ENV)
    assert torch.equal(nc.gemv(p, s, gs, x, "bf16"), base), "default"


@pytest.mark.parametrize("form", ("r", "r3", "s3"))
def test_early_decode_in_a_cuda_graph_chain_gives_the_same_bits_every_replay(form, monkeypatch):
    """A chain of PDL launches, each GEMV's x the previous GEMV's output (n == k): the early decode runs before the PDL
    wait and must not read anything the previous kernel writes."""
    gen = torch.Generator().manual_seed(len(form))
    n, k = 4096, 4096
    packed, scales, gs = nc.quantize((torch.randn((n, k), generator=gen) * 0.02).cuda())  # outputs stay O(x)
    x = torch.randn((1, k), generator=gen).to(torch.bfloat16).cuda()
    monkeypatch.setenv(ENV, form)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        nc.gemv(packed, scales, gs, x, "bf16")  # warm-up outside capture
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        y1 = nc.gemv(packed, scales, gs, x, "bf16")
        y2 = nc.gemv(packed, scales, gs, y1, "bf16")
        y3 = nc.gemv(packed, scales, gs, y2, "bf16")
    monkeypatch.setenv(ENV, "0")
    for _ in range(3):
        x.copy_(torch.randn((1, k), generator=gen).to(torch.bfloat16))
        y1.zero_(), y2.zero_(), y3.zero_()
        g.replay()
        torch.cuda.synchronize()
        w1 = nc.gemv(packed, scales, gs, x, "bf16")
        w2 = nc.gemv(packed, scales, gs, w1, "bf16")
        w3 = nc.gemv(packed, scales, gs, w2, "bf16")
        assert torch.equal(y1, w1) and torch.equal(y2, w2) and torch.equal(y3, w3)


@pytest.mark.parametrize("m", [1, 2])
@pytest.mark.parametrize("norm, silu", [(True, False), (False, True), (True, True)])
@pytest.mark.parametrize("n, k", [(96, 4096), (2080, 3072), (1056, 7168)])
def test_fused_kernels_early_decode_gives_the_same_bits(m, norm, silu, n, k, monkeypatch):
    """The fused kernels (RMSNorm prologue, SiLU * up epilogue) take two shared-memory steps (kBdEarlyOther) under
    any value but "0": the bits of the fused kernel without (and so of the separate ops, tests/test_fused_gemv.py)."""
    from reset_native import _nvfp4_fused as nf

    gen = torch.Generator().manual_seed(m * 7 + n + k)
    packed, scales, gs = nc.quantize((torch.randn((n, k), generator=gen) * 0.05).cuda())
    x = (torch.randn((m, k), generator=gen) * 3).to(torch.bfloat16).cuda()
    nw = (1 + 0.3 * torch.randn(k, generator=gen)).to(torch.bfloat16).cuda() if norm else None
    monkeypatch.setenv(ENV, "0")
    want = nf.gemv_fused(packed, scales, gs, x, nw, 1e-6, silu_mul=silu)
    for form in ("r", "s2", "r3"):
        monkeypatch.setenv(ENV, form)
        _poison(n, m)
        assert torch.equal(nf.gemv_fused(packed, scales, gs, x, nw, 1e-6, silu_mul=silu), want), f"form {form}"


@pytest.mark.parametrize("n,k", [(136, 5120), (6144, 4096), (520, 8192)])
@pytest.mark.parametrize("m", [1, 2])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_w4a4_early_decode_gives_the_same_bits(n, k, m, dtype, monkeypatch):
    """W4A4 (x quantized while staged, the activation scale computed on the device): kBdEarlyOther under any value
    but "0", the same bits and the fp64 bound."""
    p, s, gs, w64, gen = _weights(n, k, 13 * n + k + m)
    x = (torch.randn((m, k), generator=gen) * 3).to(dtype).cuda()
    monkeypatch.setenv(ENV, "0")
    want = nc.gemv(p, s, gs, x, "nvfp4")
    _fp64_check(want, x, w64, "nvfp4")
    for form in ("r", "s2"):
        monkeypatch.setenv(ENV, form)
        _poison(n, m)
        assert torch.equal(nc.gemv(p, s, gs, x, "nvfp4"), want), f"form {form}"
