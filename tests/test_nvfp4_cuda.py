"""NVFP4 CUDA kernels: bit-exact quantization vs an independent reference, GEMV vs fp64, custom ops in CUDA
graphs and torch.compile, bad input. GPU tests skip without a device (marker gpu)."""
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
DTYPES = [torch.float32, torch.float16, torch.bfloat16]


# ------------------------------------------------------------------ pure Python (no GPU)
def test_reference_e4m3_and_e2m1_hand_values():
    assert ref.e4m3_round(np.array([448.0, 1000.0, 1.0, 2.0**-9, 0.0, 2.0**-6, 0.0625 * 1.0625])).tolist() == [
        0x7E, 0x7E, 0x38, 0x01, 0x01, 0x08, 0x18]  # 1.0625*2^-4 is a tie between 1.0 and 1.125 -> even (1.0)
    ties = np.array([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 7.0, 0.2500001])
    assert ref.e2m1_round(ties).tolist() == [0, 2, 2, 4, 4, 6, 6, 7, 1]
    assert ref.e4m3_value(np.array([0x7E, 0x01, 0x38])).tolist() == [448.0, 2.0**-9, 1.0]


def test_module_flags_and_scale_validation():
    assert isinstance(nc.AVAILABLE, bool)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="global_scale"):
            nc._check_scale(bad, "global_scale")


def test_cpu_tensors_are_rejected():
    if not nc.AVAILABLE:
        with pytest.raises(NotImplementedError):
            nc.quantize(torch.zeros(4, 16))
        return
    with pytest.raises(ValueError, match="CUDA"):
        nc.quantize(torch.zeros(4, 16))


# ------------------------------------------------------------------ helpers
def _rand(shape, kind, gen, dtype=torch.float32):
    if kind == "normal":
        return torch.randn(shape, generator=gen)
    if kind in ("wide", "wide_gemv"):  # magnitudes over many decades, random signs, some exact zeros
        lo, hi = (-16.0, 11.0) if dtype == torch.float16 else (-30.0, 30.0)  # all the dtype can hold
        if kind == "wide_gemv" and dtype == torch.float16:
            lo, hi = -14.0, 2.0  # fp16 outputs (sums of K products) must not overflow
        mag = torch.exp(torch.empty(shape).uniform_(lo, hi, generator=gen))
        x = mag * torch.sign(torch.randn(shape, generator=gen))
        x[torch.rand(shape, generator=gen) < 0.05] = 0.0
        return x
    raise ValueError(kind)


def _ref_gemv(packed, scales, gs, x32, activation, act_gs=None, bias=None):
    w = ref.dequantize(packed, scales, gs).astype(np.float64)
    if activation == "nvfp4":
        xp, xs, xgs = ref.quantize(x32, act_gs)
        x64 = ref.dequantize(xp, xs, xgs).astype(np.float64)
    else:
        x64 = x32.astype(np.float64)
    y = x64 @ w.T
    if bias is not None:
        y = y + bias.astype(np.float64)[None, :]
    return y


# ------------------------------------------------------------------ GPU: quantize / dequantize
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["normal", "wide"])
def test_quantize_bit_exact(dtype, kind):
    gen = torch.Generator().manual_seed(hash((str(dtype), kind)) % 2**31)
    w = _rand((67, 272), kind, gen, dtype).to(dtype)
    w[3, 16:32] = 0.0  # an all-zero block: scale byte 0x01, codes 0
    w[5, :16] = -0.0
    packed, scales, gs = nc.quantize(w.cuda())
    rp, rs, rgs = ref.quantize(w.float().numpy())
    assert np.float32(gs) == rgs
    np.testing.assert_array_equal(scales.cpu().numpy(), rs)
    np.testing.assert_array_equal(packed.cpu().numpy(), rp)
    assert scales[3, 1].item() == 1 and packed[3, 8:16].eq(0).all()
    assert packed[5, :8].eq(0x88).all()  # -0 keeps its sign bit


