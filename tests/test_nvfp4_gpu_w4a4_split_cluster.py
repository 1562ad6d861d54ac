"""NVFP4 GEMV: the W4A4 split-K kernel in thread-block clusters (cuda/nvfp4/gemv_split_cluster.cuh; session 21
helper w4a4splitcl42; the default from 8 tokens since helper w4a4splitdef43: test_nvfp4_gpu_w4a4_split_cluster_rule.py).
RESET_NATIVE_GEMV_W4A4_SPLIT_CLUSTER = C forces clusters of C, = 1 the plain split kernel. The C CTAs of a cluster
share one K slice: each quantizes 1/C of the slice's staged x and copies the peers' shares as E2M1 codes (the compact
exchange, or the plain copy where the codes do not fit the reduction buffers), and each reads 1/C of x for the
dynamic amax (cluster_amax). The kernel name carries kForm16Cluster and both cluster forms on the split instance.
Every output must equal the plain split kernel's (the switch = 1) bit for bit: the Qwen3 split rows (8B down, 32B
down, 32B o) at M = 4, 8, 16, bf16 / fp16 / fp32 x, static and dynamic activation scale, bias and residual, clusters
of 2 and 4, both amax sources, unaligned x, partial row tiles, CTAs without a tile, forced slice counts, CUDA graph
replay with a PDL chain. GPU tests skip without a device."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nvfp4_gpu_reference as ref  # noqa: E402

from reset_native import _nvfp4_cuda as nc  # noqa: E402

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.gpu

ENV = ref.W4A4_SPLIT_CLUSTER_ENV
SPLIT = ref.SPLIT_INSTANCE
CLUSTER_FORM = ref.W4A4_CLUSTER | ref.W4A4_CLUSTER_BOTH  # what the switch adds to the split instance's rule
STATIC_ACT_GS = 0.0013
SIZES = (2, 4)  # both fit (two CTAs of <= ~100 KB per SM, clusters inside a GPC): must launch the cluster kernel


def _bits(t):
    """The raw bits of t (NaN-safe equality)."""
    return t.view({torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16}[t.dtype])


def _clear(monkeypatch):
    """The routing and form switches unset: choose_ksplit's slices, the rule's form, the amax source rule."""
    ref.clear_gemv_env(monkeypatch, "RESET_NATIVE_GEMV_16_FORM", "RESET_NATIVE_GEMV_SPLIT_AMAX")


def _plain(fn, monkeypatch):
    """fn()'s output and the split kernel's FORM with the switch = 1 (the plain split kernel)."""
    monkeypatch.setenv(ENV, "1")
    forms = ref.gemv16_forms_of_call(fn)
    assert len(forms) == 1 and forms[0][:3] == SPLIT and forms[0][3] & CLUSTER_FORM == 0, forms
    return fn(), forms[0][3]


def _clustered(fn, cluster, rule, monkeypatch, check=True):
    """fn() under clusters of `cluster` (check: its one kernel is the split kernel with the cluster form)."""
    monkeypatch.setenv(ENV, str(cluster))
    if check:
        forms = ref.gemv16_forms_of_call(fn)
        assert forms == [(*SPLIT, rule | CLUSTER_FORM)], (cluster, forms)
    ref.poison_next_block(3 << 20)  # 4 MiB of NaN
    return fn()


def _same_bits(fn, monkeypatch, clusters=SIZES, check=True):
    """The plain split kernel's output equals the clustered one's for every size in `clusters`; returns it."""
    want, rule = _plain(fn, monkeypatch)
    for cluster in clusters:
        got = _clustered(fn, cluster, rule, monkeypatch, check)
        assert torch.equal(_bits(got), _bits(want)), cluster
    return want


# The Qwen3 layers split K takes at M = 4..16 (132 SMs): 8B down (12 chunks: 6 slices), 32B down (25: 13 slices), 32B
# o (8: 4 slices).
ROWS = [(4096, 12288), (5120, 25600), (5120, 8192)]
DTYPES = [(torch.bfloat16, False), (torch.bfloat16, True), (torch.float16, False), (torch.float32, False)]


@pytest.mark.parametrize("m", [4, 8, 16])
@pytest.mark.parametrize("n,k", ROWS)
@pytest.mark.parametrize("dtype,static_scale", DTYPES)
def test_split_cluster_same_bits(n, k, m, dtype, static_scale, monkeypatch):
    ref.needs_h200_routing()
    _clear(monkeypatch)
    p, s, gs = ref.random_gpu_weights(n, k)
    x, bias, residual = ref.gemv_inputs(n, k, m, dtype)
    act_gs = STATIC_ACT_GS if static_scale else None
    y = _same_bits(lambda: nc.gemv(p, s, gs, x, "nvfp4", act_gs, bias, residual), monkeypatch,
                   check=dtype == torch.bfloat16 or m == 16)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("split_amax", ["0", "1"])
@pytest.mark.parametrize("n,k,m", [(4096, 12288, 16), (5120, 25600, 16), (4096, 12288, 8)])
def test_split_cluster_amax_sources(n, k, m, split_amax, monkeypatch):
    """RESET_NATIVE_GEMV_SPLIT_AMAX forces the amax pre-kernel (0) or the in-kernel amax (1: cluster_amax) under
    clusters, and both plain ones; the same bits as the plain kernel under the amax rule."""
    ref.needs_h200_routing()
    _clear(monkeypatch)
    fn = ref.random_w4a4_call_with_epilogue(n, k, m, torch.bfloat16)
    want, rule = _plain(fn, monkeypatch)
    monkeypatch.setenv("RESET_NATIVE_GEMV_SPLIT_AMAX", split_amax)
    assert torch.equal(_bits(fn()), _bits(want))
    for cluster in SIZES:
        assert torch.equal(_bits(_clustered(fn, cluster, rule, monkeypatch)), _bits(want)), cluster


# Partial row tiles and CTAs without a tile: n = 4100 (257 tiles, the last of 4 rows); n = 200 (13 tiles: at most 7 / 4
# clusters of 2 / 4 per slice, a CTA or three without a tile, which wait for their peers at exit); n = 40 at 32B o.
@pytest.mark.parametrize("n,k,m", [(4100, 12288, 8), (200, 12288, 16), (200, 12288, 4), (40, 8192, 16)])
@pytest.mark.parametrize("static_scale", [False, True])
def test_split_cluster_partial_tiles(n, k, m, static_scale, monkeypatch):
    ref.needs_h200_routing()
    _clear(monkeypatch)
    p, s, gs = ref.random_gpu_weights(n, k)
    x, bias, residual = ref.gemv_inputs(n, k, m, torch.bfloat16)
    act_gs = STATIC_ACT_GS if static_scale else None
    _same_bits(lambda: nc.gemv(p, s, gs, x, "nvfp4", act_gs, bias, residual), monkeypatch, clusters=(2, 3, 4))


# Forced slice counts (RESET_NATIVE_GEMV_KSPLIT): 32B down by 5 at M = 8 (5 chunks x 8 tokens = 40 staged rows: a
# share of 20 rows at C = 2 is 12.8 KB of codes, over the 10 KB of reduction buffers at 8 columns: the plain copy;
# 10 rows at C = 4: compact); 8B down by 4 at M = 12 (36 rows: shares of 18 / 9 rows in 18 KB) and by 12 (one chunk
# per slice); unequal slices (32B o by 3: 2 / 3 / 3 chunks).
@pytest.mark.parametrize("n,k,m,ksplit", [(5120, 25600, 8, "5"), (4096, 12288, 12, "4"), (4096, 12288, 16, "12"),
                                          (5120, 8192, 12, "3")])
def test_split_cluster_forced_slices(n, k, m, ksplit, monkeypatch):
    ref.needs_h200_routing()
    _clear(monkeypatch)
    monkeypatch.setenv("RESET_NATIVE_GEMV_KSPLIT", ksplit)
    p, s, gs = ref.random_gpu_weights(n, k)
    x, bias, residual = ref.gemv_inputs(n, k, m, torch.bfloat16)
    _same_bits(lambda: nc.gemv(p, s, gs, x, "nvfp4", None, bias, residual), monkeypatch)


@pytest.mark.parametrize("m", [5, 16])
def test_split_cluster_unaligned_x(m, monkeypatch):
    """x 2 bytes off 16-byte alignment (load_unit's scalar loads, the amax's element slices)."""
    ref.needs_h200_routing()
    _clear(monkeypatch)
    n, k = 4096, 12288
    p, s, gs = ref.random_gpu_weights(n, k)
    x_full = torch.randn((m * k + 1,), generator=torch.Generator().manual_seed(9)).to(torch.bfloat16).cuda()
    x = x_full[1:].view(m, k)
    _same_bits(lambda: nc.gemv(p, s, gs, x, "nvfp4"), monkeypatch)


@pytest.mark.parametrize("static_scale", [False, True])
def test_split_cluster_special_values(static_scale, monkeypatch):
    """NaN of either sign, inf (static scale), huge blocks (the exact quantizer), signed zeros, in every cluster share
    of a slice and in every amax share of x (fp32 x, 8B down M = 16)."""
    ref.needs_h200_routing()
    _clear(monkeypatch)
    n, k, m = 4096, 12288, 16
    p, s, gs = ref.random_gpu_weights(n, k)
    x = torch.randn((m, k), generator=torch.Generator().manual_seed(7)).to(torch.float32)
    for tok in (0, m // 4, m // 2 + 1, m - 1):
        for c0 in (0, 2048 + 512, k - 1024):  # slices 0, 1 and the last
            x[tok, c0 + 5] = float("nan")
            x[tok, c0 + 6] = -float("nan")
            x[tok, c0 + 40:c0 + 56] = -0.0
            x[tok, c0 + 64:c0 + 80] = torch.linspace(-1e-3, 1e-3, 16)
            x[tok, c0 + 79] = -50.0
        x[tok, k - 200:k - 184] *= 1e12
        x[tok, k - 100] = 3e38
        if static_scale:
            x[tok, 17] = float("inf")
            x[tok, 18] = -float("inf")
    x = x.cuda()
    act_gs = STATIC_ACT_GS if static_scale else None
    _same_bits(lambda: nc.gemv(p, s, gs, x, "nvfp4", act_gs), monkeypatch)


@pytest.mark.parametrize("cluster", SIZES)
@pytest.mark.parametrize("n,k,m", [(4096, 12288, 16), (5120, 8192, 8)])
def test_split_cluster_graph_replay_and_pdl_chain(cluster, n, k, m, monkeypatch):
    """Two calls captured in clusters (dynamic scale), the second reading the first's output as its residual (a
    PDL-chained dependency through the split reduction), replayed after x changes: equal to eager plain calls."""
    ref.needs_h200_routing()
    _clear(monkeypatch)
    p, s, gs = ref.random_gpu_weights(n, k)
    x, bias, residual = ref.gemv_inputs(n, k, m, torch.bfloat16)
    monkeypatch.setenv(ENV, str(cluster))
    forms = ref.gemv16_forms_of_call(lambda: nc.gemv(p, s, gs, x, "nvfp4", None, bias, residual))
    assert len(forms) == 1 and forms[0][:3] == SPLIT and forms[0][3] & CLUSTER_FORM == CLUSTER_FORM, forms

    def call(r):
        return nc.gemv(p, s, gs, x, "nvfp4", None, bias, r)

    g, y1, y2 = ref.capture_chained_pair(call, residual)
    monkeypatch.setenv(ENV, "1")
    replayed = ref.gemv16_forms_of_call(g.replay)  # the graph holds the clustered kernel
    assert len(replayed) == 2 and all(f[3] & CLUSTER_FORM == CLUSTER_FORM for f in replayed), replayed
    ref.assert_chained_replay_matches_eager(g, y1, y2, x, call, residual)


def test_split_cluster_switch_scope(monkeypatch):
    """Values outside 2..8 (and not empty) launch the plain split kernel; RESET_NATIVE_GEMV_16_FORM away from the rule
    (nohead) keeps its own kernel; A16 split K and the W4A4 two-team kernel ignore the switch; the same bits
    throughout."""
    ref.needs_h200_routing()
    _clear(monkeypatch)
    m = 16
    w4a4, a16 = ref.random_gemv_calls(4096, 12288, m, 3)
    want, rule = _plain(w4a4, monkeypatch)
    for value in ("1", "9", "0", "2x", "bogus"):
        monkeypatch.setenv(ENV, value)
        assert ref.gemv16_forms_of_call(w4a4) == [(*SPLIT, rule)], value
        assert torch.equal(_bits(w4a4()), _bits(want)), value
    monkeypatch.setenv("RESET_NATIVE_GEMV_16_FORM", "nohead")
    monkeypatch.delenv(ENV)
    nohead = ref.gemv16_forms_of_call(w4a4)
    monkeypatch.setenv(ENV, "4")
    assert ref.gemv16_forms_of_call(w4a4) == nohead and nohead[0][3] & CLUSTER_FORM == 0, nohead
    assert torch.equal(_bits(w4a4()), _bits(want))
    monkeypatch.delenv("RESET_NATIVE_GEMV_16_FORM")
    monkeypatch.delenv(ENV)
    base = (ref.gemv16_kernel_args(a16), a16())
    monkeypatch.setenv(ENV, "4")
    assert ref.gemv16_kernel_args(a16) == base[0]
    assert torch.equal(_bits(a16()), _bits(base[1]))
    # the two-team kernel (8B gate_up, K = 4096: never split) keeps its own cluster rule
    teams_call, _ = ref.random_gemv_calls(24576, 4096, m, 4)
    monkeypatch.delenv(ENV)
    teams = ref.gemv16_forms_of_call(teams_call)
    monkeypatch.setenv(ENV, "4")
    assert ref.gemv16_forms_of_call(teams_call) == teams
