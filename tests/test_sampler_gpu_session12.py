"""Session 12's switches of the CUDA decode step's kernels path (docs/sampler.md, CUDA details), read from the
environment at every call, meant to change only where the logits' lines stay in the L2, never a value:
  RESET_NATIVE_SAMPLER_L2_KEEP     N = 2 ... 100 (1: 100): the stats and bins passes load about N % of the logits'
                                   lines evict_last (the rest evict_first); 0 or unset: no hint;
  RESET_NATIVE_SAMPLER_L2_FIRST    N (instead of L2_KEEP): the stats and bins passes load about N % of the lines
                                   evict_first, the others unchanged;
  RESET_NATIVE_SAMPLER_L2_RELEASE  1: the sample pass (the last reader) loads them evict_first (the default where
                                   L2_KEEP or L2_FIRST is on); 2: evict_normal; 0: no hint.
Every share, each release, release alone, with session 11's loads forced off (FULL_LOADS / VEC_LOADS: no hint then),
with SAMPLE_PICKS forced either way and with other groupings must give the same tokens, temperatures, entropies,
errors and state bits as no hint: rejected rows, ties, -inf runs, top-k, bf16/fp16 (aligned and unaligned rows),
strided and misaligned views, counted / sorted / overfull boundary bins (the numpy model's tokens), extreme weights,
B = 1, 3, 8, 64, rows of more than 256 chunks, graph replays. (The session's other switches, BINS_FLAG / PLAN_FLAG
and L2_PREFETCH, were tested here too; measured slower, removed: bench/RESULTS-sampler13.md.)"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sampler_switch_suite import BOUNDARY_CASES, CONFIGS, DTYPES, SwitchSuite, make_logits  # noqa: E402

pytestmark = pytest.mark.gpu
KEEP, RELEASE = "RESET_NATIVE_SAMPLER_L2_KEEP", "RESET_NATIVE_SAMPLER_L2_RELEASE"
FIRST = "RESET_NATIVE_SAMPLER_L2_FIRST"
OTHERS = ("RESET_NATIVE_SAMPLER_FULL_LOADS", "RESET_NATIVE_SAMPLER_VEC_LOADS", "RESET_NATIVE_SAMPLER_SAMPLE_PICKS",
          "RESET_NATIVE_SAMPLER_STATS_CHUNKS", "RESET_NATIVE_SAMPLER_BIN_CHUNKS", "RESET_NATIVE_SAMPLER_SAMPLE_CHUNKS")
# combo -> {variable: value}; variables not named are unset (their defaults). "off" (no hint) is the reference;
# "default" leaves both unset, whatever their defaults are.
COMBOS = {"off": {KEEP: "0", RELEASE: "0"}, "default": {},
          **{f"keep{n}": {KEEP: str(n)} for n in (25, 50, 75, 100)}, "keep1": {KEEP: "1"}, "keep37": {KEEP: "37"},
          "first50": {FIRST: "50"}, "first100_normal": {FIRST: "100", RELEASE: "2"},
          "keep_over_first": {KEEP: "75", FIRST: "50"},
          "keep1_normal": {KEEP: "1", RELEASE: "2"}, "keep50_none": {KEEP: "50", RELEASE: "0"},
          "release_only": {KEEP: "0", RELEASE: "1"},
          "keep50_no_vec": {KEEP: "50", "RESET_NATIVE_SAMPLER_VEC_LOADS": "0"},
          "keep50_checked": {KEEP: "50", "RESET_NATIVE_SAMPLER_FULL_LOADS": "0", "RESET_NATIVE_SAMPLER_VEC_LOADS": "0"},
          "keep50_picks": {KEEP: "50", "RESET_NATIVE_SAMPLER_SAMPLE_PICKS": "1"},
          "keep50_no_picks": {KEEP: "50", "RESET_NATIVE_SAMPLER_SAMPLE_PICKS": "0"},
          "keep50_regrouped": {KEEP: "50", "RESET_NATIVE_SAMPLER_STATS_CHUNKS": "3",
                               "RESET_NATIVE_SAMPLER_BIN_CHUNKS": "1", "RESET_NATIVE_SAMPLER_SAMPLE_CHUNKS": "2"}}
SUITE = SwitchSuite((KEEP, RELEASE, FIRST) + OTHERS, COMBOS, reference="off")


@pytest.mark.parametrize("mode", list(CONFIGS))
@pytest.mark.parametrize("rows,vocab,dtype", [(1, 151936, "float32"), (3, 151936, "float32"), (8, 151936, "float32"),
                                              (64, 151936, "float32"), (3, 6151, "bfloat16"),
                                              (5, 2048 * 9 + 1, "float16"), (64, 151936, "bfloat16"),
                                              (1, 151936, "float16"), (2, 300, "float32")])
def test_session12_switches_do_not_change_the_step(rows, vocab, dtype, mode, monkeypatch):
    SUITE.steps_case(monkeypatch, rows, vocab, dtype, mode, rng_seed=rows * 43 + vocab + len(mode) + len(dtype))


@pytest.mark.parametrize("layout", ["aligned_stride", "odd_stride", "odd_base"])
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_session12_switches_on_strided_and_misaligned_views(layout, dtype, monkeypatch):
    """Logits as views of a wider buffer: a row stride of 16-byte multiples (16-byte hinted loads), an odd row stride
    and an odd base address (4- or 2-byte hinted loads)."""
    rows, vocab = 4, 5 * 2048 + 8
    rng = np.random.default_rng(len(layout) * 3 + len(dtype))
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
                      seed=7)
    SUITE.assert_same(runs)


@pytest.mark.parametrize("case", BOUNDARY_CASES)
def test_session12_switches_on_counted_and_sorted_boundary_bins(case, monkeypatch):
    """The counted and the sorted threshold: the same bits, and with the hints on the numpy model's tokens."""
    SUITE.boundary_bins_case(monkeypatch, case, rng_offset=12, seed=27, token_combo="keep50")


@pytest.mark.parametrize("vocab", [6151, 151936])
@pytest.mark.parametrize("top_p", [0.3, 0.9])
def test_session12_switches_on_overfull_boundary_bins(vocab, top_p, monkeypatch):
    SUITE.overfull_case(monkeypatch, vocab, top_p)


@pytest.mark.parametrize("temperature,top_p", [(0.05, 0.95), (1.0, 0.999999), (4.0, 0.99)])
def test_session12_switches_with_extreme_weights(temperature, top_p, monkeypatch):
    """-inf runs, tied maxima, many ties, one dominant logit, weights of 2^24, exp arguments below -126."""
    SUITE.extreme_weights_case(monkeypatch, temperature, top_p, rng_offset=3, far_below=True)


def test_session12_switches_on_rows_of_more_than_256_chunks(monkeypatch):
    SUITE.long_rows_case(monkeypatch, 256 * 2048 + 4101, rng_seed=7,
                         combos=("off", "default", "keep50", "keep100", "keep50_regrouped"))


@pytest.mark.parametrize("rows", [1, 64])
@pytest.mark.parametrize("captured", ["keep50", "keep1_normal"])
def test_session12_switches_in_a_cuda_graph_replay_like_eager_steps(rows, captured, monkeypatch):
    """A graph captured with the hints on replays like eager steps without them."""
    SUITE.graph_case(monkeypatch, rows, 120 + rows, captured=captured, eager="off")
