"""The block-diagonal NVFP4 GEMV's lean step form (kSmallLean, kSmallDepth5; gemv_bd_kernel.cuh, session 17): the plain
A16 register kernel (cb) with one loop body per group of kDepth steps (refills at immediate offsets from pointers
computed once per group, predicated off in the last group, the tile end checked only at a group's last step, the next
tile's pointers by the stride, |scale| instead of the sign mask), where each tile's chunks are a multiple of 4 (or of
5 at one token: 5 steps in flight). RESET_NATIVE_GEMV_BD_LEAN, read at every call: "0" never, "1" wherever it fits (M
= 1, 2), unset = the default (kBdLeanByDefault: cb, or the lean form at M = 1 where it fits). The same arithmetic in
the same order, so every form must give the cb kernel's bits (compared as 16-bit patterns, NaN included) and stay
within the fp64 bound. Shapes: one tile, a partial last tile (the clamped recompute), CTAs walking 2-6 tiles (the
stride to the next tile after a group, at 4, 5, 8 and 12 chunks per tile), K = 1024 / 3072 / 10240 at two tokens (no
fit: cb); bias, residual and tiny x blocks; scale bytes with their sign bit set (not written by the quantizer; both
forms read the magnitude). GPU tests skip without a device."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nvfp4_gpu_reference import kernel_template_args, poison_next_block  # noqa: E402
from test_nvfp4_gpu_bd_small import _fp64_check, _weights, tiny_block_x  # noqa: E402

from reset_native import _nvfp4_cuda as nc  # noqa: E402

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.gpu

SWITCH = "RESET_NATIVE_GEMV_BD_LEAN"
SWITCHES = ("RESET_NATIVE_GEMV_RING", "RESET_NATIVE_GEMV_BD", "RESET_NATIVE_GEMV_KSPLIT", "RESET_NATIVE_GEMV_BD_SPLIT",
            "RESET_NATIVE_GEMV_BD_SMALL", SWITCH)
FORMS = ("0", "1", None)  # None: unset (the default)


@pytest.fixture(autouse=True)
def _default_rules(monkeypatch):
    for name in SWITCHES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RESET_NATIVE_GEMV_RING", "0")  # the register path (the ring has no lean form)


def bits16(y):
    return y.view(torch.int16)


def outputs_under_forms(monkeypatch, switch, *args):
    """nc.gemv(*args) with `switch` set to each of FORMS in turn (the allocator's next block poisoned before each, 8
    bytes per output element: enough for the fp32 partial sums of a split too), then unset."""
    outs = []
    for value in FORMS:
        if value is None:
            monkeypatch.delenv(switch, raising=False)
        else:
            monkeypatch.setenv(switch, value)
        x = args[3]
        poison_next_block(x.shape[0] * args[0].shape[0] * 8)
        outs.append(nc.gemv(*args))
    monkeypatch.delenv(switch, raising=False)
    return outs


def assert_same_bits(outs):
    """Every output of outputs_under_forms has the first one's bits (16-bit patterns, NaN included)."""
    for form, y in zip(FORMS[1:], outs[1:]):
        assert torch.equal(bits16(y), bits16(outs[0])), form


def _forms(monkeypatch, *args):
    return outputs_under_forms(monkeypatch, SWITCH, *args)


# (n, k): one tile, a partial last tile, K = 5120 (5 chunks: kSmallDepth5 at one token, cb at two), one tile per CTA
# at 12288 / 10240 / 20480, K = 1024 and 3072 (no fit: cb); with the fp64 bound.
SHAPES = [(16, 4096), (200, 4096), (136, 5120), (528, 4096), (6144, 4096), (12008, 1024), (4104, 5120),
          (1000, 12288), (3000, 10240), (1048, 20480), (312, 3072)]


@pytest.mark.parametrize("n,k", SHAPES)
@pytest.mark.parametrize("m", [1, 2])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_lean_gives_the_cb_bits_and_the_fp64_result(n, k, m, dtype, monkeypatch):
    p, s, gs, w64, gen = _weights(n, k, 11 * n + k + m)
    x = (torch.randn((m, k), generator=gen) * 3).to(dtype).cuda()
    outs = _forms(monkeypatch, p, s, gs, x, "bf16")
    assert_same_bits(outs)
    _fp64_check(outs[1], x, w64, "bf16")


# CTAs walking several tiles (264 CTA slots on an H200): 24576 x 4096 (~6 tiles of 4 chunks), 12296 x 4096 (~3, a
# partial last tile), 9000 x 8192 (~2 of 8 chunks), 10240 x 5120 (~2.4 of 5: kSmallDepth5), 6000 x 12288 (~1.4 of 12).
# Bits only (the fp64 reference of these is large; the cb kernel is checked against it above and elsewhere).
@pytest.mark.parametrize("n,k", [(24576, 4096), (12296, 4096), (9000, 8192), (10240, 5120), (6000, 12288)])
@pytest.mark.parametrize("m", [1, 2])
def test_lean_walking_several_tiles_gives_the_cb_bits(n, k, m, monkeypatch):
    gen = torch.Generator(device="cuda").manual_seed(n + k + m)
    p, s, gs = nc.quantize(torch.randn((n, k), generator=gen, device="cuda"))
    x = (torch.randn((m, k), generator=gen, device="cuda") * 3).to(torch.bfloat16)
    outs = _forms(monkeypatch, p, s, float(gs), x, "bf16")
    assert_same_bits(outs)
    assert torch.isfinite(outs[0]).all()


