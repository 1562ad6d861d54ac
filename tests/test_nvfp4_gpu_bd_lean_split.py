"""The block-diagonal NVFP4 GEMV's lean split K form (kSmallLean | kSmallSplit, cuda/nvfp4/gemv_bd_kernel.cuh kTileGroup;
launched by gemv_bd_split.cuh at one token where every K slice is 4 or 5 chunks, n % 16 == 0; session 17 helper
gemv21): one group of kDepth steps per tile, the group's row pointers from the tile's (uniform) row and one 32-bit
per-thread offset, the partial sums at a 32-bit index. RESET_NATIVE_GEMV_BD_LEAN_SPLIT, read at every call: "1" =
wherever it fits (also unset: the default since session 18), "0" = the cb split form. The same arithmetic in the same order,
so both forms must give the same bits (16-bit patterns) at the same slice count, and stay within the fp64 bound.
Shapes: Qwen3-32B down (5 slices of 5 chunks, the rule's own split), 8B down at 3 slices (4 chunks), CTAs walking 1-8
tiles (264 CTA slots on an H200 shared by the slices), a CTA with no tile, and calls the form does not take (uneven
slices, 3 chunks per slice, n % 16 != 0, two tokens: the cb split either way). GPU tests skip without a device."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_nvfp4_gpu_bd_lean import assert_same_bits, bits16, outputs_under_forms, small_bits_under  # noqa: E402
from test_nvfp4_gpu_bd_small import _fp64_check, _weights, tiny_block_x  # noqa: E402

from reset_native import _nvfp4_cuda as nc  # noqa: E402

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.gpu

SWITCH = "RESET_NATIVE_GEMV_BD_LEAN_SPLIT"
SPLIT = "RESET_NATIVE_GEMV_BD_SPLIT"
SWITCHES = ("RESET_NATIVE_GEMV_RING", "RESET_NATIVE_GEMV_BD", "RESET_NATIVE_GEMV_KSPLIT", SPLIT,
            "RESET_NATIVE_GEMV_BD_SMALL", "RESET_NATIVE_GEMV_BD_LEAN", SWITCH)
SPLIT_BIT, LEAN_BIT, DEPTH5_BIT = 8, 16, 32  # kSmallSplit, kSmallLean, kSmallDepth5 (gemv_bd_kernel.cuh)


@pytest.fixture(autouse=True)
def _default_rules(monkeypatch):
    for name in SWITCHES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RESET_NATIVE_GEMV_RING", "0")  # the register path (the split kernel's)


def _forms(monkeypatch, slices, *args):
    """The call's output under each form at `slices` (None: the split rule's own count)."""
    if slices is not None:
        monkeypatch.setenv(SPLIT, str(slices))
    return outputs_under_forms(monkeypatch, SWITCH, *args)


def _split_differs_from_unsplit(monkeypatch, slices, *args):
    """Whether the split call's bits differ from the unsplit kernel's anywhere (they add in another order): evidence
    that the split kernel ran (the lean form is reached only through it)."""
    monkeypatch.setenv(SPLIT, "0")
    unsplit = nc.gemv(*args)
    monkeypatch.setenv(SPLIT, str(slices))
    monkeypatch.setenv(SWITCH, "1")
    split = nc.gemv(*args)
    monkeypatch.delenv(SWITCH)
    return not torch.equal(bits16(unsplit), bits16(split))


# (n, k, slices): 4 chunks per slice (k / 1024 / slices = 4) and 5 (kSmallDepth5), one tile to 3 tiles per CTA
# (132 CTAs per slice at 2 slices, 52 at 5 on an H200), with the fp64 bound.
SHAPES = [(16, 8192, 2), (528, 8192, 2), (2048, 20480, 5), (1040, 20480, 4), (1040, 25600, 5), (4112, 10240, 2)]


@pytest.mark.parametrize("n,k,slices", SHAPES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_lean_split_gives_the_cb_split_bits_and_the_fp64_result(n, k, slices, dtype, monkeypatch):
    p, s, gs, w64, gen = _weights(n, k, 13 * n + k + slices)
    x = (torch.randn((1, k), generator=gen) * 3).to(dtype).cuda()
    outs = _forms(monkeypatch, slices, p, s, gs, x, "bf16")
    assert_same_bits(outs)
    _fp64_check(outs[1], x, w64, "bf16")


# CTAs walking ~4-12 tiles (4 and 5 chunks per slice): bits only (the fp64 reference of these is large).
@pytest.mark.parametrize("n,k,slices", [(16384, 8192, 2), (8192, 10240, 2), (12288, 20480, 4)])
def test_lean_split_walking_several_tiles_gives_the_cb_split_bits(n, k, slices, monkeypatch):
    gen = torch.Generator(device="cuda").manual_seed(n + k + slices)
    p, s, gs = nc.quantize(torch.randn((n, k), generator=gen, device="cuda"))
    x = (torch.randn((1, k), generator=gen, device="cuda") * 3).to(torch.bfloat16)
    outs = _forms(monkeypatch, slices, p, s, float(gs), x, "bf16")
    assert_same_bits(outs)
    assert torch.isfinite(outs[0]).all()


def test_qwen3_32b_down_under_the_split_rule(monkeypatch):
    """5120 x 25600 at one token: the rule's own split (5 slices of 5 chunks, ~6 tiles per CTA); bits only."""
    n, k = 5120, 25600
    gen = torch.Generator(device="cuda").manual_seed(32)
    p, s, gs = nc.quantize(torch.randn((n, k), generator=gen, device="cuda"))
    x = (torch.randn((1, k), generator=gen, device="cuda") * 3).to(torch.bfloat16)
    outs = _forms(monkeypatch, None, p, s, float(gs), x, "bf16")
    assert_same_bits(outs)
    assert torch.isfinite(outs[0]).all()
    assert _split_differs_from_unsplit(monkeypatch, 5, p, s, float(gs), x, "bf16")


