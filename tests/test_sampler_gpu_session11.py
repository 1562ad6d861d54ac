"""Session 11's switches of the CUDA decode step's kernels path (docs/sampler.md, CUDA details), read from the
environment at every call (=1 on, =0 off, unset: the default, on), meant to change only how the per-logit work of
the three passes is done, never a value:
  RESET_NATIVE_SAMPLER_FULL_LOADS  chunks wholly inside the row loaded without a bounds check per element (all
                                   passes; the same elements in the same registers);
  RESET_NATIVE_SAMPLER_VEC_LOADS   the bins and sample passes load those chunks in 16-byte loads where the rows are
                                   16-byte aligned (a thread then holds other elements: only exact integer sums
                                   and the candidates' indices depend on that);
  RESET_NATIVE_SAMPLER_FLAT_BINS   the bins pass weighs and bins all of a thread's logits first, then adds them by
                                   shared-memory reductions (with LEAN only);
  RESET_NATIVE_SAMPLER_WARP_REDUX  the sample pass's warp sums as redux instructions, the candidate scan only in
                                   warps that hold candidates;
  RESET_NATIVE_SAMPLER_STATS_RANGE the stats pass decides on bare exps from each thread's smallest logit (where it
                                   holds no -inf, NaN or +inf; with LEAN_STATS);
  RESET_NATIVE_SAMPLER_KEPT_SUM    the sample pass sums a thread's kept mass inside its weights' loop (with LEAN).
Each alone, all together, the defaults, all with session 9's and 10's switches forced off or on, and with other
groupings of the passes must give the same tokens, temperatures, entropies, errors and state bits as none of them:
rejected rows, ties, -inf runs, top-k, bf16/fp16 (aligned and unaligned rows), strided and misaligned logits views, rows
mapped to other slots, counted / sorted / overfull boundary bins (the numpy model's tokens), extreme weights,
B = 1, 3, 8, 64, rows of more than 256 chunks, graph replays."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sampler_switch_suite import BOUNDARY_CASES, CONFIGS, GROUPINGS, SwitchSuite  # noqa: E402
from test_sampler_gpu_batches import DTYPES, make_logits  # noqa: E402
from test_sampler_gpu_switches import SWITCHES as SESSION9_SWITCHES  # noqa: E402

pytestmark = pytest.mark.gpu
SWITCHES = ("RESET_NATIVE_SAMPLER_FULL_LOADS", "RESET_NATIVE_SAMPLER_VEC_LOADS", "RESET_NATIVE_SAMPLER_FLAT_BINS",
            "RESET_NATIVE_SAMPLER_WARP_REDUX", "RESET_NATIVE_SAMPLER_STATS_RANGE", "RESET_NATIVE_SAMPLER_KEPT_SUM")
EARLIER = SESSION9_SWITCHES + ("RESET_NATIVE_SAMPLER_LEAN_DRAW",)
ALL = {name: "1" for name in SWITCHES}
OFF = {name: "0" for name in SWITCHES}
# combo -> {variable: value}; variables not named are unset (their defaults). "off" (every session 11 switch off,
# the code before the session) is the reference; "default" leaves them all unset, whatever their defaults are.
COMBOS = {"off": OFF, "default": {}, **{name.split("SAMPLER_")[1].lower(): {**OFF, name: "1"} for name in SWITCHES},
          "all": ALL,
          "all_earlier_off": {**ALL, **{n: "0" for n in EARLIER}},
          "all_picks": {**ALL, "RESET_NATIVE_SAMPLER_SAMPLE_PICKS": "1"},
          "all_no_picks": {**ALL, "RESET_NATIVE_SAMPLER_SAMPLE_PICKS": "0"},
          "all_regrouped": {**ALL, "RESET_NATIVE_SAMPLER_STATS_CHUNKS": "3", "RESET_NATIVE_SAMPLER_BIN_CHUNKS": "1",
                            "RESET_NATIVE_SAMPLER_SAMPLE_CHUNKS": "2"}}
SUITE = SwitchSuite(SWITCHES + EARLIER + GROUPINGS, COMBOS, reference="off")


@pytest.mark.parametrize("mode", list(CONFIGS))
@pytest.mark.parametrize("rows,vocab,dtype", [(1, 151936, "float32"), (3, 151936, "float32"), (8, 151936, "float32"),
                                              (64, 151936, "float32"), (3, 6151, "bfloat16"),
                                              (3, 2048 * 5 + 8, "bfloat16"), (5, 2048 * 9 + 1, "float16"),
                                              (2, 2048 * 8, "float16"), (1, 151936, "bfloat16"),
                                              (2, 300, "float32")])
def test_session11_switches_do_not_change_the_step(rows, vocab, dtype, mode, monkeypatch):
    SUITE.steps_case(monkeypatch, rows, vocab, dtype, mode, rng_seed=rows * 41 + vocab + len(mode) + len(dtype))


@pytest.mark.parametrize("layout", ["aligned_stride", "odd_stride", "odd_base"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_session11_switches_on_strided_and_misaligned_views(layout, dtype, monkeypatch):
    """Logits as views of a wider buffer: a row stride of 16-byte multiples (the 16-byte loads apply), an odd row
    stride and an odd base address (they do not: the same bits either way)."""
    rows, vocab = 4, 5 * 2048 + 8
    rng = np.random.default_rng(len(layout) + len(dtype))
    pad = {"aligned_stride": 8, "odd_stride": 1, "odd_base": 9}[layout]
    logits = []
    for step in range(3):
        wide = np.zeros((rows, vocab + pad), np.float32)
        wide[:, :vocab] = make_logits(rng, rows, vocab, step)
        if layout == "odd_base":
            wide[:, 1:vocab + 1] = wide[:, :vocab].copy()
        buffer = torch.from_numpy(wide).to(DTYPES[dtype]).cuda()
        view = buffer[:, 1:vocab + 1] if layout == "odd_base" else buffer[:, :vocab]
        assert view.stride(0) == vocab + pad
        logits.append(view)
    runs = SUITE.runs(monkeypatch, CONFIGS["reset_top_p"], rows, vocab, logits, torch.arange(rows, device="cuda"),
                      seed=4)
    SUITE.assert_same(runs)


@pytest.mark.parametrize("case", BOUNDARY_CASES)
def test_session11_switches_on_counted_and_sorted_boundary_bins(case, monkeypatch):
    """The counted and the sorted threshold: the same bits, and with all switches on the numpy model's tokens (the
    candidates' indices under the 16-byte loads' layout included)."""
    SUITE.boundary_bins_case(monkeypatch, case, rng_offset=11, seed=25, token_combo="all")


@pytest.mark.parametrize("vocab", [6151, 151936])
@pytest.mark.parametrize("top_p", [0.3, 0.9])
def test_session11_switches_on_overfull_boundary_bins(vocab, top_p, monkeypatch):
    SUITE.overfull_case(monkeypatch, vocab, top_p)


@pytest.mark.parametrize("temperature,top_p", [(0.05, 0.95), (1.0, 0.999999), (4.0, 0.99)])
def test_session11_switches_with_extreme_weights(temperature, top_p, monkeypatch):
    """Including the second shared add of a weight (weights in [2^23, 2^24)) and the stats pass's bare-exp edge."""
    SUITE.extreme_weights_case(monkeypatch, temperature, top_p, rng_offset=2, far_below=True)


def test_session11_switches_on_rows_of_more_than_256_chunks(monkeypatch):
    SUITE.long_rows_case(monkeypatch, 256 * 2048 + 4100, rng_seed=5,
                         combos=("off", "default", "all", "all_earlier_off"))


@pytest.mark.parametrize("rows", [1, 64])
def test_session11_switches_in_a_cuda_graph_replay_like_eager_default_steps(rows, monkeypatch):
    """A graph captured with every switch on replays like eager steps with them off."""
    SUITE.graph_case(monkeypatch, rows, 110 + rows, captured="all", eager="off")
