"""NVFP4 GEMV: session 16's forms of the 16-bit kernel (cuda/nvfp4/gemv_kernel.cuh, form16_rule): kForm16Scale (the
two block scales of a row as one bf16 word straight from the E4M3 bits, the pair broadcast folded into the operand
multiply) on every eligible instance, kForm16OnePass (the tile epilogue without a loop) on the split-K ones and
kForm16PredRefill (predicated refills) on the two-team and split-K ones with 16 token columns.
RESET_NATIVE_GEMV_16_FORM = 15 runs the rule before them (sessions 14-15). None changes what is summed or in which
order, so every output equals the old rule's bit for bit, on every instance the launcher picks (two CTAs per SM, two
teams, split K, one CTA; 8 and 16 token columns; the three-CTA kernel keeps form 0) with bf16 and fp16 x; the rule's
output also against fp64 math. The scale word is checked over every E4M3 byte but NaN (0x7F / 0xFF), the sign-bit
bytes (dropped, as the old conversion drops them), zero and the subnormal scales included. GPU tests skip without a
device."""
from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nvfp4_gpu_reference as ref  # noqa: E402

from reset_native import _nvfp4_cuda as nc  # noqa: E402

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.gpu

ENV = "RESET_NATIVE_GEMV_16_FORM"
SCALE, PHASED, LATE, ONE_PASS, PRED, RED_PAD = 32, 4, 16, 128, 256, 2048


@functools.lru_cache(maxsize=16)
def _ref_weights(n, k):
    return ref.quantize(torch.randn((n, k), generator=torch.Generator().manual_seed(n * 7 + k)).numpy())


def _old_rule(instance, m, bf16):
    """form16_rule's bits before session 16 (as tests/test_nvfp4_gpu_form16.py derives them)."""
    minb, split, _ = instance
    if minb == 3:
        return 0
    decode = 2 if bf16 else 0
    phased = PHASED if split == 1 and m <= 8 else 0
    stage = 8 if not ((minb, split) == (2, 0) and m <= 8) else 0
    late = LATE if split == 1 and m > 8 else 0
    return decode | phased | stage | late


def _form_of(name, instance, m, bf16):
    old = _old_rule(instance, m, bf16)
    if name == "15" or instance[0] == 3:
        return old
    _, split, teams = instance
    # + session 19's default kForm16RedPad (tests/test_nvfp4_gpu_form16_pad.py), not in "15"
    return old | SCALE | (ONE_PASS if split else 0) | (PRED if m > 8 and (split or teams > 1) else 0) | RED_PAD


# (n, k, m, teams env, instance (MINB, SPLIT, TEAMS) the call must run): the two-team kernel at 16 and 8 token columns
# (n = 199: a partial row tile; n = 8: the second team without a tile), two CTAs per SM (8 and 16 columns), split K
# (16 columns, uneven slices; 8 columns, phased), one CTA per SM with six slots, the three-CTA kernel (form 0). The two-
# and three-CTA shapes run with RESET_NATIVE_GEMV_TEAMS=1: the default takes two teams there since session 19 helper
# teams27 (bench/probes/gemv_teams_routing.py), and "1" keeps the instance they were chosen for.
SHAPES = [
    (199, 4096, 16, None, (1, 0, 2)),
    (4097, 5120, 11, None, (1, 0, 2)),
    (200, 4096, 4, None, (1, 0, 2)),
    (8, 4096, 5, None, (1, 0, 2)),
    (200, 4096, 3, "1", (2, 0, 1)),
    (200, 2048, 12, "1", (2, 0, 1)),
    (199, 12288, 16, None, (2, 1, 1)),
    (200, 9216, 5, None, (2, 1, 1)),
    (200, 4096, 16, "1", (1, 0, 1)),
    (6144, 4096, 3, "1", (3, 0, 1)),
]


