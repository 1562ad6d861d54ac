"""Session 18's switch of the CUDA decode step's kernels path (branch sampler20; docs/sampler.md, CUDA details), read
from the environment at every call (=1 on, =0 off, unset: the default, on), meant to change only when the row's last
sample block adds which masses, never a value:
  RESET_NATIVE_SAMPLER_EARLY_SCAN    (on by default; with top-p, the bins path; the draw with the cells and the lean
                                     counted threshold, <= 256 boundary-bin candidates) the boundary bin's candidates
                                     of the sub-bins before the threshold's sub-bin added to their segments and the
                                     chunks' prefix scanned inside the threshold's barriers; after it, the threshold
                                     sub-bin's kept candidates added by a loop, and the quantile's chunk, segment and
                                     token found by its owner's warp (decode_step_early_scan.cuh).
Off, on, and on with the switches and groupings around it (where it does not apply: no cells, the rank threshold, more
than 256 candidates, no top-p) must give the same tokens, temperatures, entropies, errors and state bits as off:
the shapes of the earlier switch files (B = 1, 3, 4, 8, 9, 64), strided views, counted / sorted / overfull boundary bins
(the numpy model's tokens), extreme weights, rows of equal logits, boundary sub-bins of 1 ... 257 candidates with the
threshold inside them, the quantile in a row's partial last chunk, rows of 192 chunks and past them, graph replays, and
steps of one state alternating with the default's kernels."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from reset_native.sampler import ReSETConfig  # noqa: E402
from sampler_gpu_helpers import assert_switched_steps_like  # noqa: E402
from sampler_switch_suite import BOUNDARY_CASES, CONFIGS, GROUPINGS, STEP_SHAPES, SwitchSuite, grouping  # noqa: E402

pytestmark = pytest.mark.gpu
EARLY = "RESET_NATIVE_SAMPLER_EARLY_SCAN"
OTHERS = tuple(f"RESET_NATIVE_SAMPLER_{n}" for n in (
    "CELL_MASSES", "SAMPLE_PICKS", "LEAN_DRAW", "SUB_BINS", "VEC_LOADS", "OWNER_DRAW"))
CELLS, PICKS, LEAN_DRAW, SUB_BINS, VEC, OWNER = OTHERS
SHAPES = STEP_SHAPES + [(4, 151936, "float32")]


# combo -> {variable: value}; variables not named are unset (their defaults). "off" is the reference.
OFF = {EARLY: "0"}
ON = {EARLY: "1"}
COMBOS = {"off": OFF, "default": {}, "early": ON,
          "early_g1": {**ON, **grouping(1, 1, 1)}, "early_g345": {**ON, **grouping(3, 4, 5)},
          "early_g16": {**ON, **grouping(1, 1, 16)},
          "early_no_picks": {**ON, PICKS: "0"}, "early_owner": {**ON, OWNER: "1"},
          "early_no_owner": {**ON, OWNER: "0"}, "early_draw_rank": {**ON, LEAN_DRAW: "0", SUB_BINS: "0"},
          "early_no_vec": {**ON, VEC: "0"}, "early_no_cells": {**ON, CELLS: "0"}}
SUITE = SwitchSuite((EARLY,) + OTHERS + GROUPINGS, COMBOS, reference="off")


@pytest.mark.parametrize("mode", list(CONFIGS))
@pytest.mark.parametrize("rows,vocab,dtype", SHAPES)
def test_session18_early_scan_does_not_change_the_step(rows, vocab, dtype, mode, monkeypatch):
    SUITE.steps_case(monkeypatch, rows, vocab, dtype, mode, rng_seed=rows * 61 + vocab + len(mode) + len(dtype))


@pytest.mark.parametrize("pad", [8, 1])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_session18_early_scan_on_strided_views(pad, dtype, monkeypatch):
    """A row stride of 16-byte multiples (the 16-byte loads) and an odd one."""
    SUITE.strided_views_case(monkeypatch, pad, dtype, chunks=11, rng_seed=pad + len(dtype) + 20)


@pytest.mark.parametrize("case", BOUNDARY_CASES)
def test_session18_early_scan_on_counted_and_sorted_boundary_bins(case, monkeypatch):
    """The counted threshold (<= 256 candidates: the early scan) and the sorted one (more: draw_row_cells): the same
    bits, and with the switch the numpy model's tokens."""
    SUITE.boundary_bins_case(monkeypatch, case, rng_offset=20, seed=47, token_combo="early")


@pytest.mark.parametrize("vocab", [6151, 151936])
def test_session18_early_scan_on_overfull_boundary_bins(vocab, monkeypatch):
    SUITE.overfull_case(monkeypatch, vocab, 0.9)


