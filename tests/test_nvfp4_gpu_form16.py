"""NVFP4 GEMV: the 16-bit kernel's forms (kForm16* in cuda/nvfp4/gemv_kernel.cuh, form16_rule): with bf16 x the FP4
decode in 11 instructions per word; on the split-K kernels with 8 token columns the phased weight loop (two slot
sets, each refilled right after the wait for the other); x staged without a division per unit (session 14; every
instance but the two-CTA kernel with 8 token columns; 16-byte aligned x, else the old staging inside the same
kernel); on the split-K kernels with 16 token columns the late slot refill; since session 16 the scale word
everywhere, the one-pass tile epilogue on split K and the predicated refill on the two-team and split-K kernels at 16
token columns (tests/test_nvfp4_gpu_form16_s16.py), since session 19 the padded reduction rows everywhere
(tests/test_nvfp4_gpu_form16_pad.py). RESET_NATIVE_GEMV_16_FORM=0 runs the form
before session 13, =2 the decode alone, =13 session 13's rule (decode, phased). None changes what is summed or in
which order, so every output equals form 0's bit for bit, on every instance (two and one CTA per SM, two teams, split
K even and uneven; 8 and 16 token columns; the three-CTA kernel, which keeps form 0), on odd n, unaligned x, K % 64
!= 0 and in CUDA-graph replays; form 0 also against fp64 math. Which instance and form run is read from the kernel
names the torch profiler records. GPU tests skip without a device."""
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


@functools.lru_cache(maxsize=16)
def _ref_weights(n, k):
    return ref.quantize(torch.randn((n, k), generator=torch.Generator().manual_seed(n * 5 + k)).numpy())


# (n, k, m, teams env, instance (MINB, SPLIT, TEAMS) the call must run): two CTAs per SM with 8 and 16 token columns,
# two teams (8 / 16 columns, the second team without a tile at n = 8), split K (8 token columns: 8 chunks in 4 slices,
# 9 in 5 (uneven), 25 in 13 at two tokens; 16 columns: 9 in 5), one CTA per SM with six slots
# (RESET_NATIVE_GEMV_TEAMS=1), and the three-CTA kernel (form 0). n = 200 ends in a partial row tile. The two- and
# three-CTA shapes run with RESET_NATIVE_GEMV_TEAMS=1: the default takes two teams there since session 19 helper teams27
# (bench/probes/gemv_teams_routing.py), and "1" keeps the instance they were chosen for.
SHAPES = [
    (200, 4096, 3, "1", (2, 0, 1)),
    (200, 2048, 12, "1", (2, 0, 1)),
    (200, 4096, 4, None, (1, 0, 2)),
    (8, 4096, 5, None, (1, 0, 2)),
    (200, 4096, 16, None, (1, 0, 2)),
    (200, 8192, 6, None, (2, 1, 1)),
    (200, 9216, 16, None, (2, 1, 1)),
    (72, 25600, 2, None, (2, 1, 1)),
    (200, 9216, 5, None, (2, 1, 1)),
    (200, 4096, 16, "1", (1, 0, 1)),
    (6144, 4096, 3, "1", (3, 0, 1)),
    (199, 4096, 16, None, (1, 0, 2)),
    (4097, 5120, 11, None, (1, 0, 2)),
    (199, 12288, 16, None, (2, 1, 1)),
]