def _outputs(weights, m, dtype, instance, monkeypatch, forms=("unset", "15")):
    packed, scales, gs = weights
    p, s, x, bias, residual = ref.gemv_call_inputs(weights, m, dtype)
    bf16 = dtype == torch.bfloat16
    outs = {}
    for name in forms:
        if name == "unset":
            monkeypatch.delenv(ENV, raising=False)
        else:
            monkeypatch.setenv(ENV, name)
        ref.poison_next_block(m * p.shape[0] * 4)
        outs[name] = nc.gemv(p, s, float(gs), x, "bf16", None, bias, residual)
        kernels = ref.gemv16_forms_of_call(lambda: nc.gemv(p, s, float(gs), x, "bf16", None, bias, residual))
        assert kernels == [(*instance, _form_of(name, instance, m, bf16))], (name, kernels)
    return outs, x, bias, residual


@pytest.mark.parametrize("n,k,m,teams,instance", SHAPES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_forms_same_bits_as_rule_and_fp64(n, k, m, teams, instance, dtype, monkeypatch):
    ref.clear_gemv_env(monkeypatch, ENV)
    ref.set_env(monkeypatch, "RESET_NATIVE_GEMV_TEAMS", teams)
    weights = _ref_weights(n, k)
    outs, x, bias, residual = _outputs(weights, m, dtype, instance, monkeypatch)
    assert torch.equal(outs["unset"], outs["15"])
    ref.check_vs_fp64(outs["unset"], *weights, x, "bf16", bias, residual)


def _every_scale_byte(n, k, seed):
    """Random FP4 codes and block scales that run through every E4M3 byte but NaN (0x00..0x7E, then the same with the
    sign bit, 0x80..0xFE), in a shuffled order, and a global scale."""
    rng = np.random.default_rng(seed)
    packed = rng.integers(0, 256, size=(n, k // 2), dtype=np.uint8)
    pool = np.concatenate([np.arange(0x7F), 0x80 + np.arange(0x7F)]).astype(np.uint8)
    scales = np.resize(rng.permutation(np.repeat(pool, -(-n * (k // 16) // pool.size))), (n, k // 16))
    return packed, scales.astype(np.uint8), np.float32(0.0123)


# Every scale byte on the kernels at 16 and 8 token columns (two teams, two CTAs, split K), with bf16 and fp16 x: the
# scale word gives scale_pairs' values for every byte the quantizer can write, and the sign-bit bytes (which it does
# not write) too. The two-CTA shape with RESET_NATIVE_GEMV_TEAMS=1 (two teams by default since helper teams27).
@pytest.mark.parametrize("n,k,m,teams,instance", [
    (200, 4096, 16, None, (1, 0, 2)),
    (200, 4096, 3, "1", (2, 0, 1)),
    (199, 12288, 16, None, (2, 1, 1)),
    (200, 9216, 5, None, (2, 1, 1)),
])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_scale_word_every_byte(n, k, m, teams, instance, dtype, monkeypatch):
    ref.clear_gemv_env(monkeypatch, ENV)
    ref.set_env(monkeypatch, "RESET_NATIVE_GEMV_TEAMS", teams)
    weights = _every_scale_byte(n, k, seed=n + k + m)
    assert set(np.unique(weights[1])) == set(range(0x7F)) | set(range(0x80, 0xFF))
    outs, x, bias, residual = _outputs(weights, m, dtype, instance, monkeypatch)
    assert torch.equal(outs["unset"], outs["15"])
    ref.check_vs_fp64(outs["unset"], *weights, x, "bf16", bias, residual)


@pytest.mark.parametrize("form", ["unset", "15"])
def test_forms_graph_replay(form, monkeypatch):
    ref.clear_gemv_env(monkeypatch, ENV)
    n, k, m = 1000, 5120, 16
    weights = _ref_weights(n, k)
    p, s, x, bias, residual = ref.gemv_call_inputs(weights, m, torch.bfloat16)
    gs = float(weights[2])
    if form != "unset":
        monkeypatch.setenv(ENV, form)
    ref.assert_graph_replay_matches_eager(monkeypatch, lambda: nc.gemv(p, s, gs, x, "bf16", None, bias, residual), x,
                                          ENV, "0")
