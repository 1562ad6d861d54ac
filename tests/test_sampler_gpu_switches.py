"""Session 9's switches of the CUDA decode step's kernels path (docs/sampler.md, CUDA details), read from the
environment at every call (=1 on, =0 off, unset: the default), each meant to change only where or how a value is
computed, never the value:
  RESET_NATIVE_SAMPLER_SAMPLE_PICKS  every sample block picks the top-p boundary bin from the row's histogram;
                                     the bins pass has no last block (default: where rows x chunks <= SMs);
  RESET_NATIVE_SAMPLER_LEAN          the bins and sample passes compute weights and bins without float-to-int
                                     conversions, __expf's subnormal handling or a top-k test when there is no
                                     top-k (default on);
  RESET_NATIVE_SAMPLER_SUB_BINS      the threshold inside the boundary bin through sub-bins (default on);
  RESET_NATIVE_SAMPLER_LEAN_STATS    the stats pass's exps as bare ex2 where no argument needs __expf's subnormal
                                     path, -inf logits without a branch (default on).
Every switch alone, all together and the defaults must give the same tokens, temperatures, entropies, errors and
state bits as none of them (session 9's code paths off; later sessions' switches, tested in their own files, at
their defaults): rejected rows, ties, -inf runs, top-k, bf16/fp16, rows
mapped to other slots, counted / sorted / overfull boundary bins, extreme weights; with all of them on, the tokens
must still be the numpy model's of the kernels' draw and the state machine the CPU's."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from reset_native import _core  # noqa: E402
from reset_native.sampler import ReSETConfig, ReSETState  # noqa: E402
from sampler_gpu_helpers import capture_decode_step, replay_like_eager  # noqa: E402
from test_sampler_gpu_batches import DTYPES, kernel_draw, make_logits  # noqa: E402
from test_sampler_gpu_combine import CASES, boundary_case_rows  # noqa: E402
from test_sampler_gpu_grouped import _run  # noqa: E402  (outputs, state and error text of a few steps)
from test_sampler_gpu_paths import _crowded_rows, gpu_state_machine_matches_cpu  # noqa: E402
from test_sampler_reference import reference_distribution  # noqa: E402

pytestmark = pytest.mark.gpu
S = _core.sampler
SWITCHES = ("RESET_NATIVE_SAMPLER_SAMPLE_PICKS", "RESET_NATIVE_SAMPLER_LEAN", "RESET_NATIVE_SAMPLER_SUB_BINS",
            "RESET_NATIVE_SAMPLER_LEAN_STATS")
# None of them (the reference: session 9's paths off), each alone, all, and the defaults (None: unset).
COMBOS = {"old": (), "picks": SWITCHES[:1], "lean": SWITCHES[1:2], "sub_bins": SWITCHES[2:3],
          "lean_stats": SWITCHES[3:], "all": SWITCHES, "default": None}

CONFIGS = {
    "reset_top_p": ReSETConfig(t_low=0.5, tau0=2.0, t_high=1.1, window=4, newline_ids=(3, 7),
                               double_newline_ids=(11,), top_p=0.8),
    "reset_top_k_top_p": ReSETConfig(t_low=0.5, tau0=2.0, t_high=1.1, window=4, newline_ids=(3, 7), top_p=0.9,
                                     top_k=40),
    "fixed_top_p": ReSETConfig.fixed(0.7, top_p=0.95),
    "fixed": ReSETConfig.fixed(0.8),
}


def _switch(monkeypatch, combo):
    monkeypatch.setenv("RESET_NATIVE_SAMPLER_FUSED", "0")
    monkeypatch.setenv("RESET_NATIVE_SAMPLER_RESIDENT", "0")
    for name in SWITCHES:
        if COMBOS[combo] is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, "1" if name in COMBOS[combo] else "0")


def _assert_same(runs, reference="old"):
    want, want_state, want_error = runs[reference]
    for combo, (got, snapshot, error) in runs.items():
        assert torch.equal(got, want), combo
        assert error == want_error, combo
        for name, value in want_state.items():
            np.testing.assert_array_equal(snapshot[name], value, err_msg=f"{combo} {name}")


def three_steps(rng, rows, vocab, dtype):
    """Three steps of random logits rows on the GPU (row 1 rejected by a NaN at step 1 when rows > 2) and a random
    mapping of the rows to slots."""
    logits = []
    for step in range(3):
        z = make_logits(rng, rows, vocab, step)
        if rows > 2 and step == 1:
            z[1, 17] = np.nan  # a rejected row: no plan, its sample blocks only release the slot
        logits.append(torch.from_numpy(z).to(DTYPES[dtype]).cuda())
    return logits, torch.from_numpy(rng.permutation(rows)).cuda()


@pytest.mark.parametrize("mode", list(CONFIGS))
@pytest.mark.parametrize("rows,vocab,dtype", [(1, 151936, "float32"), (8, 151936, "float32"), (3, 6151, "bfloat16"),
                                              (64, 151936, "float32"), (5, 2048 * 9 + 1, "float16"),
                                              (2, 300, "float32")])
def test_switches_do_not_change_the_step(rows, vocab, dtype, mode, monkeypatch):
    logits, slots = three_steps(np.random.default_rng(rows * 31 + vocab + len(mode) + len(dtype)), rows, vocab, dtype)
    runs = {}
    for combo in COMBOS:
        _switch(monkeypatch, combo)
        runs[combo] = _run(CONFIGS[mode], rows, vocab, logits, slots, seed=6)
    assert (rows > 2) == (runs["old"][2] is not None)
    _assert_same(runs)


@pytest.mark.parametrize("case", list(CASES))
def test_switches_on_counted_and_sorted_boundary_bins(case, monkeypatch):
    """Boundary bins of 1-256 logits (the counted threshold) and of 257-2048 (the sorted one), on rows of a few
    chunks and of 75: the same bits with every switch, and with all of them the numpy model's tokens."""
    vocab, rows, top_p, seed = CASES[case][0], 4, 0.5, 21
    config = ReSETConfig.fixed(1.0, top_p=top_p)
    values = boundary_case_rows(case, 3, rows, top_p)
    logits = [torch.from_numpy(z).cuda() for z in values]
    slots = torch.arange(rows, device="cuda")
    runs = {}
    for combo in COMBOS:
        _switch(monkeypatch, combo)
        runs[combo] = _run(config, rows, vocab, logits, slots, seed)
    _assert_same(runs)
    tokens = runs["all"][0][:, 0].numpy().astype(np.int64)  # [step, row]
    checked = 0
    for step, z in enumerate(values):
        for r in range(rows):
            assert reference_distribution(z[r], 1.0, 0, top_p)[tokens[step, r]] > 0, (r, step)
            want, sure = kernel_draw(z[r], 1.0, 0, top_p, S.uniform(S.default_slot_seed(seed, r), step))
            if sure:
                assert tokens[step, r] == want, (r, step, tokens[step, r], want)
                checked += 1
    assert checked >= rows * 3 // 2, checked


