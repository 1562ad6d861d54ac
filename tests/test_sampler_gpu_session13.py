"""Session 13's switches of the CUDA decode step's kernels path (docs/sampler.md, CUDA details), read from the
environment at every call (=1 on, =0 off, unset: the default), meant to change only when the loads of the logits
and of the row combine's parts are issued, never a value:
  RESET_NATIVE_SAMPLER_PHASED_LOADS  the grouped passes (several chunks per block) issue the next chunk's loads only
                                     once the current chunk has arrived (load_next_chunk; on by default);
  RESET_NATIVE_SAMPLER_COMBINE_LOADS the stats pass's row combine loads a lane's cached chunk parts before noting
                                     the first (warp_combine_parts; on by default since session 14).
Each alone, all, the defaults, all with session 9's to 11's switches forced off, with SAMPLE_PICKS either way and
with groupings that give every pass several chunks per block (so that the phased loop runs at B = 1 and 3 too) must
give the same tokens, temperatures, entropies, errors and state bits as none: rejected rows, ties, -inf runs, top-k,
bf16/fp16 (aligned and unaligned rows), strided views, counted / sorted / overfull boundary bins (the numpy model's
tokens), extreme weights, B = 1, 3, 8, 64, rows of 100 and of more than 256 chunks (the combine's other register
forms), graph replays. (STAGED_LOADS and DRAW_LOADS, measured and removed, were tested here too.)"""
import pytest

torch = pytest.importorskip("torch")

from sampler_switch_suite import BOUNDARY_CASES, CONFIGS, GROUPINGS, SwitchSuite  # noqa: E402
from test_sampler_gpu_session11 import SWITCHES as SESSION11  # noqa: E402
from test_sampler_gpu_switches import SWITCHES as SESSION9  # noqa: E402

pytestmark = pytest.mark.gpu
SWITCHES = ("RESET_NATIVE_SAMPLER_PHASED_LOADS", "RESET_NATIVE_SAMPLER_COMBINE_LOADS")
EARLIER = SESSION9 + ("RESET_NATIVE_SAMPLER_LEAN_DRAW",) + SESSION11
ALL = {name: "1" for name in SWITCHES}
OFF = {name: "0" for name in SWITCHES}
GROUPED = {"RESET_NATIVE_SAMPLER_STATS_CHUNKS": "4", "RESET_NATIVE_SAMPLER_BIN_CHUNKS": "3",
           "RESET_NATIVE_SAMPLER_SAMPLE_CHUNKS": "5"}
# combo -> {variable: value}; variables not named are unset (their defaults). "off" is the reference.
COMBOS = {"off": OFF, "default": {}, **{name.split("SAMPLER_")[1].lower(): {**OFF, name: "1"} for name in SWITCHES},
          "all": ALL, "all_grouped": {**ALL, **GROUPED}, "off_grouped": {**OFF, **GROUPED},
          "phased_grouped": {**OFF, SWITCHES[0]: "1", **GROUPED},
          "all_earlier_off": {**ALL, **{n: "0" for n in EARLIER}},
          "all_earlier_off_grouped": {**ALL, **GROUPED, **{n: "0" for n in EARLIER}},
          "all_picks": {**ALL, "RESET_NATIVE_SAMPLER_SAMPLE_PICKS": "1"},
          "all_no_picks": {**ALL, "RESET_NATIVE_SAMPLER_SAMPLE_PICKS": "0"}}
SUITE = SwitchSuite(SWITCHES + EARLIER + GROUPINGS, COMBOS, reference="off")


@pytest.mark.parametrize("mode", list(CONFIGS))
@pytest.mark.parametrize("rows,vocab,dtype", [(1, 151936, "float32"), (3, 151936, "float32"), (8, 151936, "float32"),
                                              (64, 151936, "float32"), (3, 6151, "bfloat16"),
                                              (3, 2048 * 5 + 8, "bfloat16"), (5, 2048 * 9 + 1, "float16"),
                                              (1, 151936, "bfloat16"), (2, 300, "float32"),
                                              (2, 2048 * 100 + 3, "float32")])
def test_session13_switches_do_not_change_the_step(rows, vocab, dtype, mode, monkeypatch):
    SUITE.steps_case(monkeypatch, rows, vocab, dtype, mode, rng_seed=rows * 43 + vocab + len(mode) + len(dtype))


@pytest.mark.parametrize("pad", [8, 1])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_session13_switches_on_strided_views(pad, dtype, monkeypatch):
    """Logits as views of a wider buffer: a row stride of 16-byte multiples (the 16-byte loads apply) and an odd one
    (they do not)."""
    SUITE.strided_views_case(monkeypatch, pad, dtype, chunks=5, rng_seed=pad + len(dtype))


@pytest.mark.parametrize("case", BOUNDARY_CASES)
def test_session13_switches_on_counted_and_sorted_boundary_bins(case, monkeypatch):
    """The counted and the sorted threshold: the same bits, and with all of them on the numpy model's tokens."""
    SUITE.boundary_bins_case(monkeypatch, case, rng_offset=13, seed=27, token_combo="all_grouped")


@pytest.mark.parametrize("vocab", [6151, 151936])
def test_session13_switches_on_overfull_boundary_bins(vocab, monkeypatch):
    SUITE.overfull_case(monkeypatch, vocab, 0.9)


@pytest.mark.parametrize("temperature,top_p", [(0.05, 0.95), (4.0, 0.99)])
def test_session13_switches_with_extreme_weights(temperature, top_p, monkeypatch):
    SUITE.extreme_weights_case(monkeypatch, temperature, top_p, rng_offset=4, far_below=True)


def test_session13_switches_on_rows_of_more_than_256_chunks(monkeypatch):
    SUITE.long_rows_case(monkeypatch, 256 * 2048 + 4100, rng_seed=7,
                         combos=("off", "default", "all", "all_grouped"))


@pytest.mark.parametrize("rows", [1, 64])
def test_session13_switches_in_a_cuda_graph_replay_like_eager_steps(rows, monkeypatch):
    """A graph captured with every session 13 switch on replays like eager steps with them off."""
    SUITE.graph_case(monkeypatch, rows, 130 + rows, captured="all", eager="off")
