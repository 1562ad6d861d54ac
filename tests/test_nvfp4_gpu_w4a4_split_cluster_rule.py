"""NVFP4 GEMV: W4A4 split K in clusters by default (session 21 helper w4a4splitdef43; cuda/nvfp4/gemv_split_cluster.cuh
kSplitCluster*, gemv_split.cuh launch_split_cluster). From 8 tokens a W4A4 split-K call whose instance runs its rule's
form launches the split kernel in clusters: of 4 where the call has at most 8 K slices and the in-kernel amax at 4
stays within 50 MiB (Qwen3-8B down: 6 slices; 32B o: 4), else of 2 (32B down: 13 slices); below 8 tokens the plain
split kernel. RESET_NATIVE_GEMV_W4A4_SPLIT_CLUSTER = 1 (or any value but 2..8 and empty) turns clusters off, = 2..8
forces that size at every M; empty = unset. The FORM is the same for every size, so the size is checked by the call's
launches (kernel names; grids where the profiler's trace records them) equal to those of the forced size. Every output
equals the plain split kernel's bit for bit. GPU tests skip without a device."""
from __future__ import annotations

import json
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
CLUSTER_FORM = ref.W4A4_CLUSTER | ref.W4A4_CLUSTER_BOTH
STATIC_ACT_GS = 0.0013


def _bits(t):
    """The raw bits of t (NaN-safe equality)."""
    return t.view({torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16}[t.dtype])


def _clear(monkeypatch):
    ref.clear_gemv_env(monkeypatch, "RESET_NATIVE_GEMV_16_FORM", "RESET_NATIVE_GEMV_SPLIT_AMAX")


def _launches(fn, tmp_path):
    """What fn() launched: the names of its GEMV and amax kernels (the profiler's events, in order), and the (name,
    grid) of every kernel in the profiler's trace, in start order (empty where the trace records no grid)."""
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    names = [e.name for e in prof.events() if "gemv" in e.name or "amax" in e.name]
    if not any("gemv" in name for name in names):
        pytest.skip("the profiler recorded no kernel names here")
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(str(path))
    events = json.loads(path.read_text()).get("traceEvents", [])
    kernels = sorted((e for e in events if e.get("cat") == "kernel" and "grid" in e.get("args", {})),
                     key=lambda e: e.get("ts", 0))
    return names, [(e["name"], tuple(e["args"]["grid"])) for e in kernels]


def _plain(fn, monkeypatch):
    """fn()'s output and FORM under RESET_NATIVE_GEMV_W4A4_SPLIT_CLUSTER=1: the plain split kernel, no cluster bit."""
    monkeypatch.setenv(ENV, "1")
    forms = ref.gemv16_forms_of_call(fn)
    assert len(forms) == 1 and forms[0][:3] == SPLIT and forms[0][3] & CLUSTER_FORM == 0, forms
    return fn(), forms[0][3]


