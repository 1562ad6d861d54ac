"""NVFP4 GEMV: RESET_NATIVE_GEMV_TEAMS=wide (session 19 helper teams26, opt-in; cuda/nvfp4/gemv_kernel.cuh kTeamsWide):
two warp teams sharing one staged x where x would fit two (or three) CTAs per SM, at 3..16 tokens with A16 and 2..16
with W4A4 (16-bit x), K <= 5120 and at most 12 row tiles per SM (the measured rule, kTeamsMeasured: A16 at 4..8 tokens
only). A team computes a row tile exactly as a CTA does (the same chunk order per warp, the same 8-warp reduction in the
tile epilogue), so "wide" gives the unset rule's outputs bit for bit, and both are within the fp64 bound. Which kernel
runs is read from the CUDA kernel names the torch profiler records. The instances are an H100 / H200's (132 SMs, 227
KiB of opt-in shared memory), as bench/probes/gemv_teams_routing.py models them. GPU tests skip without a device."""
from __future__ import annotations

import functools
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nvfp4_gpu_reference as ref  # noqa: E402

from reset_native import _nvfp4_cuda as nc  # noqa: E402

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.gpu

ENV = "RESET_NATIVE_GEMV_TEAMS"
H200_SMS, H200_OPTIN = 132, 227 * 1024


def _needs_h200_routing():
    props = torch.cuda.get_device_properties(0)
    optin = getattr(props, "shared_memory_per_block_optin", None)  # (a torch without it: assume the H200's)
    if props.multi_processor_count != H200_SMS or optin not in (None, H200_OPTIN):
        pytest.skip("the routing of these shapes assumes 132 SMs and 227 KiB of opt-in shared memory per block")


def _set(monkeypatch, value):
    if value is None:
        monkeypatch.delenv(ENV, raising=False)
    else:
        monkeypatch.setenv(ENV, value)


def _instances(fn):
    """(MINB, SPLIT, TEAMS) of every 16-bit GEMV kernel fn() launched (the FORM bits are the form rules' business)."""
    return [(a[5], a[7], a[8]) for a in ref.gemv16_kernel_args(fn)]


