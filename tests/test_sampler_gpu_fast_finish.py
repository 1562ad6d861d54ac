"""The fast finish of the CUDA decode step's stats pass (session 21, branch sampler25; decode_step.cu: read_switches),
read from the environment at every call:
  RESET_NATIVE_SAMPLER_FAST_FINISH=1       the stats pass's last block combines the chunks' parts with the row's max
                                           taken from its max key (a zero max still takes the first argmax's sign)
                                           and the cached parts rescaled without branches, and takes the plan's 1 / T
                                           from the two precomputed beside the combine (stats_kernel's kFast);
  RESET_NATIVE_SAMPLER_FAST_FINISH=single  the same for the block-per-chunk stats pass only (the grouped pass as off);
  =0 or unset                              main's kernels (the reference: "off").
The same tokens, temperatures, entropies, errors and state bits as off: every config (greedy, fixed T, ReSET top-p,
top-k), fp32 / bf16 / fp16 logits, B = 1 ... 64 (the block-per-chunk and the grouped passes, the grouped one also at
B = 1 by STATS_CHUNKS), rows whose entropy lands exactly on tau and next to it (the temperature's two sides), rows whose
max is -0 / +0 (the max key's one ambiguity), negative maxima, NaN, +inf and all -inf rows (errors), partial chunks,
rows of 97-128, more than 128 and more than 256 parts, and graph replays."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from reset_native.sampler import ReSETConfig, ReSETState, decode_step  # noqa: E402
from sampler_gpu_helpers import assert_switched_steps_like  # noqa: E402
from sampler_switch_suite import CONFIGS, SwitchSuite  # noqa: E402
from test_sampler_gpu_batches import DTYPES, make_logits  # noqa: E402
from test_sampler_gpu_switches import three_steps  # noqa: E402

pytestmark = pytest.mark.gpu
FAST = "RESET_NATIVE_SAMPLER_FAST_FINISH"
OTHERS = tuple(f"RESET_NATIVE_SAMPLER_{n}" for n in ("PHASED_LOADS", "PREP_BLOCK", "PRE_WARP", "STATS_CHUNKS"))
PHASED, PREP_BLOCK, PRE_WARP, STATS_CHUNKS = OTHERS
OFF = {FAST: "0"}
# combo -> {variable: value}; variables not named are unset (their defaults). "off" is the reference.
COMBOS = {"off": OFF, "default": {}, "on": {FAST: "1"}, "single": {FAST: "single"},
          "on_stats2": {FAST: "1", STATS_CHUNKS: "2"}, "on_not_phased": {FAST: "1", PHASED: "0", STATS_CHUNKS: "2"},
          "on_prep0": {FAST: "1", PREP_BLOCK: "0"}, "on_no_pre_warp": {FAST: "1", PRE_WARP: "0"},
          "off_stats2": {**OFF, STATS_CHUNKS: "2"}}
SUITE = SwitchSuite((FAST,) + OTHERS, COMBOS, reference="off")
STEPS_COMBOS = ("off", "default", "on", "single", "on_stats2")
SHAPES = [(1, 151936, "float32"), (8, 151936, "float32"), (64, 151936, "float32"), (3, 2048 * 13 + 5, "float32"),
          (3, 6151, "bfloat16"), (8, 151936, "bfloat16"), (5, 2048 * 9 + 1, "float16"), (2, 300, "float32"),
          (2, 2048 * 110, "float32"), (2, 2048 * 191 + 7, "float32")]  # 97-128 parts: 4 cached; > 128: loaded again
RESET = dict(t_low=0.5, t_high=1.1, window=4, newline_ids=(3, 7), double_newline_ids=(11,), top_p=0.8)


@pytest.mark.parametrize("mode", list(CONFIGS))
@pytest.mark.parametrize("rows,vocab,dtype", SHAPES)
def test_fast_finish_does_not_change_the_step(rows, vocab, dtype, mode, monkeypatch):
    """Three steps of random rows (one rejected by a NaN at step 1 when rows > 2), rows mapped to other slots."""
    rng = np.random.default_rng(rows * 71 + vocab + len(mode) + len(dtype) + 25)
    logits, slots = three_steps(rng, rows, vocab, dtype)
    runs = SUITE.runs(monkeypatch, CONFIGS[mode], rows, vocab, logits, slots, seed=6, combos=STEPS_COMBOS)
    assert (rows > 2) == (runs["off"][2] is not None)
    SUITE.assert_same(runs)


@pytest.mark.parametrize("rows", [1, 8, 64])
def test_fast_finish_at_the_temperature_boundary(rows, monkeypatch):
    """Every row the same logits, so every row's first entropy is h; tau0 = h exactly (h >= tau: t_high), and the
    doubles and floats next to h on either side (t_low above h, t_high below): the same bits as off, and the first
    step's temperatures on the side the spec gives. Later steps (tau from the means) follow each run's history."""
    vocab = 151936
    rng = np.random.default_rng(rows + 2500)
    one = make_logits(rng, 1, vocab, 0)
    steps = [torch.from_numpy(np.repeat(one, rows, axis=0)).cuda()]
    steps += [torch.from_numpy(make_logits(rng, rows, vocab, s)).cuda() for s in (1, 2)]
    slots = torch.arange(rows, device="cuda")
    probe = ReSETState(ReSETConfig(tau0=2.0, **RESET), rows, vocab, device="cuda", seed=3)
    h = decode_step(probe, steps[0], torch.full((rows,), -1, device="cuda")).entropies.cpu().numpy()
    assert np.all(h == h[0]) and h[0] > 0
    h0 = float(h[0])
    f32 = np.float32(h[0])
    taus = {h0: "high", float(np.nextafter(h0, np.inf)): "low", float(np.nextafter(h0, -np.inf)): "high",
            float(np.nextafter(f32, np.float32(np.inf))): "low", float(np.nextafter(f32, np.float32(-np.inf))): "high"}
    for tau0, side in taus.items():
        config = ReSETConfig(tau0=tau0, **RESET)
        runs = SUITE.runs(monkeypatch, config, rows, vocab, steps, slots, seed=3,
                          combos=("off", "on", "single", "on_stats2"))
        SUITE.assert_same(runs)
        want = np.float32(RESET["t_high"] if side == "high" else RESET["t_low"])
        temperatures = runs["on"][0][0, 1].numpy()  # step 0, the temperatures row
        assert np.all(temperatures == want), (tau0, side, temperatures[:4])


def _edge_rows(vocab, rng):
    """Rows whose max is -0 first (then +0), +0 first (then -0), -0 alone, negative, with a NaN, with +inf, all -inf,
    with a chunk of -inf, and a plain one."""
    rows = 9
    z = -np.abs(rng.standard_normal((rows, vocab)).astype(np.float32)) - 0.25
    z[0, 5], z[0, vocab - 3] = -0.0, 0.0
    z[1, 70], z[1, vocab // 2] = 0.0, -0.0
    z[2, vocab // 3] = -0.0
    z[3] -= 40.0
    z[4, 9] = np.nan
    z[5, 100] = np.inf
    z[6] = -np.inf
    z[7, 2048:4096] = -np.inf
    z[8] = rng.standard_normal(vocab).astype(np.float32) * 3
    return z


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
@pytest.mark.parametrize("vocab", [151936, 2048 * 5 + 9])
def test_fast_finish_on_zero_maxima_and_rejected_rows(vocab, dtype, monkeypatch):
    """Zero maxima of either sign (the max key's fallback to the first argmax), negative maxima, and NaN / +inf /
    all -inf rows (errors: sentinel outputs, the slot untouched): the same bits, errors and state as off."""
    rng = np.random.default_rng(vocab % 97 + len(dtype))
    z = _edge_rows(vocab, rng)
    logits = [torch.from_numpy(x).to(DTYPES[dtype]).cuda() for x in (z, z[::-1].copy(), z)]
    rows = z.shape[0]
    for mode in ("reset_top_p", "fixed_top_p", "reset_top_k_top_p", "greedy"):
        runs = SUITE.runs(monkeypatch, CONFIGS[mode], rows, vocab, logits, torch.arange(rows, device="cuda"), seed=7,
                          combos=("off", "on", "single", "on_stats2", "on_prep0"))
        assert runs["off"][2] is not None  # the rejected rows were flagged
        SUITE.assert_same(runs)


@pytest.mark.parametrize("vocab", [256 * 2048 + 4100])
def test_fast_finish_on_long_rows(vocab, monkeypatch):
    """Rows of more than 256 chunks: the combine's parts past the cached ones, loaded twice."""
    SUITE.long_rows_case(monkeypatch, vocab, rng_seed=vocab % 89 + 7, combos=("off", "on", "on_stats2"))


@pytest.mark.parametrize("rows", [1, 8, 64])
@pytest.mark.parametrize("captured,eager", [("on", "off"), ("off", "on")])
def test_fast_finish_in_a_cuda_graph_replay_like_eager_steps(rows, captured, eager, monkeypatch):
    SUITE.graph_case(monkeypatch, rows, 250 + rows, captured=captured, eager=eager)


@pytest.mark.parametrize("rows", [1, 8, 64])
def test_fast_finish_alternating_with_off_kernels(rows, monkeypatch):
    """Steps with the switch on between steps with it off, on one state: the same bits as every step off."""
    vocab = 151936
    rng = np.random.default_rng(rows + 251)
    logits = [torch.from_numpy(make_logits(rng, rows, vocab, s % 3)).cuda() for s in range(6)]
    switched = ["1", "0", "1", "1", "0", "single"]
    assert_switched_steps_like(monkeypatch, FAST, CONFIGS["reset_top_p"], rows, vocab, logits, switched, seed=29,
                               prepare=lambda: SUITE.switch(monkeypatch, "off"))


def test_fast_finish_edge_combos(monkeypatch):
    """The fast form with the grouped pass not phased (it then runs main's grouped kernel), chunk 0's block preparing
    (PREP_BLOCK=0), and warp 0 loading the prepared slot (PRE_WARP=0): the same bits as off."""
    rows, vocab = 8, 151936
    logits, slots = three_steps(np.random.default_rng(2521), rows, vocab, "float32")
    for mode in ("reset_top_p", "fixed"):
        runs = SUITE.runs(monkeypatch, CONFIGS[mode], rows, vocab, logits, slots, seed=6,
                          combos=("off", "on_not_phased", "on_prep0", "on_no_pre_warp", "off_stats2"))
        SUITE.assert_same(runs)
