"""NVFP4 GEMV: kForm16RedPad on the W4A4 instances (session 19 helper gemv24's opt-in, the default since helper gemv25;
cuda/nvfp4/gemv_launch.cuh w4a4_pad_eligible). The rule of the W4A4 instances of the persistent fast-path 16-bit
kernels (two CTAs per SM, one CTA, two teams, split K) is the pad (FORM 2048) with, since session 20 helper w4a4x30,
the fast quantizer and the wide amax (4096 | 8192; tests/test_nvfp4_gpu_w4a4_quantfast.py): the tile epilogue's
reduction rows padded by two floats as on the A16 default, counted by the routing (tile_smem_bytes,
split_launch_smem_bytes). RESET_NATIVE_GEMV_16_FORM=nopad (the reference here) drops only the pad (FORM 4096 | 8192) and
routes without it; "0", "2", "13" and "15" run FORM 0, the W4A4 form through session 18, also without the pad;
"w4a4old" runs session 19's rule (the pad alone); "w4a4pad", "pad" and unknown values mean the rule. The same sums in
the same order: every output equals nopad's bit for bit, with bf16, fp16 and fp32 x, a dynamic (amax in the kernel or
the pre-kernel) and a static activation scale, with bias and residual, where the pad moves a shape from two CTAs per SM
to one, and in CUDA graph replays. fp32 x at A16, the chunked, general-path and three-CTA kernels keep form 0. GPU
tests skip without a device."""
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

ENV = "RESET_NATIVE_GEMV_16_FORM"
HEAD, RED_PAD, QUANT_FAST, AMAX_WIDE = 1024, 2048, 4096, 8192
W4A4_RULE = RED_PAD | QUANT_FAST | AMAX_WIDE  # the W4A4 instances' rule (since session 20), and HEAD on split K
NOPAD = QUANT_FAST | AMAX_WIDE  # the rule without the pad: "nopad"


def _rule(instance):
    """The W4A4 rule's FORM bits on an instance (MINB, SPLIT, TEAMS): the head refill on split K only."""
    return W4A4_RULE | (HEAD if instance[1] else 0)
STATIC_ACT_GS = 0.0013  # as tests/test_nvfp4_cuda.py's static-scale W4A4 cases


@functools.lru_cache(maxsize=4)
def _ref_weights(n, k):
    return ref.quantize(torch.randn((n, k), generator=torch.Generator().manual_seed(n * 5 + k)).numpy())


def _same_bits(p, s, gs, x, act_gs, bias, residual, instance, nopad_instance, monkeypatch):
    """nopad runs `nopad_instance` with the rule without the pad; unset (the default) runs `instance` with the rule;
    equal outputs. Returns the default's. The W4A4 rule is the same on every instance w4a4_pad_eligible admits but
    for the head refill on split K (_rule), so the default's form is checked as that instance's rule, whichever
    instance nopad ran; plus, since session 21, the cluster bits on two teams and split K from 8 tokens (nopad, another
    form, runs the plain kernel; ref.w4a4_default_cluster_bit: 8448 rows are in the band of clusters of 4 with both
    forms)."""
    n, m = p.shape[0], x.shape[0]

    def fn():
        return nc.gemv(p, s, gs, x, "nvfp4", act_gs, bias, residual)

    ref.set_env(monkeypatch, ENV, "nopad")
    assert ref.gemv16_forms_of_call(fn) == [(*nopad_instance, _rule(nopad_instance) & ~RED_PAD)]
    want = fn()
    ref.set_env(monkeypatch, ENV, None)
    forms = ref.gemv16_forms_of_call(fn)
    cluster = ref.w4a4_default_cluster_bit(instance, m, n)
    assert len(forms) == 1 and forms[0][:3] == instance and forms[0][3] == _rule(instance) | cluster, forms
    ref.poison_next_block(m * n * 4)
    got = fn()
    assert torch.equal(got, want)
    return got


