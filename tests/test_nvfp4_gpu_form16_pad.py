"""NVFP4 GEMV: kForm16RedPad (session 18 helper gemv22, the default since session 19; cuda/nvfp4/gemv_kernel.cuh): the
tile epilogue's reduction rows padded by two floats (no bank conflicts in the partial sums' loads), counted by the
routing (tile_smem_bytes, split_launch_smem_bytes) exactly as the launch asks for it. The rule's kernels carry the
pad (FORM bit 2048) on every instance form16_eligible admits; RESET_NATIVE_GEMV_16_FORM=nopad runs the rule without
it (and routes without it, as sessions 16-18 did); "pad" means the rule. The same sums in the same order, so every
output equals nopad's bit for bit, on every instance (two teams, two CTAs per SM, split K with 8 and 16 token columns,
one CTA per SM), bf16 and fp16 x, with bias and residual, at the largest whole-x K of the fast path at M = 16, where
counting the pad moves a shape from two CTAs per SM to one (bench/probes/gemv16_pad_routing.py), and in CUDA graph
replays. GPU tests skip without a device."""
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
RED_PAD = 2048
# + kForm16QuantFast | kForm16AmaxWide (session 20), + kForm16HeadRefill on split K (session 20): the W4A4 call below
# (N = 200: 13 row tiles, K = 4096, M = 16) splits K by 4
W4A4_SPLIT_RULE = RED_PAD | 4096 | 8192 | 1024
H200_OPTIN = 227 * 1024  # shared memory per block (opt-in) on H100 / H200: the limit the routing shapes below assume


@functools.lru_cache(maxsize=8)
def _ref_weights(n, k):
    return ref.quantize(torch.randn((n, k), generator=torch.Generator().manual_seed(n * 3 + k)).numpy())


def _needs_227k():
    props = torch.cuda.get_device_properties(0)
    if getattr(props, "shared_memory_per_block_optin", None) != H200_OPTIN:
        pytest.skip("the routing of these shapes assumes 227 KiB of opt-in shared memory per block (H100 / H200)")


def _check(n, k, m, teams, dtype, instance, nopad_instance, monkeypatch):
    """The default runs `instance` with the pad, "pad" the same kernel, "nopad" `nopad_instance` without it; the
    outputs are equal bit for bit and within the fp64 bound."""
    ref.clear_gemv_env(monkeypatch, ENV)
    ref.set_env(monkeypatch, "RESET_NATIVE_GEMV_TEAMS", teams)
    weights = _ref_weights(n, k)
    p, s, x, bias, residual = ref.gemv_call_inputs(weights, m, dtype)
    gs = float(weights[2])

    def fn():
        return nc.gemv(p, s, gs, x, "bf16", None, bias, residual)

    ref.set_env(monkeypatch, ENV, "nopad")
    nopad = ref.gemv16_forms_of_call(fn)
    assert len(nopad) == 1 and nopad[0][:3] == nopad_instance and not nopad[0][3] & RED_PAD, nopad
    want = fn()
    outs = {}
    for value in (None, "pad"):
        ref.set_env(monkeypatch, ENV, value)
        forms = ref.gemv16_forms_of_call(fn)
        if instance == nopad_instance:  # the same kernel plus the pad
            assert forms == [(*instance, nopad[0][3] | RED_PAD)], value
        else:  # another instance, whose own rule bits (staging, refill) may differ from nopad's instance's
            assert len(forms) == 1 and forms[0][:3] == instance and forms[0][3] & RED_PAD, (value, forms)
        ref.poison_next_block(m * n * 4)
        outs[value] = fn()
        assert torch.equal(outs[value], want), value
    ref.check_vs_fp64(outs[None], *weights, x, "bf16", bias, residual)


# (n, k, m, teams env, instance (MINB, SPLIT, TEAMS)), as tests/test_nvfp4_gpu_form16_s16.py's shapes: the routing
# is the same with and without the pad (bench/probes/gemv16_pad_routing.py, gemv_teams_routing.py). The two-CTA shape
# runs with RESET_NATIVE_GEMV_TEAMS=1 (two teams by default since session 19 helper teams27).
SHAPES = [
    (199, 4096, 16, None, (1, 0, 2)),
    (4097, 5120, 11, None, (1, 0, 2)),
    (200, 4096, 5, None, (1, 0, 2)),
    (200, 2048, 12, "1", (2, 0, 1)),
    (199, 12288, 16, None, (2, 1, 1)),
    (200, 9216, 5, None, (2, 1, 1)),
    (200, 4096, 16, "1", (1, 0, 1)),
]


