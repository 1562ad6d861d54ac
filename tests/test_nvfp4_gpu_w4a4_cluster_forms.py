"""NVFP4 GEMV: the cluster forms of the W4A4 two-team kernel (session 21 helper w4a4cluster39, opt-in:
RESET_NATIVE_GEMV_W4A4_CLUSTER_FORM = amax | compact | both, on top of RESET_NATIVE_GEMV_W4A4_CLUSTER = C).
kForm16ClusterAmax splits the in-kernel amax over the cluster (each CTA the max of 1/C of x, exchanged with st.async);
kForm16ClusterCompact copies the peers' quantized shares as E2M1 codes + fp16 block scales and decodes them. Both
must give the plain kernel's bits (RESET_NATIVE_GEMV_W4A4_CLUSTER=1) and the cluster kernel's without the form: bf16,
fp16 and fp32 x, dynamic and static activation scale, bias and residual, M = 3..16, shares of unequal size, CTAs
without a row tile, the compact form's fallback (codes too large for the reduction buffers), NaN / inf / huge / signed
zero elements, unaligned x, clusters of 2, 3, 4 and 8, CUDA graph replay with a PDL chain. GPU tests skip without a
device."""
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
CLUSTER = ref.W4A4_CLUSTER
BITS = {"amax": ref.W4A4_CLUSTER_AMAX, "compact": ref.W4A4_CLUSTER_COMPACT, "both": ref.W4A4_CLUSTER_BOTH}
FORMS = ("amax", "compact", "both")
TWO_TEAMS = ref.TWO_TEAMS
STATIC_ACT_GS = 0.0013


def _bits(t):
    """The raw bits of t (NaN-safe equality)."""
    return t.view({torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16}[t.dtype])


def _clear(monkeypatch, teams=None):
    """The routing switches unset but RESET_NATIVE_GEMV_TEAMS = teams and no split K (every shape here routes to the
    two-team kernel: K = 9216 at M = 8 would split K)."""
    ref.clear_gemv_env(monkeypatch, ENV, FORM_ENV, *OTHER_ENV)
    ref.set_env(monkeypatch, "RESET_NATIVE_GEMV_TEAMS", teams)
    monkeypatch.setenv("RESET_NATIVE_GEMV_KSPLIT", "1")


def _plain(fn, monkeypatch):
    """fn()'s output and FORM with RESET_NATIVE_GEMV_W4A4_CLUSTER=1: the two-team kernel without clusters."""
    monkeypatch.setenv(ENV, "1")
    monkeypatch.delenv(FORM_ENV, raising=False)
    forms = ref.gemv16_forms_of_call(fn)
    assert len(forms) == 1 and forms[0][:3] == TWO_TEAMS and forms[0][3] & CLUSTER == 0, forms
    return fn(), forms[0][3]


def _run(fn, cluster, form, monkeypatch, check=True):
    """fn() and its kernel's cluster FORM bits (kForm16Cluster and the forms' bits; None unless check) under clusters
    of `cluster` and RESET_NATIVE_GEMV_W4A4_CLUSTER_FORM = form (None: unset); the two-team kernel either way."""
    monkeypatch.setenv(ENV, str(cluster))
    ref.set_env(monkeypatch, FORM_ENV, form)
    bits = None
    if check:
        forms = ref.gemv16_forms_of_call(fn)
        assert len(forms) == 1 and forms[0][:3] == TWO_TEAMS, forms
        bits = forms[0][3] & (CLUSTER | BITS["both"])
    ref.poison_next_block(3 << 20)  # 4 MiB of NaN
    return fn(), bits


def _same_bits(fn, clusters, forms, monkeypatch, must_fit=(2, 4), check_forms=False):
    """The plain kernel's output equals the cluster kernel's without a form and with each of `forms`, bit for bit,
    for every cluster size in `clusters`. The sizes in must_fit must launch the cluster kernel (measured to fit in
    session 21 round 1, or smaller); the others may fall back to the plain kernel (no cluster of that size fits), and
    then so does every form (the same shared memory, 512 threads of <= 128 registers). check_forms: read every form's
    kernel name too (the profiler, ~0.1-0.3 s a call; else only the plain and form-less cluster kernels'). Returns
    the plain output."""
    want, _ = _plain(fn, monkeypatch)
    for cluster in clusters:
        got, bits = _run(fn, cluster, None, monkeypatch)
        assert bits in ((CLUSTER,) if cluster in must_fit else (CLUSTER, 0)), (cluster, bits)
        assert torch.equal(_bits(got), _bits(want)), cluster
        for form in forms:
            got, form_bits = _run(fn, cluster, form, monkeypatch, check_forms)
            if check_forms:
                assert form_bits == (bits | BITS[form] if bits else 0), (cluster, form, form_bits)
            assert torch.equal(_bits(got), _bits(want)), (cluster, form)
    return want