@pytest.mark.gpu
def test_quantize_ties_and_given_scale():
    # global_scale 1 and block amax 6*2^e make every block scale an exact power of two, so x/s hits the E2M1
    # decision points exactly: each must round to the even neighbour.
    ties = torch.tensor([6.0, 0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, -0.25, -0.75, -1.25, -1.75, -2.5, -3.5, -5.0,
                         0.1])
    w = torch.stack([ties * 2.0**e for e in range(-8, 9)])
    for dtype in DTYPES:
        packed, scales, gs = nc.quantize(w.to(dtype).cuda(), global_scale=1.0)
        rp, rs, _ = ref.quantize(w.to(dtype).float().numpy(), 1.0)
        assert gs == 1.0
        np.testing.assert_array_equal(scales.cpu().numpy(), rs)
        np.testing.assert_array_equal(packed.cpu().numpy(), rp)


@pytest.mark.gpu
def test_quantize_rejects_non_finite_with_position():
    w = torch.randn(8, 32, device="cuda")
    w[2, 17] = float("nan")
    with pytest.raises(ValueError, match=r"w\[2, 17\]"):
        nc.quantize(w)
    w[2, 17] = float("inf")
    with pytest.raises(ValueError, match=r"w\[2, 17\]"):
        nc.quantize(w, global_scale=1.0)


@pytest.mark.gpu
@pytest.mark.parametrize("out_dtype", DTYPES)
def test_dequantize_matches_reference(out_dtype):
    gen = torch.Generator().manual_seed(7)
    w = _rand((33, 160), "wide", gen)
    rp, rs, rgs = ref.quantize(w.numpy())
    expect = torch.from_numpy(ref.dequantize(rp, rs, rgs)).to(out_dtype)
    ref.poison_next_block(w.numel() * 4)
    got = nc.dequantize(torch.from_numpy(rp).cuda(), torch.from_numpy(rs).cuda(), float(rgs), out_dtype)
    assert got.dtype == out_dtype and got.shape == w.shape
    assert torch.equal(got.cpu(), expect)


# ------------------------------------------------------------------ GPU: GEMV
# Shapes cover the fast (K % 1024 == 0) and general loads, N not a multiple of 16, and the three x stagings:
# whole x with two CTAs per SM, whole x with one CTA per SM (e.g. (4096, 4096) at m = 16, (64, 8208) at
# m = 8), and the chunked double buffer shared by a group of row tiles (e.g. (64, 8208) and (40, 8192) at
# m = 16; (40, 8192) also ends a group with a tile past n). (6136, 2048) has 384 row tiles: on a 132-SM card
# 16-bit x at m = 3..16 runs two warp teams (teams_where_two_ctas_fit in gemv_launch.cuh; three CTAs per SM at m = 3
# with RESET_NATIVE_GEMV_TEAMS=1 or =measured: one round of tiles instead of 1.45).
SHAPES = [(256, 1024), (200, 2048), (37, 1040), (64, 8192 + 16), (1000, 3072 + 16), (4096, 4096), (40, 8192),
          (6136, 2048)]


@functools.lru_cache(maxsize=16)
def _weights(n, k):
    """Reference-quantized random weights, shared by the cases of one shape (the numpy quantizer is slow)."""
    w = torch.randn((n, k), generator=torch.Generator().manual_seed(n * 7919 + k))
    return ref.quantize(w.numpy())


def _gemv_case(n, k, m, dtype, activation, with_bias, seed, act_gs=None, kind="normal"):
    gen = torch.Generator().manual_seed(seed)
    packed, scales, gs = _weights(n, k)
    x = _rand((m, k), kind, gen, dtype).to(dtype)
    bias = torch.randn(n, generator=gen).to(dtype) if with_bias else None
    yref = _ref_gemv(packed, scales, gs, x.float().numpy(), activation, act_gs,
                     None if bias is None else bias.float().numpy())
    ref.poison_next_block(m * n * 4)
    y = nc.gemv(torch.from_numpy(packed).cuda(), torch.from_numpy(scales).cuda(), float(gs), x.cuda(),
                activation, act_gs, None if bias is None else bias.cuda())
    assert y.dtype == dtype and y.shape == (m, n)
    xa = np.abs(x.float().numpy().astype(np.float64))
    if activation == "nvfp4":
        xa = np.abs(ref.dequantize(*ref.quantize(xa, act_gs)).astype(np.float64))
    abs_sum = xa @ np.abs(ref.dequantize(packed, scales, gs).astype(np.float64)).T
    ref.assert_within_fp64_bound(y, yref, abs_sum, k)


