"""The block-diagonal NVFP4 GEMV's register-path variants (RESET_NATIVE_GEMV_BD_SMALL, gemv_bd_kernel.cuh): "c" = the
tile epilogue as one output per thread (no unrolled loop), "b" = x staged two units at a time (both loads in flight),
"3" = three CTAs per SM (80 registers, the slot refilled after the second block's decode); "cb" is the default since
session 10 and "legacy" the kernel before. Each row tile is still summed by one CTA in the same order, so every
variant must give the default kernel's bits exactly (and so the ring kernel's, which keeps the legacy form), and stay
within the fp64 bound; also replayed in a CUDA graph (the same bits every replay). The W4A4 kernels take the cb form
too since session 11 (RESET_NATIVE_GEMV_BD_SMALL_W4A4=legacy: the form before; the fused kernels' switch is tested in
tests/test_fused_gemv.py). GPU tests skip without a device."""
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

VARIANTS = ("legacy", "c", "b", "cb", "3", "c3", "b3", "cb3")


@pytest.fixture(autouse=True)
def _default_rules(monkeypatch):
    for name in ("RESET_NATIVE_GEMV_RING", "RESET_NATIVE_GEMV_BD", "RESET_NATIVE_GEMV_KSPLIT",
                 "RESET_NATIVE_GEMV_BD_SMALL", "RESET_NATIVE_GEMV_BD_SMALL_W4A4", "RESET_NATIVE_GEMV_BD_SMALL_FUSED"):
        monkeypatch.delenv(name, raising=False)


def _fp64_check(y, x, w, activation, bias=None, residual=None):
    """ref.check_vs_fp64_weights with w the dequantized weights in fp64 (made once per shape by _weights)."""
    ref.check_vs_fp64_weights(y, x, w, activation, bias, residual, f32_eps=2.0**-24)


