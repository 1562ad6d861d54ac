"""NVFP4 GEMV: kForm16HeadRefill on W4A4 (FORM bit 1024; session 19 helper gemv28, W4A4 only since session 20 helper
gemv32, in the W4A4 rule on split K since session 20's last call; cuda/nvfp4/gemv_kernel.cuh): at the head of the
unrolled step loop every weight slot is copied out and refilled at once instead of each slot at its own step. It moves
loads only: every output equals the default's bit for bit. RESET_NATIVE_GEMV_16_FORM=head adds the bit to the W4A4
rule (the pad, the fast quantizer, the wide amax; the head refill on split K) on every W4A4 instance the rule covers
(two teams, two CTAs per SM, one CTA per SM, split K), "nohead" removes it, with the same shared memory, routing and
amax source; A16 keeps its rule (no head kernels), and so do the W4A4 block-diagonal
kernel (M <= 2), the chunked and the general-path kernels. Checked with 8 and 16 token columns, bf16, fp16 and fp32 x,
dynamic and static activation scale, bias and residual, loops whose step count is not a multiple of the slots, and in
a CUDA graph replay; unknown values keep the rule. The instances are pinned by RESET_NATIVE_GEMV_TEAMS and
RESET_NATIVE_GEMV_KSPLIT (so they do not depend on choose_ksplit's rule). GPU tests skip without a device."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nvfp4_gpu_reference as ref  # noqa: E402

from reset_native import _nvfp4_cuda as nc  # noqa: E402

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.gpu

ENV = "RESET_NATIVE_GEMV_16_FORM"
HEAD, RED_PAD, QUANT_FAST, AMAX_WIDE = 1024, 2048, 4096, 8192  # kForm16* bits
W4A4_RULE = RED_PAD | QUANT_FAST | AMAX_WIDE  # the W4A4 instances' rule (since session 20), and HEAD on split K
SPLIT_CLUSTER = ref.W4A4_CLUSTER | ref.W4A4_CLUSTER_BOTH  # W4A4 split K from 8 tokens by default (w4a4splitdef43)
STATIC_ACT_GS = 0.0013  # as tests/test_nvfp4_gpu_form16_w4a4_pad.py


def _rule(instance):
    """The W4A4 rule's FORM bits on an instance (MINB, SPLIT, TEAMS): the head refill on split K only."""
    return W4A4_RULE | (HEAD if instance[1] else 0)


def _with_cluster(form, instance, m, n):
    """form, plus the cluster bits where the default launches clusters (two teams and, since helper w4a4splitdef43,
    split K from 8 tokens, only where the switch value gives the instance its rule's form; "nohead" does on two
    teams, "head" does not (on split K the other way round); with both cluster forms in the band of row tiles since
    helper w4a4rule40: ref.w4a4_default_cluster_bit)."""
    return form | (ref.w4a4_default_cluster_bit(instance, m, n) if form == _rule(instance) else 0)


def _same_bits(fn, m, n, instance, monkeypatch):
    """The default runs `instance` with its rule, "head" / "nohead" the same instance with HEAD added / removed, and
    all give the same bits. Returns the default's output."""
    ref.set_env(monkeypatch, ENV, None)
    assert ref.gemv16_forms_of_call(fn) == [(*instance, _with_cluster(_rule(instance), instance, m, n))]
    want = fn()
    for value, form in (("head", _rule(instance) | HEAD), ("nohead", _rule(instance) & ~HEAD)):
        monkeypatch.setenv(ENV, value)
        assert ref.gemv16_forms_of_call(fn) == [(*instance, _with_cluster(form, instance, m, n))], value
        ref.poison_next_block(m * n * 4)
        assert torch.equal(fn(), want), value
    ref.set_env(monkeypatch, ENV, None)
    return want


# (n, k, m, RESET_NATIVE_GEMV_TEAMS, RESET_NATIVE_GEMV_KSPLIT, instance (MINB, SPLIT, TEAMS)) on 132 SMs
# (bench/probes/gemv_teams_routing.py; "2" = two teams wherever x fits whole, any x dtype; "1" = never; KSPLIT "1" =
# no split, "N" = N slices): two teams with 8 and 16 token columns, two CTAs per SM with 8 and 16, one CTA per SM with
# 16 and 8 (K = 6144, M = 8: over the two-CTA limit with the pad), split K with 8 and 16 columns, by 4 at K = 4096 (one
# chunk per slice: Qwen3-8B q/k/v and o's instance) and by 6 at K = 12288 (two chunks per slice: 8B down's; n = 4097:
# 257 row tiles, so CTAs walk 5 or 6 tiles, 10 or 12 steps, not a multiple of the 3 slots). Steps per CTA on the
# others: 8448 x 4096 at M = 16 four (one CTA, 6 slots: 16 steps) or two tiles (teams: 8 steps), n = 200 one tile.
SHAPES = [
    (200, 4096, 3, "2", "1", (1, 0, 2)),
    (8448, 4096, 16, "2", "1", (1, 0, 2)),
    (200, 4096, 3, "1", "1", (2, 0, 1)),
    (200, 1024, 16, "1", "1", (2, 0, 1)),
    (8448, 4096, 8, "1", "1", (2, 0, 1)),
    (8448, 4096, 16, "1", "1", (1, 0, 1)),
    (8448, 6144, 8, "1", "1", (1, 0, 1)),
    (200, 4096, 5, None, "4", (2, 1, 1)),
    (200, 4096, 16, None, "4", (2, 1, 1)),
    (4097, 12288, 8, None, "6", (2, 1, 1)),
    (4097, 12288, 16, None, "6", (2, 1, 1)),
]


