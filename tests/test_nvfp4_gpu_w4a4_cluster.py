"""NVFP4 GEMV: the W4A4 two-team kernel in thread-block clusters (kForm16Cluster, session 20 helper w4a4cluster35;
the default since session 21: clusters of 2 CTAs from 8 tokens, gemv_launch.cuh w4a4_cluster_size). Each CTA of a
cluster quantizes 1/C of x's staged token rows and copies the others' from their shared memory (DSMEM): the same
staged x as the plain kernel, where every CTA quantizes all of it, so every output must equal the plain kernel's
(RESET_NATIVE_GEMV_W4A4_CLUSTER=1) bit for bit: bf16, fp16 and fp32 x, dynamic (in-kernel amax) and static activation
scale, bias and residual, shares of unequal size (rows = K chunks x M not divisible by C), CTAs without a row tile,
NaN / inf / huge elements, x off 16-byte alignment, CUDA graph replay and a PDL chain. "2".."8" force that size at
every token count, unset (or an unknown value) is the rule: at M >= 8 clusters of 4 with both cluster forms where
2 x SMs < row tiles <= 5 x SMs (since session 21 helper w4a4rule40: 8B and 32B q/k/v; their FORM bits 32768 | 65536,
tests/test_nvfp4_gpu_w4a4_cluster_band.py), else clusters of 2 without a form; none below 8 tokens. The switch must
leave every other instance and A16 alone. GPU tests skip without a device."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nvfp4_gpu_reference as ref  # noqa: E402

from reset_native import _nvfp4_cuda as nc  # noqa: E402

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.gpu

ENV = ref.W4A4_CLUSTER_ENV
FORM_ENV = "RESET_NATIVE_GEMV_16_FORM"
CLUSTER = ref.W4A4_CLUSTER
BOTH = ref.W4A4_CLUSTER_BOTH  # the rule's form in its band (clusters of 4)
TWO_TEAMS = ref.TWO_TEAMS
STATIC_ACT_GS = 0.0013


def _bits(t):
    """The raw bits of t (NaN-safe equality)."""
    return t.view({torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16}[t.dtype])


def _same_bits_as_plain(fn, cluster, monkeypatch, added=CLUSTER):
    """fn() with RESET_NATIVE_GEMV_W4A4_CLUSTER=1 (the two-team kernel, its rule's form, no clusters), then with the
    switch = cluster (None: unset, the default): the same instance with the FORM bits `added` (kForm16Cluster; the
    default adds both cluster forms in its band), the same output bits. Returns that output."""
    monkeypatch.setenv(ENV, "1")
    plain = ref.gemv16_forms_of_call(fn)
    assert len(plain) == 1 and plain[0][:3] == TWO_TEAMS and plain[0][3] & CLUSTER == 0, plain
    want = fn()
    ref.set_env(monkeypatch, ENV, None if cluster is None else str(cluster))
    forms = ref.gemv16_forms_of_call(fn)
    assert forms == [(*TWO_TEAMS, plain[0][3] | added)], forms
    ref.poison_next_block(3 << 20)  # 4 MiB of NaN
    got = fn()
    assert torch.equal(_bits(got), _bits(want))
    return got


# (n, k, m, RESET_NATIVE_GEMV_TEAMS) routed to the two-team kernel on 132 SMs (bench/probes/gemv_teams_routing.py):
# Qwen3 rows (8B q/k/v M = 12, gate_up M = 16, 32B q/k/v M = 9: 45 staged rows, shares 22 / 23; 32B gate_up M = 16),
# 8448 rows at M = 16, few row tiles (200 rows, 13 tiles: 7 walkers, grid rounded up to whole clusters, so a CTA
# without a tile) at M = 3 (12 rows), one K chunk at M = 16 (forced: two CTAs per SM would fit) and 8B q/k/v at M = 2
# (two teams by default since session 21: gemv_bd_w4a4_rule.cuh; 8 rows).
SHAPES = [
    (6144, 4096, 12, None),
    (10240, 5120, 9, None),
    (51200, 5120, 16, None),
    (200, 4096, 3, None),
]
MORE_SHAPES = [(24576, 4096, 16, None), (8448, 4096, 16, None), (200, 1024, 16, "2"),
               (6144, 4096, 2, None)]  # bf16 x, dynamic scale only
DTYPES = [(torch.bfloat16, False), (torch.bfloat16, True), (torch.float16, False), (torch.float32, True)]


@pytest.mark.parametrize("n,k,m,teams,dtype,static_scale",
                         [s + d for s in SHAPES for d in DTYPES] + [s + DTYPES[0] for s in MORE_SHAPES])
def test_cluster2_same_bits(n, k, m, teams, dtype, static_scale, monkeypatch):
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch, ENV, FORM_ENV, "RESET_NATIVE_GEMV_SPLIT_AMAX")
    # fp32 x never takes two teams where two CTAs fit (gemv_launch.cuh teams_where_two_ctas_fit): forced
    ref.set_env(monkeypatch, "RESET_NATIVE_GEMV_TEAMS", "2" if dtype == torch.float32 else teams)
    p, s, gs = ref.random_gpu_weights(n, k)
    x, bias, residual = ref.gemv_inputs(n, k, m, dtype)
    act_gs = STATIC_ACT_GS if static_scale else None
    y = _same_bits_as_plain(lambda: nc.gemv(p, s, gs, x, "nvfp4", act_gs, bias, residual), 2, monkeypatch)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("cluster,n,k,m,teams,static_scale",
                         [(4,) + s + (st,) for s in (MORE_SHAPES[0], SHAPES[1], SHAPES[3]) for st in (False, True)] +
                         [(3,) + SHAPES[1] + (False,)])
def test_cluster_sizes_same_bits(cluster, n, k, m, teams, static_scale, monkeypatch):
    """Clusters of 4 (45 rows: shares 11 / 11 / 11 / 12; 12 rows: 3 each) and of 3 (grid a multiple of 3)."""
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch, ENV, FORM_ENV, "RESET_NATIVE_GEMV_SPLIT_AMAX")
    ref.set_env(monkeypatch, "RESET_NATIVE_GEMV_TEAMS", teams)
    p, s, gs = ref.random_gpu_weights(n, k)
    x, bias, residual = ref.gemv_inputs(n, k, m, torch.bfloat16)
    act_gs = STATIC_ACT_GS if static_scale else None
    _same_bits_as_plain(lambda: nc.gemv(p, s, gs, x, "nvfp4", act_gs, bias, residual), cluster, monkeypatch)


def test_cluster8_same_bits_or_plain(monkeypatch):
    """Clusters of 8: the cluster kernel where 8 CTAs of ~200 KB fit a GPC, else the plain one; the same bits."""
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch, ENV, FORM_ENV, "RESET_NATIVE_GEMV_SPLIT_AMAX")
    p, s, gs = ref.random_gpu_weights(51200, 5120)
    x, bias, residual = ref.gemv_inputs(51200, 5120, 16, torch.bfloat16)

    def fn():
        return nc.gemv(p, s, gs, x, "nvfp4", None, bias, residual)

    monkeypatch.setenv(ENV, "1")
    want = fn()
    monkeypatch.setenv(ENV, "8")
    forms = ref.gemv16_forms_of_call(fn)
    assert len(forms) == 1 and forms[0][:3] == TWO_TEAMS, forms
    assert torch.equal(_bits(fn()), _bits(want))


@pytest.mark.parametrize("static_scale", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cluster_special_values(static_scale, dtype, monkeypatch):
    """NaN (dropped by the amax), inf (static scale), huge blocks (the exact quantizer) and zeros, in both shares."""
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch, ENV, FORM_ENV, "RESET_NATIVE_GEMV_SPLIT_AMAX")
    ref.set_env(monkeypatch, "RESET_NATIVE_GEMV_TEAMS", "2")
    n, k, m = 8448, 4096, 16
    p, s, gs = ref.random_gpu_weights(n, k)
    x = torch.randn((m, k), generator=torch.Generator().manual_seed(7)).to(torch.float32)
    for tok in (0, m - 1):  # token 0 of chunk 0 lies in share 0, token m - 1 of the last chunk in share 1
        x[tok, 5] = float("nan")
        x[tok, k - 200:k - 184] *= 1e12
        x[tok, k - 100] = 3e38 if dtype == torch.float32 else 1e38
        if static_scale:
            x[tok, 17] = float("inf")
    x[m // 2, k // 2:] = 0.0
    x = x.to(dtype).cuda()
    _same_bits_as_plain(lambda: nc.gemv(p, s, gs, x, "nvfp4", STATIC_ACT_GS if static_scale else None), 2,
                        monkeypatch)


def test_cluster_unaligned_x(monkeypatch):
    """x 2 bytes off 16-byte alignment (the scalar loads of load_unit and the amax, or the launcher's aligned copy)."""
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch, ENV, FORM_ENV, "RESET_NATIVE_GEMV_SPLIT_AMAX")
    m, k = 3, 4096
    p, s, gs = ref.random_gpu_weights(200, k)
    x_full = torch.randn((m * k + 1,), generator=torch.Generator().manual_seed(9)).to(torch.bfloat16).cuda()
    x = x_full[1:].view(m, k)
    _same_bits_as_plain(lambda: nc.gemv(p, s, gs, x, "nvfp4"), 2, monkeypatch)


@pytest.mark.parametrize("value,n,k,m", [("2", 24576, 4096, 16), ("2", 200, 4096, 3), (None, 24576, 4096, 16),
                                         (None, 6144, 4096, 8)])
def test_cluster_graph_replay_and_pdl_chain(value, n, k, m, monkeypatch):
    """Two calls captured under clusters (forced 2, or the default at M >= 8: 2 on 8B gate_up, 4 with both cluster
    forms on 8B q/k/v; dynamic scale), the second reading the first's output as its residual (a PDL-chained
    dependency), replayed after x changes: equal to eager calls without clusters (RESET_NATIVE_GEMV_W4A4_CLUSTER=1)."""
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch, ENV, FORM_ENV, "RESET_NATIVE_GEMV_SPLIT_AMAX")
    p, s, gs = ref.random_gpu_weights(n, k)
    x, bias, residual = ref.gemv_inputs(n, k, m, torch.bfloat16)
    ref.set_env(monkeypatch, ENV, value)
    form = ref.gemv16_forms_of_call(lambda: nc.gemv(p, s, gs, x, "nvfp4", None, bias, residual))[0][3]
    assert form & (CLUSTER | BOTH) == (CLUSTER if value else ref.w4a4_default_cluster_bit(TWO_TEAMS, m, n)), form

    def call(r):
        return nc.gemv(p, s, gs, x, "nvfp4", None, bias, r)

    g, y1, y2 = ref.capture_chained_pair(call, residual)
    monkeypatch.setenv(ENV, "1")
    # the graph holds the cluster kernel (the launcher's cluster query ran during the capture too)
    assert all(f[3] & CLUSTER for f in ref.gemv16_forms_of_call(g.replay)), ref.gemv16_forms_of_call(g.replay)
    ref.assert_chained_replay_matches_eager(g, y1, y2, x, call, residual)


