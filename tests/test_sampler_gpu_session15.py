"""Session 15's switches of the CUDA decode step's kernels path (docs/sampler.md, CUDA details), read from the
environment at every call (=1 on, =0 off, unset: the default):
  RESET_NATIVE_SAMPLER_CELL_MASSES  (on by default) the sample pass publishes each warp's kept mass as two cells of 128
                                    logits (no block sum), and the draw goes from the quantile's chunk to one cell's
                                    128 logits by one warp (cuda/sampler/decode_step_cells.cuh; rows of at most 192
                                    chunks).
It must give the same tokens, temperatures, entropies, errors and state bits as the cells off, alone and with the
other switches and groupings that change what they touch (the sample pass's weights and candidates: LEAN, KEPT_SUM,
WARP_REDUX, VEC_LOADS, FULL_LOADS, SAMPLE_PICKS, PHASED_LOADS, SAMPLE_OCC6; the draw: LEAN_DRAW, SUB_BINS; chunks
per block): rejected rows, ties, -inf runs, top-k, bf16/fp16 (aligned: 16-bit cells; unaligned: the
whole-chunk scan), strided views, counted / sorted / overfull boundary bins (the numpy model's tokens), extreme
weights, B = 1, 3, 8, 9, 64, rows of 192 chunks (the cells' limit) and of more than 192 (they do not apply), graph
replays. (RESET_NATIVE_SAMPLER_PLAN_FLAG, _BINS_FLAG and _CELL_SCAN, measured and removed this session, and
session 14's _EARLY_WEIGHTS, removed with them, were tested here too.)"""
import pytest

torch = pytest.importorskip("torch")

from sampler_switch_suite import BOUNDARY_CASES, CONFIGS, GROUPINGS, STEP_SHAPES, SwitchSuite, grouping  # noqa: E402

pytestmark = pytest.mark.gpu
CELLS = "RESET_NATIVE_SAMPLER_CELL_MASSES"
OTHERS = tuple(f"RESET_NATIVE_SAMPLER_{n}" for n in (
    "LEAN", "KEPT_SUM", "WARP_REDUX", "VEC_LOADS", "FULL_LOADS", "SAMPLE_PICKS", "PHASED_LOADS",
    "SAMPLE_OCC6", "LEAN_DRAW", "SUB_BINS"))
LEAN, KEPT_SUM, REDUX, VEC, FULL, PICKS, PHASED, OCC6, LEAN_DRAW, SUB_BINS = OTHERS


# combo -> {variable: value}; variables not named are unset (their defaults). "off" is the reference.
ON = {CELLS: "1"}
COMBOS = {"off": {CELLS: "0"}, "default": {}, "cells": ON,
          "cells_g345": {**ON, **grouping(3, 4, 5)}, "cells_g122": {**ON, **grouping(1, 2, 2)},
          "cells_g734": {**ON, **grouping(7, 3, 4)},
          "cells_no_picks": {**ON, PICKS: "0"},
          "cells_picks": {**ON, PICKS: "1", **grouping(2, 2, 2)},
          "cells_occ6_g345": {**ON, OCC6: "1", **grouping(3, 4, 5)},
          "cells_unphased": {**ON, PHASED: "0", **grouping(3, 4, 5)},
          "cells_plain_sums": {**ON, KEPT_SUM: "0", REDUX: "0"},
          "cells_not_lean": {**ON, LEAN: "0", **grouping(2, 2, 2)},
          "cells_no_vec": {**ON, VEC: "0"}, "cells_checked": {**ON, VEC: "0", FULL: "0", **grouping(3, 4, 5)},
          "cells_draw_rank": {**ON, LEAN_DRAW: "0", SUB_BINS: "0"}, "cells_draw_sub": {**ON, LEAN_DRAW: "0"}}
SUITE = SwitchSuite((CELLS,) + OTHERS + GROUPINGS, COMBOS, reference="off")


@pytest.mark.parametrize("mode", list(CONFIGS))
@pytest.mark.parametrize("rows,vocab,dtype", STEP_SHAPES)
def test_session15_switches_do_not_change_the_step(rows, vocab, dtype, mode, monkeypatch):
    SUITE.steps_case(monkeypatch, rows, vocab, dtype, mode, rng_seed=rows * 43 + vocab + len(mode) + len(dtype))


@pytest.mark.parametrize("pad", [8, 1])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_session15_cells_on_strided_views(pad, dtype, monkeypatch):
    """Logits as views of a wider buffer: a row stride of 16-byte multiples (the 16-byte loads and the cells' segments
    apply) and an odd one (the whole-chunk scan)."""
    SUITE.strided_views_case(monkeypatch, pad, dtype, chunks=11, rng_seed=pad + len(dtype) + 15)


@pytest.mark.parametrize("case", BOUNDARY_CASES)
def test_session15_cells_on_counted_and_sorted_boundary_bins(case, monkeypatch):
    """The counted threshold (segments in shared memory) and the sorted one (the chunks' extra masses): the same bits,
    and with the cells the numpy model's tokens."""
    SUITE.boundary_bins_case(monkeypatch, case, rng_offset=15, seed=31, token_combo="cells")


@pytest.mark.parametrize("vocab", [6151, 151936])
def test_session15_cells_on_overfull_boundary_bins(vocab, monkeypatch):
    """More than 2048 boundary-bin logits: the exact fallback's kept masses go to the chunks' extra masses."""
    SUITE.overfull_case(monkeypatch, vocab, 0.9)


@pytest.mark.parametrize("temperature,top_p", [(0.05, 0.95), (4.0, 0.99), (1.0, 1.0)])
def test_session15_cells_with_extreme_weights(temperature, top_p, monkeypatch):
    SUITE.extreme_weights_case(monkeypatch, temperature, top_p, rng_offset=15, far_below=True)


@pytest.mark.parametrize("vocab", [192 * 2048, 192 * 2048 + 1, 256 * 2048 + 4100])
def test_session15_cells_at_and_past_their_row_limit(vocab, monkeypatch):
    """192 chunks (the cells' limit: they apply), 193 and more than 256 (they do not)."""
    SUITE.long_rows_case(monkeypatch, vocab, rng_seed=vocab % 97,
                         combos=("off", "cells", "cells_g345", "cells_no_picks", "cells_no_vec"))


@pytest.mark.parametrize("rows", [1, 8, 64])
@pytest.mark.parametrize("captured,eager", [("cells", "off"), ("off", "cells")])
def test_session15_cells_in_a_cuda_graph_replay_like_eager_steps(rows, captured, eager, monkeypatch):
    """A graph captured with the cells replays like eager steps without them, and the other way round."""
    SUITE.graph_case(monkeypatch, rows, 150 + rows, captured=captured, eager=eager)