@pytest.mark.parametrize("temperature,top_p", [(0.05, 0.95), (4.0, 0.99), (1.0, 1.0)])
def test_session18_early_scan_with_extreme_weights(temperature, top_p, monkeypatch):
    SUITE.extreme_weights_case(monkeypatch, temperature, top_p, rng_offset=20, far_below=True)


@pytest.mark.parametrize("top_p", [0.5, 0.25, 0.75])
@pytest.mark.parametrize("vocab", [4096, 151936])
def test_session18_early_scan_on_rows_of_equal_logits(vocab, top_p, monkeypatch):
    """Every logit of a row equal (one bin holding the whole mass), two equal halves, alternate logits equal."""
    SUITE.equal_logits_case(monkeypatch, vocab, top_p)


@pytest.mark.parametrize("spread", [0.0, 2e-6, 3e-4])
@pytest.mark.parametrize("count", [1, 5, 40, 200, 256, 257])
@pytest.mark.parametrize("vocab", [151936, 2048 * 5 + 3])
def test_session18_early_scan_with_the_threshold_inside_a_crowded_sub_bin(vocab, count, spread, monkeypatch):
    """Most of the kept mass in `count` logits of one boundary bin at random places (their segments and chunks, the
    row's partial last chunk included), equal (spread 0: one sub-bin, every one of them kept), within one sub-bin of
    each other (2e-6 nats: the threshold among them, the quantile's segment holding some of the sub-bin's kept
    candidates) or over a few sub-bins (3e-4); 257 of them: the sorted threshold (draw_row_cells). Three steps of one
    state at top-p 0.5, 0.8 and 0.97."""
    rows = 4
    rng = np.random.default_rng(vocab % 89 + count + int(spread * 1e7))
    steps = []
    for step in range(3):
        z = (rng.standard_normal((rows, vocab)) - 30.0).astype(np.float32)  # weight 0
        for r in range(rows):
            z[r, rng.integers(0, vocab, 10)] = (rng.standard_normal(10) - 4.0).astype(np.float32)
            at = rng.choice(vocab, size=count, replace=False)
            z[r, at] = (-1.5 - rng.random(count) * spread).astype(np.float32)
            z[r, rng.integers(0, vocab)] = 0.0  # the maximum
        steps.append(torch.from_numpy(z).cuda())
    for top_p in (0.5, 0.8, 0.97):
        runs = SUITE.runs(monkeypatch, ReSETConfig.fixed(1.0, top_p=top_p), rows, vocab, steps,
                          torch.arange(rows, device="cuda"), seed=14,
                          combos=("off", "early", "early_no_picks", "early_no_owner", "early_no_vec", "early_g345"))
        SUITE.assert_same(runs)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("vocab", [151936, 2048 * 13 + 5, 2048 * 4 + 700])
@pytest.mark.parametrize("top_p", [0.9, 1.0])
def test_session18_early_scan_with_the_quantile_in_the_partial_last_chunk(vocab, top_p, dtype, monkeypatch):
    """The row's mass in its last, partial chunk (not in the 16-byte layout: the owner warp's scan of that chunk in
    pieces of 128 logits): the same tokens, and they land there."""
    SUITE.partial_last_chunk_case(monkeypatch, vocab, top_p, dtype, rng_seed=vocab % 97 + int(top_p * 10) + 20,
                                  token_combo="early", landed=0.8)


@pytest.mark.parametrize("vocab", [192 * 2048, 192 * 2048 + 1, 256 * 2048 + 4100])
def test_session18_early_scan_at_and_past_the_cells_row_limit(vocab, monkeypatch):
    """192 chunks (the cells' limit), 193 and more than 256 (no cells: the switch does not apply)."""
    SUITE.long_rows_case(monkeypatch, vocab, rng_seed=vocab % 83 + 3,
                         combos=("off", "early", "early_g345", "early_g16", "early_no_vec"))


@pytest.mark.parametrize("rows", [1, 8, 64])
@pytest.mark.parametrize("captured,eager", [("early", "off"), ("off", "early")])
def test_session18_early_scan_in_a_cuda_graph_replay_like_eager_steps(rows, captured, eager, monkeypatch):
    SUITE.graph_case(monkeypatch, rows, 200 + rows, captured=captured, eager=eager)


@pytest.mark.parametrize("rows", [1, 3, 64])
def test_session18_early_scan_alternating_with_the_default_kernels(rows, monkeypatch):
    """Steps with the switch between steps of the default kernels on one state (the sample pass resets the candidate
    count and the top-p histogram for the next step either way): the same bits as every step without it."""
    vocab = 151936
    rng = np.random.default_rng(rows + 200)
    logits = [torch.from_numpy((rng.standard_normal((rows, vocab)) * 3).astype(np.float32)).cuda() for _ in range(8)]
    switched = ["1", "0", "1", "1", "0", "1", "0", "0"]
    assert_switched_steps_like(monkeypatch, EARLY, CONFIGS["reset_top_p"], rows, vocab, logits, switched, seed=23)