# (n, k, m, RESET_NATIVE_GEMV_TEAMS) on the two-team kernel (132 SMs): M = 8 (forced: two CTAs per SM would fit),
# Qwen3-8B q/k/v M = 12, 32B gate_up M = 16 (80 staged rows: the compact share 40 rows, 25.6 KB in 36 KB of reduction
# buffers).
SHAPES = [(24576, 4096, 8, "2"), (6144, 4096, 12, None), (51200, 5120, 16, None)]
DTYPES = [(torch.bfloat16, False), (torch.bfloat16, True), (torch.float16, False), (torch.float32, False),
          (torch.float32, True)]
# bf16 x, dynamic scale: 8B gate_up M = 16; 32B q/k/v M = 9 (45 rows: shares 22 / 23); few row tiles at M = 3 (13
# tiles, 7 walkers: teams and CTAs without a tile, which wait for the peers at exit); M = 8 at K = 9216 (72 rows: the
# compact share of 36 rows does not fit 20 KB of reduction buffers at 8 columns: the fallback, stage_cluster); one K
# chunk at M = 16.
MORE_SHAPES = [(24576, 4096, 16, None), (10240, 5120, 9, None), (200, 4096, 3, None), (2048, 9216, 8, "2"),
               (200, 1024, 16, "2")]


@pytest.mark.parametrize("n,k,m,teams,dtype,static_scale",
                         [s + d for s in SHAPES for d in DTYPES] + [s + DTYPES[0] for s in MORE_SHAPES])
def test_forms_same_bits(n, k, m, teams, dtype, static_scale, monkeypatch):
    ref.needs_h200_routing()
    # fp32 x never takes two teams where two CTAs fit (gemv_launch.cuh teams_where_two_ctas_fit): forced
    _clear(monkeypatch, "2" if dtype == torch.float32 else teams)
    p, s, gs = ref.random_gpu_weights(n, k)
    x, bias, residual = ref.gemv_inputs(n, k, m, dtype)
    act_gs = STATIC_ACT_GS if static_scale else None
    # every form's kernel name: bf16 x on every shape, fp16 and fp32 x on the 32B row (dynamic scale)
    check = not static_scale and (dtype == torch.bfloat16 or (n, k, m) == SHAPES[2][:3])
    y = _same_bits(lambda: nc.gemv(p, s, gs, x, "nvfp4", act_gs, bias, residual), (2,), FORMS, monkeypatch,
                   check_forms=check)
    assert torch.isfinite(y).all()


# (cluster, shape, must fit): 4 fit these three shapes in session 21 round 1 (test_nvfp4_gpu_w4a4_cluster.py), 3 the
# second; the others may fall back (then every form too).
SIZES = [(4, MORE_SHAPES[0], True), (4, MORE_SHAPES[1], True), (4, MORE_SHAPES[2], True), (3, MORE_SHAPES[1], True),
         (3, MORE_SHAPES[2], False), (4, SHAPES[2], False), (3, SHAPES[2], False)]


@pytest.mark.parametrize("cluster,shape,fits", SIZES)
@pytest.mark.parametrize("static_scale", [False, True])
def test_forms_cluster_sizes(cluster, shape, fits, static_scale, monkeypatch):
    """Clusters of 4 (45 rows: shares 11 / 11 / 11 / 12; 12 rows: 3 each; 80 rows: 20 each) and 3 (grid a multiple of
    3; 80 rows: 26 / 27 / 27), every form."""
    ref.needs_h200_routing()
    n, k, m, teams = shape
    _clear(monkeypatch, teams)
    p, s, gs = ref.random_gpu_weights(n, k)
    x, bias, residual = ref.gemv_inputs(n, k, m, torch.bfloat16)
    act_gs = STATIC_ACT_GS if static_scale else None
    _same_bits(lambda: nc.gemv(p, s, gs, x, "nvfp4", act_gs, bias, residual), (cluster,), FORMS, monkeypatch,
               must_fit=(cluster,) if fits else (), check_forms=fits and not static_scale)


@pytest.mark.parametrize("n,k,m", [(51200, 5120, 16), (24576, 4096, 12)])
def test_forms_cluster8_or_plain(n, k, m, monkeypatch):
    """Clusters of 8: the cluster kernel with the form where 8 CTAs of ~200 KB fit a GPC, else the plain one."""
    ref.needs_h200_routing()
    _clear(monkeypatch)
    p, s, gs = ref.random_gpu_weights(n, k)
    x, bias, residual = ref.gemv_inputs(n, k, m, torch.bfloat16)
    _same_bits(lambda: nc.gemv(p, s, gs, x, "nvfp4", None, bias, residual), (8,), FORMS, monkeypatch, must_fit=(),
               check_forms=True)