@pytest.mark.parametrize("n,k,m,teams,instance", SHAPES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_forms_same_bits_and_fp64(n, k, m, teams, instance, dtype, monkeypatch):
    ref.clear_gemv_env(monkeypatch, ENV)
    ref.set_env(monkeypatch, "RESET_NATIVE_GEMV_TEAMS", teams)
    packed, scales, gs = _ref_weights(n, k)
    p, s, x, bias, residual = ref.gemv_call_inputs((packed, scales, gs), m, dtype)
    bf16 = dtype == torch.bfloat16
    decode = 2 if bf16 and instance[0] != 3 else 0
    phased = 4 if instance[1] == 1 and m <= 8 else 0  # split K with 8 token columns
    eligible = instance[0] != 3  # every instance here but the three-CTA kernel
    stage = 8 if eligible and not (instance[:2] == (2, 0) and m <= 8) else 0  # not the two-CTA kernel at 8 columns
    late = 16 if instance[1] == 1 and m > 8 else 0  # split K with 16 token columns
    scale = 32 if eligible else 0  # session 16: the scale word (tests/test_nvfp4_gpu_form16_s16.py)
    one_pass = 128 if instance[1] == 1 else 0  # session 16: the one-pass tile epilogue on split K
    pred = 256 if m > 8 and (instance[1] == 1 or instance[2] > 1) else 0  # session 16: two teams / split K, 16 columns
    pad = 2048 if eligible else 0  # session 19: kForm16RedPad by default (tests/test_nvfp4_gpu_form16_pad.py)
    rule = decode | phased | stage | late | scale | one_pass | pred | pad
    outs = {}
    for form, want in (("0", 0), ("2", decode), ("13", decode | phased), ("rule", rule)):
        _set_form(monkeypatch, "unset" if form == "rule" else form)
        ref.poison_next_block(m * n * 4)
        outs[form] = nc.gemv(p, s, float(gs), x, "bf16", None, bias, residual)
        kernels = ref.gemv16_forms_of_call(lambda: nc.gemv(p, s, float(gs), x, "bf16", None, bias, residual))
        assert kernels == [(*instance, want)], (form, kernels)
    for form in ("2", "13", "rule"):
        assert torch.equal(outs[form], outs["0"]), form
    ref.check_vs_fp64(outs["0"], packed, scales, float(gs), x, "bf16", bias, residual)


def _set_form(monkeypatch, form):
    if form == "unset":
        monkeypatch.delenv(ENV, raising=False)
    else:
        monkeypatch.setenv(ENV, form)


def _unaligned(t):
    """t's values in a tensor whose data pointer is 2 bytes past a 16-byte boundary."""
    flat = torch.empty(t.numel() + 8, dtype=t.dtype, device=t.device)
    view = flat[1:1 + t.numel()].view(t.shape)
    view.copy_(t)
    return view


# The forms on x that is not 16-byte aligned (the staging form's kernels then stage through form 0's loop), K % 64 !=
# 0 (no fast path: form 0 whatever the switch), and inside a CUDA graph (captured with the switch set, replayed after
# the inputs change): every output equal to form 0's.
@pytest.mark.parametrize("n,k,m", [(199, 4096, 16), (200, 9216, 5), (131, 4000, 16), (77, 1040, 7)])
def test_forms_unaligned_x_and_slow_path(n, k, m, monkeypatch):
    ref.clear_gemv_env(monkeypatch, ENV)
    packed, scales, gs = _ref_weights(n, k)
    p, s, x, bias, residual = ref.gemv_call_inputs((packed, scales, gs), m, torch.bfloat16)
    monkeypatch.setenv(ENV, "0")
    base = nc.gemv(p, s, float(gs), x, "bf16", None, bias, residual)
    for form in ("unset", "13"):
        _set_form(monkeypatch, form)
        for xin in (x, _unaligned(x)):
            assert torch.equal(nc.gemv(p, s, float(gs), xin, "bf16", None, bias, residual), base), form
    ref.check_vs_fp64(base, packed, scales, float(gs), x, "bf16", bias, residual)


@pytest.mark.parametrize("form", ["unset", "13"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_forms_graph_replay(dtype, form, monkeypatch):
    ref.clear_gemv_env(monkeypatch, ENV)
    n, k, m = 1000, 5120, 16
    packed, scales, gs = _ref_weights(n, k)
    p, s, x, bias, residual = ref.gemv_call_inputs((packed, scales, gs), m, dtype)
    _set_form(monkeypatch, form)

    def fn():
        return nc.gemv(p, s, float(gs), x, "bf16", None, bias, residual)

    ref.assert_graph_replay_matches_eager(monkeypatch, fn, x, ENV, "0")


def test_unknown_values_and_other_modes_keep_their_kernels(monkeypatch):
    """Unknown values mean the rule; fp32 x and K % 1024 != 0 run form 0, W4A4 its own rule: the pad (since session
    19 helper gemv25: tests/test_nvfp4_gpu_form16_w4a4_pad.py), the fast quantizer and the wide amax (since session 20
    helper w4a4x30: tests/test_nvfp4_gpu_w4a4_quantfast.py), on split K the head refill (session 20:
    tests/test_nvfp4_gpu_form16_head.py)."""
    ref.clear_gemv_env(monkeypatch, ENV)
    gen = torch.Generator(device="cuda").manual_seed(1)
    p = torch.randint(0, 256, (200, 4096 // 2), generator=gen, device="cuda", dtype=torch.uint8)
    s = torch.randint(0x30, 0x40, (200, 4096 // 16), generator=gen, device="cuda", dtype=torch.uint8)
    x = torch.randn((8, 4096), generator=gen, device="cuda").to(torch.bfloat16)
    default = ref.gemv16_forms_of_call(lambda: nc.gemv(p, s, 0.01, x, "bf16"))
    monkeypatch.setenv(ENV, "phased")
    assert ref.gemv16_forms_of_call(lambda: nc.gemv(p, s, 0.01, x, "bf16")) == default
    monkeypatch.delenv(ENV)
    # kForm16RedPad | kForm16QuantFast | kForm16AmaxWide, and kForm16HeadRefill: W4A4 splits K by 4 here (13 row tiles),
    # in clusters at M = 8 (kForm16Cluster and both cluster forms, since helper w4a4splitdef43)
    w4a4_rule = 2048 | 4096 | 8192 | 1024 | ref.W4A4_CLUSTER | ref.W4A4_CLUSTER_BOTH
    assert [f for *_, f in ref.gemv16_forms_of_call(lambda: nc.gemv(p, s, 0.01, x, "nvfp4"))] == [w4a4_rule]
    assert [f for *_, f in ref.gemv16_forms_of_call(lambda: nc.gemv(p, s, 0.01, x.float(), "bf16"))] == [0]
    p2 = torch.randint(0, 256, (200, 3088 // 2), generator=gen, device="cuda", dtype=torch.uint8)  # K % 1024 != 0
    s2 = torch.randint(0x30, 0x40, (200, 3088 // 16), generator=gen, device="cuda", dtype=torch.uint8)
    x2 = torch.randn((8, 3088), generator=gen, device="cuda").to(torch.bfloat16)
    assert [f for *_, f in ref.gemv16_forms_of_call(lambda: nc.gemv(p2, s2, 0.01, x2, "bf16"))] == [0]
