"""Session 17's switch of the CUDA decode step's kernels path (docs/sampler.md, CUDA details), read from the
environment at every call (=1 on, =0 off, unset: the default), meant to change only which warp computes what, never a
value:
  RESET_NATIVE_SAMPLER_OWNER_DRAW    (on by default where rows x chunks > SMs) in the draw with the cells, the warp
                                     of the chunk that holds the quantile finds its segment (a 16-lane scan) and the
                                     token, with no barrier after the chunks' scan; the row's partial last chunk by
                                     that warp in pieces of 128 logits (draw_in_chunk_warp).
Off, on, and on with the switches and groupings around it (the counted or ranked or sorted thresholds, 16-byte loads or
not, the cells or not, the grouped passes) must give the same tokens, temperatures, entropies, errors and state bits as
off: the shapes of the earlier switch files, strided views, counted / sorted / overfull boundary bins (the numpy model's
tokens), extreme weights, rows of equal logits, the quantile in a row's partial last chunk, rows of 192 chunks and past
them, graph replays. (SEG_PREFETCH, WARP_STAR and DEFER_CANDS, measured and removed this session, were tested here
too.)"""
import pytest

torch = pytest.importorskip("torch")

from sampler_switch_suite import BOUNDARY_CASES, CONFIGS, GROUPINGS, STEP_SHAPES, SwitchSuite, grouping  # noqa: E402

pytestmark = pytest.mark.gpu
OWNER = "RESET_NATIVE_SAMPLER_OWNER_DRAW"
OTHERS = tuple(f"RESET_NATIVE_SAMPLER_{n}" for n in (
    "CELL_MASSES", "SAMPLE_PICKS", "LEAN_DRAW", "SUB_BINS", "VEC_LOADS", "PRE_WARP"))
CELLS, PICKS, LEAN_DRAW, SUB_BINS, VEC, PRE = OTHERS


# combo -> {variable: value}; variables not named are unset (their defaults). "off" is the reference.
OFF = {OWNER: "0"}
ON = {OWNER: "1"}
COMBOS = {"off": OFF, "default": {}, "owner": ON,
          "owner_g345": {**ON, **grouping(3, 4, 5)}, "owner_g122": {**ON, **grouping(1, 2, 2)},
          "owner_g16": {**ON, **grouping(1, 1, 16)},
          "owner_no_picks": {**ON, PICKS: "0"}, "owner_draw_rank": {**ON, LEAN_DRAW: "0", SUB_BINS: "0"},
          "owner_no_vec": {**ON, VEC: "0"}, "owner_no_cells": {**ON, CELLS: "0"},
          "owner_no_pre": {**ON, PRE: "0"}}
SUITE = SwitchSuite((OWNER,) + OTHERS + GROUPINGS, COMBOS, reference="off")


@pytest.mark.parametrize("mode", list(CONFIGS))
@pytest.mark.parametrize("rows,vocab,dtype", STEP_SHAPES)
def test_session17_switches_do_not_change_the_step(rows, vocab, dtype, mode, monkeypatch):
    SUITE.steps_case(monkeypatch, rows, vocab, dtype, mode, rng_seed=rows * 53 + vocab + len(mode) + len(dtype))


@pytest.mark.parametrize("pad", [8, 1])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_session17_switches_on_strided_views(pad, dtype, monkeypatch):
    """A row stride of 16-byte multiples (the 16-byte loads) and an odd one."""
    SUITE.strided_views_case(monkeypatch, pad, dtype, chunks=11, rng_seed=pad + len(dtype) + 17)


@pytest.mark.parametrize("case", BOUNDARY_CASES)
def test_session17_switches_on_counted_and_sorted_boundary_bins(case, monkeypatch):
    """The counted threshold and the sorted one: the same bits, and with the switch the numpy model's tokens."""
    SUITE.boundary_bins_case(monkeypatch, case, rng_offset=17, seed=41, token_combo="owner")


@pytest.mark.parametrize("vocab", [6151, 151936])
def test_session17_switches_on_overfull_boundary_bins(vocab, monkeypatch):
    SUITE.overfull_case(monkeypatch, vocab, 0.9)


@pytest.mark.parametrize("temperature,top_p", [(0.05, 0.95), (4.0, 0.99), (1.0, 1.0)])
def test_session17_switches_with_extreme_weights(temperature, top_p, monkeypatch):
    SUITE.extreme_weights_case(monkeypatch, temperature, top_p, rng_offset=17, far_below=True)


@pytest.mark.parametrize("top_p", [0.5, 0.25, 0.75])
@pytest.mark.parametrize("vocab", [4096, 151936])
def test_session17_switches_on_rows_of_equal_logits(vocab, top_p, monkeypatch):
    """Every logit of a row equal (one bin holding the whole mass), two equal halves, alternate logits equal."""
    SUITE.equal_logits_case(monkeypatch, vocab, top_p)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("vocab", [151936, 2048 * 13 + 5, 2048 * 4 + 700])
@pytest.mark.parametrize("top_p", [0.9, 1.0])
def test_session17_switches_with_the_quantile_in_the_partial_last_chunk(vocab, top_p, dtype, monkeypatch):
    """The row's mass in its last, partial chunk (not in the 16-byte layout): OWNER_DRAW's warp scans that chunk in
    pieces of 128 logits; the same tokens as the block's scan, and the tokens do land there."""
    SUITE.partial_last_chunk_case(monkeypatch, vocab, top_p, dtype, rng_seed=vocab % 97 + int(top_p * 10),
                                  token_combo="owner", landed=0.9)


@pytest.mark.parametrize("vocab", [192 * 2048, 192 * 2048 + 1, 256 * 2048 + 4100])
def test_session17_switches_at_and_past_the_cells_row_limit(vocab, monkeypatch):
    """192 chunks (the cells' limit), 193 and more than 256 (no cells: the switch does not apply)."""
    SUITE.long_rows_case(monkeypatch, vocab, rng_seed=vocab % 83,
                         combos=("off", "owner", "owner_g345", "owner_g16", "owner_no_vec"))


@pytest.mark.parametrize("rows", [1, 8, 64])
@pytest.mark.parametrize("captured,eager", [("owner", "off"), ("off", "owner")])
def test_session17_switches_in_a_cuda_graph_replay_like_eager_steps(rows, captured, eager, monkeypatch):
    SUITE.graph_case(monkeypatch, rows, 170 + rows, captured=captured, eager=eager)