# (n, k, m, teams env, instance (MINB, SPLIT, TEAMS)) on 132 SMs (bench/probes/gemv16_w4a4_pad_routing.py and
# gemv_teams_routing.py, the same instance with and without the pad): two CTAs per SM with 8 token columns (M = 3: no
# W4A4 split below 4 tokens) and with 16 (one chunk: nothing to split); from 528 row tiles (4 per SM) no W4A4 split:
# two CTAs at M = 8, two teams at M = 16, one CTA with RESET_NATIVE_GEMV_TEAMS=1; split K with 8 token columns (few row
# tiles: the W4A4 split by 4) and with 16 (long K: 6 slices, Qwen3-8B down's instance). The two-CTA shapes run with
# RESET_NATIVE_GEMV_TEAMS=1: with 16-bit x the default takes two teams there since session 19 helper teams27 (fp32 x
# never), and "1" keeps the instance they were chosen for on every x dtype.
SHAPES = [
    (200, 4096, 3, "1", (2, 0, 1)),
    (200, 1024, 16, "1", (2, 0, 1)),
    (8448, 4096, 8, "1", (2, 0, 1)),
    (8448, 4096, 16, None, (1, 0, 2)),
    (8448, 4096, 16, "1", (1, 0, 1)),
    (200, 4096, 5, None, (2, 1, 1)),
    (200, 12288, 16, None, (2, 1, 1)),
]


@pytest.mark.parametrize("n,k,m,teams,instance", SHAPES)
@pytest.mark.parametrize("dtype,static_scale", [(torch.bfloat16, False), (torch.bfloat16, True), (torch.float16, False),
                                                (torch.float32, True)])
def test_default_pad_same_bits_as_nopad(n, k, m, teams, instance, dtype, static_scale, monkeypatch):
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch, ENV)
    ref.set_env(monkeypatch, "RESET_NATIVE_GEMV_TEAMS", teams)
    p, s, gs = ref.random_gpu_weights(n, k)
    x, bias, residual = ref.gemv_inputs(n, k, m, dtype)
    y = _same_bits(p, s, gs, x, STATIC_ACT_GS if static_scale else None, bias, residual, instance, instance,
                   monkeypatch)
    assert torch.isfinite(y).all()


# The small shapes of SHAPES (the host quantizer is slow for n = 8448) against fp64 as well, M = 3 also as the default
# runs it (two teams since session 19 helper teams27), M = 16 at K = 1024 with RESET_NATIVE_GEMV_TEAMS=1 (two CTAs).
@pytest.mark.parametrize("n,k,m,teams,instance", [(200, 4096, 3, None, (1, 0, 2)), (200, 4096, 3, "1", (2, 0, 1)),
                                                  (200, 1024, 16, "1", (2, 0, 1)), (200, 4096, 5, None, (2, 1, 1)),
                                                  (200, 12288, 16, None, (2, 1, 1))])
@pytest.mark.parametrize("static_scale", [False, True])
def test_default_pad_vs_fp64(n, k, m, teams, instance, static_scale, monkeypatch):
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch, ENV)
    ref.set_env(monkeypatch, "RESET_NATIVE_GEMV_TEAMS", teams)
    weights = _ref_weights(n, k)
    p, s = torch.from_numpy(weights[0]).cuda(), torch.from_numpy(weights[1]).cuda()
    x, bias, residual = ref.gemv_inputs(n, k, m, torch.bfloat16)
    act_gs = STATIC_ACT_GS if static_scale else None
    y = _same_bits(p, s, float(weights[2]), x, act_gs, bias, residual, instance, instance, monkeypatch)
    ref.check_vs_fp64(y, *weights, x, "nvfp4", bias, residual, act_gs=act_gs)


# Where counting the pad changes the W4A4 instance (bench/probes/gemv16_w4a4_pad_routing.py: these two (K, M) on the
# fast path up to K = 64 chunks, from 528 row tiles; as for A16): x and the buffers take 111424 B at K = 4096, M = 11
# (Qwen3-8B gate_up at M = 11) and 111680 B at K = 6144, M = 8, under kWholeSmemLimit (112640) with nopad, over it with
# the pad's 2048: two CTAs per SM with nopad, one CTA per SM by default (two teams; one with RESET_NATIVE_GEMV_TEAMS=1).
# Under RESET_NATIVE_GEMV_TEAMS=measured (session 10's rule: W4A4 never two teams where two CTAs fit): the default rule
# since session 19 helper teams27 takes two teams there with or without the pad.
@pytest.mark.parametrize("n,k,m,teams,instance", [
    (8448, 4096, 11, "measured", (1, 0, 2)),
    (8448, 6144, 8, "measured", (1, 0, 2)),
    (8448, 4096, 11, "1", (1, 0, 1)),
])
@pytest.mark.parametrize("static_scale", [False, True])
def test_default_pad_moves_shapes_at_the_two_cta_limit(n, k, m, teams, instance, static_scale, monkeypatch):
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch, ENV)
    ref.set_env(monkeypatch, "RESET_NATIVE_GEMV_TEAMS", teams)
    p, s, gs = ref.random_gpu_weights(n, k)
    x, bias, residual = ref.gemv_inputs(n, k, m, torch.bfloat16)
    _same_bits(p, s, gs, x, STATIC_ACT_GS if static_scale else None, bias, residual, instance, (2, 0, 1),
               monkeypatch)


