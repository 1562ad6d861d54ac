"""NVFP4 GEMV: the W4A4 x-staging forms of session 19 helper w4a4x29 (cuda/nvfp4/gemv_w4a4_quant.cuh), the W4A4
default since session 20 helper w4a4x30: kForm16QuantFast (the x quantization in ~19 instead of ~50 instructions per
element) and kForm16AmaxWide (the in-kernel activation amax with 8 loads in flight per thread), in the W4A4 rule with
the pad on the persistent fast-path 16-bit kernels (two CTAs per SM, one CTA, two teams, split K), and
kSmallQuantFast | kSmallAmaxWide with the cb form on the W4A4 block-diagonal kernel's fast path (M <= 2).
RESET_NATIVE_GEMV_16_FORM=w4a4old runs session 19's forms (the pad alone; cb alone) on the same instances. The same
staged x (the same E2M1 * E4M3 values: the division is __fdiv_rn's own fast-path sequence with the reciprocal hoisted,
the E2M1 rounding an exact round-to-nearest-even on the E2M1 grid; blocks outside [2^-32, 2^32] take the exact code)
and the same max: every output equals w4a4old's bit for bit, here with bf16, fp16 and fp32 x, a dynamic (in the
kernel or the pre-kernel) and a static activation scale, with bias and residual, on x built to put |v| / s within an
ulp or two of every E2M1 decision point (where a quotient off by one ulp would change the code), on tiny (subnormal),
huge, zero, NaN and inf elements, and in CUDA graph replays. Split K's amax source follows the form (gemv_split.cuh
split_amax_inline: 50 MiB of grid x |x| with the wide amax, 32 MiB under w4a4old). GPU tests skip without a device."""
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

ENV = "RESET_NATIVE_GEMV_16_FORM"
HEAD, RED_PAD, QUANT_FAST, AMAX_WIDE = 1024, 2048, 4096, 8192  # kForm16* bits of the 16-bit kernel
BD_CB, BD_QUANT_FAST, BD_AMAX_WIDE = 3, 64, 128  # the block-diagonal kernel's SMALL bits (kSmallCompact | kSmallBatchX)
# The W4A4 forms (the 16-bit kernel's on split K also with kForm16HeadRefill since session 20's last call: _default)
DEFAULT = {"16": RED_PAD | QUANT_FAST | AMAX_WIDE, "bd": BD_CB | BD_QUANT_FAST | BD_AMAX_WIDE}
OLD = {"16": RED_PAD, "bd": BD_CB}  # under w4a4old (session 19's)
STATIC_ACT_GS = 0.0013  # as tests/test_nvfp4_cuda.py's static-scale W4A4 cases
E2M1_DECISIONS = (0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0)  # e2m1_round_magnitude's > / >= thresholds


@functools.lru_cache(maxsize=4)
def _ref_weights(n, k):
    return ref.quantize(torch.randn((n, k), generator=torch.Generator().manual_seed(n * 13 + k)).numpy())


def _bits(t):
    """The raw bits of t (NaN-safe equality)."""
    return t.view({torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16}[t.dtype])


def _kernel_forms(fn):
    """One entry per GEMV kernel fn() launched: ("16", MINB, SPLIT, TEAMS, FORM) for the 16-bit kernel, ("bd", TOK,
    MINB, SMALL) for the block-diagonal one (template arguments read from the kernel names)."""
    forms = [("16", *f) for f in ref.gemv16_forms_of_call(fn)]
    return forms + [("bd", a[2], a[4], a[8]) for a in ref.kernel_template_args(fn, "gemv_bd_kernel")]


def _default(old, m, n):
    """The default's form bits on w4a4old's kernel form `old` ("16", MINB, SPLIT, TEAMS, FORM) / ("bd", ...) at m
    tokens and n rows: the head refill on split K, the cluster bits on two teams from 8 tokens (since session 21:
    w4a4old runs the plain kernel; ref.w4a4_default_cluster_bit: both cluster forms in the band of row tiles) and on
    split K from 8 tokens (since helper w4a4splitdef43)."""
    if old[0] == "bd":
        return DEFAULT["bd"]
    return DEFAULT["16"] | (HEAD if old[2] else 0) | ref.w4a4_default_cluster_bit(old[1:4], m, n)