def test_cluster_switch_leaves_other_kernels_alone(monkeypatch):
    """With the switch: A16 two teams, the W4A4 two-CTA, split-K (its own cluster rule: clusters at M = 16 since
    helper w4a4splitdef43) and block-diagonal kernels keep their forms, and so does the two-team kernel under another
    form switch value (w4a4old, head); same bits."""
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch, ENV, FORM_ENV, "RESET_NATIVE_GEMV_SPLIT_AMAX")
    p, s, gs = ref.random_gpu_weights(8448, 4096)
    x = torch.randn((16, 4096), generator=torch.Generator().manual_seed(3)).to(torch.bfloat16).cuda()
    p8, s8, _ = ref.random_gpu_weights(200, 12288)
    x8 = torch.randn((16, 12288), generator=torch.Generator().manual_seed(4)).to(torch.bfloat16).cuda()
    p4, s4, _ = ref.random_gpu_weights(4096, 4096)  # M = 2: the block-diagonal kernel (256 row tiles: 8B o)
    calls = {
        "a16 teams": lambda: nc.gemv(p, s, gs, x, "bf16"),
        "w4a4 split": lambda: nc.gemv(p8, s8, gs, x8, "nvfp4"),
        "w4a4 bd": lambda: nc.gemv(p4, s4, gs, x[:2], "nvfp4"),
    }
    base = {name: (ref.kernel_template_args(fn, "gemv_kernel") + ref.kernel_template_args(fn, "gemv_bd_kernel"),
                   fn()) for name, fn in calls.items()}
    monkeypatch.setenv("RESET_NATIVE_GEMV_TEAMS", "1")  # W4A4 without teams: one CTA per SM
    w4a4_one = lambda: nc.gemv(p, s, gs, x, "nvfp4")  # noqa: E731
    base["w4a4 no teams"] = (ref.gemv16_kernel_args(w4a4_one), w4a4_one())
    monkeypatch.delenv("RESET_NATIVE_GEMV_TEAMS")
    monkeypatch.setenv(ENV, "2")
    for name, fn in calls.items():
        args = ref.kernel_template_args(fn, "gemv_kernel") + ref.kernel_template_args(fn, "gemv_bd_kernel")
        assert args == base[name][0], name
        assert torch.equal(_bits(fn()), _bits(base[name][1])), name
    monkeypatch.setenv("RESET_NATIVE_GEMV_TEAMS", "1")
    assert ref.gemv16_kernel_args(w4a4_one) == base["w4a4 no teams"][0]
    assert torch.equal(_bits(w4a4_one()), _bits(base["w4a4 no teams"][1]))
    monkeypatch.delenv("RESET_NATIVE_GEMV_TEAMS")
    teams = lambda: nc.gemv(p, s, gs, x, "nvfp4")  # noqa: E731
    for value in ("w4a4old", "head"):
        monkeypatch.setenv(FORM_ENV, value)
        monkeypatch.setenv(ENV, "1")
        plain = ref.gemv16_forms_of_call(teams)
        want = teams()
        monkeypatch.setenv(ENV, "2")
        assert ref.gemv16_forms_of_call(teams) == plain, value
        assert plain[0][:3] == TWO_TEAMS and plain[0][3] & CLUSTER == 0, value
        assert torch.equal(_bits(teams()), _bits(want)), value