def _default_forms(fn, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    return ref.gemv16_forms_of_call(fn)


# (n, k, m, the rule's cluster size) for the Qwen3 split rows on 132 SMs: 8B down (12 chunks: 6 slices) and 32B o (8:
# 4 slices) take 4; 32B down (25: 13 slices) takes 2 (and at M = 16 its amax at 4 would be past the inline limit too).
RULE = [(4096, 12288, 8, 4), (4096, 12288, 16, 4), (5120, 8192, 8, 4), (5120, 8192, 16, 4), (5120, 25600, 8, 2),
        (5120, 25600, 16, 2)]


@pytest.mark.parametrize("n,k,m,size", RULE)
@pytest.mark.parametrize("static_scale", [False, True])
def test_default_cluster_size(n, k, m, size, static_scale, tmp_path, monkeypatch):
    """Unset: the split kernel with the cluster form, launched as under the forced size (same kernels, same grids),
    the plain kernel's bits."""
    ref.needs_h200_routing()
    _clear(monkeypatch)
    p, s, gs = ref.random_gpu_weights(n, k)
    x, bias, residual = ref.gemv_inputs(n, k, m, torch.bfloat16)
    act_gs = STATIC_ACT_GS if static_scale else None

    def fn():
        return nc.gemv(p, s, gs, x, "nvfp4", act_gs, bias, residual)

    want, rule = _plain(fn, monkeypatch)
    assert _default_forms(fn, monkeypatch) == [(*SPLIT, rule | CLUSTER_FORM)]
    default = _launches(fn, tmp_path)
    ref.poison_next_block(3 << 20)  # 4 MiB of NaN
    assert torch.equal(_bits(fn()), _bits(want))
    monkeypatch.setenv(ENV, str(size))
    assert _launches(fn, tmp_path) == default
    assert torch.equal(_bits(fn()), _bits(want))


@pytest.mark.parametrize("n,k", [(4096, 12288), (5120, 8192), (5120, 25600)])
@pytest.mark.parametrize("m", [4, 7])
def test_no_clusters_below_8_tokens(n, k, m, tmp_path, monkeypatch):
    """M = 4 and 7 split K without clusters by default (the same launches as =1); a forced size still clusters them;
    the same bits."""
    ref.needs_h200_routing()
    _clear(monkeypatch)
    fn = ref.random_w4a4_call_with_epilogue(n, k, m, torch.bfloat16)
    want, rule = _plain(fn, monkeypatch)
    plain = _launches(fn, tmp_path)
    assert _default_forms(fn, monkeypatch) == [(*SPLIT, rule)]
    assert _launches(fn, tmp_path) == plain
    assert torch.equal(_bits(fn()), _bits(want))
    monkeypatch.setenv(ENV, "2")
    assert ref.gemv16_forms_of_call(fn) == [(*SPLIT, rule | CLUSTER_FORM)]
    assert torch.equal(_bits(fn()), _bits(want))


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
@pytest.mark.parametrize("m", [8, 16])
def test_default_other_x_dtypes(dtype, m, monkeypatch):
    """fp16 and fp32 x (8B down, dynamic scale): clusters by default, the plain kernel's bits."""
    ref.needs_h200_routing()
    _clear(monkeypatch)
    n, k = 4096, 12288
    p, s, gs = ref.random_gpu_weights(n, k)
    x, bias, residual = ref.gemv_inputs(n, k, m, dtype)

    def fn():
        return nc.gemv(p, s, gs, x, "nvfp4", None, bias, residual)

    want, rule = _plain(fn, monkeypatch)
    assert _default_forms(fn, monkeypatch) == [(*SPLIT, rule | CLUSTER_FORM)]
    assert torch.equal(_bits(fn()), _bits(want))


def test_switch_values(tmp_path, monkeypatch):
    """8B down at M = 16: empty = unset (the rule); "1", "0", "9", "bogus" = the plain kernel; "2", "3", "4", "8" =
    clusters of that size (those of 4 launched as the rule's); the same bits throughout."""
    ref.needs_h200_routing()
    _clear(monkeypatch)
    fn, _ = ref.random_gemv_calls(4096, 12288, 16, 11)
    want, rule = _plain(fn, monkeypatch)
    plain = _launches(fn, tmp_path)
    default = _default_forms(fn, monkeypatch)
    rule_launches = _launches(fn, tmp_path)
    assert default == [(*SPLIT, rule | CLUSTER_FORM)]
    monkeypatch.setenv(ENV, "")
    assert ref.gemv16_forms_of_call(fn) == default
    assert _launches(fn, tmp_path) == rule_launches
    for value in ("1", "0", "9", "bogus"):
        monkeypatch.setenv(ENV, value)
        assert _launches(fn, tmp_path) == plain, value
        assert torch.equal(_bits(fn()), _bits(want)), value
    for value in ("2", "3", "4", "8"):
        monkeypatch.setenv(ENV, value)
        assert ref.gemv16_forms_of_call(fn) == default, value
        assert torch.equal(_bits(fn()), _bits(want)), value
    monkeypatch.setenv(ENV, "4")
    assert _launches(fn, tmp_path) == rule_launches


@pytest.mark.parametrize("split_amax", ["0", "1"])
def test_default_amax_sources(split_amax, monkeypatch):
    """RESET_NATIVE_GEMV_SPLIT_AMAX forces the amax pre-kernel (0) or the in-kernel amax (1) under the rule's clusters
    (8B down M = 16, 32B down M = 8): the plain kernel's bits."""
    ref.needs_h200_routing()
    _clear(monkeypatch)
    for n, k, m in ((4096, 12288, 16), (5120, 25600, 8)):
        p, s, gs = ref.random_gpu_weights(n, k)
        x, bias, residual = ref.gemv_inputs(n, k, m, torch.bfloat16)

        def fn():
            return nc.gemv(p, s, gs, x, "nvfp4", None, bias, residual)

        monkeypatch.delenv("RESET_NATIVE_GEMV_SPLIT_AMAX", raising=False)
        want, rule = _plain(fn, monkeypatch)
        monkeypatch.setenv("RESET_NATIVE_GEMV_SPLIT_AMAX", split_amax)
        assert _default_forms(fn, monkeypatch) == [(*SPLIT, rule | CLUSTER_FORM)], (n, k, m)
        assert torch.equal(_bits(fn()), _bits(want)), (n, k, m)


def test_default_leaves_other_forms_and_a16(monkeypatch):
    """RESET_NATIVE_GEMV_16_FORM away from the rule (nohead, w4a4old) runs the plain split kernel by default; A16 split
    K never clusters; the same bits."""
    ref.needs_h200_routing()
    _clear(monkeypatch)
    w4a4, a16 = ref.random_gemv_calls(4096, 12288, 16, 12)
    want, _ = _plain(w4a4, monkeypatch)
    monkeypatch.delenv(ENV)
    for value in ("nohead", "w4a4old"):
        monkeypatch.setenv("RESET_NATIVE_GEMV_16_FORM", value)
        forms = ref.gemv16_forms_of_call(w4a4)
        assert len(forms) == 1 and forms[0][:3] == SPLIT and forms[0][3] & CLUSTER_FORM == 0, (value, forms)
        assert torch.equal(_bits(w4a4()), _bits(want)), value
    monkeypatch.delenv("RESET_NATIVE_GEMV_16_FORM")
    forms = ref.gemv16_forms_of_call(a16)
    assert len(forms) == 1, forms
    want16 = a16()
    monkeypatch.setenv(ENV, "1")
    assert ref.gemv16_forms_of_call(a16) == forms
    assert torch.equal(_bits(a16()), _bits(want16))


@pytest.mark.parametrize("n,k,m", [(4096, 12288, 16), (5120, 25600, 8), (5120, 8192, 8)])
def test_default_graph_replay_and_pdl_chain(n, k, m, monkeypatch):
    """Two calls captured under the rule (dynamic scale), the second reading the first's output as its residual,
    replayed after x changes: the graph holds the clustered kernel and equals eager plain calls (=1)."""
    ref.needs_h200_routing()
    _clear(monkeypatch)
    p, s, gs = ref.random_gpu_weights(n, k)
    x, bias, residual = ref.gemv_inputs(n, k, m, torch.bfloat16)

    def call(r):
        return nc.gemv(p, s, gs, x, "nvfp4", None, bias, r)

    assert _default_forms(lambda: call(residual), monkeypatch)[0][3] & CLUSTER_FORM == CLUSTER_FORM
    g, y1, y2 = ref.capture_chained_pair(call, residual)
    monkeypatch.setenv(ENV, "1")
    replayed = ref.gemv16_forms_of_call(g.replay)
    assert len(replayed) == 2 and all(f[3] & CLUSTER_FORM == CLUSTER_FORM for f in replayed), replayed
    assert ref.gemv16_forms_of_call(lambda: call(residual))[0][3] & CLUSTER_FORM == 0
    ref.assert_chained_replay_matches_eager(g, y1, y2, x, call, residual)
