"""The row combines of the CUDA decode step (docs/sampler.md, CUDA details): the top-p threshold
inside the boundary bin is found by counting (at most 256 candidates, one per thread) or by sorting
(up to 2048), and the kept masses of the bin stay in shared memory when a thread owns each chunk;
the slot's state update is prepared by the block of chunk 0 and finished by whichever block of the
row arrives last. Each is checked against independent references: the numpy model of the
kernels' draw, and the CPU state machine fed the GPU's entropies."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from reset_native import _core  # noqa: E402
from reset_native.sampler import ReSETConfig, ReSETState, decode_step  # noqa: E402
from test_sampler_gpu_batches import DTYPES, kernel_draw  # noqa: E402
from test_sampler_gpu_paths import feed_steps, gpu_state_machine_matches_cpu  # noqa: E402
from test_sampler_reference import reference_distribution  # noqa: E402

pytestmark = pytest.mark.gpu
S = _core.sampler
BIN_SCALE, BINS = np.float32(59.0), 1024  # detail::kBinScale, detail::kTopPBins


def boundary_bin_size(z, temperature, top_p):
    """Logits in the top-p boundary bin, with the kernels' bins: floor((max - z) / T * 59) (float32
    products, clamped to the last bin) over the logits of weight round(exp((z - max) / T) * 2^24) > 0;
    the boundary bin is the first, counted from the top, whose running mass reaches top_p of the total."""
    z = np.asarray(z, np.float32)
    inv_t = np.float32(1.0 / temperature)
    m = ((z - z.max()).astype(np.float32) * inv_t).astype(np.float32)
    w = np.floor(np.exp(m.astype(np.float64)) * 2.0 ** 24 + 0.5)
    d = ((z.max() - z).astype(np.float32) * inv_t).astype(np.float32)
    b = np.minimum((d * BIN_SCALE).astype(np.float32).astype(np.int64), BINS - 1)
    hist = np.bincount(b[w > 0], weights=w[w > 0], minlength=BINS)
    boundary = int(np.searchsorted(np.cumsum(hist), top_p * hist.sum(), side="left"))
    return int(((b == boundary) & (w > 0)).sum())


def _uniform_rows(rng, rows, vocab, spread):
    """Rows spread evenly over `spread` nats: about vocab / (59 * spread) logits per bin."""
    return (rng.random((rows, vocab)) * spread).astype(np.float32)


# (vocab, spread, candidates range): counted (<= 256) and sorted (257..2048) boundary bins, in rows of
# a few chunks (a thread owns each chunk) and of 75 chunks (the Qwen3 vocabulary).
CASES = {"count-6151": (6151, 1.0, (1, 256)), "sort-6151": (6151, 0.15, (257, 2048)),
         "count-151936": (151936, 30.0, (1, 256)), "sort-151936": (151936, 3.7, (257, 2048))}


def boundary_case_rows(case, rng_offset, rows=4, top_p=0.5, steps=3):
    """steps float32 arrays [rows, vocab] of CASES[case]'s rows (rng seeded from the case and rng_offset), each row's
    top-p boundary bin checked to hold the case's number of logits (the path under test)."""
    vocab, spread, (low, high) = CASES[case]
    rng = np.random.default_rng(vocab + int(spread * 100) + rng_offset)
    values = [_uniform_rows(rng, rows, vocab, spread) for _ in range(steps)]
    for z in values:
        for r in range(rows):
            assert low <= boundary_bin_size(z[r], 1.0, top_p) <= high, (case, r)
    return values


# bfloat16 rounds a 151936-wide row into tie groups of hundreds of logits: no counted bin there.
CASE_DTYPES = [(case, dtype) for case in CASES for dtype in ("float32", "bfloat16")
               if not (dtype == "bfloat16" and case == "count-151936")]


@pytest.mark.parametrize("path", ["kernels", "one-kernel", "resident"])
@pytest.mark.parametrize("case,dtype", CASE_DTYPES)
def test_cuda_boundary_bin_count_and_sort_match_the_kernel_reference(case, dtype, path, monkeypatch):
    monkeypatch.setenv("RESET_NATIVE_SAMPLER_FUSED", "1" if path == "one-kernel" else "0")
    monkeypatch.setenv("RESET_NATIVE_SAMPLER_RESIDENT", "1" if path == "resident" else "0")
    vocab, spread, (low, high) = CASES[case]
    rng = np.random.default_rng(vocab + int(spread * 100) + len(dtype))
    rows, top_p, seed = 4, 0.5, 21
    state = ReSETState(ReSETConfig.fixed(1.0, top_p=top_p), rows, vocab, device="cuda", seed=seed)
    last = torch.full((rows,), -1, device="cuda")
    checked = 0
    for step in range(3):
        z = torch.from_numpy(_uniform_rows(rng, rows, vocab, spread)).to(DTYPES[dtype])
        values = z.float().numpy()  # what the kernel sees
        tokens = decode_step(state, z.cuda(), last).tokens.cpu().numpy()
        for r in range(rows):
            assert low <= boundary_bin_size(values[r], 1.0, top_p) <= high, (case, r)  # the path under test
            want, sure = kernel_draw(values[r], 1.0, 0, top_p, S.uniform(S.default_slot_seed(seed, r), step))
            assert reference_distribution(values[r], 1.0, 0, top_p)[tokens[r]] > 0, (r, step)
            if sure:
                assert tokens[r] == want, (r, step, tokens[r], want)
                checked += 1
        last = torch.from_numpy(tokens).cuda()
    state.check_errors()
    assert checked >= rows * 3 // 2, checked