@pytest.mark.parametrize("vocab", [6151, 151936])
@pytest.mark.parametrize("top_p", [0.3, 0.9])
def test_switches_on_overfull_boundary_bins(vocab, top_p, monkeypatch):
    """Boundary bins far over the 2048-logit buffer (near-equal logits, whole-row ties, a tie group across the
    boundary): the exact fallback, the same bits with every switch."""
    z = torch.from_numpy(_crowded_rows(vocab)).cuda()
    rows = z.shape[0]
    runs = {}
    for combo in COMBOS:
        _switch(monkeypatch, combo)
        runs[combo] = _run(ReSETConfig.fixed(1.0, top_p=top_p), rows, vocab, [z, z, z],
                           torch.arange(rows, device="cuda"), seed=8)
    _assert_same(runs)


@pytest.mark.parametrize("temperature,top_p", [(0.05, 0.95), (0.5, 0.9), (4.0, 0.99), (1.0, 0.999999)])
def test_switches_with_extreme_weights(temperature, top_p, monkeypatch):
    """Rows whose weights reach every range the lean conversions distinguish: the maximum (2^24) and weights in
    [2^23, 2^24) (logits within 0.69 T of the maximum), weights below 2^23, weights that round to 0 or 1 and
    exp arguments below -126 (logits more than 87 T below the maximum), -inf entries and ties; and entropy
    exps with arguments below -126 (logits 88-110 nats below the maximum: subnormal exps in the entropy sums)."""
    rng = np.random.default_rng(int(temperature * 100) + int(top_p * 1000))
    rows, vocab = 6, 3 * 2048 + 5
    z = (rng.standard_normal((rows, vocab)) * 2).astype(np.float32)
    z[0, :50] = z[0].max() - rng.random(50).astype(np.float32) * 0.7 * temperature  # weights in [2^23, 2^24]
    z[1, ::3] = z[1].max() - 100.0 * temperature  # exp(m) far below 2^-126
    z[2, 5:4000:7] = -np.inf
    z[3, 100:120] = z[3].max()  # a tied maximum
    z[4] = np.round(z[4] * 4) / 4  # many ties
    z[5, 1000] = 40.0  # one dominant logit: the rest weigh 0 or 1
    z[0, 3000::97] = z[0].max() - rng.uniform(88.0, 110.0, z[0, 3000::97].size).astype(np.float32)
    logits = [torch.from_numpy(z).cuda(), torch.from_numpy(z[::-1].copy()).cuda()]
    config = ReSETConfig.fixed(temperature, top_p=top_p)
    slots = torch.arange(rows, device="cuda")
    runs = {}
    for combo in COMBOS:
        _switch(monkeypatch, combo)
        runs[combo] = _run(config, rows, vocab, logits, slots, seed=5)
    _assert_same(runs)
    tokens = runs["all"][0][:, 0].numpy().astype(np.int64)
    for step, values in enumerate((z, z[::-1])):
        for r in range(rows):
            want, sure = kernel_draw(values[r], temperature, 0, top_p, S.uniform(S.default_slot_seed(5, r), step))
            if sure:
                assert tokens[step, r] == want, (r, step, tokens[step, r], want)


