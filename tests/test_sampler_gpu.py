"""The CUDA decode step against the CPU path and the float64 / pure-Python references:
entropies (1e-5), temperatures (exactly, from the spec's state machine), state bit for bit, the
sampled token of every row for its seed and position, the top-p set, greedy, sampling distribution,
determinism, CUDA-graph capture, and the device error flag. Skips without a CUDA device and a CUDA
build. Meant to finish in well under a minute on one GPU (every reference is O(V log V) or less)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from reset_native import _core  # noqa: E402
from reset_native.sampler import ReSETConfig, ReSETState, decode_step  # noqa: E402
from sampler_gpu_helpers import capture_decode_step, replay_like_eager  # noqa: E402
from test_sampler_reference import (ReferenceSlot, assert_follows, expected_token,  # noqa: E402
                                    reference_distribution, reference_entropy)

pytestmark = pytest.mark.gpu
NEWLINE, DOUBLE = (3, 7), (11,)


def reset_config(**kw):
    args = dict(t_low=0.3, tau0=4.5, window=8, newline_ids=NEWLINE, double_newline_ids=DOUBLE, top_p=0.95)
    args.update(kw)
    return ReSETConfig(**args)



def _draw_fixed(z, temperature, top_k, top_p, rows, steps, dtype, seed=0):
    """Tokens of `steps` CUDA decode steps on `rows` copies of the row z at a fixed temperature (flat array)."""
    vocab = z.size
    state = ReSETState(ReSETConfig.fixed(temperature, top_k=top_k, top_p=top_p), rows, vocab, device="cuda",
                       seed=seed)
    logits = torch.from_numpy(np.tile(z, (rows, 1))).to(dtype).cuda()
    last = torch.full((rows,), -1, device="cuda")
    samples = []
    for _ in range(steps):
        out = decode_step(state, logits, last)
        samples.append(out.tokens.cpu().numpy())
        last = out.tokens
    state.check_errors()
    return np.concatenate(samples)

@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_cuda_matches_references_entropies_temperatures_tokens_and_state(dtype):
    rng = np.random.default_rng(0)
    rows, vocab, steps, seed = 16, 151936 if dtype == torch.float32 else 5000, 20, 3
    config = reset_config()
    cpu, gpu = ReSETState(config, rows, vocab, seed=seed), ReSETState(config, rows, vocab, device="cuda", seed=seed)
    refs = [ReferenceSlot(config.t_low, config.tau0, config.t_high, config.window, NEWLINE, DOUBLE)
            for _ in range(rows)]
    order = np.arange(vocab)  # the kernels draw in index order, like the CPU
    last_cpu = np.full(rows, -1)
    matches, inside, draws = 0, 0, 0
    for step in range(steps):
        z = torch.from_numpy((rng.standard_normal((rows, vocab)) * rng.uniform(0.5, 3, (rows, 1))).astype(np.float32))
        z[:, 3] += float(rng.uniform(0, 8))  # frequent newlines
        z = z.to(dtype)
        z_np = z.float().numpy()
        out_g = decode_step(gpu, z.cuda(), torch.from_numpy(last_cpu).cuda())
        entropies = out_g.entropies.cpu().numpy()
        temps = out_g.temperatures.cpu().numpy()
        tokens = out_g.tokens.cpu().numpy()
        # Entropies: the CPU kernel, and float64 on a few rows.
        out_c = decode_step(ReSETState(config, rows, vocab), z, np.full(rows, -1))
        np.testing.assert_allclose(entropies, out_c.entropies, rtol=1e-5, atol=1e-6)
        for r in range(0, rows, 5):
            np.testing.assert_allclose(entropies[r], reference_entropy(z_np[r]), rtol=1e-5, atol=1e-6)
        # Temperatures: exactly the CPU state machine and the pure-Python spec, fed the GPU's entropies.
        np.testing.assert_array_equal(temps, cpu.update(entropies, last_cpu))
        want = [refs[r].step(int(last_cpu[r]), entropies[r]) for r in range(rows)]
        np.testing.assert_array_equal(temps, np.array(want, np.float32))
        # Tokens: the draw for this slot's (seed, position) uniform, recomputed in float64 (every
        # other row: the float64 reference is the slow part of this test).
        for r in range(0, rows, 2):
            u = _core.sampler.uniform(_core.sampler.default_slot_seed(seed, r), step)
            token, probs = expected_token(z_np[r], float(temps[r]), config.top_p, u, order)
            matches += int(tokens[r] == token)
            inside += int(probs[tokens[r]] > 0)  # inside the top-p set
            draws += 1
        last_cpu = tokens
    gpu.check_errors()
    for key, value in cpu.snapshot().items():
        np.testing.assert_array_equal(gpu.snapshot()[key], value, err_msg=key)
    # Only a uniform within rounding (2^-24 fixed-point weights, __expf) of a CDF step may pick a
    # neighbour.
    assert matches >= 0.98 * draws, (matches, draws)
    assert inside >= 0.99 * draws, (inside, draws)


@pytest.mark.parametrize("temperature,top_k,top_p", [(1.0, 0, 1.0), (0.7, 5, 1.0), (1.2, 0, 0.6), (0.9, 6, 0.8)])
def test_cuda_samples_follow_restricted_softmax(temperature, top_k, top_p):
    rng = np.random.default_rng(top_k)
    vocab, rows, steps = 20, 4000, 5
    z = (rng.standard_normal(vocab) * 1.5).astype(np.float32)
    z[[4, 9]] = z[0]
    z[[2, 13]] = [0.0, -0.0]  # the two zeros must tie
    tokens = _draw_fixed(z, temperature, top_k, top_p, rows, steps, torch.float32)
    assert_follows(tokens, reference_distribution(z, temperature, top_k, top_p), vocab)


def test_cuda_wide_row_top_p_and_greedy():
    rng = np.random.default_rng(5)
    vocab, rows = 151936, 8
    z = torch.from_numpy((rng.standard_normal((rows, vocab)) * 4).astype(np.float32)).cuda()
    greedy = ReSETState(ReSETConfig.fixed(0.0), rows, vocab, device="cuda")
    out = decode_step(greedy, z, torch.full((rows,), -1, device="cuda"))
    assert torch.equal(out.tokens, z.argmax(dim=1))
    flat = z / 4  # a wide distribution: the top-p set holds thousands of tokens
    state = ReSETState(ReSETConfig.fixed(1.0, top_p=0.5), rows, vocab, device="cuda")
    tokens = decode_step(state, flat, torch.full((rows,), -1, device="cuda")).tokens.cpu().numpy()
    for r in range(rows):
        probs = reference_distribution(flat[r].cpu().numpy(), 1.0, 0, 0.5)  # O(V log V)
        assert (probs > 0).sum() > 1000
        assert probs[tokens[r]] > 0  # inside the top-p set


# Rows span several 2048-logit chunks (one block each): hot tokens sit on both sides of the chunk
# borders 2048 and 4096 and in the short last chunk, with ties across a border; the rest is -inf.
# bf16/fp16 rows take a two-level radix search (their keys' low bits are constant): same checks.
@pytest.mark.parametrize("temperature,top_k,top_p,dtype", [
    (1.0, 0, 1.0, torch.float32), (0.8, 9, 1.0, torch.float32), (1.0, 0, 0.7, torch.float32),
    (0.9, 12, 0.8, torch.float32), (0.8, 9, 1.0, torch.bfloat16), (0.9, 12, 0.8, torch.bfloat16),
    (1.0, 0, 0.7, torch.float16), (0.9, 12, 0.8, torch.float16)])
def test_cuda_multi_chunk_samples_follow_restricted_softmax(temperature, top_k, top_p, dtype):
    rng = np.random.default_rng(20 + top_k)
    vocab, rows, steps = 6000, 2000, 5
    z = np.full(vocab, -np.inf, dtype=np.float32)
    hot = np.array([0, 5, 700, 2046, 2047, 2048, 2049, 3000, 4095, 4096, 4097, 5000, 5998, 5999])
    z[hot] = (rng.standard_normal(hot.size) * 1.2).astype(np.float32)
    z[2048], z[4095] = z[2047], z[5]  # ties across chunk borders
    z = torch.from_numpy(z).to(dtype).float().numpy()  # the values the kernel sees
    tokens = _draw_fixed(z, temperature, top_k, top_p, rows, steps, dtype)
    assert_follows(tokens, reference_distribution(z, temperature, top_k, top_p), vocab)


# Full-width rows: 24 hot tokens over a N(0, 1) bulk that holds 0.5-7 % of the mass, so the top-p
# total spans all chunks while the kept set is a few hot tokens (thresholds chosen >= 1 % of the
# mass away from any token's boundary, far above the 2^-24 fixed-point error).
@pytest.mark.parametrize("temperature,top_k,top_p,dtype", [
    (1.0, 0, 0.89, torch.float32), (1.0, 10, 0.8, torch.float32), (0.8, 0, 0.6, torch.float32),
    (1.0, 0, 0.89, torch.bfloat16), (1.0, 10, 0.8, torch.bfloat16)])
def test_cuda_wide_row_kept_set_is_exact(temperature, top_k, top_p, dtype):
    rng = np.random.default_rng(11)
    vocab, rows, steps = 151936, 256, 8
    z = rng.standard_normal(vocab).astype(np.float32)
    hot = rng.choice(vocab, 24, replace=False)
    z[hot] = (12 + rng.standard_normal(24) * 0.7).astype(np.float32)
    z[hot[1]] = z[hot[0]]
    z = torch.from_numpy(z).to(dtype).float().numpy()  # the values the kernel sees
    probs = reference_distribution(z, temperature, top_k, top_p)
    assert 5 <= (probs > 0).sum() <= 24
    assert_follows(_draw_fixed(z, temperature, top_k, top_p, rows, steps, dtype, seed=4), probs, vocab)


def test_cuda_greedy_first_argmax_across_chunks():
    vocab = 9000
    z = torch.zeros(3, vocab)
    z[0, [4100, 2048, 8999]] = 2.0  # first maximum opens the second chunk
    z[1, [2047, 7, 6000]] = 2.0     # ... sits in the first chunk, ahead of a later tie
    z[2, 8999] = 1.0                # ... is the last logit of the short last chunk
    z[2, :2048] = float("-inf")
    state = ReSETState(ReSETConfig.fixed(0.0), 3, vocab, device="cuda")
    out = decode_step(state, z.cuda(), torch.full((3,), -1, device="cuda"))
    assert out.tokens.cpu().tolist() == [2048, 7, 8999]
    state.check_errors()


def test_cuda_too_small_workspace_is_rejected():
    from reset_native import _core

    S = _core.sampler
    rows, vocab = 2, 5000
    state = ReSETState(reset_config(), rows, vocab, device="cuda")
    z = torch.zeros(rows, vocab, device="cuda")
    last = torch.full((rows,), -1, device="cuda")
    out = torch.empty(rows, dtype=torch.int64, device="cuda")
    temps, ents = torch.empty(rows, device="cuda"), torch.empty(rows, device="cuda")
    c = state.config
    small = S.device_workspace_bytes(rows, vocab) - 1
    with pytest.raises(ValueError, match="workspace"):
        S.decode_step_cuda(S.Config(c.t_low, c.tau0, c.t_high, c.window, c.top_p, c.top_k), state._classes.data_ptr(),
                           vocab, rows, c.window, state._window.data_ptr(), state._sums.data_ptr(),
                           state._ints.data_ptr(), rows, last.data_ptr(), 0, z.data_ptr(), 0, vocab, out.data_ptr(),
                           temps.data_ptr(), ents.data_ptr(), state._error_flag.data_ptr(),
                           state._slot_busy.data_ptr(), state._workspace.data_ptr(), small,
                           torch.cuda.current_stream().cuda_stream)


@pytest.mark.parametrize("vocab", [1000, 151936])
def test_cuda_determinism_and_batch_independence(vocab):
    rng = np.random.default_rng(6)
    seq = [torch.from_numpy(rng.standard_normal((6, vocab)).astype(np.float32)).cuda() for _ in range(12)]
    config = reset_config(tau0=6.0, top_k=50)

    def run(state, slots=None, pick=slice(None)):
        last = torch.full((seq[0][pick].shape[0],), -1, device="cuda")
        tokens = []
        for z in seq:
            out = decode_step(state, z[pick].contiguous(), last, slots=slots)
            tokens.append(out.tokens)
            last = out.tokens
        return torch.stack(tokens).cpu()

    a = run(ReSETState(config, 6, vocab, device="cuda", seed=9))
    b = run(ReSETState(config, 6, vocab, device="cuda", seed=9))
    assert torch.equal(a, b)
    chosen = [4, 1]
    sub = run(ReSETState(config, 6, vocab, device="cuda", seed=9),
              slots=torch.tensor(chosen, device="cuda"), pick=chosen)
    assert torch.equal(sub, a[:, chosen])


@pytest.mark.parametrize("top_k,fused,resident", [(0, "0", "1"), (0, "0", "0"), (40, "0", "1"), (0, "1", "1")])
def test_cuda_graph_capture_replays_like_eager(top_k, fused, resident, monkeypatch):
    monkeypatch.setenv("RESET_NATIVE_SAMPLER_FUSED", fused)  # "1": the one-kernel step (no top-k)
    monkeypatch.setenv("RESET_NATIVE_SAMPLER_RESIDENT", resident)  # "1": the resident step (no top-k)
    rng = np.random.default_rng(7)
    rows, vocab = 4, 151936
    config = reset_config(top_k=top_k)
    eager = ReSETState(config, rows, vocab, device="cuda", seed=1)
    graphed = ReSETState(config, rows, vocab, device="cuda", seed=1)

    def next_logits():
        return torch.from_numpy(rng.standard_normal((rows, vocab)).astype(np.float32) * 3).cuda()

    replay_like_eager(capture_decode_step(graphed), eager, next_logits, steps=10)
    graphed.check_errors()


def test_cuda_bad_input_sets_the_error_flag():
    rows, vocab = 3, 64
    state = ReSETState(reset_config(), rows, vocab, device="cuda")
    z = torch.zeros(rows, vocab, device="cuda")
    z[1, 5] = float("nan")
    out = decode_step(state, z, torch.full((rows,), -1, device="cuda"))
    assert out.tokens[1].item() == -1 and out.tokens[0].item() >= 0
    with pytest.raises(ValueError, match="NaN"):
        state.check_errors()
    state.check_errors()  # the flag was cleared
    z[1, 5] = float("inf")
    out = decode_step(state, z, torch.full((rows,), -1, device="cuda"))
    assert out.tokens[1].item() == -1
    with pytest.raises(ValueError, match=r"NaN or \+inf"):
        state.check_errors()
    z[1] = float("-inf")
    decode_step(state, z, torch.full((rows,), -1, device="cuda"))
    with pytest.raises(ValueError, match="all -inf"):
        state.check_errors()
    before = state.snapshot()
    decode_step(state, torch.zeros(rows, vocab, device="cuda"), torch.tensor([0, vocab, 1], device="cuda"))
    with pytest.raises(ValueError, match="last_tokens"):
        state.snapshot()  # methods that synchronise report it too
    after = state.snapshot()
    np.testing.assert_array_equal(after["ints"][1], before["ints"][1])  # the bad row's slot is unchanged
    decode_step(state, torch.zeros(2, vocab, device="cuda"), torch.full((2,), -1, device="cuda"),
                slots=torch.tensor([0, 5], device="cuda"))
    with pytest.raises(ValueError, match="slot"):
        state.check_errors()
    for bad, exc in [(lambda: decode_step(state, z.cpu(), torch.full((rows,), -1, device="cuda")), ValueError),
                     (lambda: decode_step(state, z.double(), torch.full((rows,), -1, device="cuda")), TypeError),
                     (lambda: decode_step(state, z, torch.full((rows,), -1, device="cuda", dtype=torch.int32)),
                      TypeError),
                     (lambda: decode_step(state, z[:, :10], torch.full((rows,), -1, device="cuda")), ValueError)]:
        with pytest.raises(exc):
            bad()


def test_cuda_update_matches_cpu_update():
    rng = np.random.default_rng(8)
    rows, vocab = 32, 50
    config = reset_config(window=3)
    cpu, gpu = ReSETState(config, rows, vocab), ReSETState(config, rows, vocab, device="cuda")
    for _ in range(100):
        h = rng.exponential(1.0, rows).astype(np.float32)
        last = rng.choice([3, 7, 11, 20, -1], size=rows)
        want = cpu.update(h, last)
        got = gpu.update(torch.from_numpy(h).cuda(), torch.from_numpy(last).cuda())
        np.testing.assert_array_equal(got.cpu().numpy(), want)
    gpu.update(torch.tensor([float("nan")] + [0.0] * (rows - 1), device="cuda"),
               torch.full((rows,), -1, device="cuda"))
    with pytest.raises(ValueError, match="entropy"):
        gpu.check_errors()