@pytest.mark.parametrize("n,k,m", [(8448, 4096, 16), (200, 4096, 5), (200, 12288, 16)])
def test_default_pad_graph_replay(n, k, m, monkeypatch):
    """Captured under the default (the pad; dynamic scale: amax in the kernel or the pre-kernel), replayed after x
    changes: equal to eager nopad calls."""
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch, ENV)
    p, s, gs = ref.random_gpu_weights(n, k)
    x, bias, residual = ref.gemv_inputs(n, k, m, torch.bfloat16)
    forms = ref.gemv16_forms_of_call(lambda: nc.gemv(p, s, gs, x, "nvfp4", None, bias, residual))
    assert len(forms) == 1 and forms[0][3] == _rule(forms[0][:3]) | ref.w4a4_default_cluster_bit(forms[0][:3], m, n), \
        forms
    ref.assert_graph_replay_matches_eager(monkeypatch, lambda: nc.gemv(p, s, gs, x, "nvfp4", None, bias, residual), x,
                                          ENV, "nopad")


def test_switch_values_on_w4a4_and_the_kernels_without_pad(monkeypatch):
    """W4A4 (split K by 4 here): "pad", "w4a4pad", session 19's "w4a4q" / "w4a4qa", "head" and unknown values run the
    default (the pad, the fast quantizer, the wide amax, on split K the head refill); "0", "2", "13" and "15" run FORM
    0 on the same instance, "nopad" the rule without the pad, "nohead" without the head refill, "w4a4old" the pad
    alone; all the same bits. fp32 x at A16, the three-CTA kernel, the
    chunked and the general-path (K % 1024 != 0) W4A4 kernels keep form 0 by default."""
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch, ENV)
    p, s, gs = ref.random_gpu_weights(200, 4096)
    x = torch.randn((16, 4096), generator=torch.Generator().manual_seed(3)).to(torch.bfloat16).cuda()

    def fn():
        return nc.gemv(p, s, gs, x, "nvfp4")

    default = ref.gemv16_forms_of_call(fn)  # in clusters (M = 16) since helper w4a4splitdef43: the rule's form only
    assert default == [(2, 1, 1, W4A4_RULE | HEAD | ref.W4A4_CLUSTER | ref.W4A4_CLUSTER_BOTH)]
    want = fn()
    for value, forms in (("pad", default), ("w4a4pad", default), ("w4a4q", default), ("w4a4qa", default),
                         ("head", default), ("other", default), ("0", [(2, 1, 1, 0)]), ("2", [(2, 1, 1, 0)]),
                         ("13", [(2, 1, 1, 0)]), ("15", [(2, 1, 1, 0)]), ("nopad", [(2, 1, 1, NOPAD | HEAD)]),
                         ("nohead", [(2, 1, 1, W4A4_RULE)]), ("w4a4old", [(2, 1, 1, RED_PAD)])):
        monkeypatch.setenv(ENV, value)
        assert ref.gemv16_forms_of_call(fn) == forms, value
        assert torch.equal(fn(), want), value
    monkeypatch.delenv(ENV)
    p3, s3, _ = ref.random_gpu_weights(6144, 4096)
    assert [f for *_, f in ref.gemv16_forms_of_call(lambda: nc.gemv(p, s, gs, x.float(), "bf16"))] == [0]
    monkeypatch.setenv("RESET_NATIVE_GEMV_TEAMS", "1")  # (two teams by default since session 19 helper teams27)
    three = ref.gemv16_forms_of_call(lambda: nc.gemv(p3, s3, gs, x[:3], "bf16"))  # Qwen3-8B q/k/v at M = 3
    assert [(minb, f) for minb, _, _, f in three] == [(3, 0)]
    monkeypatch.delenv("RESET_NATIVE_GEMV_TEAMS")
    # The general path (not FAST) and the chunked kernel (not WHOLE): FORM 0, no pad.
    assert ref.w4a4_general_and_chunked_forms(monkeypatch, gs) == ([(0, 0)], [(0, 0)])