@pytest.mark.parametrize("rows,vocab,window,steps", [(9, 5 * 2048 + 77, 1, 12), (9, 5 * 2048 + 77, 8, 30),
                                                     (9, 5 * 2048 + 77, 4096, 12), (1, 151936, 32, 6)])
def test_all_switches_match_cpu(rows, vocab, window, steps, monkeypatch):
    """With every switch on: the GPU entropies match the CPU's and the CPU state machine fed them takes the same
    decisions and ends in the same state (windows of 1, 8 with frequent step boundaries and wrap-arounds, 4096)."""
    _switch(monkeypatch, "all")
    gpu_state_machine_matches_cpu(np.random.default_rng(rows + window), window, rows=rows, vocab=vocab, steps=steps,
                                  seed=4)


def graph_replays_like_eager(rows, seed, capture_switches, eager_switches):
    """Captures one ReSET top-p decode_step in a CUDA graph under capture_switches() and replays it for 8 steps of
    random logits against eager steps under eager_switches(): the same tokens and temperatures every step and the
    same final state (the graph keeps the kernels chosen at capture)."""
    rng = np.random.default_rng(seed)
    vocab = 151936
    config = CONFIGS["reset_top_p"]
    eager = ReSETState(config, rows, vocab, device="cuda", seed=1)
    graphed = ReSETState(config, rows, vocab, device="cuda", seed=1)
    capture_switches()
    captured = capture_decode_step(graphed)
    eager_switches()
    replay_like_eager(captured, eager, lambda: torch.from_numpy(make_logits(rng, rows, vocab, 0)).cuda(), steps=8)
    graphed.check_errors()
    for key, value in eager.snapshot().items():
        np.testing.assert_array_equal(graphed.snapshot()[key], value, err_msg=key)


@pytest.mark.parametrize("rows", [1, 8])
def test_all_switches_in_a_cuda_graph_replay_like_eager_steps_without_them(rows, monkeypatch):
    """A graph captured with every switch on (the sample pass then zeroes the top-p histogram the bins pass
    filled, replay after replay) gives, step after step, the tokens and temperatures of eager steps with none."""
    graph_replays_like_eager(rows, 70 + rows, lambda: _switch(monkeypatch, "all"), lambda: _switch(monkeypatch, "old"))