@pytest.mark.gpu
@pytest.mark.parametrize("n,k", SHAPES)
@pytest.mark.parametrize("m", [1, 2, 3, 8, 9, 16])
@pytest.mark.parametrize("dtype", DTYPES)
def test_gemv_w4a16_vs_fp64(n, k, m, dtype):
    _gemv_case(n, k, m, dtype, "bf16", with_bias=(m % 2 == 1), seed=n * 131 + k * 7 + m)


@pytest.mark.gpu
@pytest.mark.parametrize("n,k", SHAPES[:4])
@pytest.mark.parametrize("m", [1, 2, 5, 16])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("static_scale", [False, True])
def test_gemv_w4a4_vs_fp64(n, k, m, dtype, static_scale):
    _gemv_case(n, k, m, dtype, "nvfp4", with_bias=(m == 5), seed=n + k + m, act_gs=0.0013 if static_scale else None)


# M <= 2 runs the block-diagonal kernel (A16: K < 8192): bf16 x is rescaled per 16-element block into fp16.
# Magnitudes over many decades (inside and across blocks, exact zeros) check that rescaling stays within the fp64
# bound.
@pytest.mark.gpu
@pytest.mark.parametrize("n,k", [(200, 2048), (37, 1040), (40, 8192)])
@pytest.mark.parametrize("m", [1, 2, 3, 4])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("activation", ["bf16", "nvfp4"])
def test_gemv_small_m_wide_range_vs_fp64(n, k, m, dtype, activation):
    _gemv_case(n, k, m, dtype, activation, with_bias=(m == 3), seed=n * 17 + k + m, kind="wide_gemv")


# Which kernel takes M <= 2 (gemv_bd_kernel.cuh, bd_chosen): A16 the block-diagonal one below K = 16384 at one token
# and below 12288 at two, from there on the 16-bit one (these shapes are too small for the weight ring, which would take the
# block-diagonal one at M = 1); RESET_NATIVE_GEMV_BD=1 / =0 force either. Each choice within the fp64 bound on both
# sides of the limit (the choice is a speed rule: both kernels must be right everywhere).
@pytest.mark.gpu
@pytest.mark.parametrize("n,k", [(200, 2048), (64, 7168), (40, 8192), (96, 12288), (48, 16384)])
@pytest.mark.parametrize("m", [1, 2])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("bd", [None, "1", "0"])
def test_gemv_small_m_kernel_choice(n, k, m, dtype, bd, monkeypatch):
    if bd is not None:
        monkeypatch.setenv("RESET_NATIVE_GEMV_BD", bd)
    _gemv_case(n, k, m, dtype, "bf16", with_bias=(m == 2), seed=n + k + m)


@pytest.mark.gpu
@pytest.mark.parametrize("m", [1, 2, 4, 9])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_gemv_nonfinite_x_poisons_only_its_token(m, bad):
    # A NaN or inf in x makes every output of that token non-finite (as x @ W.T does in fp64: inf * 0 is NaN,
    # and the rows' other terms are finite); the other tokens stay exact.
    gen = torch.Generator().manual_seed(5)
    n, k = 48, 2048
    packed, scales, gs = _weights(n, k)
    x = torch.randn((m, k), generator=gen).to(torch.bfloat16)
    x[0, 700] = bad
    y = nc.gemv(torch.from_numpy(packed).cuda(), torch.from_numpy(scales).cuda(), float(gs), x.cuda(), "bf16")
    y = y.double().cpu().numpy()
    assert not np.isfinite(y[0]).any()
    if m > 1:
        yref = _ref_gemv(packed, scales, gs, x[1:].float().numpy(), "bf16")
        np.testing.assert_allclose(y[1:], yref, rtol=2**-7, atol=1e-5 * np.abs(yref).max())


