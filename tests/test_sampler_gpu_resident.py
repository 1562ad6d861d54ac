"""The resident CUDA decode step (docs/sampler.md, CUDA details: one launch, every block of a row
resident, blocks exchanging tagged words) against the multi-kernel step, which stays the reference:
the same tokens, temperatures, entropies and state bit for bit (it computes every merged value in
the same order with the same arithmetic), for every config without top-k, every dtype, rows of one
to 75 chunks, each way of finding the top-p threshold (counting, sorting, the radix fallback after a
chunk published too many boundary-bin logits or a crowded bin), bad rows and duplicate slots, CUDA
graph replays (the per-row tag must advance inside a graph), and the two paths taking turns on one
state (each leaves the workspace as the other expects it)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from reset_native import _core  # noqa: E402
from reset_native.sampler import ReSETConfig, ReSETState  # noqa: E402
from sampler_gpu_helpers import (assert_bad_rows_rejected, bad_rows_and_duplicate_slots,  # noqa: E402
                                 capture_decode_step)
from test_sampler_gpu_batches import DTYPES, make_logits  # noqa: E402
from test_sampler_gpu_combine import boundary_bin_size  # noqa: E402
from test_sampler_gpu_paths import CONFIGS, _crowded_rows, feed_steps  # noqa: E402

pytestmark = pytest.mark.gpu
S = _core.sampler


def _use(monkeypatch, resident):
    monkeypatch.delenv("RESET_NATIVE_SAMPLER_TOPP", raising=False)
    monkeypatch.delenv("RESET_NATIVE_SAMPLER_FUSED", raising=False)
    monkeypatch.setenv("RESET_NATIVE_SAMPLER_RESIDENT", "1" if resident else "0")


def _run(config, logits, monkeypatch, resident, seed=2, last_tokens=None, slots=None, batch=None):
    """feed_steps with the resident step on or off; `resident` is a bool, or a list of bools giving the path
    of each step."""
    def path(k):
        _use(monkeypatch, resident[k] if isinstance(resident, list) else resident)

    return feed_steps(config, logits, seed, before_step=path, last_tokens=last_tokens, slots=slots, batch=batch)


def _assert_same(a, b, rows=None):
    """Outputs (NaN equal to NaN: rejected rows), state and error text; `rows`: only those rows."""
    pick = slice(None) if rows is None else rows
    np.testing.assert_array_equal(a[0][:, :, pick].numpy(), b[0][:, :, pick].numpy())
    if rows is None:
        for key, value in b[1].items():
            np.testing.assert_array_equal(a[1][key], value, err_msg=key)
    assert a[2] == b[2]


@pytest.mark.parametrize("mode", list(CONFIGS))
@pytest.mark.parametrize("dtype", list(DTYPES))
# One block per chunk up to B = 8 at V = 151936; from there blocks of several chunks (4 at B = 33, 8
# at B = 64 on 132 SMs; at B = 16 at most 2 per block through the environment).
@pytest.mark.parametrize("rows,vocab,per_block", [(1, 151936, None), (3, 151936, None), (8, 151936, None),
                                                  (16, 151936, "2"), (33, 151936, None), (64, 151936, None),
                                                  (2, 6151, None), (7, 4096, None), (5, 37, None), (64, 37, None)])
def test_cuda_resident_step_matches_kernels(rows, vocab, per_block, dtype, mode, monkeypatch):
    rng = np.random.default_rng(rows * 11 + vocab + len(mode))
    logits = [torch.from_numpy(make_logits(rng, rows, vocab, step)).to(DTYPES[dtype]).cuda() for step in range(3)]
    if per_block:
        monkeypatch.setenv("RESET_NATIVE_SAMPLER_RESIDENT_CHUNKS", per_block)
    _use(monkeypatch, True)
    state = ReSETState(CONFIGS[mode], rows, vocab, device="cuda")
    assert state.cuda_path(rows, dtype) == "resident"
    _assert_same(_run(CONFIGS[mode], logits, monkeypatch, True), _run(CONFIGS[mode], logits, monkeypatch, False))


def _chunk_crowded_rows(rng, vocab):
    """Rows whose boundary bin lies in one chunk: chunk 0 spread over 0.5 nats (about 70 logits per
    bin, over the 32 a chunk publishes), the rest of the row far below (weight 0)."""
    z = np.full((2, vocab), -40.0, np.float32)
    z[:, :2048] = rng.random((2, 2048)) * 0.5
    return z


def _spread_rows(rng, vocab, spread):
    return (rng.random((3, vocab)) * spread).astype(np.float32)


# (rows builder, bounds on the boundary bin's logits at top_p 0.5, T = 1): counted, sorted (75 chunks
# of a few each), the radix fallback after a chunk overflowed (over 32 of them in one chunk, the
# kernels count or sort them) and after a crowded bin (over 2048).
THRESHOLD_CASES = {
    "count-151936": (lambda rng: _spread_rows(rng, 151936, 30.0), (1, 256)),
    "sort-151936": (lambda rng: _spread_rows(rng, 151936, 3.7), (257, 2048)),
    "overflow-sort-6151": (lambda rng: _spread_rows(rng, 6151, 0.15), (257, 2048)),
    "chunk-overflow-6151": (lambda rng: _chunk_crowded_rows(rng, 6151), (33, 256)),
    "crowded-151936": (lambda rng: _crowded_rows(151936)[:2], (2049, 151936)),
}


@pytest.mark.parametrize("case", list(THRESHOLD_CASES))
def test_cuda_resident_threshold_paths_match_kernels(case, monkeypatch):
    build, (low, high) = THRESHOLD_CASES[case]
    rng = np.random.default_rng(len(case))
    config = ReSETConfig.fixed(1.0, top_p=0.5)
    values = [build(rng) for _ in range(2)]
    for z in values:
        for r in range(z.shape[0]):
            assert low <= boundary_bin_size(z[r], 1.0, 0.5) <= high, (case, r)  # the path under test
    logits = [torch.from_numpy(z).cuda() for z in values]
    _assert_same(_run(config, logits, monkeypatch, True), _run(config, logits, monkeypatch, False))


def test_cuda_resident_step_with_bad_rows_and_duplicate_slots(monkeypatch):
    config, logits, last, slots = bad_rows_and_duplicate_slots()
    # Twice: the second step shows every slot was released and the grid counters reset.
    resident = _run(config, logits, monkeypatch, True, seed=1, last_tokens=last, slots=slots)
    kernels = _run(config, logits, monkeypatch, False, seed=1, last_tokens=last, slots=slots)
    # Rows 0 and 5 race for slot 0 (either may win, in either path): the others must agree exactly.
    _assert_same(resident, kernels, rows=[1, 2, 3, 4, 6])
    assert_bad_rows_rejected(resident[0][:, 0].numpy(), resident[2])


@pytest.mark.parametrize("top_p", [1.0, 0.9])
def test_cuda_resident_step_replayed_in_a_graph_matches_eager_kernels(top_p, monkeypatch):
    """Twelve replays of one captured resident step (new logits copied in before each, the previous
    token fed back) against twelve eager multi-kernel steps."""
    rng = np.random.default_rng(3)
    rows, vocab = 2, 151936
    config = ReSETConfig(t_low=0.5, tau0=1.5, t_high=1.1, window=4, newline_ids=(3, 7), top_p=top_p)
    seq = [torch.from_numpy(make_logits(rng, rows, vocab, k)).cuda() for k in range(12)]
    eager = _run(config, seq, monkeypatch, False, seed=5, batch=rows)
    _use(monkeypatch, True)
    state = ReSETState(config, rows, vocab, device="cuda", seed=5)
    assert state.cuda_path(rows) == "resident"
    graph, static_logits, static_last, out = capture_decode_step(state)
    got = []
    for z in seq:
        static_logits.copy_(z)
        graph.replay()
        got.append(torch.stack([out.tokens.double(), out.temperatures.double(), out.entropies.double()]))
        static_last.copy_(out.tokens)
    state.check_errors()
    _assert_same((torch.stack(got).cpu(), state.snapshot(), None), eager)


def test_cuda_paths_taking_turns_on_one_state(monkeypatch):
    rng = np.random.default_rng(9)
    rows, vocab = 3, 151936
    config = CONFIGS["reset_top_p"]
    seq = [torch.from_numpy(make_logits(rng, rows, vocab, k)).cuda() for k in range(6)]
    turns = [True, False, True, True, False, True]
    _assert_same(_run(config, seq, monkeypatch, turns), _run(config, seq, monkeypatch, False))


def test_cuda_path_choice(monkeypatch):
    _use(monkeypatch, True)
    state = ReSETState(ReSETConfig(t_low=0.1, tau0=0.5505, top_p=0.95), 64, 151936, device="cuda")
    assert state.cuda_path(1) == "resident"
    monkeypatch.setenv("RESET_NATIVE_SAMPLER_RESIDENT_CHUNKS", "1")  # one chunk per block at most
    assert state.cuda_path(64) == "kernels"  # 4800 blocks are never resident at once
    monkeypatch.setenv("RESET_NATIVE_SAMPLER_RESIDENT_CHUNKS", "75")
    assert state.cuda_path(64) == "resident"  # a few blocks per row, each owning several chunks
    monkeypatch.delenv("RESET_NATIVE_SAMPLER_RESIDENT_CHUNKS")
    topk = ReSETState(ReSETConfig(t_low=0.1, tau0=0.5505, top_p=0.95, top_k=50), 1, 151936, device="cuda")
    assert topk.cuda_path(1) == "kernels"
    monkeypatch.setenv("RESET_NATIVE_SAMPLER_RESIDENT", "0")
    assert state.cuda_path(1) == "kernels"
    monkeypatch.setenv("RESET_NATIVE_SAMPLER_FUSED", "1")
    assert state.cuda_path(1) == "one-kernel"
    for bad, match in [((0,), "rows"), ((65,), "rows"), ((1, "int8"), "dtype")]:
        with pytest.raises(ValueError, match=match):
            state.cuda_path(*bad)