@pytest.mark.parametrize("n,k,m,teams,ksplit,instance", SHAPES)
@pytest.mark.parametrize("dtype,static_scale", [(torch.bfloat16, False), (torch.bfloat16, True), (torch.float16, False),
                                                (torch.float32, True)])
def test_w4a4_head_same_bits_as_default(n, k, m, teams, ksplit, instance, dtype, static_scale, monkeypatch):
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch, ENV)
    ref.set_env(monkeypatch, "RESET_NATIVE_GEMV_TEAMS", teams)
    ref.set_env(monkeypatch, "RESET_NATIVE_GEMV_KSPLIT", ksplit)
    p, s, gs = ref.random_gpu_weights(n, k)
    x, bias, residual = ref.gemv_inputs(n, k, m, dtype)
    act_gs = STATIC_ACT_GS if static_scale else None

    def fn():
        return nc.gemv(p, s, gs, x, "nvfp4", act_gs, bias, residual)

    assert torch.isfinite(_same_bits(fn, m, n, instance, monkeypatch)).all()


@pytest.mark.parametrize("split_amax", ["0", "1"])
def test_w4a4_head_split_amax_sources(split_amax, monkeypatch):
    """Split K by 6 (Qwen3-8B down's instance at M = 16) with the amax pre-kernel ("0") and in every CTA ("1")."""
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch, ENV)
    monkeypatch.setenv("RESET_NATIVE_GEMV_KSPLIT", "6")
    monkeypatch.setenv("RESET_NATIVE_GEMV_SPLIT_AMAX", split_amax)
    p, s, gs = ref.random_gpu_weights(4096, 12288)
    x, bias, residual = ref.gemv_inputs(4096, 12288, 16, torch.bfloat16)
    _same_bits(lambda: nc.gemv(p, s, gs, x, "nvfp4", None, bias, residual), 16, 4096, (2, 1, 1), monkeypatch)


def test_w4a4_head_graph_replay(monkeypatch):
    """Captured under the default (split K by 6 with the head refill, in clusters at M = 16 since helper
    w4a4splitdef43, amax in the kernel), replayed after x changes: equal to eager "nohead" calls (no clusters)."""
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch, ENV)
    monkeypatch.setenv("RESET_NATIVE_GEMV_KSPLIT", "6")
    n, k, m = 200, 12288, 16
    p, s, gs = ref.random_gpu_weights(n, k)
    x = torch.randn((m, k), generator=torch.Generator().manual_seed(4)).to(torch.bfloat16).cuda()

    def fn():
        return nc.gemv(p, s, gs, x, "nvfp4")

    assert ref.gemv16_forms_of_call(fn) == [(2, 1, 1, W4A4_RULE | HEAD | SPLIT_CLUSTER)]
    ref.assert_graph_replay_matches_eager(monkeypatch, fn, x, ENV, "nohead")
    assert ref.gemv16_forms_of_call(fn) == [(2, 1, 1, W4A4_RULE)]  # the eager calls ran without the head refill


def test_unknown_values_keep_the_rule_and_head_leaves_other_kernels(monkeypatch):
    """Values that are not "head" / "nohead" exactly ("HEAD", "head ", "heads", "") run the rule's kernel (n = 200,
    K = 4096, M = 16: split K by 4, with the head refill, in clusters). Under "head" A16 keeps
    its rule's kernel (two teams, split K, the same bits), and the W4A4 block-diagonal (M <= 2), chunked and
    general-path (K % 1024 != 0) kernels keep their default forms."""
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch, ENV)
    p, s, gs = ref.random_gpu_weights(200, 4096)
    x = torch.randn((16, 4096), generator=torch.Generator().manual_seed(3)).to(torch.bfloat16).cuda()
    w4a4 = ref.gemv16_forms_of_call(lambda: nc.gemv(p, s, gs, x, "nvfp4"))
    assert [f for *_, f in w4a4] == [W4A4_RULE | HEAD | SPLIT_CLUSTER], w4a4
    for value in ("HEAD", "head ", "heads", ""):
        monkeypatch.setenv(ENV, value)
        assert ref.gemv16_forms_of_call(lambda: nc.gemv(p, s, gs, x, "nvfp4")) == w4a4, value
    # A16: two teams (n = 200, K = 4096) and split K (K = 12288, M = 16): the rule's kernel and bits under "head".
    pd, sd, _ = ref.random_gpu_weights(200, 12288)
    xd = torch.randn((16, 12288), generator=torch.Generator().manual_seed(7)).to(torch.bfloat16).cuda()
    for fn in (lambda: nc.gemv(p, s, gs, x, "bf16"), lambda: nc.gemv(pd, sd, gs, xd, "bf16")):
        monkeypatch.delenv(ENV, raising=False)
        rule, want = ref.gemv16_forms_of_call(fn), fn()
        assert len(rule) == 1 and not rule[0][3] & HEAD, rule
        monkeypatch.setenv(ENV, "head")
        assert ref.gemv16_forms_of_call(fn) == rule
        assert torch.equal(fn(), want)
    # W4A4 at M = 2: the block-diagonal kernel, its default form (template argument 8, SMALL) under "head".
    x2 = x[:2].contiguous()

    def bd_forms():
        return [(a[2], a[4], a[8]) for a in ref.kernel_template_args(lambda: nc.gemv(p, s, gs, x2, "nvfp4"),
                                                                      "gemv_bd_kernel")]

    monkeypatch.delenv(ENV)
    bd = bd_forms()
    assert len(bd) == 1, bd
    monkeypatch.setenv(ENV, "head")
    assert bd_forms() == bd
    # The general path (not FAST) and the chunked kernel (not WHOLE): FORM 0 under "head" too.
    assert ref.w4a4_general_and_chunked_forms(monkeypatch, gs) == ([(0, 0)], [(0, 0)])
