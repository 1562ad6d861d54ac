"""NVFP4 GEMV: the W4A4 cluster rule of session 21 helper w4a4rule40 (cuda/nvfp4/gemv_launch.cuh w4a4_cluster_size).
From 8 tokens the two-team kernel runs in clusters of 4 with both cluster forms (kForm16ClusterAmax |
kForm16ClusterCompact, gemv_w4a4_cluster.cuh) where 2 x SMs < row tiles <= 5 x SMs, else in clusters of 2 without a
form; below 8 tokens without clusters. The cluster size is not in the kernel name: the form bits tell the band (the
rule gives both forms only with clusters of 4). RESET_NATIVE_GEMV_W4A4_CLUSTER=1 turns clusters off, "2".."8" force
a size (with no form unless RESET_NATIVE_GEMV_W4A4_CLUSTER_FORM gives one); RESET_NATIVE_GEMV_W4A4_CLUSTER_FORM=none
forces no form, amax / compact / both force that one, unset or unknown values leave the rule's. Every output equals
the plain kernel's (RESET_NATIVE_GEMV_W4A4_CLUSTER=1) bit for bit. On 132 SMs (ref.needs_h200_routing); GPU tests
skip without a device."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nvfp4_gpu_reference as ref  # noqa: E402

from reset_native import _nvfp4_cuda as nc  # noqa: E402

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.gpu

ENV, FORM_ENV = ref.W4A4_CLUSTER_ENV, ref.W4A4_CLUSTER_FORM_ENV
OTHER_ENV = ("RESET_NATIVE_GEMV_16_FORM", "RESET_NATIVE_GEMV_SPLIT_AMAX")
CLUSTER, AMAX, COMPACT, BOTH = ref.W4A4_CLUSTER, ref.W4A4_CLUSTER_AMAX, ref.W4A4_CLUSTER_COMPACT, ref.W4A4_CLUSTER_BOTH
TWO_TEAMS = ref.TWO_TEAMS
STATIC_ACT_GS = 0.0013


def _bits(t):
    """The raw bits of t (NaN-safe equality)."""
    return t.view({torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16}[t.dtype])


def _form(fn):
    """The FORM bits of the one kernel fn() launches, which must be the two-team kernel."""
    forms = ref.gemv16_forms_of_call(fn)
    assert len(forms) == 1 and forms[0][:3] == TWO_TEAMS, forms
    return forms[0][3]


def _call(n, k, m, dtype=torch.bfloat16, static_scale=False):
    """A W4A4 call of m tokens on random n x k weights (bias and residual)."""
    p, s, gs = ref.random_gpu_weights(n, k)
    x, bias, residual = ref.gemv_inputs(n, k, m, dtype)
    act_gs = STATIC_ACT_GS if static_scale else None
    return lambda: nc.gemv(p, s, gs, x, "nvfp4", act_gs, bias, residual)


def _plain(fn, monkeypatch):
    """fn()'s output and FORM bits with clusters off (RESET_NATIVE_GEMV_W4A4_CLUSTER=1, no form switch). K is not
    split from here on (RESET_NATIVE_GEMV_KSPLIT=1): the band rule is the unsplit two-team kernel's, and from 14 tokens
    shapes of at most one row tile per CTA slot (8B o, the 264-tile edge) split K by default (gemv_split.cuh)."""
    monkeypatch.setenv("RESET_NATIVE_GEMV_KSPLIT", "1")
    monkeypatch.setenv(ENV, "1")
    monkeypatch.delenv(FORM_ENV, raising=False)
    rule = _form(fn)
    assert rule & (CLUSTER | BOTH) == 0, rule
    return fn(), rule


def _check(fn, cluster, form, want, rule, extra, monkeypatch):
    """Under RESET_NATIVE_GEMV_W4A4_CLUSTER = cluster and _FORM = form (None: unset) fn() runs the two-team kernel
    with FORM rule | extra and gives `want`'s bits."""
    ref.set_env(monkeypatch, ENV, cluster)
    ref.set_env(monkeypatch, FORM_ENV, form)
    assert _form(fn) == rule | extra, (cluster, form)
    ref.poison_next_block(3 << 20)  # 4 MiB of NaN
    assert torch.equal(_bits(fn()), _bits(want)), (cluster, form)


# (n, row tiles, in the band): the band's edges on 132 SMs, 2 x 132 = 264 and 5 x 132 = 660 row tiles (K = 4096;
# every one routes to the two-team kernel at M = 8 and 16: bench/probes/gemv_teams_routing.py).
EDGES = [(4224, 264, False), (4240, 265, True), (10560, 660, True), (10576, 661, False)]


