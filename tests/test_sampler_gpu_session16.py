"""Session 16's switches of the CUDA decode step's kernels path (docs/sampler.md, CUDA details), read from the
environment at every call (=1 on, =0 off, unset: the default), meant to change only which warp does what and when,
never a value:
  RESET_NATIVE_SAMPLER_PRE_WARP   the stats pass's last block loads the row's prepared slot with warp 1 while warp 0
                                  combines the chunks' parts (instead of warp 0 before its combine);
  RESET_NATIVE_SAMPLER_WARP_DRAW  the draw's chunk scan, segment and token by warp 0 alone (with the cells; the block
                                  scans the chunk where the cells' segments do not apply);
  RESET_NATIVE_SAMPLER_PICK_LEAN  the top-p boundary bin's pick without the block scan's last barrier and with integer
                                  compares against ceil(target).
Each alone, all, the defaults, and all with the switches and groupings around them (which block prepares the slot:
the extra block, chunk 0's, the grouped pass's first or last part; the batched or plain row combine; the sample or
the bins pass picking the bin; the counted threshold through sub-bins or by rank, the sorted one, the exact fallback;
16-byte or full loads; the cells off; chunks per block that leave a row's last blocks one chunk short) must
give the same tokens, temperatures, entropies, errors and state bits as all three off: rejected rows, ties, -inf
runs, top-k, no top-p (no boundary bin), bf16/fp16 (aligned and unaligned rows), strided views, counted / sorted /
overfull boundary bins (the numpy model's tokens), extreme weights, whole rows of equal logits (an integer target),
B = 1, 3, 8, 9, 64, rows of 192 chunks (the cells' limit: six chunks per lane of the warp's scan) and past it, graph
replays."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from reset_native.sampler import ReSETConfig  # noqa: E402
from sampler_switch_suite import BOUNDARY_CASES, CONFIGS, SwitchSuite  # noqa: E402

pytestmark = pytest.mark.gpu
PRE, WDRAW, PICK = (f"RESET_NATIVE_SAMPLER_{n}" for n in ("PRE_WARP", "WARP_DRAW", "PICK_LEAN"))
OTHERS = tuple(f"RESET_NATIVE_SAMPLER_{n}" for n in (
    "CELL_MASSES", "SAMPLE_PICKS", "LEAN_DRAW", "SUB_BINS", "VEC_LOADS", "COMBINE_LOADS",
    "PREP_FIRST", "PREP_BLOCK", "SAMPLE_OCC6"))
CELLS, PICKS, LEAN_DRAW, SUB_BINS, VEC, COMBINE, PREP_FIRST, PREP_BLOCK, OCC6 = OTHERS
GROUPINGS = tuple(f"RESET_NATIVE_SAMPLER_{v}_CHUNKS" for v in ("STATS", "BIN", "SAMPLE"))


def grouping(stats, bins, sample):
    return dict(zip(GROUPINGS, (str(stats), str(bins), str(sample))))


# combo -> {variable: value}; variables not named are unset (their defaults). "off" is the reference.
OFF = {PRE: "0", WDRAW: "0", PICK: "0"}
ALL = {PRE: "1", WDRAW: "1", PICK: "1"}
COMBOS = {"off": OFF, "default": {}, "all": ALL,
          "pre": {**OFF, PRE: "1"}, "wdraw": {**OFF, WDRAW: "1"}, "pick": {**OFF, PICK: "1"},
          "all_g345": {**ALL, **grouping(3, 4, 5)}, "all_g122": {**ALL, **grouping(1, 2, 2)},
          "all_prep_chunk0": {**ALL, PREP_BLOCK: "0"},
          "all_prep_last_g345": {**ALL, PREP_FIRST: "0", **grouping(3, 4, 5)},
          "all_plain_combine": {**ALL, COMBINE: "0"},
          "all_picks_g222": {**ALL, PICKS: "1", **grouping(2, 2, 2)}, "all_no_picks": {**ALL, PICKS: "0"},
          "all_draw_sub": {**ALL, LEAN_DRAW: "0"}, "all_draw_rank": {**ALL, LEAN_DRAW: "0", SUB_BINS: "0"},
          "all_no_vec": {**ALL, VEC: "0"},
          "all_no_cells": {**ALL, CELLS: "0"},
          "all_occ6_g345": {**ALL, OCC6: "1", **grouping(3, 4, 5)}}
SUITE = SwitchSuite((PRE, WDRAW, PICK) + OTHERS + GROUPINGS, COMBOS, reference="off")


@pytest.mark.parametrize("mode", list(CONFIGS))
@pytest.mark.parametrize("rows,vocab,dtype", [(1, 151936, "float32"), (3, 151936, "float32"), (8, 151936, "float32"),
                                              (9, 151936, "float32"), (64, 151936, "float32"),
                                              (3, 2048 * 13 + 5, "float32"), (3, 6151, "bfloat16"),
                                              (8, 151936, "bfloat16"), (5, 2048 * 9 + 1, "float16"),
                                              (2, 300, "float32"), (2, 2048 * 191 + 7, "float32")])
def test_session16_switches_do_not_change_the_step(rows, vocab, dtype, mode, monkeypatch):
    SUITE.steps_case(monkeypatch, rows, vocab, dtype, mode, rng_seed=rows * 47 + vocab + len(mode) + len(dtype))


@pytest.mark.parametrize("pad", [8, 1])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_session16_switches_on_strided_views(pad, dtype, monkeypatch):
    """A row stride of 16-byte multiples (the cells' segments: the warp draws) and an odd one (the warp finds the
    chunk, the block scans it)."""
    SUITE.strided_views_case(monkeypatch, pad, dtype, chunks=11, rng_seed=pad + len(dtype) + 16)


@pytest.mark.parametrize("case", BOUNDARY_CASES)
def test_session16_switches_on_counted_and_sorted_boundary_bins(case, monkeypatch):
    """The counted threshold (segments in shared memory: the warp's draw) and the sorted one (the chunks' extra
    masses: the block's): the same bits, and with all three the numpy model's tokens."""
    SUITE.boundary_bins_case(monkeypatch, case, rng_offset=16, seed=37, token_combo="all")


@pytest.mark.parametrize("vocab", [6151, 151936])
def test_session16_switches_on_overfull_boundary_bins(vocab, monkeypatch):
    SUITE.overfull_case(monkeypatch, vocab, 0.9)


@pytest.mark.parametrize("temperature,top_p", [(0.05, 0.95), (4.0, 0.99), (1.0, 1.0)])
def test_session16_switches_with_extreme_weights(temperature, top_p, monkeypatch):
    SUITE.extreme_weights_case(monkeypatch, temperature, top_p, rng_offset=16, far_below=True)


@pytest.mark.parametrize("top_p", [0.5, 0.25, 0.75])
@pytest.mark.parametrize("vocab", [4096, 151936])
def test_session16_switches_on_rows_of_equal_logits(vocab, top_p, monkeypatch):
    """Every logit of a row equal (one bin holding the whole mass, top_p x total an integer) or two equal halves:
    the pick's integer compare at an exact target, the draw's quantile in any chunk."""
    rows = 3
    z = np.zeros((rows, vocab), np.float32)
    z[1, vocab // 2:] = -0.5
    z[2, ::2] = 1.0
    logits = [torch.from_numpy(z).cuda(), torch.from_numpy(z[:, ::-1].copy()).cuda()]
    runs = SUITE.runs(monkeypatch, ReSETConfig.fixed(1.0, top_p=top_p), rows, vocab, logits,
                      torch.arange(rows, device="cuda"), seed=9)
    SUITE.assert_same(runs)


@pytest.mark.parametrize("vocab", [192 * 2048, 192 * 2048 + 1, 256 * 2048 + 4100])
def test_session16_switches_at_and_past_the_cells_row_limit(vocab, monkeypatch):
    """192 chunks (six per lane in the warp's scan), 193 and more than 256 (no cells: WARP_DRAW does not apply)."""
    SUITE.long_rows_case(monkeypatch, vocab, rng_seed=vocab % 89,
                         combos=("off", "all", "wdraw", "all_g345", "all_no_picks", "all_no_vec"))


@pytest.mark.parametrize("rows", [1, 8, 64])
@pytest.mark.parametrize("captured,eager", [("all", "off"), ("off", "all")])
def test_session16_switches_in_a_cuda_graph_replay_like_eager_steps(rows, captured, eager, monkeypatch):
    SUITE.graph_case(monkeypatch, rows, 160 + rows, captured=captured, eager=eager)
