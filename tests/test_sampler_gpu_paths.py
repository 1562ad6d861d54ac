"""The CUDA decode step's alternative paths (docs/sampler.md, CUDA details) give the same results:
the one-kernel step (RESET_NATIVE_SAMPLER_FUSED=1, for grids that fit on the device at once) and the
default multi-kernel step agree bit for bit (tokens, temperatures, entropies, state), also with bad rows and duplicate slots; the
top-p search by bins finds the threshold the three-level radix search finds
(RESET_NATIVE_SAMPLER_TOPP=radix), so both give the same tokens; rows whose boundary bin holds more
than the kernels' candidate buffer (2048 logits: near-equal logits, ties) take the exact fallback
inside the row's last block and still match the numpy model of the kernels' draw; and the slot
state staged in shared memory is right for the smallest and the largest window."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from reset_native import _core  # noqa: E402
from reset_native.sampler import ReSETConfig, ReSETState, decode_step  # noqa: E402
from sampler_gpu_helpers import assert_bad_rows_rejected, bad_rows_and_duplicate_slots  # noqa: E402
from test_sampler_gpu_batches import DTYPES, kernel_draw, make_logits  # noqa: E402
from test_sampler_reference import reference_distribution  # noqa: E402

pytestmark = pytest.mark.gpu
S = _core.sampler


def feed_steps(config, logits, seed, before_step=None, last_tokens=None, slots=None, batch=None):
    """(outputs [steps, 3, rows]: tokens, temperatures, entropies; final state; error text or None) of one
    state of `batch` slots (default max(rows, 8)) fed every logits batch in turn; with last_tokens: those
    instead of the previous step's tokens. before_step(k), if given, runs before step k (path switches)."""
    rows, vocab = logits[0].shape
    state = ReSETState(config, batch or max(rows, 8), vocab, device="cuda", seed=seed)
    last = torch.full((rows,), -1, device="cuda")
    out = []
    for k, z in enumerate(logits):
        if before_step is not None:
            before_step(k)
        if last_tokens is not None:
            last = last_tokens[k]
        step = decode_step(state, z, last, slots=slots)
        out.append(torch.stack([step.tokens.double(), step.temperatures.double(), step.entropies.double()]))
        last = step.tokens
    try:
        state.check_errors()
        error = None
    except ValueError as exc:
        error = str(exc)
    return torch.stack(out).cpu(), state.snapshot(), error


def _steps(config, rows, vocab, logits, seed, monkeypatch, radix=False, fused=True, last_tokens=None, slots=None,
           resident=False):
    """feed_steps on one path: fused=False runs the multi-kernel step, unless resident=True (the resident
    step where it applies); radix=True searches the top-p threshold by the radix levels. rows and vocab
    are the logits' shape (the state gets max(rows, 8) slots, as feed_steps gives it)."""
    monkeypatch.delenv("RESET_NATIVE_SAMPLER_TOPP", raising=False)
    monkeypatch.setenv("RESET_NATIVE_SAMPLER_FUSED", "1" if fused else "0")
    monkeypatch.setenv("RESET_NATIVE_SAMPLER_RESIDENT", "1" if resident else "0")
    if radix:
        monkeypatch.setenv("RESET_NATIVE_SAMPLER_TOPP", "radix")
    return feed_steps(config, logits, seed, last_tokens=last_tokens, slots=slots)


CONFIGS = {
    "greedy": ReSETConfig.fixed(0.0),
    "fixed": ReSETConfig.fixed(0.8),
    "top_p": ReSETConfig.fixed(1.0, top_p=0.9),
    "reset_top_p": ReSETConfig(t_low=0.5, tau0=2.0, t_high=1.1, window=4, newline_ids=(3, 7),
                               double_newline_ids=(11,), top_p=0.8),
}


@pytest.mark.parametrize("mode", list(CONFIGS))
@pytest.mark.parametrize("dtype", list(DTYPES))
# One block per chunk up to a few rows of 151936; from B = 8 blocks take several chunks each.
@pytest.mark.parametrize("rows,vocab", [(1, 151936), (3, 151936), (8, 151936), (64, 151936), (2, 6151), (7, 4096),
                                        (5, 37), (64, 37)])
def test_cuda_one_kernel_step_matches_multi_kernel_step(rows, vocab, dtype, mode, monkeypatch):
    rng = np.random.default_rng(rows * 7 + vocab + len(mode))
    logits = [torch.from_numpy(make_logits(rng, rows, vocab, step)).to(DTYPES[dtype]).cuda() for step in range(3)]
    fused = _steps(CONFIGS[mode], rows, vocab, logits, 2, monkeypatch)
    multi = _steps(CONFIGS[mode], rows, vocab, logits, 2, monkeypatch, fused=False)
    assert torch.equal(fused[0], multi[0])
    for key, value in multi[1].items():
        np.testing.assert_array_equal(fused[1][key], value, err_msg=key)
    assert fused[2] is None and multi[2] is None


