"""The block-diagonal NVFP4 GEMV's lean step form (kSmallLean, gemv_bd_kernel.cuh; RESET_NATIVE_GEMV_BD_LEAN, read at
every call: "0" off, "1" kSmallLean, "2" kSmallLean | kSmallGroupFetch, unset = kBdLeanDefault): the plain A16
register kernel (cb) and its split K form with fewer instructions per weight step (no per-step guards in full groups
of steps, the weight cursor's next tile by adding the tile stride, the block scales' sign bits dropped by |.|; "2": a
group's refills at immediate offsets from pointers computed once per group; "3" kSmallLean | kSmallEitherFetch: every
full group so, a group crossing into the next tile by pairs of predicated loads; "4" kSmallLean | kSmallFastOnly: one
loop body, every group's refills at immediate offsets, only where each tile's chunks are a multiple of 4, or 5 at one
token). The same arithmetic in the same
order, so every output must equal the cb kernel's bit for bit (compared as 16-bit patterns, NaN included) and stay
within the fp64 bound. Shapes: fewer steps than two groups (no steady group), a partial last tile (the clamped
recompute), K = 5120 (groups that cross tiles), several tiles per CTA, forced K splits with uneven slices; bias,
residual and tiny x blocks; scale bytes with their sign bit set (not written by the quantizer; both forms read the
magnitude). GPU tests skip without a device."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_nvfp4_gpu_bd_small import _fp64_check, _weights, tiny_block_x  # noqa: E402

from reset_native import _nvfp4_cuda as nc  # noqa: E402

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.gpu

SWITCH = "RESET_NATIVE_GEMV_BD_LEAN"
SWITCHES = ("RESET_NATIVE_GEMV_RING", "RESET_NATIVE_GEMV_BD", "RESET_NATIVE_GEMV_KSPLIT", "RESET_NATIVE_GEMV_BD_SPLIT",
            "RESET_NATIVE_GEMV_BD_SMALL", SWITCH)


@pytest.fixture(autouse=True)
def _default_rules(monkeypatch):
    for name in SWITCHES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RESET_NATIVE_GEMV_RING", "0")  # the register path (the ring has no lean form)


def _bits(y):
    return y.view(torch.int16)


FORMS = ("0", "1", "2", "3", "4")


def _forms(monkeypatch, *args):
    """The call's output under each form (the allocator's next block poisoned before each)."""
    outs = []
    for value in FORMS:
        monkeypatch.setenv(SWITCH, value)
        x = args[3]
        torch.full(((x.shape[0] * args[0].shape[0] * 2 + (1 << 20)) // 4,), float("nan"), device="cuda")
        outs.append(nc.gemv(*args))
    monkeypatch.delenv(SWITCH)
    return outs


# (n, k): one tile (4 steps: no steady group), a partial last tile, K = 5120 (5 chunks: groups of 4 steps cross
# tiles), 8 steps per CTA (exactly one steady group), many tiles per CTA (K = 4096 and K = 1024), K = 12288. Form "4"
# takes kDepth 4 at K = 4096, 12288, 20480, kSmallDepth5 at K = 5120, 10240 with one token, cb elsewhere.
SHAPES = [(16, 4096), (200, 4096), (136, 5120), (528, 4096), (6144, 4096), (12008, 1024), (4104, 5120),
          (1000, 12288), (3000, 10240), (1048, 20480)]


@pytest.mark.parametrize("n,k", SHAPES)
@pytest.mark.parametrize("m", [1, 2])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_lean_gives_the_cb_bits_and_the_fp64_result(n, k, m, dtype, monkeypatch):
    p, s, gs, w64, gen = _weights(n, k, 11 * n + k + m)
    x = (torch.randn((m, k), generator=gen) * 3).to(dtype).cuda()
    base, *leans = _forms(monkeypatch, p, s, gs, x, "bf16")
    for form, lean in zip(FORMS[1:], leans):
        assert torch.equal(_bits(lean), _bits(base)), form
    _fp64_check(lean, x, w64, "bf16")


@pytest.mark.parametrize("n,k", [(200, 8192), (136, 5120), (264, 7168), (12008, 2048)])
@pytest.mark.parametrize("m", [1, 2])
@pytest.mark.parametrize("slices", [2, 3, 5])
def test_lean_split_gives_the_split_bits(n, k, m, slices, monkeypatch):
    monkeypatch.setenv("RESET_NATIVE_GEMV_BD_SPLIT", str(slices))
    p, s, gs, w64, gen = _weights(n, k, 5 * n + k + m + slices)
    x = (torch.randn((m, k), generator=gen) * 3).to(torch.bfloat16).cuda()
    base, *leans = _forms(monkeypatch, p, s, gs, x, "bf16")
    for form, lean in zip(FORMS[1:], leans):
        assert torch.equal(_bits(lean), _bits(base)), form
    _fp64_check(lean, x, w64, "bf16")


@pytest.mark.parametrize("m", [1, 2])
@pytest.mark.parametrize("n,k", [(312, 3072), (4104, 4096)])
def test_lean_with_bias_residual_and_tiny_blocks(m, n, k, monkeypatch):
    p, s, gs, w64, gen = _weights(n, k, 77 + m + n)
    x = tiny_block_x(m, k, gen, zero_at=32)
    bias = torch.randn(n, generator=gen).to(torch.bfloat16).cuda()
    residual = torch.randn((m, n), generator=gen).to(torch.bfloat16).cuda()
    base, *leans = _forms(monkeypatch, p, s, gs, x, "bf16", None, bias, residual)
    for form, lean in zip(FORMS[1:], leans):
        assert torch.equal(_bits(lean), _bits(base)), form
    _fp64_check(lean, x, w64, "bf16", bias, residual)


@pytest.mark.parametrize("m", [1, 2])
def test_scale_bytes_with_the_sign_bit_give_the_same_bits(m, monkeypatch):
    """Scale bytes with bit 7 set (sign; the quantizer never writes it): the cb kernel masks it before converting, the
    lean one takes |.| after: the same value for every byte (0x80 = -0 -> 0; 0xFF and 0x7F NaN)."""
    n, k = 2064, 4096
    p, s, gs, _, gen = _weights(n, k, 901 + m)
    flip = torch.rand(s.shape, generator=gen) < 0.3
    signed = s.cpu().view(torch.uint8).to(torch.int32) | (flip.to(torch.int32) << 7)
    s_signed = signed.to(torch.uint8).view(s.dtype).cuda()
    nan_bytes = torch.tensor([0x7F, 0xFF], dtype=torch.uint8).view(s.dtype).cuda()
    s_signed[-1, :2] = nan_bytes  # the last row's first two blocks: NaN scales
    x = torch.randn((m, k), generator=gen).to(torch.bfloat16).cuda()
    base, *leans = _forms(monkeypatch, p, s_signed, gs, x, "bf16")
    for form, lean in zip(FORMS[1:], leans):
        assert torch.equal(_bits(lean), _bits(base)), form
    assert torch.isnan(lean[:, -1]).all() and not torch.isnan(lean[:, :-1]).any()
    assert torch.equal(nc.gemv(p, s, gs, x, "bf16")[:, :-1], lean[:, :-1])  # the sign bits change nothing else


def test_switch_off_and_unset_and_calls_it_does_not_take(monkeypatch):
    """Unset gives the default form's bits; W4A4 and 3 tokens keep their kernels under either value."""
    n, k = 200, 4096
    p, s, gs, w64, gen = _weights(n, k, 4242)
    for m, act in ((1, "bf16"), (2, "bf16"), (1, "nvfp4"), (3, "bf16")):
        x = torch.randn((m, k), generator=gen).to(torch.bfloat16).cuda()
        unset = nc.gemv(p, s, gs, x, act)
        for value in FORMS + ("other",):
            monkeypatch.setenv(SWITCH, value)
            assert torch.equal(_bits(nc.gemv(p, s, gs, x, act)), _bits(unset)), (m, act, value)
        monkeypatch.delenv(SWITCH)
        _fp64_check(unset, x, w64, act)
