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
groupings of the passes must give the same tokens, temperatures, entropies, errors and state bits as none of them: rejected
rows, ties, -inf runs, top-k, bf16/fp16 (aligned and unaligned rows), strided and misaligned logits views, rows
mapped to other slots, counted / sorted / overfull boundary bins (the numpy model's tokens), extreme weights,
B = 1, 3, 8, 64, rows of more than 256 chunks, graph replays."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from reset_native import _core  # noqa: E402
from reset_native.sampler import ReSETConfig  # noqa: E402
from test_sampler_gpu_batches import DTYPES, kernel_draw, make_logits  # noqa: E402
from test_sampler_gpu_combine import CASES, _uniform_rows, boundary_bin_size  # noqa: E402
from test_sampler_gpu_grouped import _run  # noqa: E402  (outputs, state and error text of a few steps)
from test_sampler_gpu_paths import _crowded_rows  # noqa: E402
from test_sampler_gpu_switches import CONFIGS as SWITCH_CONFIGS  # noqa: E402
from test_sampler_gpu_switches import SWITCHES as SESSION9_SWITCHES  # noqa: E402
from test_sampler_gpu_switches import _assert_same as assert_same_runs  # noqa: E402
from test_sampler_gpu_switches import graph_replays_like_eager  # noqa: E402

pytestmark = pytest.mark.gpu
S = _core.sampler
SWITCHES = ("RESET_NATIVE_SAMPLER_FULL_LOADS", "RESET_NATIVE_SAMPLER_VEC_LOADS", "RESET_NATIVE_SAMPLER_FLAT_BINS",
            "RESET_NATIVE_SAMPLER_WARP_REDUX", "RESET_NATIVE_SAMPLER_STATS_RANGE", "RESET_NATIVE_SAMPLER_KEPT_SUM")
EARLIER = SESSION9_SWITCHES + ("RESET_NATIVE_SAMPLER_LEAN_DRAW",)
GROUPINGS = tuple(f"RESET_NATIVE_SAMPLER_{v}_CHUNKS" for v in ("STATS", "BIN", "SAMPLE"))
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

CONFIGS = {**SWITCH_CONFIGS, "greedy": ReSETConfig.fixed(0.0)}


def _switch(monkeypatch, combo):
    monkeypatch.setenv("RESET_NATIVE_SAMPLER_FUSED", "0")
    monkeypatch.setenv("RESET_NATIVE_SAMPLER_RESIDENT", "0")
    for name in SWITCHES + EARLIER + GROUPINGS:
        if name in COMBOS[combo]:
            monkeypatch.setenv(name, COMBOS[combo][name])
        else:
            monkeypatch.delenv(name, raising=False)


def _runs(monkeypatch, config, rows, vocab, logits, slots, seed, combos=COMBOS):
    runs = {}
    for combo in combos:
        _switch(monkeypatch, combo)
        runs[combo] = _run(config, rows, vocab, logits, slots, seed)
    return runs


def _assert_same(runs):
    assert_same_runs(runs, reference="off")


@pytest.mark.parametrize("mode", list(CONFIGS))
@pytest.mark.parametrize("rows,vocab,dtype", [(1, 151936, "float32"), (3, 151936, "float32"), (8, 151936, "float32"),
                                              (64, 151936, "float32"), (3, 6151, "bfloat16"),
                                              (3, 2048 * 5 + 8, "bfloat16"), (5, 2048 * 9 + 1, "float16"),
                                              (2, 2048 * 8, "float16"), (1, 151936, "bfloat16"),
                                              (2, 300, "float32")])
def test_session11_switches_do_not_change_the_step(rows, vocab, dtype, mode, monkeypatch):
    rng = np.random.default_rng(rows * 41 + vocab + len(mode) + len(dtype))
    logits = []
    for step in range(3):
        z = make_logits(rng, rows, vocab, step)
        if rows > 2 and step == 1:
            z[1, 17] = np.nan  # a rejected row: no plan, its sample blocks only release the slot
        logits.append(torch.from_numpy(z).to(DTYPES[dtype]).cuda())
    slots = torch.from_numpy(rng.permutation(rows)).cuda()
    runs = _runs(monkeypatch, CONFIGS[mode], rows, vocab, logits, slots, seed=6)
    assert (rows > 2) == (runs["off"][2] is not None)
    _assert_same(runs)


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
    runs = _runs(monkeypatch, CONFIGS["reset_top_p"], rows, vocab, logits, torch.arange(rows, device="cuda"), seed=4)
    _assert_same(runs)


@pytest.mark.parametrize("case", list(CASES))
def test_session11_switches_on_counted_and_sorted_boundary_bins(case, monkeypatch):
    """Boundary bins of 1-256 logits (the counted threshold) and of 257-2048 (the sorted one): the same bits with
    every combination, and with all switches on the numpy model's tokens (the candidates' indices under the
    16-byte loads' layout included)."""
    vocab, spread, (low, high) = CASES[case]
    rng = np.random.default_rng(vocab + int(spread * 100) + 11)
    rows, top_p, seed = 4, 0.5, 25
    config = ReSETConfig.fixed(1.0, top_p=top_p)
    values = [_uniform_rows(rng, rows, vocab, spread) for _ in range(3)]
    for z in values:
        for r in range(rows):
            assert low <= boundary_bin_size(z[r], 1.0, top_p) <= high, (case, r)  # the path under test
    logits = [torch.from_numpy(z).cuda() for z in values]
    runs = _runs(monkeypatch, config, rows, vocab, logits, torch.arange(rows, device="cuda"), seed)
    _assert_same(runs)
    tokens = runs["all"][0][:, 0].numpy().astype(np.int64)  # [step, row]
    checked = 0
    for step, z in enumerate(values):
        for r in range(rows):
            want, sure = kernel_draw(z[r], 1.0, 0, top_p, S.uniform(S.default_slot_seed(seed, r), step))
            if sure:
                assert tokens[step, r] == want, (r, step, tokens[step, r], want)
                checked += 1
    assert checked >= rows * 3 // 2, checked


@pytest.mark.parametrize("vocab", [6151, 151936])
@pytest.mark.parametrize("top_p", [0.3, 0.9])
def test_session11_switches_on_overfull_boundary_bins(vocab, top_p, monkeypatch):
    """Boundary bins far over the 2048-logit buffer (near-equal logits, whole-row ties): the exact fallback."""
    z = torch.from_numpy(_crowded_rows(vocab)).cuda()
    rows = z.shape[0]
    runs = _runs(monkeypatch, ReSETConfig.fixed(1.0, top_p=top_p), rows, vocab, [z, z, z],
                 torch.arange(rows, device="cuda"), seed=8)
    _assert_same(runs)


@pytest.mark.parametrize("temperature,top_p", [(0.05, 0.95), (1.0, 0.999999), (4.0, 0.99)])
def test_session11_switches_with_extreme_weights(temperature, top_p, monkeypatch):
    """Weights of 2^24 and in [2^23, 2^24) (the second shared add of a weight), exp arguments below -126 (in the
    weights, and in the entropy sums: logits 88-110 nats below the maximum, where the stats pass may not take bare
    exps), -inf entries, tied maxima, many ties, one dominant logit."""
    rng = np.random.default_rng(int(temperature * 100) + int(top_p * 1000) + 2)
    rows, vocab = 6, 3 * 2048 + 5
    z = (rng.standard_normal((rows, vocab)) * 2).astype(np.float32)
    z[0, :50] = z[0].max() - rng.random(50).astype(np.float32) * 0.7 * temperature
    z[1, ::3] = z[1].max() - 100.0 * temperature
    z[2, 5:4000:7] = -np.inf
    z[3, 100:120] = z[3].max()
    z[4] = np.round(z[4] * 4) / 4
    z[5, 1000] = 40.0
    z[0, 3000::97] = z[0].max() - rng.uniform(88.0, 110.0, z[0, 3000::97].size).astype(np.float32)
    z[4, 2048 + 7] = z[4].max() - 87.0  # one thread's smallest logit right at the bare exps' edge
    logits = [torch.from_numpy(z).cuda(), torch.from_numpy(z[::-1].copy()).cuda()]
    runs = _runs(monkeypatch, ReSETConfig.fixed(temperature, top_p=top_p), rows, vocab, logits,
                 torch.arange(rows, device="cuda"), seed=5)
    _assert_same(runs)


def test_session11_switches_on_rows_of_more_than_256_chunks(monkeypatch):
    """Rows of more than 256 chunks (V > 524288): the kept candidates' masses go through global memory; the same
    bits."""
    rows, vocab = 2, 256 * 2048 + 4100
    rng = np.random.default_rng(5)
    z = (rng.standard_normal((rows, vocab)) * 3).astype(np.float32)
    z[1, ::5] = -np.inf
    logits = [torch.from_numpy(z).cuda(), torch.from_numpy(z[:, ::-1].copy()).cuda()]
    combos = {k: COMBOS[k] for k in ("off", "default", "all", "all_earlier_off")}
    runs = _runs(monkeypatch, ReSETConfig.fixed(0.9, top_p=0.9), rows, vocab, logits,
                 torch.arange(rows, device="cuda"), seed=2, combos=combos)
    _assert_same(runs)


@pytest.mark.parametrize("rows", [1, 64])
def test_session11_switches_in_a_cuda_graph_replay_like_eager_default_steps(rows, monkeypatch):
    """A graph captured with every switch on gives, replay after replay, the tokens, temperatures and final state
    of eager steps with them off."""
    graph_replays_like_eager(rows, 110 + rows, lambda: _switch(monkeypatch, "all"), lambda: _switch(monkeypatch, "off"))