@pytest.mark.parametrize("prep_block", ["0", "1"])
@pytest.mark.parametrize("window", [1, 4096])
def test_cuda_slot_prepared_by_chunk_zero_matches_cpu(window, prep_block, monkeypatch):
    """Rows of 6 chunks: the last block to arrive is any of them (so the prepared slot comes through
    shared memory or through the workspace), with rows mapped to other slots and frequent step
    boundaries; by chunk 0's block or (RESET_NATIVE_SAMPLER_PREP_BLOCK=1) by an extra block."""
    monkeypatch.setenv("RESET_NATIVE_SAMPLER_RESIDENT", "0")
    monkeypatch.setenv("RESET_NATIVE_SAMPLER_FUSED", "0")
    monkeypatch.setenv("RESET_NATIVE_SAMPLER_PREP_BLOCK", prep_block)
    gpu_state_machine_matches_cpu(np.random.default_rng(window + 5), window, rows=9, vocab=5 * 2048 + 77, steps=30,
                                  seed=4)


@pytest.mark.parametrize("rows,vocab", [(1, 151936), (8, 151936), (3, 6151)])
def test_cuda_top_p_bins_grouping_does_not_change_the_step(rows, vocab, monkeypatch):
    """The bins pass takes any number of chunks per block (RESET_NATIVE_SAMPLER_BIN_CHUNKS; by default
    more as the batch grows): its sums are exact integers, so tokens, temperatures, entropies and
    state are the same bits for every grouping."""
    rng = np.random.default_rng(rows + vocab)
    config = ReSETConfig(t_low=0.5, tau0=2.0, t_high=1.1, window=4, newline_ids=(3, 7), top_p=0.9)
    logits = [torch.from_numpy((rng.standard_normal((rows, vocab)) * rng.uniform(0.5, 3, (rows, 1)))
                               .astype(np.float32)).cuda() for _ in range(3)]
    monkeypatch.setenv("RESET_NATIVE_SAMPLER_RESIDENT", "0")  # the bins pass is the kernels' path
    runs = []
    for per_block in ("1", "3", "1000"):
        monkeypatch.setenv("RESET_NATIVE_SAMPLER_BIN_CHUNKS", per_block)
        state = ReSETState(config, rows, vocab, device="cuda", seed=6)
        last = torch.full((rows,), -1, device="cuda")
        out = []
        for z in logits:
            step = decode_step(state, z, last)
            out.append(torch.stack([step.tokens.double(), step.temperatures.double(), step.entropies.double()]))
            last = step.tokens
        state.check_errors()
        runs.append((torch.stack(out).cpu(), state.snapshot()))
    for got, snapshot in runs[1:]:
        assert torch.equal(got, runs[0][0])
        for key, value in runs[0][1].items():
            np.testing.assert_array_equal(snapshot[key], value, err_msg=key)


@pytest.mark.parametrize("rows,vocab", [(1, 151936), (8, 151936), (7, 6151)])
def test_cuda_extra_preparing_block_gives_the_same_bits(rows, vocab, monkeypatch):
    """RESET_NATIVE_SAMPLER_PREP_BLOCK=1 (a block per chunk plus one that only prepares the slot) changes
    who prepares, not what: tokens, temperatures, entropies, errors and state are the same bits as the
    default, also with bad rows (NaN, +inf, all -inf, a bad token id). (Not with a repeated slot: which
    of its rows claims it first is a race, so two runs may keep different rows.)"""
    rng = np.random.default_rng(rows + vocab)
    config = ReSETConfig(t_low=0.5, tau0=2.0, t_high=1.1, window=4, newline_ids=(3, 7), top_p=0.9)
    z = [torch.from_numpy((rng.standard_normal((rows, vocab)) * rng.uniform(0.5, 3, (rows, 1)))
                          .astype(np.float32)).cuda() for _ in range(3)]
    last, slots = None, None
    if rows == 7:
        for step in z:
            step[1, 4000] = float("nan")
            step[2] = float("-inf")
            step[3, 7] = float("inf")
        last = [torch.tensor([-1, -1, -1, -1, vocab, -1, -1], device="cuda")] * 3
        slots = torch.tensor([6, 1, 2, 3, 4, 0, 5], device="cuda")  # rows map to other slots
    monkeypatch.setenv("RESET_NATIVE_SAMPLER_RESIDENT", "0")
    monkeypatch.setenv("RESET_NATIVE_SAMPLER_FUSED", "0")
    runs = []
    for on in ("0", "1"):
        monkeypatch.setenv("RESET_NATIVE_SAMPLER_PREP_BLOCK", on)
        runs.append(feed_steps(config, z, 3, last_tokens=last, slots=slots))
    np.testing.assert_array_equal(runs[1][0].numpy(), runs[0][0].numpy())  # NaN (rejected rows) == NaN here
    for key, value in runs[0][1].items():
        np.testing.assert_array_equal(runs[1][1][key], value, err_msg=key)
    assert runs[0][2] == runs[1][2]