# The default (session 21): Qwen3-8B q/k/v (6144 x 4096: two teams at 2..16 tokens, no split K) and 32B q/k/v at
# M = 8, 12, 16 in clusters (the plain kernel's bits), bf16 and fp16 x, dynamic and static activation scale: of 4 with
# both cluster forms since helper w4a4rule40 (384 and 640 row tiles: in the band), of 2 before.
@pytest.mark.parametrize("n,k,m", [(6144, 4096, 8), (6144, 4096, 12), (6144, 4096, 16), (10240, 5120, 8)])
@pytest.mark.parametrize("dtype,static_scale", [(torch.bfloat16, False), (torch.float16, True)])
def test_default_clusters_from_8_tokens(n, k, m, dtype, static_scale, monkeypatch):
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch, ENV, FORM_ENV, "RESET_NATIVE_GEMV_SPLIT_AMAX")
    p, s, gs = ref.random_gpu_weights(n, k)
    x, bias, residual = ref.gemv_inputs(n, k, m, dtype)
    act_gs = STATIC_ACT_GS if static_scale else None
    _same_bits_as_plain(lambda: nc.gemv(p, s, gs, x, "nvfp4", act_gs, bias, residual), None, monkeypatch,
                        CLUSTER | BOTH)
    assert ref.w4a4_default_cluster_bit(TWO_TEAMS, m, n) == CLUSTER | BOTH


