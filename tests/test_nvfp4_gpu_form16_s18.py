"""NVFP4 GEMV: session 18's forms of the 16-bit kernel (helper gemv22; cuda/nvfp4/gemv_kernel.cuh), opt-in through
RESET_NATIVE_GEMV_16_FORM:
* "head" (kForm16HeadRefill): every weight slot is copied out and refilled at the head of the unrolled step loop. It
  moves loads only, so every output equals the rule's bit for bit;
* "acc" (kForm16SplitAcc): the second k16 of each weight word accumulates into its own fp32 registers, added to the
  first's once per tile. The fp32 summation order differs from the rule's, so its output is checked against fp64 math
  (the GEMV tests' bound) and for determinism (the same bits on repeated calls and in CUDA graph replays);
* "acchead": both; the same bits as "acc".
On every instance the launcher picks for 16-bit x (two teams, two CTAs per SM, split K with 8 and 16 token columns,
one CTA per SM), bf16 and fp16 x. GPU tests skip without a device."""
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
FORM_BITS = {"head": 1024, "acc": 512, "acchead": 1024 | 512}


@functools.lru_cache(maxsize=8)
def _ref_weights(n, k):
    return ref.quantize(torch.randn((n, k), generator=torch.Generator().manual_seed(n * 5 + k)).numpy())


# (n, k, m, teams env, instance (MINB, SPLIT, TEAMS)): two teams at 16 and 8 token columns (n = 199: a partial tile;
# n = 4097, K = 5120: tiles wrap mid-loop), two CTAs per SM at 16 columns, split K at 16 columns (late refill in the
# rule) and 8 (phased in the rule: "head" does not apply there), one CTA per SM (six slots).
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


def _run(fn, m, n, monkeypatch, form, rule, instance):
    if form == "unset":
        monkeypatch.delenv(ENV, raising=False)
    else:
        monkeypatch.setenv(ENV, form)
        assert ref.gemv16_forms_of_call(fn) == [(*instance, rule | FORM_BITS[form])]
    torch.full(((m * n * 4 + (1 << 20)) // 4,), float("nan"), device="cuda")  # poison the allocator's next block
    return fn()


@pytest.mark.parametrize("n,k,m,teams,instance", SHAPES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_session18_forms(n, k, m, teams, instance, dtype, monkeypatch):
    ref.clear_gemv_env(monkeypatch, ENV)
    if teams is not None:
        monkeypatch.setenv("RESET_NATIVE_GEMV_TEAMS", teams)
    weights = _ref_weights(n, k)
    fn, x, bias, residual = _call(weights, m, dtype)
    rule = ref.gemv16_forms_of_call(fn)
    assert len(rule) == 1 and rule[0][:3] == instance and not rule[0][3] & FORM_BITS["acchead"], rule
    outs = {f: _run(fn, m, n, monkeypatch, f, rule[0][3], instance) for f in ("unset", "head", "acc", "acchead")}
    assert torch.equal(outs["head"], outs["unset"])
    assert torch.equal(outs["acchead"], outs["acc"])
    ref.check_vs_fp64(outs["unset"], *weights, x, "bf16", bias, residual)
    ref.check_vs_fp64(outs["acc"], *weights, x, "bf16", bias, residual)
    for _ in range(2):
        assert torch.equal(fn(), outs["acchead"])  # acchead still set: deterministic


@pytest.mark.parametrize("form", ["head", "acc", "acchead"])
def test_session18_forms_graph_replay(form, monkeypatch):
    ref.clear_gemv_env(monkeypatch, ENV)
    n, k, m = 1000, 5120, 16
    weights = _ref_weights(n, k)
    fn, x, bias, residual = _call(weights, m, torch.bfloat16)
    monkeypatch.setenv(ENV, form)
    fn()  # warm-up outside the capture
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        y = fn()
    for seed in (5, 6):
        x.copy_(torch.randn((m, k), generator=torch.Generator().manual_seed(seed)).to(torch.bfloat16))
        g.replay()
        torch.cuda.synchronize()
        assert torch.equal(y, fn()), seed
        ref.check_vs_fp64(y, *weights, x, "bf16", bias, residual)
        if form == "head":
            monkeypatch.delenv(ENV)
            assert torch.equal(y, fn()), seed  # the rule's bits
            monkeypatch.setenv(ENV, form)