def tiny_block_x(m, k, gen, zero_at):
    """bf16 x on the GPU whose 16-element blocks span 2^-20 .. 2^10 (the per-block power-of-two factors of bf16 x),
    with an all-zero block at column zero_at."""
    mag = 2.0 ** torch.randint(-20, 11, (m, k // 16, 1), generator=gen).float()
    xr = (torch.randn((m, k // 16, 16), generator=gen) * mag).reshape(m, k)
    xr[:, zero_at:zero_at + 16] = 0.0
    return xr.to(torch.bfloat16).cuda()


def _weights(n, k, seed):
    """Packed weights and scales on the GPU (its quantizer equals the CPU reference bit for bit), global scale,
    the fp64 dequantized weights and the generator for x."""
    gen = torch.Generator().manual_seed(seed)
    p, s, gs = nc.quantize(torch.randn((n, k), generator=gen).cuda())
    w64 = ref.dequantize(p.cpu().numpy(), s.cpu().numpy(), gs).astype(np.float64)
    return p, s, float(gs), w64, gen


# (n, k): one tile (fewer tiles than CTAs), a partial last tile, one chunk of K, K = 5120 (5 chunks: the 3-deep
# prefetch wraps tiles mid-way), and enough tiles (K = 1024) that every CTA walks several at three CTAs per SM.
SHAPES = [(16, 4096), (200, 4096), (264, 1024), (136, 5120), (6144, 1024), (12008, 1024)]


@pytest.mark.parametrize("n,k", SHAPES)
@pytest.mark.parametrize("m", [1, 2])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_small_variants_same_bits_as_default_and_fp64(n, k, m, dtype, monkeypatch):
    monkeypatch.setenv("RESET_NATIVE_GEMV_RING", "0")  # the register path (12008 rows would take the ring by rule)
    p, s, gs, w64, gen = _weights(n, k, n + k + m)
    x = (torch.randn((m, k), generator=gen) * 3).to(dtype).cuda()
    ref.poison_next_block(m * n * 2)
    base = nc.gemv(p, s, gs, x, "bf16")
    _fp64_check(base, x, w64, "bf16")
    for variant in VARIANTS:
        monkeypatch.setenv("RESET_NATIVE_GEMV_BD_SMALL", variant)
        ref.poison_next_block(m * n * 2)
        y = nc.gemv(p, s, gs, x, "bf16")
        assert torch.equal(y, base), f"variant {variant}"
        _fp64_check(y, x, w64, "bf16")


@pytest.mark.parametrize("m", [1, 2])
@pytest.mark.parametrize("n", [1000, 16 * 200])
def test_weight_ring_gives_the_register_paths_bits(m, n, monkeypatch):
    """The ring kernel (legacy epilogue and staging) writes every row of a partial last tile, with the bits of the
    register path's default kernel (cb)."""
    k = 2048
    p, s, gs, w64, gen = _weights(n, k, 3 * n + m)
    x = torch.randn((m, k), generator=gen).to(torch.bfloat16).cuda()
    bias = torch.randn(n, generator=gen).to(torch.bfloat16).cuda()
    monkeypatch.setenv("RESET_NATIVE_GEMV_RING", "0")
    want = nc.gemv(p, s, gs, x, "bf16", None, bias)
    monkeypatch.setenv("RESET_NATIVE_GEMV_RING", "1")
    ref.poison_next_block(m * n * 2)
    y = nc.gemv(p, s, gs, x, "bf16", None, bias)
    assert torch.equal(y, want)
    _fp64_check(y, x, w64, "bf16", bias)


@pytest.mark.parametrize("m", [1, 2])
def test_small_variants_with_bias_residual_and_tiny_blocks(m, monkeypatch):
    n, k = 312, 3072
    p, s, gs, w64, gen = _weights(n, k, 77 + m)
    x = tiny_block_x(m, k, gen, zero_at=32)
    bias = torch.randn(n, generator=gen).to(torch.bfloat16).cuda()
    residual = torch.randn((m, n), generator=gen).to(torch.bfloat16).cuda()
    base = nc.gemv(p, s, gs, x, "bf16", None, bias, residual)
    for variant in VARIANTS:
        monkeypatch.setenv("RESET_NATIVE_GEMV_BD_SMALL", variant)
        y = nc.gemv(p, s, gs, x, "bf16", None, bias, residual)
        assert torch.equal(y, base), f"variant {variant}"
        _fp64_check(y, x, w64, "bf16", bias, residual)


@pytest.mark.parametrize("n,k", [(200, 4096), (136, 5120), (100, 1008)])
def test_calls_the_switch_does_not_take_are_unchanged(n, k, monkeypatch):
    """W4A4, 3 tokens and K % 1024 != 0 (no fast path) keep their kernels under every value; unknown values give
    the default (and every call the same bits and the fp64 bound)."""
    p, s, gs, w64, gen = _weights(n, k, 5 * n + k)
    cases = [(torch.randn((m, k), generator=gen).to(torch.bfloat16).cuda(), act)
             for m, act in ((1, "nvfp4"), (2, "nvfp4"), (3, "bf16"), (1, "bf16"))]
    base = [nc.gemv(p, s, gs, x, act) for x, act in cases]
    for variant in VARIANTS + ("1", "w", "c3 ", "legacy3", ""):
        monkeypatch.setenv("RESET_NATIVE_GEMV_BD_SMALL", variant)
        for (x, act), want in zip(cases, base):
            y = nc.gemv(p, s, gs, x, act)
            assert torch.equal(y, want), f"variant {variant}, m {x.shape[0]}, {act}"
            _fp64_check(y, x, w64, act)


# W4A4 (every K takes the block-diagonal kernel at M <= 2 with RESET_NATIVE_GEMV_BD=w4a4bd): one tile, a partial
# last tile, 5 chunks, many tiles at one chunk, and K % 1024 != 0 (no fast path: register loads without the 16-byte
# fast path, same forms).
W4A4_SHAPES = [(16, 4096), (200, 4096), (136, 5120), (6144, 1024), (100, 1008), (264, 3056)]


@pytest.mark.parametrize("n,k", W4A4_SHAPES)
@pytest.mark.parametrize("m", [1, 2])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_w4a4_forms_give_the_same_bits(n, k, m, dtype, monkeypatch):
    """RESET_NATIVE_GEMV_BD_SMALL_W4A4: unset / junk = cb (default), "legacy" = the form before session 11; both with
    the device-computed activation scale and a static one, with bias and residual; the same bits and the fp64 bound."""
    monkeypatch.setenv("RESET_NATIVE_GEMV_RING", "0")
    # the block-diagonal kernel at every shape here (since session 21 W4A4 with 16-bit x at M = 2 takes two teams at
    # 6144 x 1024 by default: cuda/nvfp4/gemv_bd_w4a4_rule.cuh)
    monkeypatch.setenv("RESET_NATIVE_GEMV_BD", "w4a4bd")
    p, s, gs, w64, gen = _weights(n, k, 7 * n + k + m)
    x = (torch.randn((m, k), generator=gen) * 3).to(dtype).cuda()
    bias = torch.randn(n, generator=gen).to(dtype).cuda()
    residual = torch.randn((m, n), generator=gen).to(dtype).cuda()
    static_gs = float(x.float().abs().max()) / 2688.0 * 1.5
    for act_gs, extra in ((None, ()), (None, (bias, residual)), (static_gs, (bias,))):
        monkeypatch.setenv("RESET_NATIVE_GEMV_BD_SMALL_W4A4", "legacy")
        want = nc.gemv(p, s, gs, x, "nvfp4", act_gs, *extra)
        for form in (None, "cb", "x", "legacy"):
            if form is None:
                monkeypatch.delenv("RESET_NATIVE_GEMV_BD_SMALL_W4A4")
            else:
                monkeypatch.setenv("RESET_NATIVE_GEMV_BD_SMALL_W4A4", form)
            ref.poison_next_block(m * n * 4)
            y = nc.gemv(p, s, gs, x, "nvfp4", act_gs, *extra)
            assert torch.equal(y, want), f"form {form!r}, act_gs {act_gs}, {len(extra)} extras"
        if act_gs is None and not extra:
            _fp64_check(want, x, w64, "nvfp4")
    # x not 16-byte aligned (the element-wise staging loads), in both forms
    xu = torch.empty(m * k + 1, dtype=dtype, device="cuda")[1:].view(m, k)
    xu.copy_(x)
    for form in ("legacy", "cb"):
        monkeypatch.setenv("RESET_NATIVE_GEMV_BD_SMALL_W4A4", form)
        assert torch.equal(nc.gemv(p, s, gs, xu, "nvfp4"), nc.gemv(p, s, gs, x, "nvfp4")), f"form {form}"


@pytest.mark.parametrize("variant", VARIANTS)
def test_small_variants_in_a_cuda_graph_give_the_same_bits_every_replay(variant, monkeypatch):
    monkeypatch.setenv("RESET_NATIVE_GEMV_BD_SMALL", variant)
    gen = torch.Generator().manual_seed(len(variant))
    n, k = 6144, 4096
    packed, scales, gs = nc.quantize(torch.randn((n, k), generator=gen).cuda())
    x = torch.randn((2, k), generator=gen).to(torch.bfloat16).cuda()
    x1 = x[:1].clone()
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        nc.gemv(packed, scales, gs, x, "bf16")  # warm-up outside capture
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):  # a chain of PDL launches: each waits for the previous one's output
        y2 = nc.gemv(packed, scales, gs, x, "bf16")
        y1 = nc.gemv(packed, scales, gs, x1, "bf16")
        y2b = nc.gemv(packed, scales, gs, x, "bf16")
    monkeypatch.delenv("RESET_NATIVE_GEMV_BD_SMALL")
    want2, want1 = nc.gemv(packed, scales, gs, x, "bf16"), nc.gemv(packed, scales, gs, x1, "bf16")
    for _ in range(5):
        y2.zero_(), y1.zero_(), y2b.zero_()
        g.replay()
        torch.cuda.synchronize()
        assert torch.equal(y2, want2) and torch.equal(y2b, want2) and torch.equal(y1, want1)
    x.copy_(torch.randn((2, k), generator=gen).to(torch.bfloat16))
    x1.copy_(x[:1])
    g.replay()
    torch.cuda.synchronize()
    assert torch.equal(y2, nc.gemv(packed, scales, gs, x, "bf16"))
    assert torch.equal(y1, nc.gemv(packed, scales, gs, x1, "bf16"))


@pytest.mark.parametrize("m", [1, 2])
def test_fused_kernels_keep_the_plain_calls_bits_under_the_switch(m, monkeypatch):
    """The fused RMSNorm / SiLU kernels keep the default kernel; the plain GEMV under the switch gives its bits."""
    pytest.importorskip("transformers")
    from reset_native import _nvfp4_fused
    from reset_native.integrations import fused_mlp, fused_norm

    gen = torch.Generator().manual_seed(40 + m)
    n, k = 1024, 4096
    packed, scales, gs = nc.quantize((torch.randn((n, k), generator=gen) * 0.05).cuda())
    x = (torch.randn((m, k), generator=gen) * 3).to(torch.bfloat16).cuda()
    nw = (1 + 0.3 * torch.randn(k, generator=gen)).to(torch.bfloat16).cuda()
    fused_norm_y = _nvfp4_fused.gemv_rms_norm(packed, scales, gs, x, nw, 1e-6)
    fused_silu_y = _nvfp4_fused.gemv_fused(packed, scales, gs, x, nw, 1e-6, silu_mul=True)
    for variant in VARIANTS:
        monkeypatch.setenv("RESET_NATIVE_GEMV_BD_SMALL", variant)
        y = nc.gemv(packed, scales, gs, fused_norm.rms_norm(x, nw, 1e-6), "bf16")
        assert torch.equal(y, fused_norm_y)
        assert torch.equal(fused_mlp.silu_mul(y[:, :n // 2], y[:, n // 2:]), fused_silu_y)
        assert torch.equal(_nvfp4_fused.gemv_rms_norm(packed, scales, gs, x, nw, 1e-6), fused_norm_y)