# The bit comparisons would pass with cb split against cb split if the lean split kernel never ran: this reads the
# launched kernels' SMALL bits (their names) on 32B down at one token: lean + split + depth 5 by default and under "1",
# never lean under "0".
def test_the_lean_split_kernel_runs_on_qwen3_32b_down(monkeypatch):
    n, k = 5120, 25600
    gen = torch.Generator(device="cuda").manual_seed(33)
    p, s, gs = nc.quantize(torch.randn((n, k), generator=gen, device="cuda"))
    x = torch.randn((1, k), generator=gen, device="cuda").to(torch.bfloat16)
    for value in (None, "1", "0"):
        bits = small_bits_under(monkeypatch, SWITCH, value, lambda: nc.gemv(p, s, float(gs), x, "bf16"))
        assert bits and all(b & SPLIT_BIT for b in bits), (value, bits)  # the split kernel ran
        if value == "0":
            assert all(b & LEAN_BIT == 0 for b in bits), bits
        else:
            assert all(b & LEAN_BIT and b & DEPTH5_BIT for b in bits), (value, bits)


def test_qwen3_8b_down_at_three_slices(monkeypatch):
    n, k = 4096, 12288
    gen = torch.Generator(device="cuda").manual_seed(8)
    p, s, gs = nc.quantize(torch.randn((n, k), generator=gen, device="cuda"))
    x = (torch.randn((1, k), generator=gen, device="cuda") * 3).to(torch.bfloat16)
    outs = _forms(monkeypatch, 3, p, s, float(gs), x, "bf16")
    assert_same_bits(outs)
    assert _split_differs_from_unsplit(monkeypatch, 3, p, s, float(gs), x, "bf16")


@pytest.mark.parametrize("n,k", [(528, 20480), (2064, 25600)])
def test_lean_split_with_bias_residual_and_tiny_blocks(n, k, monkeypatch):
    p, s, gs, w64, gen = _weights(n, k, 91 + n)
    x = tiny_block_x(1, k, gen, zero_at=48)
    bias = torch.randn(n, generator=gen).to(torch.bfloat16).cuda()
    residual = torch.randn((1, n), generator=gen).to(torch.bfloat16).cuda()
    outs = _forms(monkeypatch, 5, p, s, gs, x, "bf16", None, bias, residual)
    assert_same_bits(outs)
    _fp64_check(outs[1], x, w64, "bf16", bias, residual)


def test_scale_bytes_with_the_sign_bit_give_the_same_bits(monkeypatch):
    """Scale bytes with bit 7 set: the cb form masks it, the lean one takes |.| (the same value; 0x7F / 0xFF NaN)."""
    n, k = 1040, 20480
    p, s, gs, _, gen = _weights(n, k, 4711)
    flip = torch.rand(s.shape, generator=gen) < 0.3
    signed = s.cpu().view(torch.uint8).to(torch.int32) | (flip.to(torch.int32) << 7)
    s_signed = signed.to(torch.uint8).view(s.dtype).cuda()
    s_signed[-1, :2] = torch.tensor([0x7F, 0xFF], dtype=torch.uint8).view(s.dtype).cuda()
    x = torch.randn((1, k), generator=gen).to(torch.bfloat16).cuda()
    outs = _forms(monkeypatch, 5, p, s_signed, gs, x, "bf16")
    assert_same_bits(outs)
    assert torch.isnan(outs[1][:, -1]).all() and not torch.isnan(outs[1][:, :-1]).any()


# Calls the form does not take (the cb split under every value): 25 chunks in 4 slices (6, 6, 6, 7), 3 chunks per
# slice, n % 16 != 0, and two tokens.
@pytest.mark.parametrize("n,k,slices,m", [(1040, 25600, 4, 1), (1040, 12288, 4, 1), (1000, 20480, 5, 1),
                                          (1040, 20480, 5, 2)])
def test_calls_the_form_does_not_take(n, k, slices, m, monkeypatch):
    p, s, gs, w64, gen = _weights(n, k, 5 * n + slices + m)
    x = torch.randn((m, k), generator=gen).to(torch.bfloat16).cuda()
    outs = _forms(monkeypatch, slices, p, s, gs, x, "bf16")
    assert_same_bits(outs)
    _fp64_check(outs[1], x, w64, "bf16")