def _same_bits_as_old(fn, m, n, monkeypatch):
    """fn() (m tokens, n rows) under w4a4old, then under the default: the same kernel and instance, w4a4old's form (the
    pad; the block-diagonal kernel: cb) and the default's (plus the fast quantizer and the wide amax; the head refill
    on split K; clusters on two teams and split K from 8 tokens), the same output bits.
    Returns the default's output and its forms ("16", MINB, SPLIT, TEAMS, FORM) / ("bd", TOK, MINB, SMALL)."""
    ref.set_env(monkeypatch, ENV, "w4a4old")
    old = _kernel_forms(fn)
    assert len(old) == 1 and old[0][-1] == OLD[old[0][0]], old
    want = fn()
    ref.set_env(monkeypatch, ENV, None)
    forms = _kernel_forms(fn)
    assert forms == [(*old[0][:-1], _default(old[0], m, n))], forms
    ref.poison_next_block(3 << 20)  # 4 MiB of NaN
    got = fn()
    assert torch.equal(_bits(got), _bits(want))
    return got, forms


# (n, k, m, RESET_NATIVE_GEMV_TEAMS, instance (MINB, SPLIT, TEAMS)) on 132 SMs, as
# tests/test_nvfp4_gpu_form16_w4a4_pad.py lists them (bench/probes/gemv_teams_routing.py): the block-diagonal kernel
# (M <= 2), two teams with 8 token columns (M = 2 at 528 row tiles and at K = 12288: since session 21's W4A4 two-token
# rule, gemv_bd_w4a4_rule.cuh, the block-diagonal kernel before; M = 3) and 16 (in clusters by default since
# session 21: of 4 with both cluster forms at 8448 rows, 528 row tiles), two CTAs per SM with 8 and 16, one CTA per
# SM, split K with 8 (few row tiles: the W4A4 split by 4) and 16 token columns (long K: 6 slices). fp32 x never
# takes two teams where two CTAs fit (gemv_launch.cuh teams_where_two_ctas_fit) and keeps the block-diagonal kernel
# at two tokens: FP32_INSTANCE.
SHAPES = [
    (200, 4096, 1, None, ("bd", 1, 2)),
    (4096, 4096, 2, None, ("bd", 2, 2)),
    (8448, 4096, 2, None, (1, 0, 2)),
    (4096, 12288, 2, None, (1, 0, 2)),
    (200, 4096, 3, None, (1, 0, 2)),
    (8448, 4096, 16, None, (1, 0, 2)),
    (8448, 4096, 8, "1", (2, 0, 1)),
    (200, 1024, 16, "1", (2, 0, 1)),
    (8448, 4096, 16, "1", (1, 0, 1)),
    (200, 4096, 5, None, (2, 1, 1)),
    (200, 12288, 16, None, (2, 1, 1)),
]
FP32_INSTANCE = {(200, 4096, 3, None): (2, 0, 1), (8448, 4096, 2, None): ("bd", 2, 2),
                 (4096, 12288, 2, None): ("bd", 2, 2)}


@pytest.mark.parametrize("n,k,m,teams,instance", SHAPES)
@pytest.mark.parametrize("dtype,static_scale", [(torch.bfloat16, False), (torch.bfloat16, True), (torch.float16, False),
                                                (torch.float32, True)])