def _small_bits_of_call(fn):
    """SMALL template argument (the last one) of every block-diagonal GEMV kernel fn() launched."""
    return [a[-1] for a in kernel_template_args(fn, "gemv_bd_kernel")]


def small_bits_under(monkeypatch, switch, value, fn):
    """_small_bits_of_call(fn) with the environment variable `switch` set to value (None: unset)."""
    if value is None:
        monkeypatch.delenv(switch, raising=False)
    else:
        monkeypatch.setenv(switch, value)
    return _small_bits_of_call(fn)


LEAN, DEPTH5 = 16, 32  # kSmallLean, kSmallDepth5 (gemv_bd_kernel.cuh)


# The comparisons above would pass with cb against cb if the lean kernel never ran: this checks, from the kernel names,
# that it does run where it fits (M = 1 by default and under "1"; kSmallDepth5 at K = 5120) and never under "0".
@pytest.mark.parametrize("n,k,depth5", [(6144, 4096, False), (24576, 4096, False), (10240, 5120, True),
                                        (5120, 8192, False)])
def test_the_lean_kernel_runs_where_it_fits(n, k, depth5, monkeypatch):
    gen = torch.Generator(device="cuda").manual_seed(n + k)
    p, s, gs = nc.quantize(torch.randn((n, k), generator=gen, device="cuda"))
    x = torch.randn((1, k), generator=gen, device="cuda").to(torch.bfloat16)
    for value in (None, "1", "0"):
        bits = small_bits_under(monkeypatch, SWITCH, value, lambda: nc.gemv(p, s, float(gs), x, "bf16"))
        assert bits, value  # a block-diagonal kernel ran
        if value == "0":
            assert all(b & LEAN == 0 for b in bits), bits
        else:
            assert all(b & LEAN for b in bits), (value, bits)
            assert all(bool(b & DEPTH5) == depth5 for b in bits), (value, bits)


# At two tokens the default takes the lean form only where each CTA walks >= kBdLeanM2MinTiles = 4 tiles (two CTAs per
# SM): 8B gate_up (1536 tiles) on any GPU of <= 192 SMs, never 8B q/k/v (384 tiles) on one of >= 48 SMs.
@pytest.mark.parametrize("n,lean_by_default", [(24576, True), (6144, False)])
def test_two_tokens_take_the_lean_kernel_where_ctas_walk_many_tiles(n, lean_by_default, monkeypatch):
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    if not 48 <= sms <= 192:
        pytest.skip(f"the shapes assume 48..192 SMs, this GPU has {sms}")
    k = 4096
    gen = torch.Generator(device="cuda").manual_seed(n)
    p, s, gs = nc.quantize(torch.randn((n, k), generator=gen, device="cuda"))
    x = torch.randn((2, k), generator=gen, device="cuda").to(torch.bfloat16)
    outs = {}
    for value in (None, "1", "0"):
        bits = small_bits_under(monkeypatch, SWITCH, value, lambda: nc.gemv(p, s, float(gs), x, "bf16"))
        assert bits, value
        lean = value == "1" or (value is None and lean_by_default)
        assert all(bool(b & LEAN) == lean for b in bits), (value, bits)
        outs[value] = nc.gemv(p, s, float(gs), x, "bf16")
    assert_same_bits([outs[None], outs["1"], outs["0"]])


@pytest.mark.parametrize("m", [1, 2])
@pytest.mark.parametrize("n,k", [(312, 4096), (4104, 4096), (520, 5120)])
def test_lean_with_bias_residual_and_tiny_blocks(m, n, k, monkeypatch):
    p, s, gs, w64, gen = _weights(n, k, 77 + m + n)
    x = tiny_block_x(m, k, gen, zero_at=32)
    bias = torch.randn(n, generator=gen).to(torch.bfloat16).cuda()
    residual = torch.randn((m, n), generator=gen).to(torch.bfloat16).cuda()
    outs = _forms(monkeypatch, p, s, gs, x, "bf16", None, bias, residual)
    assert_same_bits(outs)
    _fp64_check(outs[1], x, w64, "bf16", bias, residual)


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
    outs = _forms(monkeypatch, p, s_signed, gs, x, "bf16")
    assert_same_bits(outs)
    lean = outs[1]
    assert torch.isnan(lean[:, -1]).all() and not torch.isnan(lean[:, :-1]).any()
    assert torch.equal(nc.gemv(p, s, gs, x, "bf16")[:, :-1], lean[:, :-1])  # the sign bits change nothing else


def test_calls_the_switch_does_not_take(monkeypatch):
    """W4A4 and 3 tokens keep their kernels under every value (any value but 0 / 1 is the default rule)."""
    n, k = 200, 4096
    p, s, gs, w64, gen = _weights(n, k, 4242)
    for m, act in ((1, "nvfp4"), (2, "nvfp4"), (3, "bf16")):
        x = torch.randn((m, k), generator=gen).to(torch.bfloat16).cuda()
        unset = nc.gemv(p, s, gs, x, act)
        for value in ("0", "1", "other"):
            monkeypatch.setenv(SWITCH, value)
            assert torch.equal(bits16(nc.gemv(p, s, gs, x, act)), bits16(unset)), (m, act, value)
        monkeypatch.delenv(SWITCH)
        _fp64_check(unset, x, w64, act)