@functools.lru_cache(maxsize=4)
def _random_weights(n, k):
    """Packed FP4 (every code), E4M3 scales 0x30..0x3F, on the GPU (no host quantizer for the large shapes)."""
    gen = torch.Generator(device="cuda").manual_seed(n * 7 + k)
    p = torch.randint(0, 256, (n, k // 2), generator=gen, device="cuda", dtype=torch.uint8)
    s = torch.randint(0x30, 0x40, (n, k // 16), generator=gen, device="cuda", dtype=torch.uint8)
    return p, s, 0.01


@functools.lru_cache(maxsize=8)
def _ref_weights(n, k):
    return ref.quantize(torch.randn((n, k), generator=torch.Generator().manual_seed(n * 11 + k)).numpy())


TWO_CTAS, THREE_CTAS, ONE_CTA, TEAMS, SPLIT4 = (2, 0, 1), (3, 0, 1), (1, 0, 1), (1, 0, 2), (2, 1, 1)

# (activation, n, k, m, instance unset, instance with "wide"), 132 SMs (gemv_teams_routing.py; the same with and
# without the W4A4 pad): the Qwen3 rows "wide" moves (8B q/k/v at M = 3 from three CTAs per SM, 8B o / gate_up at
# M = 9, 10, 32B q/k/v at M = 3; W4A4 8B gate_up at M = 3..10, 32B q/k/v at M = 8), a limit of 12 row tiles per SM
# (M = 9: 16 token columns), and the rows it keeps: K = 8192 (32B o), K = 12288 (8B down), 24 row tiles per SM (32B
# gate_up), W4A4 split K (8B q/k/v: fewer than 4 row tiles per SM), already two teams (M = 12: x fits one CTA per SM).
KERNEL_CHOICE = [
    ("bf16", 6144, 4096, 3, THREE_CTAS, TEAMS),
    ("bf16", 6144, 4096, 9, TWO_CTAS, TEAMS),
    ("bf16", 4096, 4096, 10, TWO_CTAS, TEAMS),
    ("bf16", 24576, 4096, 9, TWO_CTAS, TEAMS),
    ("bf16", 10240, 5120, 3, TWO_CTAS, TEAMS),
    ("bf16", 16 * 12 * H200_SMS, 4096, 9, TWO_CTAS, TEAMS),
    ("bf16", 16 * 12 * H200_SMS + 16, 4096, 9, TWO_CTAS, TWO_CTAS),
    ("bf16", 5120, 8192, 4, TWO_CTAS, TWO_CTAS),
    ("bf16", 4096, 12288, 3, TWO_CTAS, TWO_CTAS),
    ("bf16", 51200, 5120, 6, TWO_CTAS, TWO_CTAS),
    ("bf16", 6144, 4096, 12, TEAMS, TEAMS),
    ("nvfp4", 24576, 4096, 3, TWO_CTAS, TEAMS),
    ("nvfp4", 24576, 4096, 6, TWO_CTAS, TEAMS),
    ("nvfp4", 24576, 4096, 10, TWO_CTAS, TEAMS),
    ("nvfp4", 10240, 5120, 8, TWO_CTAS, TEAMS),
    ("nvfp4", 5120, 8192, 3, TWO_CTAS, TWO_CTAS),
    ("nvfp4", 51200, 5120, 6, TWO_CTAS, TWO_CTAS),
    ("nvfp4", 6144, 4096, 6, SPLIT4, SPLIT4),
]


@pytest.mark.parametrize("act,n,k,m,unset,wide", KERNEL_CHOICE)
def test_wide_kernel_choice(act, n, k, m, unset, wide, monkeypatch):
    """The instance unset (the measured rule), with "wide", with "measured" (the measured rule by name: what unset
    gives while kTeamsWideIsDefault is false) and with "1" (never two teams where two CTAs fit)."""
    _needs_h200_routing()
    ref.clear_gemv_env(monkeypatch)
    p, s, gs = _random_weights(n, k)
    x = torch.randn((m, k), generator=torch.Generator().manual_seed(m)).to(torch.bfloat16).cuda()

    def fn():
        return nc.gemv(p, s, gs, x, act)

    for value, want in ((None, unset), ("wide", wide), ("measured", unset)):
        _set(monkeypatch, value)
        assert _instances(fn) == [want], value
    _set(monkeypatch, "1")  # where the rule already has two teams (M = 12), x fits one CTA per SM only
    assert _instances(fn) == [ONE_CTA if unset == TEAMS else unset]


def test_wide_other_x_and_bd_switch(monkeypatch):
    """fp16 x moves as bf16 x; fp32 x never takes two teams by the rule; M = 2 reaches the 16-bit kernel only with the
    block-diagonal kernel off (RESET_NATIVE_GEMV_BD=0): then W4A4 takes two teams with "wide", A16 does not."""
    _needs_h200_routing()
    ref.clear_gemv_env(monkeypatch)

    def inst(n, k, m, act, dtype=torch.bfloat16):
        p, s, gs = _random_weights(n, k)
        x = torch.randn((m, k), generator=torch.Generator().manual_seed(m)).to(dtype).cuda()
        return _instances(lambda: nc.gemv(p, s, gs, x, act))

    _set(monkeypatch, "wide")
    assert inst(6144, 4096, 9, "bf16", torch.float16) == [TEAMS]
    assert inst(24576, 4096, 6, "nvfp4", torch.float16) == [TEAMS]
    assert inst(6144, 1024, 9, "bf16", torch.float32)[0][2] == 1
    assert inst(6144, 1024, 9, "nvfp4", torch.float32)[0][2] == 1
    monkeypatch.setenv("RESET_NATIVE_GEMV_BD", "0")
    assert inst(24576, 4096, 2, "nvfp4") == [TEAMS]
    assert inst(24576, 4096, 2, "bf16")[0][2] == 1
    _set(monkeypatch, None)
    assert inst(24576, 4096, 2, "nvfp4") == [TWO_CTAS]


# (activation, n, k, m): shapes "wide" moves from two CTAs per SM to two teams (gemv_teams_routing.py): 8 token
# columns (M = 3) and 16 (M = 9, 10), a second team without a row tile (n = 8: one tile), a partial last tile (n = 200),
# W4A4 with one chunk (K = 1024: no split K at any M) and at M = 3 (no W4A4 split below 4 tokens).
SAME_BITS = [("bf16", 200, 4096, 3), ("bf16", 200, 4096, 9), ("bf16", 200, 4096, 10), ("bf16", 8, 4096, 9),
             ("nvfp4", 200, 4096, 3), ("nvfp4", 200, 1024, 6), ("nvfp4", 200, 1024, 10), ("nvfp4", 8, 1024, 9)]


@pytest.mark.parametrize("act,n,k,m", SAME_BITS)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_wide_same_bits_as_unset_and_fp64(act, n, k, m, dtype, monkeypatch):
    _needs_h200_routing()
    ref.clear_gemv_env(monkeypatch)
    packed, scales, gs = _ref_weights(n, k)
    p, s, x, bias, residual = ref.gemv_call_inputs((packed, scales, gs), m, dtype)

    def fn():
        return nc.gemv(p, s, float(gs), x, act, None, bias, residual)

    _set(monkeypatch, None)
    assert _instances(fn) == [TWO_CTAS]
    y_unset = fn()
    _set(monkeypatch, "wide")
    assert _instances(fn) == [TEAMS]
    torch.full(((m * n * 4 + (1 << 20)) // 4,), float("nan"), device="cuda")  # poison the allocator's next block
    y_wide = fn()
    ref.check_vs_fp64(y_unset, packed, scales, float(gs), x, act, bias, residual)
    ref.check_vs_fp64(y_wide, packed, scales, float(gs), x, act, bias, residual)
    assert torch.equal(y_wide, y_unset)


def test_wide_same_bits_qwen3_w4a4_gate_up(monkeypatch):
    """W4A4 at a Qwen3-8B gate_up-like shape with 8 and 16 token columns (528 row tiles: no W4A4 split), dynamic
    activation scale (amax reduced in the kernel): "wide" (two teams) equals unset (two CTAs per SM) bit for bit."""
    _needs_h200_routing()
    ref.clear_gemv_env(monkeypatch)
    p, s, gs = _random_weights(8448, 4096)
    for m in (6, 10):
        x = torch.randn((m, 4096), generator=torch.Generator().manual_seed(m)).to(torch.bfloat16).cuda()

        def fn():
            return nc.gemv(p, s, gs, x, "nvfp4")

        _set(monkeypatch, None)
        assert _instances(fn) == [TWO_CTAS]
        want = fn()
        _set(monkeypatch, "wide")
        assert _instances(fn) == [TEAMS]
        got = fn()
        assert torch.isfinite(got).all()
        assert torch.equal(got, want), m
