"""Session 10's switch of the CUDA decode step's kernels path (docs/sampler.md, CUDA details), read from the
environment at every call (=1 on, =0 off, unset: the default, on), meant to change only how the work is done,
never a value:
  RESET_NATIVE_SAMPLER_LEAN_DRAW  the sample pass's last block: the counted threshold through sub-bins from the
                                  candidates in registers (threshold_by_sub_bins_own: no copy to shared memory,
                                  three barriers fewer) and the draw's weights in weight_at's lean form.
On (the default), off, on with each of session 9's switches that it meets (SUB_BINS, which it needs; SAMPLE_PICKS;
LEAN) forced on or off, and with the sample pass's earlier grouping (2 chunks per block at B = 64, 4 since session
10) must give the same tokens, temperatures, entropies, errors and state bits: rejected rows, ties, -inf runs,
top-k, bf16/fp16, rows mapped to other slots, counted / sorted / overfull boundary bins (the numpy model's tokens),
extreme weights, B = 1, 3, 8, 64, rows of more than 256 chunks, graph replays. (The session's other switches,
WARM_TAIL / WARM_BINS and HIST_SPLIT, were tested here too; measured slower, removed: bench/RESULTS-sampler11.md.)"""
import pytest

pytest.importorskip("torch")

from sampler_switch_suite import BOUNDARY_CASES, CONFIGS, SwitchSuite  # noqa: E402
from test_sampler_gpu_switches import SWITCHES as SESSION9  # noqa: E402

pytestmark = pytest.mark.gpu
ON = {"RESET_NATIVE_SAMPLER_LEAN_DRAW": "1"}
# combo -> {variable: value}; variables not named are unset (their defaults). "default" is the reference.
COMBOS = {"default": {}, "off": {"RESET_NATIVE_SAMPLER_LEAN_DRAW": "0"}, "on": ON,
          "off_sample2": {"RESET_NATIVE_SAMPLER_LEAN_DRAW": "0", "RESET_NATIVE_SAMPLER_SAMPLE_CHUNKS": "2"},
          "on_picks": {**ON, "RESET_NATIVE_SAMPLER_SAMPLE_PICKS": "1"},
          "on_no_picks": {**ON, "RESET_NATIVE_SAMPLER_SAMPLE_PICKS": "0"},
          "on_no_lean": {**ON, "RESET_NATIVE_SAMPLER_LEAN": "0"},
          "on_no_sub_bins": {**ON, "RESET_NATIVE_SAMPLER_SUB_BINS": "0"},
          "on_s9_off": {**ON, **{n: "0" for n in SESSION9}}}
SUITE = SwitchSuite(("RESET_NATIVE_SAMPLER_LEAN_DRAW", "RESET_NATIVE_SAMPLER_SAMPLE_CHUNKS") + SESSION9, COMBOS,
                    reference="default")


@pytest.mark.parametrize("mode", list(CONFIGS))
@pytest.mark.parametrize("rows,vocab,dtype", [(1, 151936, "float32"), (3, 151936, "float32"), (8, 151936, "float32"),
                                              (3, 6151, "bfloat16"), (64, 151936, "float32"),
                                              (5, 2048 * 9 + 1, "float16"), (1, 151936, "bfloat16"),
                                              (2, 300, "float32")])
def test_session10_switches_do_not_change_the_step(rows, vocab, dtype, mode, monkeypatch):
    SUITE.steps_case(monkeypatch, rows, vocab, dtype, mode, rng_seed=rows * 37 + vocab + len(mode) + len(dtype))


@pytest.mark.parametrize("case", BOUNDARY_CASES)
def test_session10_switches_on_counted_and_sorted_boundary_bins(case, monkeypatch):
    """The counted and the sorted threshold: the same bits, and with the switch on the numpy model's tokens."""
    SUITE.boundary_bins_case(monkeypatch, case, rng_offset=5, seed=23, token_combo="on")


@pytest.mark.parametrize("vocab", [6151, 151936])
@pytest.mark.parametrize("top_p", [0.3, 0.9])
def test_session10_switches_on_overfull_boundary_bins(vocab, top_p, monkeypatch):
    SUITE.overfull_case(monkeypatch, vocab, top_p)


@pytest.mark.parametrize("temperature,top_p", [(0.05, 0.95), (1.0, 0.999999), (4.0, 0.99)])
def test_session10_switches_with_extreme_weights(temperature, top_p, monkeypatch):
    SUITE.extreme_weights_case(monkeypatch, temperature, top_p, rng_offset=1)


def test_session10_switches_on_rows_of_more_than_256_chunks(monkeypatch):
    SUITE.long_rows_case(monkeypatch, 256 * 2048 + 4099, rng_seed=3, combos=("default", "on", "on_s9_off"))


@pytest.mark.parametrize("rows", [1, 8])
def test_session10_switches_in_a_cuda_graph_replay_like_eager_default_steps(rows, monkeypatch):
    """A graph captured with the switch on replays like eager steps with it off."""
    SUITE.graph_case(monkeypatch, rows, 90 + rows, captured="on", eager="off")
