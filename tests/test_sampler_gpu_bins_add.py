"""The bins-add form of the CUDA decode step's kernels path (decode_step_topp.cuh; session 19's opt-in, branch
sampler23, the default since session 20, branch sampler24), read from the environment at every call:
  unset (or =carry)                     the top-p bins pass adds a logit's whole weight with one 32-bit shared reduction
                                        and counts the adds that wrapped a bin past 2^32 (topp_bins_add_carry); the
                                        flush sends hi * 2^32 + lo. With LEAN and FLAT_BINS (both on by default).
  RESET_NATIVE_SAMPLER_BINS_ADD=split   the flat adds in two halves as before session 20 (topp_bins_add_flat: two
                                        predicated reductions per logit, the flush sends hi * 2^12 + lo).
The same tokens, temperatures, entropies, errors and state bits as split (the reference): the shapes of the switch
files (B = 1, 3, 4, 8, 9, 64, partial chunks, 16-bit dtypes), every config (the bins pass runs with top-p), the
groupings around it (several chunks per bins block: larger block sums, wraps), crowded bins (every logit equal: 2048
weights of 2^24 in bin 0, the block sum wraps 2^32 eight times, the carry adds' path; most logits equal), counted /
sorted / overfull boundary bins, extreme weights, graph replays, and steps alternating with split's kernels."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from reset_native.sampler import ReSETConfig  # noqa: E402
from sampler_gpu_helpers import assert_switched_steps_like  # noqa: E402
from sampler_switch_suite import BOUNDARY_CASES, CONFIGS, GROUPINGS, STEP_SHAPES, SwitchSuite, grouping  # noqa: E402

pytestmark = pytest.mark.gpu
ADD = "RESET_NATIVE_SAMPLER_BINS_ADD"
OTHERS = tuple(f"RESET_NATIVE_SAMPLER_{n}" for n in ("SAMPLE_PICKS", "PHASED_LOADS", "FLAT_BINS", "VEC_LOADS"))
PICKS, PHASED, FLAT, VEC = OTHERS
SHAPES = STEP_SHAPES + [(4, 151936, "float32")]
SPLIT = {ADD: "split"}


# combo -> {variable: value}; variables not named are unset (their defaults). "split" (the form before session 20) is
# the reference; "default" leaves the variable unset, "carry" names the default.
COMBOS = {"split": SPLIT, "default": {}, "carry": {ADD: "carry"},
          "default_g1": grouping(1, 1, 1), "default_g345": grouping(3, 4, 5), "default_bins16": grouping(1, 16, 1),
          "default_no_picks": {PICKS: "0"}, "default_picks": {PICKS: "1"},
          "default_not_phased": {PHASED: "0", **grouping(1, 4, 1)}, "default_no_flat": {FLAT: "0"},
          "default_no_vec": {VEC: "0"}, "split_bins16": {**SPLIT, **grouping(1, 16, 1)}}
SUITE = SwitchSuite((ADD,) + OTHERS + GROUPINGS, COMBOS, reference="split")


@pytest.mark.parametrize("mode", list(CONFIGS))
@pytest.mark.parametrize("rows,vocab,dtype", SHAPES)
def test_bins_add_default_does_not_change_the_step(rows, vocab, dtype, mode, monkeypatch):
    SUITE.steps_case(monkeypatch, rows, vocab, dtype, mode, rng_seed=rows * 67 + vocab + len(mode) + len(dtype) + 23)


@pytest.mark.parametrize("pad", [8, 1])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_bins_add_default_on_strided_views(pad, dtype, monkeypatch):
    SUITE.strided_views_case(monkeypatch, pad, dtype, chunks=11, rng_seed=pad + len(dtype) + 23)


@pytest.mark.parametrize("case", BOUNDARY_CASES)
def test_bins_add_default_on_counted_and_sorted_boundary_bins(case, monkeypatch):
    SUITE.boundary_bins_case(monkeypatch, case, rng_offset=23, seed=53, token_combo="default")


@pytest.mark.parametrize("vocab", [6151, 151936])
def test_bins_add_default_on_overfull_boundary_bins(vocab, monkeypatch):
    SUITE.overfull_case(monkeypatch, vocab, 0.9)


@pytest.mark.parametrize("temperature,top_p", [(0.05, 0.95), (4.0, 0.99), (1.0, 1.0)])
def test_bins_add_default_with_extreme_weights(temperature, top_p, monkeypatch):
    SUITE.extreme_weights_case(monkeypatch, temperature, top_p, rng_offset=23, far_below=True)


@pytest.mark.parametrize("top_p", [0.5, 0.25, 0.75])
@pytest.mark.parametrize("vocab", [4096, 151936])
def test_bins_add_default_on_rows_of_equal_logits(vocab, top_p, monkeypatch):
    """Every logit of a row equal (every lane of every warp on bin 0 with weight 2^24: the block sums wrap 2^32), two
    equal halves, alternate logits equal."""
    SUITE.equal_logits_case(monkeypatch, vocab, top_p)


@pytest.mark.parametrize("rows", [1, 8, 64])
@pytest.mark.parametrize("equal_every", [2, 8, 64])
def test_bins_add_default_with_crowded_bins(rows, equal_every, monkeypatch):
    """N(0, 3) rows where all logits but every equal_every-th are one value near the maximum (many lanes of a warp on
    one bin, weights near 2^24), or a few nats below it (weights < 2^12: split's low half only), over three
    steps; ReSET top-p and fixed T with top-p, at several bins groupings."""
    vocab = 151936
    rng = np.random.default_rng(rows * 7 + equal_every)
    steps = []
    for step in range(3):
        z = (rng.standard_normal((rows, vocab)) * 3).astype(np.float32)
        mask = np.ones(vocab, bool)
        mask[::equal_every] = False
        z[:, mask] = np.float32(z.max() - (0.01 if step != 1 else 9.0))
        steps.append(torch.from_numpy(z).cuda())
    for mode in ("reset_top_p", "fixed_top_p", "reset_top_k_top_p"):
        runs = SUITE.runs(monkeypatch, CONFIGS[mode], rows, vocab, steps, torch.arange(rows, device="cuda"), seed=31,
                          combos=("split", "default", "default_g1", "default_bins16", "default_no_picks",
                                  "default_not_phased", "split_bins16"))
        SUITE.assert_same(runs)


@pytest.mark.parametrize("vocab", [192 * 2048 + 1, 256 * 2048 + 4100])
def test_bins_add_default_on_long_rows(vocab, monkeypatch):
    SUITE.long_rows_case(monkeypatch, vocab, rng_seed=vocab % 83 + 5,
                         combos=("split", "default", "default_g345", "default_bins16"))


@pytest.mark.parametrize("rows", [1, 8, 64])
@pytest.mark.parametrize("captured,eager", [("default", "split"), ("split", "default")])
def test_bins_add_default_in_a_cuda_graph_replay_like_eager_steps(rows, captured, eager, monkeypatch):
    SUITE.graph_case(monkeypatch, rows, 230 + rows, captured=captured, eager=eager)


@pytest.mark.parametrize("rows", [1, 8, 64])
def test_bins_add_default_alternating_with_split_kernels(rows, monkeypatch):
    """Steps of the default (the carry form) between steps of split's on one state (the row histogram the bins pass
    fills is zeroed for the next step either way): the same bits as every step split."""
    vocab = 151936
    rng = np.random.default_rng(rows + 230)
    logits = [torch.from_numpy((rng.standard_normal((rows, vocab)) * 3).astype(np.float32)).cuda() for _ in range(8)]
    switched = [None, "split", None, None, "split", None, "split", "split"]

    def kernels_path():
        monkeypatch.setenv("RESET_NATIVE_SAMPLER_FUSED", "0")
        monkeypatch.setenv("RESET_NATIVE_SAMPLER_RESIDENT", "0")

    assert_switched_steps_like(monkeypatch, ADD, CONFIGS["reset_top_p"], rows, vocab, logits, switched, seed=29,
                               reference="split", prepare=kernels_path)


def test_bins_add_default_fixed_temperature_without_top_p(monkeypatch):
    """No top-p: no bins pass; the form changes nothing."""
    rows, vocab = 8, 151936
    rng = np.random.default_rng(233)
    logits = [torch.from_numpy((rng.standard_normal((rows, vocab)) * 3).astype(np.float32)).cuda() for _ in range(3)]
    runs = SUITE.runs(monkeypatch, ReSETConfig.fixed(0.6), rows, vocab, logits, torch.arange(rows, device="cuda"),
                      seed=3, combos=("split", "default"))
    SUITE.assert_same(runs)