# RESET_NATIVE_GEMV_RING=1 (opt-in) streams the fast path's weights (K % 1024 == 0, 16-byte aligned rows)
# through a TMA ring in shared memory filled by a producer warp (cuda/nvfp4/gemv_ring.cuh) instead of
# register-pipelined loads. Each thread gets the same fragments either way, so the outputs must be the same
# bits, for every kernel the ring serves (block-diagonal M <= 2, 16-bit NT = 1 and 2, one and two CTAs per
# SM, several tiles per CTA, a last tile past n: TMA fills those rows with zeros) and the ones it leaves alone.
@pytest.mark.gpu
@pytest.mark.parametrize("n,k", [(256, 1024), (200, 2048), (4096, 4096), (40, 8192), (6136, 2048)])
@pytest.mark.parametrize("m", [1, 2, 3, 8, 9, 16])
@pytest.mark.parametrize("dtype,activation", [(torch.bfloat16, "bf16"), (torch.float16, "bf16"),
                                              (torch.float32, "bf16"), (torch.bfloat16, "nvfp4")])
def test_gemv_weight_ring_same_bits_as_register_loads(n, k, m, dtype, activation, monkeypatch):
    # W4A4 at M = 2 on the block-diagonal kernel at every shape, as before session 21 (whose default gives 6136 x 2048
    # to two teams: cuda/nvfp4/gemv_bd_w4a4_rule.cuh), so that the ring serves it
    monkeypatch.setenv("RESET_NATIVE_GEMV_BD", "w4a4bd")
    gen = torch.Generator().manual_seed(n + 3 * k + 5 * m)
    packed, scales, gs = _weights(n, k)
    p, s = torch.from_numpy(packed).cuda(), torch.from_numpy(scales).cuda()
    x = torch.randn((m, k), generator=gen).to(dtype).cuda()
    residual = torch.randn((m, n), generator=gen).to(dtype).cuda()
    monkeypatch.setenv("RESET_NATIVE_GEMV_RING", "1")
    y_ring = nc.gemv(p, s, float(gs), x, activation, None, None, residual)
    monkeypatch.setenv("RESET_NATIVE_GEMV_RING", "0")
    monkeypatch.setenv("RESET_NATIVE_GEMV_KSPLIT", "1")  # the ring never splits K: compare with the unsplit kernel
    y_reg = nc.gemv(p, s, float(gs), x, activation, None, None, residual)
    assert torch.equal(y_ring, y_reg)
    yref = _ref_gemv(packed, scales, gs, x.float().cpu().numpy(), activation) + residual.double().cpu().numpy()
    np.testing.assert_allclose(y_ring.double().cpu().numpy(), yref, rtol=2**-6, atol=1e-4 * np.abs(yref).max())


def _uses_ring(p, s, x, activation):
    codes = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}
    return bool(nc._native.cuda_gemv_uses_weight_ring(p.data_ptr(), s.data_ptr(), p.shape[0], p.shape[1] * 2,
                                                     x.data_ptr(), codes[x.dtype], x.shape[0], activation == "nvfp4"))


# The weight ring is opt-in since session 10 (gemv.cu: a wrong-output failure not reproduced since, and slower than
# the register path on most layers): RESET_NATIVE_GEMV_RING=1 forces it wherever it applies (at K >= 16384
# bd_chosen then takes the block-diagonal kernel for one token), =0 / unset never. (The ring's bits: the tests above.)
@pytest.mark.gpu
@pytest.mark.parametrize("m", [1, 2])
def test_gemv_weight_ring_only_when_forced(m, monkeypatch):
    for var in ("RESET_NATIVE_GEMV_RING", "RESET_NATIVE_GEMV_BD", "RESET_NATIVE_GEMV_KSPLIT"):
        monkeypatch.delenv(var, raising=False)
    k, n = 4096, 528  # no ring rule any more: any shape the ring serves shows the default
    gen = torch.Generator().manual_seed(11 + m)
    packed, scales, gs = _weights(n, k)
    p, s = torch.from_numpy(packed).cuda(), torch.from_numpy(scales).cuda()
    x = torch.randn((m, k), generator=gen).to(torch.bfloat16).cuda()
    assert not _uses_ring(p, s, x, "bf16") and not _uses_ring(p, s, x, "nvfp4")
    y_default = nc.gemv(p, s, float(gs), x, "bf16")
    monkeypatch.setenv("RESET_NATIVE_GEMV_RING", "1")
    assert _uses_ring(p, s, x, "bf16") and _uses_ring(p, s, x, "nvfp4")
    monkeypatch.setenv("RESET_NATIVE_GEMV_RING", "0")
    assert not _uses_ring(p, s, x, "bf16")
    yref = _ref_gemv(packed, scales, gs, x.float().cpu().numpy(), "bf16")
    np.testing.assert_allclose(y_default.double().cpu().numpy(), yref, rtol=2**-6, atol=1e-4 * np.abs(yref).max())