def test_cuda_one_kernel_step_with_bad_rows_and_duplicate_slots(monkeypatch):
    config, logits, last, slots = bad_rows_and_duplicate_slots()
    rows, vocab = logits[0].shape
    for fused in (True, False):  # twice each: the second step shows every slot was released
        out, state, error = _steps(config, rows, vocab, logits, 1, monkeypatch, fused=fused, last_tokens=last,
                                   slots=slots)
        tokens = out[:, 0].numpy()
        assert_bad_rows_rejected(tokens, error)
        assert tokens[0, 4] == -1 and tokens[1, 4] >= 0  # its token id was bad at the first step only
        assert state["ints"][0, 1] == 2 and state["ints"][4, 1] == 1  # slots 0 and 4 advanced


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("rows,vocab,top_k", [(64, 151936, 0), (7, 6151, 0), (7, 6151, 20), (5, 37, 0)])
def test_cuda_bins_and_radix_top_p_give_the_same_tokens(rows, vocab, top_k, dtype, monkeypatch):
    rng = np.random.default_rng(rows + vocab + top_k)
    config = ReSETConfig(t_low=0.5, tau0=2.0, t_high=1.1, window=4, newline_ids=(3, 7), double_newline_ids=(11,),
                         top_p=0.9, top_k=top_k)
    logits = [torch.from_numpy(make_logits(rng, rows, vocab, step)).to(DTYPES[dtype]).cuda() for step in range(4)]
    bins, bins_state, _ = _steps(config, rows, vocab, logits, 3, monkeypatch)
    radix, radix_state, _ = _steps(config, rows, vocab, logits, 3, monkeypatch, radix=True)
    assert torch.equal(bins, radix)
    for key, value in radix_state.items():
        np.testing.assert_array_equal(bins_state[key], value, err_msg=key)


# Boundary bins far over the 2048-logit candidate buffer: near-equal logits (all in bin 0 or a few
# bins), exact ties of the whole row, and a tie group straddling the top-p boundary.
def _crowded_rows(vocab):
    rng = np.random.default_rng(12)
    near = (rng.random(vocab) * 1e-3).astype(np.float32)  # every weight within 0.1 % of the maximum
    zeros = np.zeros(vocab, np.float32)  # one key: the threshold keeps the whole row
    steps = np.repeat(np.array([2.0, 1.0, 0.0], np.float32), -(-vocab // 3))[:vocab]  # three tie groups
    rng.shuffle(steps)
    return np.stack([near, zeros, steps])


@pytest.mark.parametrize("path", ["kernels", "one-kernel", "resident"])
@pytest.mark.parametrize("vocab", [6151, 151936])
@pytest.mark.parametrize("top_p", [0.3, 0.9])
def test_cuda_overfull_boundary_bin_takes_the_exact_fallback(vocab, top_p, path, monkeypatch):
    monkeypatch.setenv("RESET_NATIVE_SAMPLER_FUSED", "1" if path == "one-kernel" else "0")
    monkeypatch.setenv("RESET_NATIVE_SAMPLER_RESIDENT", "1" if path == "resident" else "0")
    z = _crowded_rows(vocab)
    rows = z.shape[0]
    state = ReSETState(ReSETConfig.fixed(1.0, top_p=top_p), rows, vocab, device="cuda", seed=8)
    last = torch.full((rows,), -1, device="cuda")
    checked = 0
    for step in range(3):
        tokens = decode_step(state, torch.from_numpy(z).cuda(), last).tokens.cpu().numpy()
        for r in range(rows):
            want, sure = kernel_draw(z[r], 1.0, 0, top_p, S.uniform(S.default_slot_seed(8, r), step))
            assert reference_distribution(z[r], 1.0, 0, top_p)[tokens[r]] > 0, (r, step)
            if sure:
                assert tokens[r] == want, (r, step, tokens[r], want)
                checked += 1
        last = torch.from_numpy(tokens).cuda()
    state.check_errors()
    assert checked >= 3  # the tie rows are always sure


def gpu_state_machine_matches_cpu(rng, window, rows, vocab, steps, seed):
    """The CUDA decode step's entropies match the CPU's, and the CPU state machine fed the GPU's entropies
    takes the same decisions (temperatures, final state) exactly; rows map to other slots, step boundaries
    are frequent."""
    config = ReSETConfig(t_low=0.2, tau0=3.0, window=window, newline_ids=(3,), double_newline_ids=(7,), top_p=0.9)
    cpu, gpu = ReSETState(config, rows, vocab, seed=seed), ReSETState(config, rows, vocab, device="cuda", seed=seed)
    slots = rng.permutation(rows)  # rows map to other slots
    last = np.full(rows, -1)
    for step in range(steps):
        z = (rng.standard_normal((rows, vocab)) * rng.uniform(0.3, 4, (rows, 1))).astype(np.float32)
        got = decode_step(gpu, torch.from_numpy(z).cuda(), torch.from_numpy(last).cuda(),
                          slots=torch.from_numpy(slots).cuda())
        entropies = got.entropies.cpu().numpy()
        np.testing.assert_allclose(entropies, decode_step(ReSETState(config, rows, vocab), z, last).entropies,
                                   rtol=1e-5, atol=1e-6)
        # The CPU state machine fed the GPU's entropies takes the same decisions, exactly.
        np.testing.assert_array_equal(got.temperatures.cpu().numpy(), cpu.update(entropies, last, slots=slots))
        last = rng.choice([3, 7, 20, 50], size=rows)  # boundaries and plain tokens
    gpu.check_errors()
    for key, value in cpu.snapshot().items():
        np.testing.assert_array_equal(gpu.snapshot()[key], value, err_msg=key)


@pytest.mark.parametrize("window", [1, 4096])
def test_cuda_state_staged_in_shared_memory_matches_cpu(window):
    gpu_state_machine_matches_cpu(np.random.default_rng(window), window, rows=9, vocab=300, steps=40, seed=1)