@pytest.mark.parametrize("m", [8, 16])
@pytest.mark.parametrize("n,tiles,band", EDGES)
def test_band_edges(n, tiles, band, m, monkeypatch):
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch, ENV, FORM_ENV, *OTHER_ENV)
    assert (n + 15) // 16 == tiles
    fn = _call(n, 4096, m)
    want, rule = _plain(fn, monkeypatch)
    extra = CLUSTER | (BOTH if band else 0)
    assert ref.w4a4_default_cluster_bit(TWO_TEAMS, m, n) == extra
    _check(fn, None, None, want, rule, extra, monkeypatch)


# Qwen3 rows: 8B q/k/v (384 row tiles) and 32B q/k/v (640) in the band, 8B o (256) and gate_up (1536) outside it.
@pytest.mark.parametrize("n,k,band", [(6144, 4096, True), (10240, 5120, True), (4096, 4096, False),
                                      (24576, 4096, False)])
@pytest.mark.parametrize("m", [8, 12, 16])
def test_default_rule_on_qwen3_rows(n, k, band, m, monkeypatch):
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch, ENV, FORM_ENV, *OTHER_ENV)
    fn = _call(n, k, m)
    want, rule = _plain(fn, monkeypatch)
    _check(fn, None, None, want, rule, CLUSTER | (BOTH if band else 0), monkeypatch)


@pytest.mark.parametrize("dtype,static_scale", [(torch.float16, True), (torch.bfloat16, True),
                                                (torch.float16, False)])
def test_band_dtypes_and_scales(dtype, static_scale, monkeypatch):
    """fp16 x and the static activation scale in the band (8B q/k/v at M = 16; fp32 x takes two teams only when
    forced: tests/test_nvfp4_gpu_w4a4_cluster_forms.py covers it)."""
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch, ENV, FORM_ENV, *OTHER_ENV)
    fn = _call(6144, 4096, 16, dtype, static_scale)
    want, rule = _plain(fn, monkeypatch)
    _check(fn, None, None, want, rule, CLUSTER | BOTH, monkeypatch)


@pytest.mark.parametrize("n", [6144, 10560])
def test_no_clusters_at_7_tokens(n, monkeypatch):
    """M = 7 in the band: the plain kernel, also with the form switch set (a form alone launches no cluster)."""
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch, ENV, FORM_ENV, *OTHER_ENV)
    assert ref.w4a4_default_cluster_bit(TWO_TEAMS, 7, n) == 0
    fn = _call(n, 4096, 7)
    want, rule = _plain(fn, monkeypatch)
    for form in (None, "both", "none"):
        _check(fn, None, form, want, rule, 0, monkeypatch)


# (RESET_NATIVE_GEMV_W4A4_CLUSTER, _FORM, the FORM bits added) in the band (8B q/k/v at M = 12: the rule's clusters of
# 4 with both) and outside it (8B gate_up at M = 16: the rule's clusters of 2 without a form).
IN_BAND = [(None, None, CLUSTER | BOTH), (None, "none", CLUSTER), (None, "amax", CLUSTER | AMAX),
           (None, "compact", CLUSTER | COMPACT), (None, "both", CLUSTER | BOTH), (None, "bogus", CLUSTER | BOTH),
           ("0", None, CLUSTER | BOTH), ("1", None, 0), ("1", "both", 0), ("2", None, CLUSTER), ("4", None, CLUSTER),
           ("4", "none", CLUSTER), ("4", "bogus", CLUSTER), ("2", "both", CLUSTER | BOTH),
           ("4", "amax", CLUSTER | AMAX), ("2", "compact", CLUSTER | COMPACT)]
OUT_OF_BAND = [(None, None, CLUSTER), (None, "none", CLUSTER), (None, "both", CLUSTER | BOTH), ("1", None, 0),
               ("4", None, CLUSTER), ("4", "both", CLUSTER | BOTH), ("2", "compact", CLUSTER | COMPACT)]


@pytest.mark.parametrize("n,m,table", [(6144, 12, IN_BAND), (24576, 16, OUT_OF_BAND)])
def test_overrides(n, m, table, monkeypatch):
    """The switches over the rule; every value gives the plain kernel's bits (clusters of 4 fit these shapes: session
    21's measurements and tests/test_nvfp4_gpu_w4a4_cluster_forms.py)."""
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch, ENV, FORM_ENV, *OTHER_ENV)
    fn = _call(n, 4096, m)
    want, rule = _plain(fn, monkeypatch)
    for cluster, form, extra in table:
        _check(fn, cluster, form, want, rule, extra, monkeypatch)
