"""Session 14's switches of the CUDA decode step's kernels path (docs/sampler.md, CUDA details), read from the
environment at every call (=1 on, =0 off, unset: the default), meant to change only which block or thread does what
and when, never a value:
  RESET_NATIVE_SAMPLER_PREP_FIRST    the grouped stats pass's part 0 prepares the row's slot instead of its last part
                                     (on by default);
  RESET_NATIVE_SAMPLER_SAMPLE_OCC6   the grouped sample pass built for 6 resident blocks per SM (40 registers);
and session 13's RESET_NATIVE_SAMPLER_COMBINE_LOADS, on by default since this session. Each alone, all, the defaults,
and all with other switches and groupings (stats / bins / sample chunks per block that leave a row's last blocks one
chunk short, a block per chunk in stats with grouped bins and sample passes, several chunks per block at B = 1 and
3) must give the same tokens, temperatures, entropies, errors and state bits as all of them off: rejected rows, ties,
-inf runs, top-k, bf16/fp16 (aligned and unaligned rows), strided views, counted / sorted / overfull boundary bins
(the numpy model's tokens), extreme weights, B = 1, 3, 8, 9, 64, rows of more than 256 chunks, graph replays.
(RESET_NATIVE_SAMPLER_RECENT_FIRST, measured and removed this session, and EARLY_WEIGHTS, removed in session
15, were tested here too.)"""
import pytest

torch = pytest.importorskip("torch")

from sampler_switch_suite import BOUNDARY_CASES, CONFIGS, GROUPINGS, SwitchSuite, grouping  # noqa: E402

pytestmark = pytest.mark.gpu
PREP = "RESET_NATIVE_SAMPLER_PREP_FIRST"
OCC6 = "RESET_NATIVE_SAMPLER_SAMPLE_OCC6"
COMBINE = "RESET_NATIVE_SAMPLER_COMBINE_LOADS"
PHASED = "RESET_NATIVE_SAMPLER_PHASED_LOADS"
PICKS = "RESET_NATIVE_SAMPLER_SAMPLE_PICKS"
VEC = "RESET_NATIVE_SAMPLER_VEC_LOADS"


# combo -> {variable: value}; variables not named are unset (their defaults). "off" is the reference.
OFF = {PREP: "0", OCC6: "0", COMBINE: "0"}
ALL = {PREP: "1", OCC6: "1", COMBINE: "1"}
COMBOS = {"off": OFF, "default": {}, "all": ALL,
          "prep": {**OFF, PREP: "1"}, "prep_g345": {**OFF, PREP: "1", **grouping(3, 4, 5)},
          "combine": {**OFF, COMBINE: "1"},
          "occ6": {**OFF, OCC6: "1"}, "occ6_g345": {**OFF, OCC6: "1", **grouping(3, 4, 5)},
          "picks": {**OFF, PICKS: "1"}, "no_picks": {**OFF, PICKS: "0"},
          "all_g345": {**ALL, **grouping(3, 4, 5)}, "all_g263": {**ALL, **grouping(2, 6, 3)},
          "all_g122": {**ALL, **grouping(1, 2, 2)}, "all_g734": {**ALL, **grouping(7, 3, 4)},
          "all_unphased": {**ALL, PHASED: "0", **grouping(3, 4, 5)},
          "all_no_picks": {**ALL, PICKS: "0", **grouping(2, 2, 2)},
          "all_no_vec": {**ALL, VEC: "0", **grouping(3, 4, 5)}}
SUITE = SwitchSuite((PREP, OCC6, COMBINE, PHASED, PICKS, VEC) + GROUPINGS, COMBOS, reference="off")


@pytest.mark.parametrize("mode", list(CONFIGS))
@pytest.mark.parametrize("rows,vocab,dtype", [(1, 151936, "float32"), (3, 151936, "float32"), (8, 151936, "float32"),
                                              (9, 151936, "float32"), (64, 151936, "float32"),
                                              (3, 2048 * 13 + 5, "float32"), (3, 6151, "bfloat16"),
                                              (5, 2048 * 9 + 1, "float16"), (2, 300, "float32")])
def test_session14_switches_do_not_change_the_step(rows, vocab, dtype, mode, monkeypatch):
    SUITE.steps_case(monkeypatch, rows, vocab, dtype, mode, rng_seed=rows * 41 + vocab + len(mode) + len(dtype))


@pytest.mark.parametrize("pad", [8, 1])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_session14_switches_on_strided_views(pad, dtype, monkeypatch):
    """Logits as views of a wider buffer: a row stride of 16-byte multiples (the 16-byte loads apply) and an odd one
    (they do not)."""
    SUITE.strided_views_case(monkeypatch, pad, dtype, chunks=11, rng_seed=pad + len(dtype) + 14)


@pytest.mark.parametrize("case", BOUNDARY_CASES)
def test_session14_switches_on_counted_and_sorted_boundary_bins(case, monkeypatch):
    """The counted and the sorted threshold: the same bits, and with all of them on the numpy model's tokens."""
    SUITE.boundary_bins_case(monkeypatch, case, rng_offset=14, seed=29, token_combo="all_g345")


@pytest.mark.parametrize("vocab", [6151, 151936])
def test_session14_switches_on_overfull_boundary_bins(vocab, monkeypatch):
    SUITE.overfull_case(monkeypatch, vocab, 0.9)


@pytest.mark.parametrize("temperature,top_p", [(0.05, 0.95), (4.0, 0.99)])
def test_session14_switches_with_extreme_weights(temperature, top_p, monkeypatch):
    SUITE.extreme_weights_case(monkeypatch, temperature, top_p, rng_offset=5, far_below=True)


def test_session14_switches_on_rows_of_more_than_256_chunks(monkeypatch):
    SUITE.long_rows_case(monkeypatch, 256 * 2048 + 4100, rng_seed=9,
                         combos=("off", "default", "all", "occ6", "all_g345", "all_g263", "all_g734"))


@pytest.mark.parametrize("rows", [1, 8, 64])
def test_session14_switches_in_a_cuda_graph_replay_like_eager_steps(rows, monkeypatch):
    """A graph captured with every session 14 switch on replays like eager steps with them off."""
    SUITE.graph_case(monkeypatch, rows, 140 + rows, captured="all", eager="off")