# RESET_NATIVE_GEMV_RING=1 at K >= 16384 and one token runs the block-diagonal kernel through the ring: the bits of
# the block-diagonal kernel with register loads (RESET_NATIVE_GEMV_BD=1, RING=0), within fp64 bounds; unset, the
# call runs the block-diagonal kernel's lean split (bd_long_k_slices; the 16-bit kernel before session 40), which
# agrees within rounding.
@pytest.mark.gpu
def test_gemv_long_k_one_token_block_diagonal_ring_when_forced(monkeypatch):
    for var in ("RESET_NATIVE_GEMV_RING", "RESET_NATIVE_GEMV_BD", "RESET_NATIVE_GEMV_KSPLIT"):
        monkeypatch.delenv(var, raising=False)
    n, k = 272, 16384  # 17 row tiles, one partial round of CTAs
    gen = torch.Generator().manual_seed(29)
    packed, scales, gs = _weights(n, k)
    p, s = torch.from_numpy(packed).cuda(), torch.from_numpy(scales).cuda()
    x = torch.randn((1, k), generator=gen).to(torch.bfloat16).cuda()
    assert not _uses_ring(p, s, x, "bf16")
    y_rule = nc.gemv(p, s, float(gs), x, "bf16")
    monkeypatch.setenv("RESET_NATIVE_GEMV_RING", "1")
    assert _uses_ring(p, s, x, "bf16")
    y_ring = nc.gemv(p, s, float(gs), x, "bf16")
    monkeypatch.setenv("RESET_NATIVE_GEMV_BD", "1")
    monkeypatch.setenv("RESET_NATIVE_GEMV_RING", "0")
    y_bd_reg = nc.gemv(p, s, float(gs), x, "bf16")
    assert torch.equal(y_ring, y_bd_reg)
    yref = _ref_gemv(packed, scales, gs, x.float().cpu().numpy(), "bf16")
    for y in (y_ring, y_rule):
        np.testing.assert_allclose(y.double().cpu().numpy(), yref, rtol=2**-6, atol=1e-4 * np.abs(yref).max())


