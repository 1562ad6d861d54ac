"""NVFP4 GEMV: the split-accumulator form of the 16-bit kernel (kForm16SplitAcc, RESET_NATIVE_GEMV_16_FORM=acc, session
18 helper gemv22; cuda/nvfp4/gemv_kernel.cuh). The second k16 of each weight word accumulates into its own fp32
registers and is added to the first's once per tile, so the fp32 summation order differs from the rule's: the output
is checked against fp64 math (the GEMV tests' bound), and for determinism (the same bits on repeated calls and in CUDA
graph replays), on every instance the launcher picks for 16-bit x (two teams, two CTAs per SM, split K with 8 and 16
token columns, one CTA per SM), bf16 and fp16 x. GPU tests skip without a device."""
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
SPLIT_ACC = 512


@functools.lru_cache(maxsize=8)
def _ref_weights(n, k):
    return ref.quantize(torch.randn((n, k), generator=torch.Generator().manual_seed(n * 5 + k)).numpy())


# (n, k, m, teams env, instance (MINB, SPLIT, TEAMS)): two teams at 16 and 8 token columns (n = 199: a partial tile),
# two CTAs per SM at 16 columns, split K at 16 columns (late refill) and 8 (phased), one CTA per SM.
SHAPES = [
    (199, 4096, 16, None, (1, 0, 2)),
    (4097, 5120, 11, None, (1, 0, 2)),
    (200, 4096, 5, None, (1, 0, 2)),
    (200, 2048, 12, None, (2, 0, 1)),
    (199, 12288, 16, None, (2, 1, 1)),
    (200, 9216, 5, None, (2, 1, 1)),
    (200, 4096, 16, "1", (1, 0, 1)),
]


def _call(weights, m, dtype):
    p, s, x, bias, residual = ref.gemv_call_inputs(weights, m, dtype)
    gs = float(weights[2])
    return (lambda: nc.gemv(p, s, gs, x, "bf16", None, bias, residual)), x, bias, residual


@pytest.mark.parametrize("n,k,m,teams,instance", SHAPES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_split_acc_within_fp64_bound_and_deterministic(n, k, m, teams, instance, dtype, monkeypatch):
    ref.clear_gemv_env(monkeypatch, ENV)
    if teams is not None:
        monkeypatch.setenv("RESET_NATIVE_GEMV_TEAMS", teams)
    weights = _ref_weights(n, k)
    fn, x, bias, residual = _call(weights, m, dtype)
    rule = ref.gemv16_forms_of_call(fn)
    assert len(rule) == 1 and rule[0][:3] == instance and not rule[0][3] & SPLIT_ACC, rule
    monkeypatch.setenv(ENV, "acc")
    assert ref.gemv16_forms_of_call(fn) == [(*instance, rule[0][3] | SPLIT_ACC)]
    torch.full(((m * n * 4 + (1 << 20)) // 4,), float("nan"), device="cuda")  # poison the allocator's next block
    y = fn()
    ref.check_vs_fp64(y, *weights, x, "bf16", bias, residual)
    for _ in range(3):
        assert torch.equal(fn(), y)


def test_split_acc_graph_replay(monkeypatch):
    ref.clear_gemv_env(monkeypatch, ENV)
    n, k, m = 1000, 5120, 16
    weights = _ref_weights(n, k)
    fn, x, bias, residual = _call(weights, m, torch.bfloat16)
    monkeypatch.setenv(ENV, "acc")
    fn()  # warm-up outside the capture
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        y = fn()
    for seed in (5, 6):
        x.copy_(torch.randn((m, k), generator=torch.Generator().manual_seed(seed)).to(torch.bfloat16))
        g.replay()
        torch.cuda.synchronize()
        want = fn()
        assert torch.equal(y, want), seed
        ref.check_vs_fp64(y, *weights, x, "bf16", bias, residual)