def test_quantfast_same_bits_as_w4a4old(n, k, m, teams, instance, dtype, static_scale, monkeypatch):
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch, ENV, "RESET_NATIVE_GEMV_SPLIT_AMAX")
    ref.set_env(monkeypatch, "RESET_NATIVE_GEMV_TEAMS", teams)
    if dtype == torch.float32:
        instance = FP32_INSTANCE.get((n, k, m, teams), instance)
    p, s, gs = ref.random_gpu_weights(n, k)
    x, bias, residual = ref.gemv_inputs(n, k, m, dtype)
    act_gs = STATIC_ACT_GS if static_scale else None
    y, forms = _same_bits_as_old(lambda: nc.gemv(p, s, gs, x, "nvfp4", act_gs, bias, residual), m, n, monkeypatch)
    assert forms[0][:3] == instance if forms[0][0] == "bd" else forms[0][1:4] == instance, forms
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("split_amax", ["0", "1"])
def test_quantfast_split_amax_sources(split_amax, monkeypatch):
    """Split K with the amax pre-kernel ("0") and in every CTA ("1", CTA 0 storing it for the reduction)."""
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch, ENV)
    monkeypatch.setenv("RESET_NATIVE_GEMV_SPLIT_AMAX", split_amax)
    p, s, gs = ref.random_gpu_weights(200, 12288)
    x, bias, residual = ref.gemv_inputs(200, 12288, 16, torch.bfloat16)
    _, forms = _same_bits_as_old(lambda: nc.gemv(p, s, gs, x, "nvfp4", None, bias, residual), 16, 200, monkeypatch)
    assert forms[0][:3] == ("16", 2, 1), forms


def _amax_pre_kernel_runs(fn):
    """Whether fn() launched the activation amax pre-kernel (quantize.cu amax_kernel), from the torch profiler's kernel
    names; skips the test when the profiler records no kernel names here."""
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    names = [e.name for e in prof.events()]
    if not any("gemv" in name for name in names):
        pytest.skip("the profiler recorded no kernel names")
    return any("amax_kernel" in name for name in names)


# Split K (bf16 x, dynamic scale) on 132 SMs: (n, k, m, grid x |x| in MiB): Qwen3-32B o at M = 4 and 8 (split by 4,
# 264 CTAs; Qwen3-8B q/k/v at M = 8 and 16 until session 20 helper w4a4split31, which no longer split: the same grid
# and MiB), 8B down at M = 8 and 9 (split by 6, 264 CTAs). gemv_split.cuh split_amax_inline: every CTA reduces the
# amax itself up to 50 MiB with the wide amax (the default), 32 MiB with the old one (w4a4old); the pre-kernel beyond.
# The plain split kernel's grid: from 8 tokens the default runs clusters (since helper w4a4splitdef43: each CTA reads
# 1/C of x, grid / C CTAs' worth), so the amax source is checked with RESET_NATIVE_GEMV_W4A4_SPLIT_CLUSTER=1.
@pytest.mark.parametrize("n,k,m,mib", [(5120, 8192, 4, 16.5), (5120, 8192, 8, 33.0), (4096, 12288, 8, 49.5),
                                       (4096, 12288, 9, 55.7)])
def test_split_amax_source_follows_the_form(n, k, m, mib, monkeypatch):
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch, ENV, "RESET_NATIVE_GEMV_SPLIT_AMAX")
    p, s, gs = ref.random_gpu_weights(n, k)
    x, bias, residual = ref.gemv_inputs(n, k, m, torch.bfloat16)
    assert abs(264 * m * k * 2 / 2**20 - mib) < 0.1

    def fn():
        return nc.gemv(p, s, gs, x, "nvfp4", None, bias, residual)

    _, forms = _same_bits_as_old(fn, m, n, monkeypatch)
    assert forms[0][:3] == ("16", 2, 1), forms
    monkeypatch.setenv(ref.W4A4_SPLIT_CLUSTER_ENV, "1")
    assert ref.gemv16_forms_of_call(fn) == [(2, 1, 1, DEFAULT["16"] | HEAD)]
    assert _amax_pre_kernel_runs(fn) == (mib > 50), "default"
    monkeypatch.setenv(ENV, "w4a4old")
    assert _amax_pre_kernel_runs(fn) == (mib > 32), "w4a4old"


