"""Session 16's switch of the CUDA decode step's kernels path (docs/sampler.md, CUDA details), read from the
environment at every call (=1 on, =0 off, unset: the default), meant to change only which warp loads what and when,
never a value:
  RESET_NATIVE_SAMPLER_PRE_WARP     (on by default) the stats pass's last block loads the row's prepared slot with
                                    warp 1 while warp 0 combines the chunks' parts (instead of warp 0 before its
                                    combine).
On, the default, and on with the switches and groupings around them (which block prepares the slot: the
extra block, chunk 0's, the grouped pass's first or last part; the batched or plain row combine; chunks per block that
leave a row's last blocks one chunk short; the later passes' forms: the sample or the bins pass picking the bin, the
draw's thresholds, 16-byte loads, the cells) must give the same tokens, temperatures, entropies, errors and state bits
as off: rejected rows, ties, -inf runs, top-k, no top-p, bf16/fp16 (aligned and unaligned rows), strided views,
counted / sorted / overfull boundary bins (the numpy model's tokens), extreme weights, rows of equal logits, B = 1, 3,
8, 9, 64, rows of 192 chunks and past them, graph replays, and long runs with paragraph boundaries (windows of 1, 13
and 32 entries, partly and wholly filled, the ring wrapped). (RESET_NATIVE_SAMPLER_WARP_DRAW, _PICK_LEAN and
_PREP_STAGED, measured and removed this session, were tested here too.)"""
import pytest

torch = pytest.importorskip("torch")

from reset_native.sampler import ReSETConfig, ReSETState, decode_step  # noqa: E402
from sampler_switch_suite import BOUNDARY_CASES, CONFIGS, GROUPINGS, STEP_SHAPES, SwitchSuite, grouping  # noqa: E402

pytestmark = pytest.mark.gpu
PRE = "RESET_NATIVE_SAMPLER_PRE_WARP"
OTHERS = tuple(f"RESET_NATIVE_SAMPLER_{n}" for n in (
    "CELL_MASSES", "SAMPLE_PICKS", "LEAN_DRAW", "SUB_BINS", "VEC_LOADS", "COMBINE_LOADS",
    "PREP_FIRST", "PREP_BLOCK", "SAMPLE_OCC6"))
CELLS, PICKS, LEAN_DRAW, SUB_BINS, VEC, COMBINE, PREP_FIRST, PREP_BLOCK, OCC6 = OTHERS


# combo -> {variable: value}; variables not named are unset (their defaults). "off" is the reference.
OFF = {PRE: "0"}
ON = {PRE: "1"}
COMBOS = {"off": OFF, "default": {}, "pre": ON,
          "pre_g345": {**ON, **grouping(3, 4, 5)}, "pre_g122": {**ON, **grouping(1, 2, 2)},
          "pre_prep_chunk0": {**ON, PREP_BLOCK: "0"},
          "pre_prep_last_g345": {**ON, PREP_FIRST: "0", **grouping(3, 4, 5)},
          "pre_plain_combine": {**ON, COMBINE: "0"},
          "pre_plain_combine_g345": {**ON, COMBINE: "0", **grouping(3, 4, 5)},
          "pre_no_picks": {**ON, PICKS: "0"}, "pre_draw_rank": {**ON, LEAN_DRAW: "0", SUB_BINS: "0"},
          "pre_no_vec": {**ON, VEC: "0"}, "pre_no_cells": {**ON, CELLS: "0"},
          "pre_occ6_g345": {**ON, OCC6: "1", **grouping(3, 4, 5)}}
SUITE = SwitchSuite((PRE,) + OTHERS + GROUPINGS, COMBOS, reference="off")


@pytest.mark.parametrize("mode", list(CONFIGS))
@pytest.mark.parametrize("rows,vocab,dtype", STEP_SHAPES)
def test_session16_switches_do_not_change_the_step(rows, vocab, dtype, mode, monkeypatch):
    SUITE.steps_case(monkeypatch, rows, vocab, dtype, mode, rng_seed=rows * 47 + vocab + len(mode) + len(dtype))


@pytest.mark.parametrize("pad", [8, 1])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_session16_switches_on_strided_views(pad, dtype, monkeypatch):
    """A row stride of 16-byte multiples (the 16-byte loads) and an odd one."""
    SUITE.strided_views_case(monkeypatch, pad, dtype, chunks=11, rng_seed=pad + len(dtype) + 16)


