"""NVFP4 GEMV: kForm16RedPad (RESET_NATIVE_GEMV_16_FORM=pad, session 18 helper gemv22; cuda/nvfp4/gemv_kernel.cuh): the
tile epilogue's reduction rows padded by two floats (no bank conflicts in the partial sums' loads). The same sums in
the same order, so every output equals the rule's bit for bit, on every instance the launcher picks for 16-bit x (two
teams, two CTAs per SM, split K with 8 and 16 token columns, one CTA per SM), bf16 and fp16 x, with bias and residual,
and in CUDA graph replays. GPU tests skip without a device."""
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


@functools.lru_cache(maxsize=8)
def _ref_weights(n, k):
    return ref.quantize(torch.randn((n, k), generator=torch.Generator().manual_seed(n * 3 + k)).numpy())


# (n, k, m, teams env, instance (MINB, SPLIT, TEAMS)), as tests/test_nvfp4_gpu_form16_s16.py's shapes
SHAPES = [
    (199, 4096, 16, None, (1, 0, 2)),
    (4097, 5120, 11, None, (1, 0, 2)),
    (200, 4096, 5, None, (1, 0, 2)),
    (200, 2048, 12, None, (2, 0, 1)),
    (199, 12288, 16, None, (2, 1, 1)),
    (200, 9216, 5, None, (2, 1, 1)),
    (200, 4096, 16, "1", (1, 0, 1)),
]


@pytest.mark.parametrize("n,k,m,teams,instance", SHAPES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_red_pad_same_bits_as_rule(n, k, m, teams, instance, dtype, monkeypatch):
    ref.clear_gemv_env(monkeypatch, ENV)
    if teams is not None:
        monkeypatch.setenv("RESET_NATIVE_GEMV_TEAMS", teams)
    weights = _ref_weights(n, k)
    p, s, x, bias, residual = ref.gemv_call_inputs(weights, m, dtype)
    gs = float(weights[2])

    def fn():
        return nc.gemv(p, s, gs, x, "bf16", None, bias, residual)

    rule = ref.gemv16_forms_of_call(fn)
    assert len(rule) == 1 and rule[0][:3] == instance and not rule[0][3] & RED_PAD, rule
    want = fn()
    monkeypatch.setenv(ENV, "pad")
    assert ref.gemv16_forms_of_call(fn) == [(*instance, rule[0][3] | RED_PAD)]
    torch.full(((m * n * 4 + (1 << 20)) // 4,), float("nan"), device="cuda")  # poison the allocator's next block
    y = fn()
    assert torch.equal(y, want)
    ref.check_vs_fp64(y, *weights, x, "bf16", bias, residual)


def test_red_pad_graph_replay(monkeypatch):
    ref.clear_gemv_env(monkeypatch, ENV)
    n, k, m = 1000, 5120, 16
    weights = _ref_weights(n, k)
    p, s, x, bias, residual = ref.gemv_call_inputs(weights, m, torch.bfloat16)
    gs = float(weights[2])
    monkeypatch.setenv(ENV, "pad")
    nc.gemv(p, s, gs, x, "bf16", None, bias, residual)  # warm-up outside the capture
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        y = nc.gemv(p, s, gs, x, "bf16", None, bias, residual)
    monkeypatch.delenv(ENV)
    for seed in (5, 6):
        x.copy_(torch.randn((m, k), generator=torch.Generator().manual_seed(seed)).to(torch.bfloat16))
        g.replay()
        torch.cuda.synchronize()
        assert torch.equal(y, nc.gemv(p, s, gs, x, "bf16", None, bias, residual)), seed