@pytest.mark.parametrize("static_scale", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_forms_special_values(static_scale, dtype, monkeypatch):
    """NaN of either sign (dropped by the amax; its block's code 0 keeps the sign: a signed zero), inf (static
    scale), huge blocks (the exact quantizer; fp32 and bf16 x), zeros and negative zeros, in every share of 2 and
    4."""
    ref.needs_h200_routing()
    _clear(monkeypatch, "2")
    n, k, m = 8448, 4096, 16
    p, s, gs = ref.random_gpu_weights(n, k)
    x = torch.randn((m, k), generator=torch.Generator().manual_seed(7)).to(torch.float32)
    for tok in (0, m // 4, m // 2 + 1, m - 1):  # chunk 0 token 0 (share 0) .. the last chunk's last token
        x[tok, 5] = float("nan")
        x[tok, 6] = -float("nan")
        x[tok, k - 200:k - 184] *= 1e3 if dtype == torch.float16 else 1e12  # (fp16: no inf under the dynamic scale)
        x[tok, k - 100] = 3e38 if dtype == torch.float32 else (1e38 if dtype == torch.bfloat16 else 6e4)
        x[tok, 40:56] = -0.0
        x[tok, 64:80] = torch.linspace(-1e-3, 1e-3, 16)
        x[tok, 79] = -50.0  # the block's small values quantize to signed zeros
        if static_scale:
            x[tok, 17] = float("inf")
            x[tok, 18] = -float("inf")
    x[m // 2, k // 2:] = 0.0
    x = x.to(dtype).cuda()
    act_gs = STATIC_ACT_GS if static_scale else None
    _same_bits(lambda: nc.gemv(p, s, gs, x, "nvfp4", act_gs), (2, 4), FORMS, monkeypatch)


@pytest.mark.parametrize("m", [3, 12])
def test_forms_unaligned_x(m, monkeypatch):
    """x 2 bytes off 16-byte alignment (the scalar loads of load_unit and the amax's element slices, or the
    launcher's aligned copy)."""
    ref.needs_h200_routing()
    _clear(monkeypatch)
    k = 4096
    n = 200 if m == 3 else 6144
    p, s, gs = ref.random_gpu_weights(n, k)
    x_full = torch.randn((m * k + 1,), generator=torch.Generator().manual_seed(9)).to(torch.bfloat16).cuda()
    x = x_full[1:].view(m, k)
    _same_bits(lambda: nc.gemv(p, s, gs, x, "nvfp4"), (2, 4), FORMS, monkeypatch, must_fit=(2,) if m == 12 else (2, 4))


@pytest.mark.parametrize("cluster,form", [(2, "both"), (4, "both"), (2, "compact")])
@pytest.mark.parametrize("n,k,m", [(24576, 4096, 16), (200, 4096, 3)])
def test_forms_graph_replay_and_pdl_chain(cluster, form, n, k, m, monkeypatch):
    """Two calls captured with the form (dynamic scale), the second reading the first's output as its residual (a
    PDL-chained dependency), replayed after x changes: equal to eager calls of the plain kernel."""
    ref.needs_h200_routing()
    _clear(monkeypatch)
    p, s, gs = ref.random_gpu_weights(n, k)
    x, bias, residual = ref.gemv_inputs(n, k, m, torch.bfloat16)
    monkeypatch.setenv(ENV, str(cluster))
    monkeypatch.setenv(FORM_ENV, form)
    forms = ref.gemv16_forms_of_call(lambda: nc.gemv(p, s, gs, x, "nvfp4", None, bias, residual))
    assert forms[0][3] & (CLUSTER | BITS["both"]) == CLUSTER | BITS[form], forms

    def call(r):
        return nc.gemv(p, s, gs, x, "nvfp4", None, bias, r)

    g, y1, y2 = ref.capture_chained_pair(call, residual)
    monkeypatch.setenv(ENV, "1")
    monkeypatch.delenv(FORM_ENV)
    replayed = ref.gemv16_forms_of_call(g.replay)  # the graph holds the form's kernel
    assert replayed and all(f[3] & (CLUSTER | BITS["both"]) == CLUSTER | BITS[form] for f in replayed), replayed
    ref.assert_chained_replay_matches_eager(g, y1, y2, x, call, residual)


def test_form_switch_needs_clusters(monkeypatch):
    """The form switch alone (clusters off: RESET_NATIVE_GEMV_W4A4_CLUSTER=1) launches the plain kernel, an unknown
    value the cluster kernel without a form, and A16 keeps its kernel; the same bits."""
    ref.needs_h200_routing()
    _clear(monkeypatch)
    w4a4, a16 = ref.random_gemv_calls(8448, 4096, 16, 3)
    want, rule = _plain(w4a4, monkeypatch)
    monkeypatch.setenv(FORM_ENV, "both")
    assert ref.gemv16_forms_of_call(w4a4) == [(*TWO_TEAMS, rule)]
    assert torch.equal(_bits(w4a4()), _bits(want))
    monkeypatch.setenv(ENV, "2")
    monkeypatch.setenv(FORM_ENV, "bogus")
    assert ref.gemv16_forms_of_call(w4a4) == [(*TWO_TEAMS, rule | CLUSTER)]
    assert torch.equal(_bits(w4a4()), _bits(want))
    monkeypatch.delenv(ENV)
    monkeypatch.delenv(FORM_ENV)
    base = (ref.gemv16_kernel_args(a16), a16())
    monkeypatch.setenv(ENV, "2")
    monkeypatch.setenv(FORM_ENV, "both")
    assert ref.gemv16_kernel_args(a16) == base[0]
    assert torch.equal(_bits(a16()), _bits(base[1]))