@pytest.mark.parametrize("case", BOUNDARY_CASES)
def test_session16_switches_on_counted_and_sorted_boundary_bins(case, monkeypatch):
    """The counted threshold and the sorted one: the same bits, and with the switch the numpy model's tokens."""
    SUITE.boundary_bins_case(monkeypatch, case, rng_offset=16, seed=37, token_combo="pre")


@pytest.mark.parametrize("vocab", [6151, 151936])
def test_session16_switches_on_overfull_boundary_bins(vocab, monkeypatch):
    SUITE.overfull_case(monkeypatch, vocab, 0.9)


@pytest.mark.parametrize("temperature,top_p", [(0.05, 0.95), (4.0, 0.99), (1.0, 1.0)])
def test_session16_switches_with_extreme_weights(temperature, top_p, monkeypatch):
    SUITE.extreme_weights_case(monkeypatch, temperature, top_p, rng_offset=16, far_below=True)


@pytest.mark.parametrize("top_p", [0.5, 0.25, 0.75])
@pytest.mark.parametrize("vocab", [4096, 151936])
def test_session16_switches_on_rows_of_equal_logits(vocab, top_p, monkeypatch):
    """Every logit of a row equal (one bin holding the whole mass), two equal halves, alternate logits equal."""
    SUITE.equal_logits_case(monkeypatch, vocab, top_p)


@pytest.mark.parametrize("vocab", [192 * 2048, 192 * 2048 + 1, 256 * 2048 + 4100])
def test_session16_switches_at_and_past_the_cells_row_limit(vocab, monkeypatch):
    """192 chunks (the cells' limit), 193 and more than 256 (a lane's combine past its cached parts)."""
    SUITE.long_rows_case(monkeypatch, vocab, rng_seed=vocab % 89,
                         combos=("off", "pre", "pre_g345", "pre_plain_combine", "pre_prep_chunk0", "pre_no_vec"))


@pytest.mark.parametrize("rows", [1, 8, 64])
@pytest.mark.parametrize("captured,eager", [("pre", "off"), ("off", "pre")])
def test_session16_switches_in_a_cuda_graph_replay_like_eager_steps(rows, captured, eager, monkeypatch):
    SUITE.graph_case(monkeypatch, rows, 160 + rows, captured=captured, eager=eager)


def _paragraph_run(config, rows, vocab, logits, period, seed):
    """A step per logits tensor, feeding back the sampled tokens except every `period` steps a double newline in
    every other row (token 11: a paragraph boundary, the step count back to 0, so the step means come from the window
    again); outputs, final state and error text as the suite's runs."""
    state = ReSETState(config, rows, vocab, device="cuda", seed=seed)
    last = torch.full((rows,), -1, device="cuda")
    out = []
    for step, z in enumerate(logits):
        o = decode_step(state, z, last)
        out.append(torch.stack([o.tokens.double(), o.temperatures.double(), o.entropies.double()]))
        last = o.tokens.clone()
        if step % period == period - 1:
            last[::2] = 11
    state.check_errors()
    return torch.nan_to_num(torch.stack(out).cpu(), nan=-7.0), state.snapshot(), None


@pytest.mark.parametrize("window,period", [(32, 10), (32, 45), (13, 20), (1, 3)])
@pytest.mark.parametrize("rows,vocab", [(1, 151936), (9, 151936), (3, 6151)])
def test_session16_switches_over_paragraphs(rows, vocab, window, period, monkeypatch):
    """Long runs in which the step means come from the window (up to `window` entries, partial groups of eight,
    the ring wrapped): PRE_WARP gives the same bits as off, step after step."""
    config = ReSETConfig(t_low=0.4, tau0=2.0, t_high=1.1, window=window, newline_ids=(3, 7),
                         double_newline_ids=(11,), top_p=0.9)
    gen = torch.Generator(device="cuda").manual_seed(window * 7 + period + rows)
    scale = torch.rand(rows, 1, device="cuda", generator=gen) * 2.5 + 0.5
    logits = [torch.randn(rows, vocab, device="cuda", generator=gen) * scale for _ in range(40)]
    runs = {}
    for combo in ("off", "pre", "pre_g345", "pre_prep_chunk0"):
        SUITE.switch(monkeypatch, combo)
        runs[combo] = _paragraph_run(config, rows, vocab, logits, period, seed=window + period)
    SUITE.assert_same(runs)
    assert runs["off"][1]["ints"][:, 2].max() == window  # kWindowLen: the window filled