def _decision_x(m, k, act_gs, dtype, seed):
    """x [m, k] whose 16-element blocks put |v| / s within an ulp or two of every E2M1 decision point: each block's
    first element 6 * sigma * act_gs (its E4M3 scale then decodes to sigma, a power of two or an E4M3 value with
    mantissa bits, so s = sigma * act_gs rounded), the others +-T * s * (1 + d 2^-25) for thresholds T and d = -4..4
    (fp32 x), or +-T * sigma (16-bit x: exact there; act_gs = 1 + d' 2^-23 then puts T * sigma / s next to T). Some
    blocks hold zeros, tiny (subnormal fp32) and random values."""
    rng = np.random.default_rng(seed)
    f32 = np.float32
    sigmas = np.array([2.0 ** e for e in range(-6, 7)] + [1.125, 1.375, 3.75, 0.8125, 208.0], dtype=f32)
    x = np.zeros((m, k), dtype=f32)
    for r in range(m):
        for b in range(k // 16):
            blk = x[r, 16 * b:16 * b + 16]
            kind = rng.integers(0, 10)
            sigma = f32(rng.choice(sigmas))
            s = f32(sigma * f32(act_gs))  # the kernel's s (fp32 multiply, rounded)
            blk[0] = f32(f32(6.0) * s) if dtype == torch.float32 else f32(6.0) * sigma
            for j in range(1, 16):
                t = E2M1_DECISIONS[rng.integers(0, len(E2M1_DECISIONS))]
                if dtype == torch.float32:
                    v = f32(np.float64(t) * np.float64(s) * (1.0 + rng.integers(-4, 5) * 2.0 ** -25))
                else:
                    v = f32(t) * sigma
                blk[j] = v if rng.integers(0, 2) else -v
            if kind == 0:
                blk[1:] = 0.0
            elif kind == 1:
                blk[1:8] = rng.choice([1e-41, 3e-39, 1e-30, 0.0], size=7).astype(f32)
            elif kind == 2:
                blk[1:] = rng.standard_normal(15).astype(f32) * sigma
    return torch.from_numpy(x).to(dtype).cuda()


@pytest.mark.parametrize("n,k,m,teams", [(200, 4096, 5, None), (8448, 4096, 16, None), (200, 1024, 16, "1"),
                                         (200, 4096, 2, None)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("act_gs", [1.0, 1.0 + 2.0 ** -23, 0.31415927])
def test_quantfast_decision_points(n, k, m, teams, dtype, act_gs, monkeypatch):
    """Static scale: quotients next to every E2M1 decision point (round-to-nearest-even ties included)."""
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch, ENV, "RESET_NATIVE_GEMV_SPLIT_AMAX")
    ref.set_env(monkeypatch, "RESET_NATIVE_GEMV_TEAMS", teams)
    p, s, gs = ref.random_gpu_weights(n, k)
    x = _decision_x(m, k, act_gs, dtype, seed=n + m)
    y, _ = _same_bits_as_old(lambda: nc.gemv(p, s, gs, x, "nvfp4", float(np.float32(act_gs))), m, n, monkeypatch)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("static_scale", [False, True])
@pytest.mark.parametrize("n,k,m,teams", [(200, 4096, 5, None), (8448, 4096, 16, None), (200, 4096, 2, None)])
def test_quantfast_special_values(n, k, m, teams, static_scale, monkeypatch):
    """NaN elements (dropped by the amax, quantized to +-0), inf (static scale: a block outside the fast range), huge
    blocks (above 2^32: the exact code) and all-zero blocks, bf16 and fp32 x."""
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch, ENV, "RESET_NATIVE_GEMV_SPLIT_AMAX")
    ref.set_env(monkeypatch, "RESET_NATIVE_GEMV_TEAMS", teams)
    p, s, gs = ref.random_gpu_weights(n, k)
    for dtype in (torch.float32, torch.bfloat16):
        x = torch.randn((m, k), generator=torch.Generator().manual_seed(7)).to(torch.float32)
        x[0, 5] = float("nan")
        x[1, 100:116] *= 1e12
        x[1, 300] = 3e38 if dtype == torch.float32 else 1e38
        if static_scale:
            x[0, 17] = float("inf")
        x[m - 1, k // 2:] = 0.0
        x = x.to(dtype).cuda()
        _same_bits_as_old(lambda: nc.gemv(p, s, gs, x, "nvfp4", STATIC_ACT_GS if static_scale else None), m, n,
                          monkeypatch)


@pytest.mark.parametrize("n,k,m", [(200, 4096, 2), (200, 4096, 3), (200, 4096, 5)])
def test_quantfast_unaligned_x(n, k, m, monkeypatch):
    """x 2 bytes off 16-byte alignment (the scalar amax and staging loads, or the launcher's aligned copy)."""
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch, ENV, "RESET_NATIVE_GEMV_SPLIT_AMAX")
    p, s, gs = ref.random_gpu_weights(n, k)
    x_full = torch.randn((m * k + 1,), generator=torch.Generator().manual_seed(9)).to(torch.bfloat16).cuda()
    x = x_full[1:].view(m, k)
    _same_bits_as_old(lambda: nc.gemv(p, s, gs, x, "nvfp4"), m, n, monkeypatch)


@pytest.mark.parametrize("value", [None, "w4a4old"])
@pytest.mark.parametrize("n,k,m", [(200, 4096, 2), (200, 4096, 3), (200, 4096, 5), (200, 12288, 16)])
def test_quantfast_vs_fp64(value, n, k, m, monkeypatch):
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch, ENV, "RESET_NATIVE_GEMV_SPLIT_AMAX")
    ref.set_env(monkeypatch, ENV, value)
    weights = _ref_weights(n, k)
    p, s = torch.from_numpy(weights[0]).cuda(), torch.from_numpy(weights[1]).cuda()
    x, bias, residual = ref.gemv_inputs(n, k, m, torch.bfloat16)
    y = nc.gemv(p, s, float(weights[2]), x, "nvfp4", None, bias, residual)
    ref.check_vs_fp64(y, *weights, x, "nvfp4", bias, residual)


