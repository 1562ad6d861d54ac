"""Grouped passes of the CUDA decode step (docs/sampler.md, CUDA details): at large batches the stats and
sample kernels give each block several chunks of its row (RESET_NATIVE_SAMPLER_STATS_CHUNKS /
RESET_NATIVE_SAMPLER_SAMPLE_CHUNKS set the chunks per block; by default one, or as many as make one wave
of resident blocks). Every chunk's partials are computed as by a block of its own, so tokens,
temperatures, entropies and the state must be the same bits for every grouping, with rejected rows,
ties, -inf runs, top-k and rows mapped to other slots; and the grouped step's entropies and state
machine match the CPU path."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from reset_native.sampler import ReSETConfig, ReSETState, decode_step  # noqa: E402
from test_sampler_gpu_batches import make_logits  # noqa: E402
from test_sampler_gpu_paths import gpu_state_machine_matches_cpu  # noqa: E402

pytestmark = pytest.mark.gpu
ENV = ("RESET_NATIVE_SAMPLER_STATS_CHUNKS", "RESET_NATIVE_SAMPLER_SAMPLE_CHUNKS")

CONFIGS = {
    "reset_top_p": ReSETConfig(t_low=0.5, tau0=2.0, t_high=1.1, window=4, newline_ids=(3, 7),
                               double_newline_ids=(11,), top_p=0.8),
    "reset_top_k_top_p": ReSETConfig(t_low=0.5, tau0=2.0, t_high=1.1, window=4, newline_ids=(3, 7), top_p=0.9,
                                     top_k=40),
    "fixed": ReSETConfig.fixed(0.8),
}


def _kernels_path(monkeypatch):
    for name in ("RESET_NATIVE_SAMPLER_TOPP", "RESET_NATIVE_SAMPLER_BIN_CHUNKS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RESET_NATIVE_SAMPLER_FUSED", "0")
    monkeypatch.setenv("RESET_NATIVE_SAMPLER_RESIDENT", "0")


def _group(monkeypatch, stats, sample):
    for name, value in zip(ENV, (stats, sample)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, str(value))


def _run(config, rows, vocab, logits, slots, seed):
    """Outputs of every step (tokens, temperatures, entropies; NaN-safe) and the final state."""
    state = ReSETState(config, rows, vocab, device="cuda", seed=seed)
    last = torch.full((rows,), -1, device="cuda")
    out = []
    for z in logits:
        step = decode_step(state, z, last, slots=slots)
        out.append(torch.stack([step.tokens.double(), step.temperatures.double(), step.entropies.double()]))
        last = step.tokens  # -1 for a rejected row: no token to feed
    try:
        state.check_errors()
        error = None
    except ValueError as exc:
        error = str(exc)
    return torch.nan_to_num(torch.stack(out).cpu(), nan=-7.0), state.snapshot(), error


@pytest.mark.parametrize("mode", list(CONFIGS))
@pytest.mark.parametrize("rows,vocab", [(1, 151936), (8, 151936), (3, 6151), (64, 151936), (5, 2048 * 9 + 1)])
def test_cuda_grouping_does_not_change_the_step(rows, vocab, mode, monkeypatch):
    _kernels_path(monkeypatch)
    rng = np.random.default_rng(rows * 31 + vocab + len(mode))
    logits = []
    for step in range(3):
        z = make_logits(rng, rows, vocab, step)
        if rows > 2 and step == 1:
            z[1, 17] = np.nan  # a rejected row (no plan: its sample blocks only release the slot)
        logits.append(torch.from_numpy(z).cuda())
    slots = torch.from_numpy(rng.permutation(rows)).cuda()
    runs = {}
    for stats, sample in ((1, 1), (2, 3), (8, 8), (3, 1), (1, 5), (1000, 1000), (None, None)):
        _group(monkeypatch, stats, sample)
        runs[(stats, sample)] = _run(CONFIGS[mode], rows, vocab, logits, slots, seed=6)
    want, want_state, want_error = runs[(1, 1)]
    assert (rows > 2) == (want_error is not None)
    for key, (got, snapshot, error) in runs.items():
        assert torch.equal(got, want), key
        assert error == want_error, key
        for name, value in want_state.items():
            np.testing.assert_array_equal(snapshot[name], value, err_msg=f"{key} {name}")


@pytest.mark.parametrize("window", [1, 4096])
def test_cuda_grouped_step_matches_cpu(window, monkeypatch):
    """Rows of 6 chunks, two blocks of three each: the slot is prepared by the last part's block and the
    last block to arrive is either."""
    _kernels_path(monkeypatch)
    _group(monkeypatch, 3, 3)
    gpu_state_machine_matches_cpu(np.random.default_rng(window + 11), window, rows=9, vocab=5 * 2048 + 77, steps=20,
                                  seed=8)


@pytest.mark.parametrize("rows", [8, 9, 16, 17, 33, 64])
def test_cuda_default_grouping_around_its_threshold_matches_cpu_and_ungrouped(rows, monkeypatch):
    """The default takes one chunk per block while rows * 75 blocks fit one wave (B <= 8 on an H200),
    more beyond: the batch sizes on both sides agree with the CPU state machine and, bit for bit, with
    a block per chunk."""
    _kernels_path(monkeypatch)
    vocab = 151936
    _group(monkeypatch, None, None)
    gpu_state_machine_matches_cpu(np.random.default_rng(rows), 32, rows=rows, vocab=vocab, steps=3, seed=2)
    rng = np.random.default_rng(rows + 1)
    logits = [torch.from_numpy(make_logits(rng, rows, vocab, step)).cuda() for step in range(2)]
    slots = torch.arange(rows, device="cuda")
    default = _run(CONFIGS["reset_top_p"], rows, vocab, logits, slots, seed=3)
    _group(monkeypatch, 1, 1)
    single = _run(CONFIGS["reset_top_p"], rows, vocab, logits, slots, seed=3)
    assert torch.equal(default[0], single[0])
    for name, value in single[1].items():
        np.testing.assert_array_equal(default[1][name], value, err_msg=name)
