"""The CUDA top-p search by bins (docs/sampler.md, CUDA details): the threshold it finds is the one
the three-level radix search finds (RESET_NATIVE_SAMPLER_TOPP=radix), so both give the same tokens;
rows whose boundary bin holds more than the kernels' candidate buffer (2048 logits: near-equal
logits, ties) take the exact fallback inside the row's last block and still match the numpy model
of the kernels' draw; and the slot state staged in shared memory is right for the smallest and the
largest window."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from reset_native import _core  # noqa: E402
from reset_native.sampler import ReSETConfig, ReSETState, decode_step  # noqa: E402
from test_sampler_gpu_batches import DTYPES, kernel_draw, make_logits  # noqa: E402
from test_sampler_reference import reference_distribution  # noqa: E402

pytestmark = pytest.mark.gpu
S = _core.sampler


def _steps(config, rows, vocab, logits, seed, monkeypatch, radix):
    """Tokens, temperatures and entropies of one state fed every logits batch in turn."""
    if radix:
        monkeypatch.setenv("RESET_NATIVE_SAMPLER_TOPP", "radix")
    else:
        monkeypatch.delenv("RESET_NATIVE_SAMPLER_TOPP", raising=False)
    state = ReSETState(config, rows, vocab, device="cuda", seed=seed)
    last = torch.full((rows,), -1, device="cuda")
    out = []
    for z in logits:
        step = decode_step(state, z, last)
        out.append(torch.stack([step.tokens.double(), step.temperatures.double(), step.entropies.double()]))
        last = step.tokens
    state.check_errors()
    return torch.stack(out).cpu(), state.snapshot()


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("rows,vocab,top_k", [(64, 151936, 0), (7, 6151, 0), (7, 6151, 20), (5, 37, 0)])
def test_cuda_bins_and_radix_top_p_give_the_same_tokens(rows, vocab, top_k, dtype, monkeypatch):
    rng = np.random.default_rng(rows + vocab + top_k)
    config = ReSETConfig(t_low=0.5, tau0=2.0, t_high=1.1, window=4, newline_ids=(3, 7), double_newline_ids=(11,),
                         top_p=0.9, top_k=top_k)
    logits = [torch.from_numpy(make_logits(rng, rows, vocab, step)).to(DTYPES[dtype]).cuda() for step in range(4)]
    bins, bins_state = _steps(config, rows, vocab, logits, 3, monkeypatch, radix=False)
    radix, radix_state = _steps(config, rows, vocab, logits, 3, monkeypatch, radix=True)
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


@pytest.mark.parametrize("vocab", [6151, 151936])
@pytest.mark.parametrize("top_p", [0.3, 0.9])
def test_cuda_overfull_boundary_bin_takes_the_exact_fallback(vocab, top_p):
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


@pytest.mark.parametrize("window", [1, 4096])
def test_cuda_state_staged_in_shared_memory_matches_cpu(window):
    rng = np.random.default_rng(window)
    rows, vocab = 9, 300
    config = ReSETConfig(t_low=0.2, tau0=3.0, window=window, newline_ids=(3,), double_newline_ids=(7,), top_p=0.9)
    cpu, gpu = ReSETState(config, rows, vocab, seed=1), ReSETState(config, rows, vocab, device="cuda", seed=1)
    slots = rng.permutation(rows)  # rows map to other slots
    last = np.full(rows, -1)
    for step in range(40):
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