@pytest.mark.parametrize("n,k,m", [(8448, 4096, 16), (200, 4096, 5), (200, 4096, 1)])
def test_quantfast_graph_replay(n, k, m, monkeypatch):
    """Captured under the default (dynamic scale: the wide amax in the kernel), replayed after x changes: equal to
    eager w4a4old calls."""
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch, ENV, "RESET_NATIVE_GEMV_SPLIT_AMAX")
    p, s, gs = ref.random_gpu_weights(n, k)
    x, bias, residual = ref.gemv_inputs(n, k, m, torch.bfloat16)
    ref.assert_graph_replay_matches_eager(monkeypatch, lambda: nc.gemv(p, s, gs, x, "nvfp4", None, bias, residual), x,
                                          ENV, "w4a4old")


def test_w4a4old_leaves_a16_and_other_kernels_alone(monkeypatch):
    """w4a4old: A16 calls run their rule's forms (the 16-bit kernel's FORM, the block-diagonal kernel's SMALL), the same
    bits; the W4A4 chunked kernel keeps FORM 0 either way."""
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch, ENV, "RESET_NATIVE_GEMV_SPLIT_AMAX")
    p, s, gs = ref.random_gpu_weights(8448, 4096)
    x = torch.randn((16, 4096), generator=torch.Generator().manual_seed(3)).to(torch.bfloat16).cuda()

    def a16():
        return nc.gemv(p, s, gs, x, "bf16")

    base = ref.gemv16_forms_of_call(a16)
    want = a16()
    base_bd = _kernel_forms(lambda: nc.gemv(p, s, gs, x[:2], "bf16"))  # A16 M = 2: the block-diagonal kernel
    assert [f[0] for f in base_bd] == ["bd"], base_bd
    p8, s8, _ = ref.random_gpu_weights(200, 8192)
    x8 = torch.randn((16, 8192), generator=torch.Generator().manual_seed(4)).to(torch.bfloat16).cuda()
    for value in ("w4a4old", None):
        ref.set_env(monkeypatch, ENV, value)
        assert ref.gemv16_forms_of_call(a16) == base, value
        assert torch.equal(a16(), want), value
        assert _kernel_forms(lambda: nc.gemv(p, s, gs, x[:2], "bf16")) == base_bd, value
        monkeypatch.setenv("RESET_NATIVE_GEMV_KSPLIT", "1")
        args = ref.gemv16_kernel_args(lambda: nc.gemv(p8, s8, gs, x8, "nvfp4"))
        assert [(a[4], a[9]) for a in args] == [(0, 0)], value  # the chunked kernel: (WHOLE, FORM)
        monkeypatch.delenv("RESET_NATIVE_GEMV_KSPLIT")