@pytest.mark.gpu
def test_gemv_unaligned_views():
    # Views whose data pointers are not 16-byte aligned take the slow loads (or an aligned copy) yet stay exact.
    gen = torch.Generator().manual_seed(3)
    n, k, m = 48, 1024, 3
    w = torch.randn((n, k), generator=gen)
    packed, scales, gs = ref.quantize(w.numpy())
    x_full = torch.randn((m * k + 1,), generator=gen).to(torch.bfloat16)
    x = x_full[1:].view(m, k)
    yref = _ref_gemv(packed, scales, gs, x.float().numpy(), "bf16")
    p_full = torch.zeros(n * k // 2 + 8, dtype=torch.uint8)
    p_full[8:] = torch.from_numpy(packed).reshape(-1)
    pc = p_full.cuda()[8:].view(n, k // 2)  # 8-byte aligned only
    y = nc.gemv(pc, torch.from_numpy(scales).cuda(), float(gs), x.cuda(), "bf16")
    np.testing.assert_allclose(y.double().cpu().numpy(), yref, rtol=2**-7, atol=1e-5 * np.abs(yref).max())


@pytest.mark.gpu
@pytest.mark.parametrize("activation", ["bf16", "nvfp4"])
def test_gemv_aligned_copy_outlives_the_launch(activation, monkeypatch):
    """An 8-byte aligned packed view is copied to an aligned buffer for the launch; the copy lives until the launch
    is enqueued, so the output never lands on its memory. Here the output [16, 48] bf16 and the copy [48, 32] have
    the same 1536 bytes: a copy freed before the output is allocated hands it its block (so it did before session
    24, 50 times in 50 on an H200, where only the kernel's reads-before-writes kept the bits right)."""
    gen = torch.Generator().manual_seed(21)
    n, k, m = 48, 64, 16
    packed, scales, gs = ref.quantize(torch.randn((n, k), generator=gen).numpy())
    s = torch.from_numpy(scales).cuda()
    p_full = torch.zeros(n * k // 2 + 8, dtype=torch.uint8, device="cuda")
    p_full[8:] = torch.from_numpy(packed).reshape(-1).cuda()
    pc = p_full[8:].view(n, k // 2)
    assert pc.data_ptr() % 16 == 8
    x = torch.randn((m, k), generator=gen).to(torch.bfloat16).cuda()
    want = nc.gemv(torch.from_numpy(packed).cuda(), s, float(gs), x, activation)
    copies = []
    aligned = nc._aligned

    def spy(t, nbytes):  # records each copy's address range, keeps no reference to it
        r = aligned(t, nbytes)
        if r is not t:
            copies.append((r.data_ptr(), r.data_ptr() + r.numel()))
        return r

    monkeypatch.setattr(nc, "_aligned", spy)
    for _ in range(20):
        copies.clear()
        y = nc.gemv(pc, s, float(gs), x, activation)
        (lo, hi), = copies
        assert y.data_ptr() + y.numel() * 2 <= lo or hi <= y.data_ptr()
        assert torch.equal(y, want)


@pytest.mark.gpu
def test_gemv_cuda_graph_and_compile():
    gen = torch.Generator().manual_seed(11)
    n, k = 512, 2048
    packed, scales, gs = nc.quantize(torch.randn((n, k), generator=gen).cuda())
    x = torch.randn((4, k), generator=gen).to(torch.bfloat16).cuda()
    eager = {a: nc.gemv(packed, scales, gs, x, a) for a in ("bf16", "nvfp4")}
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        nc.gemv(packed, scales, gs, x, "nvfp4")  # warm-up outside capture (op registration, attributes)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        y16 = nc.gemv(packed, scales, gs, x, "bf16")
        y4 = nc.gemv(packed, scales, gs, x, "nvfp4")
    x.copy_(torch.randn((4, k), generator=gen).to(torch.bfloat16))
    g.replay()
    torch.cuda.synchronize()
    assert torch.equal(y16, nc.gemv(packed, scales, gs, x, "bf16"))
    assert torch.equal(y4, nc.gemv(packed, scales, gs, x, "nvfp4"))

    @torch.compile(fullgraph=True)
    def f(x):
        return torch.ops.reset_native.nvfp4_gemv(packed, scales, gs, x, "nvfp4", None, None) * 2

    assert torch.equal(f(x), 2 * nc.gemv(packed, scales, gs, x, "nvfp4"))
    del eager


@pytest.mark.gpu
def test_gemv_bad_inputs():
    packed, scales, gs = nc.quantize(torch.randn(64, 128, device="cuda"))
    x = torch.randn(2, 128, device="cuda", dtype=torch.bfloat16)
    with pytest.raises(ValueError, match="device|CUDA"):
        nc.gemv(packed, scales, gs, x.cpu(), "bf16")
    with pytest.raises(ValueError, match="1 <= M <= 16"):
        nc.gemv(packed, scales, gs, torch.randn(17, 128, device="cuda", dtype=torch.bfloat16), "bf16")
    with pytest.raises(ValueError, match="K = 128"):
        nc.gemv(packed, scales, gs, torch.randn(2, 96, device="cuda", dtype=torch.bfloat16), "bf16")
    with pytest.raises(TypeError, match="x must be float32"):
        nc.gemv(packed, scales, gs, x.to(torch.float64), "bf16")
    with pytest.raises(ValueError, match="activation"):
        nc.gemv(packed, scales, gs, x, "int8")
    with pytest.raises(ValueError, match="block_scales"):
        nc.gemv(packed, scales[:, :4].contiguous(), gs, x, "bf16")
    with pytest.raises(ValueError, match="bias"):
        nc.gemv(packed, scales, gs, x, "bf16", bias=torch.zeros(63, device="cuda", dtype=torch.bfloat16))
    with pytest.raises(ValueError, match="act_global_scale"):
        nc.gemv(packed, scales, gs, x, "nvfp4", act_global_scale=-1.0)
    with pytest.raises(ValueError, match="K % 16"):
        nc.quantize(torch.randn(4, 24, device="cuda"))