@pytest.mark.parametrize("n,k,m,teams,instance", SHAPES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_default_has_pad_same_bits_as_nopad(n, k, m, teams, instance, dtype, monkeypatch):
    _check(n, k, m, teams, dtype, instance, instance, monkeypatch)


# The largest K of the fast path whose x is staged whole at M = 16: 6 chunks (no split below 8), one CTA per SM
# (two teams need (6 * 16 + 1) * 2112 + 32 KB + 4 KB = 236 KB, over 227 KiB): (97 rows * 2112 B) + 16 KB of
# reduction buffers + 2 KB of pad = 223296 B of 232448. K = 7168 no longer fits whole (the chunked kernel, no pad).
@pytest.mark.parametrize("teams", [None, "1"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_largest_whole_k_at_16_tokens(teams, dtype, monkeypatch):
    _needs_227k()
    _check(200, 6144, 16, teams, dtype, (1, 0, 1), (1, 0, 1), monkeypatch)


# Where counting the pad changes the instance (bench/probes/gemv16_pad_routing.py: these two (K, M) on the whole fast
# path up to K = 64 chunks, at any n): x and the buffers take 111424 B at K = 4096, M = 11 (Qwen3-8B q/k/v, o and
# gate_up at M = 11) and 111680 B at K = 6144, M = 8, under kWholeSmemLimit (112640) without the pad, over it with
# (+ 2048): two CTAs per SM with nopad, one CTA per SM with the pad (two teams; one with RESET_NATIVE_GEMV_TEAMS=1).
# Under RESET_NATIVE_GEMV_TEAMS=measured (session 10's rule, which takes two teams at neither shape where two CTAs fit):
# the default rule since session 19 helper teams27 takes two teams there with or without the pad.
@pytest.mark.parametrize("n,k,m,teams,instance", [
    (200, 4096, 11, "measured", (1, 0, 2)),
    (200, 6144, 8, "measured", (1, 0, 2)),
    (200, 4096, 11, "1", (1, 0, 1)),
])
def test_pad_moves_shapes_at_the_two_cta_limit(n, k, m, teams, instance, monkeypatch):
    _needs_227k()
    _check(n, k, m, teams, torch.bfloat16, instance, (2, 0, 1), monkeypatch)


def test_pad_graph_replay(monkeypatch):
    """Captured under the default (pad), replayed after x changes: equal to eager nopad calls."""
    ref.clear_gemv_env(monkeypatch, ENV)
    n, k, m = 1000, 5120, 16
    weights = _ref_weights(n, k)
    p, s, x, bias, residual = ref.gemv_call_inputs(weights, m, torch.bfloat16)
    gs = float(weights[2])
    ref.assert_graph_replay_matches_eager(monkeypatch, lambda: nc.gemv(p, s, gs, x, "bf16", None, bias, residual), x,
                                          ENV, "nopad")


def test_other_modes_and_old_forms_have_no_pad(monkeypatch):
    """W4A4 has the pad by default (since session 19 helper gemv25; tests/test_nvfp4_gpu_form16_w4a4_pad.py), with the
    fast quantizer and the wide amax since session 20 (tests/test_nvfp4_gpu_w4a4_quantfast.py); fp32 x, K % 1024 != 0
    and the three-CTA kernel keep form 0 (no pad); "0", "2", "13", "15" and "nopad" have no pad, at A16 nor at W4A4."""
    ref.clear_gemv_env(monkeypatch, ENV)
    gen = torch.Generator(device="cuda").manual_seed(1)
    p = torch.randint(0, 256, (200, 4096 // 2), generator=gen, device="cuda", dtype=torch.uint8)
    s = torch.randint(0x30, 0x40, (200, 4096 // 16), generator=gen, device="cuda", dtype=torch.uint8)
    x = torch.randn((16, 4096), generator=gen, device="cuda").to(torch.bfloat16)
    assert [f & RED_PAD for *_, f in ref.gemv16_forms_of_call(lambda: nc.gemv(p, s, 0.01, x, "bf16"))] == [RED_PAD]
    w4a4 = [f for *_, f in ref.gemv16_forms_of_call(lambda: nc.gemv(p, s, 0.01, x, "nvfp4"))]
    assert w4a4 == [W4A4_SPLIT_RULE | ref.W4A4_CLUSTER | ref.W4A4_CLUSTER_BOTH]  # M = 16: in clusters (w4a4splitdef43)
    assert [f for *_, f in ref.gemv16_forms_of_call(lambda: nc.gemv(p, s, 0.01, x.float(), "bf16"))] == [0]
    p3 = torch.randint(0, 256, (6144, 4096 // 2), generator=gen, device="cuda", dtype=torch.uint8)
    s3 = torch.randint(0x30, 0x40, (6144, 4096 // 16), generator=gen, device="cuda", dtype=torch.uint8)
    monkeypatch.setenv("RESET_NATIVE_GEMV_TEAMS", "1")  # (two teams by default since session 19 helper teams27)
    three = ref.gemv16_forms_of_call(lambda: nc.gemv(p3, s3, 0.01, x[:3], "bf16"))  # Qwen3-8B q/k/v at M = 3
    assert [(minb, f) for minb, _, _, f in three] == [(3, 0)]
    monkeypatch.delenv("RESET_NATIVE_GEMV_TEAMS")
    p2 = torch.randint(0, 256, (200, 3088 // 2), generator=gen, device="cuda", dtype=torch.uint8)  # K % 1024 != 0
    s2 = torch.randint(0x30, 0x40, (200, 3088 // 16), generator=gen, device="cuda", dtype=torch.uint8)
    x2 = torch.randn((16, 3088), generator=gen, device="cuda").to(torch.bfloat16)
    assert [f for *_, f in ref.gemv16_forms_of_call(lambda: nc.gemv(p2, s2, 0.01, x2, "bf16"))] == [0]
    for value in ("0", "2", "13", "15", "nopad"):
        monkeypatch.setenv(ENV, value)
        assert [f & RED_PAD for *_, f in ref.gemv16_forms_of_call(lambda: nc.gemv(p, s, 0.01, x, "bf16"))] == [0], value
        assert [f & RED_PAD for *_, f in ref.gemv16_forms_of_call(lambda: nc.gemv(p, s, 0.01, x, "nvfp4"))] == [0], \
            value