@pytest.mark.parametrize("m", [2, 3, 7])
def test_default_no_clusters_below_8_tokens(m, monkeypatch):
    """Below 8 tokens the default runs the plain two-team kernel (8B q/k/v; M = 2 reaches it by
    gemv_bd_w4a4_rule.cuh's default); "2" forces clusters there, with the same bits."""
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch, ENV, FORM_ENV, "RESET_NATIVE_GEMV_SPLIT_AMAX")
    p, s, gs = ref.random_gpu_weights(6144, 4096)
    x, bias, residual = ref.gemv_inputs(6144, 4096, m, torch.bfloat16)

    def fn():
        return nc.gemv(p, s, gs, x, "nvfp4", None, bias, residual)

    forms = ref.gemv16_forms_of_call(fn)
    assert len(forms) == 1 and forms[0][:3] == TWO_TEAMS and forms[0][3] & CLUSTER == 0, forms
    assert ref.w4a4_default_cluster_bit(TWO_TEAMS, m, 6144) == 0
    want = fn()
    monkeypatch.setenv(ENV, "1")
    assert ref.gemv16_forms_of_call(fn) == forms
    assert torch.equal(_bits(fn()), _bits(want))
    _same_bits_as_plain(fn, 2, monkeypatch)


def test_switch_values(monkeypatch):
    """"1" turns clusters off, "2".."8" force that size without a form (4 below 8 tokens too), unset and unknown
    values ("0", "9", "12", "", " 2") are the rule: at M = 12 clusters of 4 with both cluster forms (8B q/k/v: in the
    band since helper w4a4rule40), none at M = 4; the same bits under every value."""
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch, ENV, FORM_ENV, "RESET_NATIVE_GEMV_SPLIT_AMAX")
    p, s, gs = ref.random_gpu_weights(6144, 4096)
    for m in (12, 4):
        x = torch.randn((m, 4096), generator=torch.Generator().manual_seed(m)).to(torch.bfloat16).cuda()

        def fn():
            return nc.gemv(p, s, gs, x, "nvfp4")

        monkeypatch.setenv(ENV, "1")
        plain = ref.gemv16_forms_of_call(fn)
        assert len(plain) == 1 and plain[0][:3] == TWO_TEAMS and plain[0][3] & CLUSTER == 0, plain
        want = fn()
        rule = [(*TWO_TEAMS, plain[0][3] | ref.w4a4_default_cluster_bit(TWO_TEAMS, m, 6144))]
        for value, forms in ((None, rule), ("0", rule), ("9", rule), ("12", rule), ("", rule), (" 2", rule),
                             ("4", [(*TWO_TEAMS, plain[0][3] | CLUSTER)]), ("1", plain)):
            ref.set_env(monkeypatch, ENV, value)
            assert ref.gemv16_forms_of_call(fn) == forms, (m, value)
            assert torch.equal(_bits(fn()), _bits(want)), (m, value)
