"""The CUDA decode step (docs/sampler.md, CUDA details) on batch sizes 1, 2, 7 and 64, vocabularies
of one chunk, several chunks with a short last one, and 151936, every logits dtype, and greedy /
fixed-temperature / top-p / ReSET + top-k + top-p configurations, with ties. Checked against the
CPU path (entropies, greedy tokens, temperatures and the state bit for bit) and against a numpy
re-implementation of the kernels' fixed-point draw (the exact token, except where a uniform or the
top-p target lies within the kernels' exp rounding of a boundary). Also rows that are not 16-byte
aligned, several kinds of bad row in one launch, duplicate slots and 600000-wide rows.
Status (session 3): they passed on a GPU against the one-launch prototype (branch sampler4, commit 58ffaf9,
bit-identical by design), not yet against these kernels: no device time was left."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from reset_native import _core  # noqa: E402
from reset_native.sampler import ReSETConfig, ReSETState, decode_step  # noqa: E402
from test_sampler_reference import reference_distribution  # noqa: E402

pytestmark = pytest.mark.gpu
S = _core.sampler
NEWLINE, DOUBLE = (3, 7), (11,)
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def kernel_draw(z, temperature, top_k, top_p, u):
    """(token, sure): the CUDA kernel's draw recomputed in numpy. Weights round(exp((z - max) / T) *
    2^24) with the kernel's float32 rounding of (z - max) and of the product with 1/T; top-k keeps
    z >= the k-th largest value; top-p keeps z >= the largest value K whose mass(z >= K) reaches
    top_p * (kept mass); the token is the inverse CDF of floor(u * total) over the kept integer
    weights in index order. The kernel's __expf differs from exp by up to 2 ulp plus the float32
    rounding of its argument (|m| * 2^-24 relative), and a weight may round the other way; these
    errors vary in sign from token to token, so a sum of n weights is modelled as off by at most
    6 standard deviations of a random walk. `sure` is False when that could move the top-p
    threshold or the draw across a token boundary."""
    z = np.asarray(z, np.float32)
    with np.errstate(invalid="ignore"):
        m = ((z - z.max()).astype(np.float32) * np.float32(1.0 / temperature)).astype(np.float32)
    e = np.exp(m.astype(np.float64)) * 2.0 ** 24
    w = np.floor(e + 0.5)
    var = (e * (1.2e-7 + np.abs(np.where(np.isfinite(m), m, 0.0)) * 6e-8)) ** 2 + 0.25  # per weight

    def error(var_sum):  # bound on |kernel sum - w sum| for weights of variance sum var_sum
        return 6.0 * np.sqrt(var_sum) + 2.0

    keep = np.ones(z.size, bool)
    if 0 < top_k < z.size:
        keep = z >= np.sort(z)[-top_k]
    sure = True
    if top_p < 1.0:
        idx = np.flatnonzero(keep)
        order = idx[np.argsort(-z[idx], kind="stable")]
        zs = z[order]
        cum, cum_var = np.cumsum(w[order]), np.cumsum(var[order])
        ends = np.flatnonzero(np.append(zs[1:] != zs[:-1], True))  # last position of each distinct value
        target = top_p * cum[-1]
        g = min(int(np.searchsorted(cum[ends], target, side="left")), ends.size - 1)  # first group reaching it
        slack = top_p * error(cum_var[-1])
        sure &= bool(cum[ends[g]] - target > error(cum_var[ends[g]]) + slack)
        if g > 0:
            sure &= bool(target - cum[ends[g - 1]] > error(cum_var[ends[g - 1]]) + slack)
        keep &= z >= zs[ends[g]]
    kept, kept_var = np.where(keep, w, 0.0), np.where(keep, var, 0.0)
    total = kept.sum()
    target = min(np.floor(u * total), total - 1)
    cum = np.cumsum(kept)
    token = int(np.searchsorted(cum, target, side="right"))
    err = error(kept_var[:token + 1].sum()) + u * error(kept_var.sum()) + 1
    sure &= bool(target - (cum[token] - kept[token]) > err and cum[token] - 1 - target > err)
    return token, sure


def make_logits(rng, rows, vocab, step):
    """Random rows with scale 0.5-3, frequent newline tokens, and per row kind: ties of the maximum
    across chunk borders, -inf runs, both zeros, and a tied top-k boundary."""
    z = (rng.standard_normal((rows, vocab)) * rng.uniform(0.5, 3, (rows, 1))).astype(np.float32)
    if vocab > 11:
        z[:, 3] += rng.uniform(0, 6)
    for r in range(rows):
        kind = (r + step) % 4
        if kind == 0:  # the maximum twice, the second copy in a later chunk when there is one
            a, b = int(rng.integers(0, vocab // 2)), int(rng.integers(vocab // 2, vocab))
            z[r, a] = z[r, b] = z[r].max() + 1.0
        elif kind == 1:  # -inf runs
            z[r, ::3] = -np.inf
        elif kind == 2:
            z[r, :2] = [0.0, -0.0]
            z[r, -4:] = z[r].max()  # the maximum four times at the end (short last chunk)
    return z


CONFIGS = {
    "greedy": lambda vocab: ReSETConfig.fixed(0.0),
    "fixed": lambda vocab: ReSETConfig.fixed(0.8),
    "top_p": lambda vocab: ReSETConfig.fixed(1.0, top_p=0.9),
    "reset_top_k_top_p": lambda vocab: ReSETConfig(t_low=0.5, tau0=2.0, t_high=1.1, window=4, newline_ids=NEWLINE,
                                                    double_newline_ids=DOUBLE, top_p=0.8, top_k=min(20, vocab - 1)),
}
SHAPES = [(1, 37), (64, 37), (2, 2048), (7, 4096), (2, 6151), (7, 6151), (1, 151936), (7, 151936), (64, 151936)]


@pytest.mark.parametrize("mode", list(CONFIGS))
@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("rows,vocab", SHAPES)
def test_cuda_batches_match_cpu_and_kernel_reference(rows, vocab, dtype, mode):
    rng = np.random.default_rng(rows * 100003 + vocab + len(mode) * 7 + len(dtype))
    config, seed = CONFIGS[mode](vocab), 5
    gpu, cpu = ReSETState(config, rows, vocab, device="cuda", seed=seed), ReSETState(config, rows, vocab, seed=seed)
    last = np.full(rows, -1)
    exact = unsure = 0
    check = range(rows) if rows * vocab <= 2 * 151936 else range(0, rows, 4)  # the reference is O(V log V)
    for step in range(3):
        z = torch.from_numpy(make_logits(rng, rows, vocab, step)).to(DTYPES[dtype])
        values = z.float().numpy()  # what the kernel sees
        out = decode_step(gpu, z.cuda(), torch.from_numpy(last).cuda())
        tokens, temps, ents = (out.tokens.cpu().numpy(), out.temperatures.cpu().numpy(), out.entropies.cpu().numpy())
        ref = decode_step(ReSETState(config, rows, vocab, seed=seed), z, np.full(rows, -1))  # CPU path
        np.testing.assert_allclose(ents, ref.entropies, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(temps, cpu.update(ents, last))  # the same state machine, exactly
        for r in check:
            if temps[r] <= S.GREEDY_TEMPERATURE:
                assert tokens[r] == np.argmax(values[r]), (r, step)  # the first maximum
                if mode == "greedy":
                    assert tokens[r] == ref.tokens[r]
                continue
            t = config.t_low if temps[r] == np.float32(config.t_low) else config.t_high
            u = S.uniform(S.default_slot_seed(seed, r), step)
            want, sure = kernel_draw(values[r], t, config.top_k, config.top_p, u)
            if sure:
                assert tokens[r] == want, (r, step, tokens[r], want)
                # ... which the CPU path's float64 rule keeps too (top-k and top-p ties included)
                assert reference_distribution(values[r], t, config.top_k, config.top_p)[tokens[r]] > 0, (r, step)
                exact += 1
            else:
                unsure += 1
        last = tokens
    gpu.check_errors()
    for key, value in cpu.snapshot().items():
        np.testing.assert_array_equal(gpu.snapshot()[key], value, err_msg=key)
    # Wide rows put the top-p threshold among tail tokens of tiny weight: those draws are often
    # within rounding of a boundary. Narrow rows must be checked mostly exactly.
    if mode != "greedy" and vocab < 10000:
        assert exact >= unsure, (exact, unsure)


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_cuda_unaligned_rows_match_contiguous_rows(dtype):
    rows, vocab = 7, 6151
    rng = np.random.default_rng(3)
    wide = torch.from_numpy(rng.standard_normal((rows, vocab + 3)).astype(np.float32) * 2).to(DTYPES[dtype]).cuda()
    view = wide[:, 1:vocab + 1]  # rows start off 16-byte boundaries
    config = ReSETConfig.fixed(1.0, top_p=0.9, top_k=100)
    a, b = (ReSETState(config, rows, vocab, device="cuda", seed=2) for _ in range(2))
    last = torch.full((rows,), -1, device="cuda")
    got, want = decode_step(a, view, last), decode_step(b, view.contiguous(), last)
    for x, y in zip(got, want):
        assert torch.equal(x, y)


def test_cuda_bad_rows_in_one_launch():
    rows, vocab = 7, 6151
    state = ReSETState(ReSETConfig.fixed(1.0, top_p=0.9), 8, vocab, device="cuda", seed=1)
    z = torch.randn(rows, vocab, device="cuda")
    z[1, 4000] = float("nan")
    z[2] = float("-inf")
    z[3, 7] = float("inf")
    last = torch.tensor([-1, -1, -1, -1, vocab, -1, -1], device="cuda")
    slots = torch.tensor([0, 1, 2, 3, 4, 0, 9], device="cuda")  # row 5 repeats row 0's slot; 9 is outside
    before = state.snapshot()
    out = decode_step(state, z, last, slots=slots)
    tokens, temps = out.tokens.cpu().numpy(), out.temperatures.cpu().numpy()
    kept = [r for r in (0, 5) if tokens[r] >= 0]  # the two rows of slot 0: exactly one of them goes on
    assert len(kept) == 1 and temps[kept[0]] == 1.0
    rejected = [1, 2, 3, 4, 6, 5 if kept == [0] else 0]
    assert (tokens[rejected] == -1).all() and np.isnan(temps[rejected]).all()
    with pytest.raises(ValueError) as info:
        state.check_errors()
    for text in ("NaN or +inf", "all -inf", "last_tokens", "slot index", "same slot"):
        assert text in str(info.value)
    after = state.snapshot()
    assert after["ints"][0, 1] == 1  # slot 0 advanced once
    for slot in range(1, 8):
        np.testing.assert_array_equal(after["ints"][slot], before["ints"][slot])
        np.testing.assert_array_equal(after["sums"][slot], before["sums"][slot])


def test_cuda_duplicate_slot_keeps_one_valid_row():
    vocab = 100
    state = ReSETState(ReSETConfig.fixed(0.0), 4, vocab, device="cuda")
    z = torch.randn(3, vocab, device="cuda")
    # Row 0 is rejected on its token id and claims nothing; of rows 1 and 2, exactly one gets slot 2.
    out = decode_step(state, z, torch.tensor([vocab + 5, -1, -1], device="cuda"),
                      slots=torch.tensor([2, 2, 2], device="cuda"))
    tokens = out.tokens.cpu().tolist()
    assert tokens[0] == -1
    assert sorted(tokens[1:]) == sorted([-1, int(z[1 if tokens[1] >= 0 else 2].argmax())])
    with pytest.raises(ValueError, match="same slot"):
        state.check_errors()
    assert state.snapshot()["ints"][2, 1] == 1


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_cuda_wide_rows_600000(dtype):
    """600000 logits (293 chunks): greedy, entropy and the exact top-p draw."""
    rows, vocab = 2, 600000
    rng = np.random.default_rng(9)
    z = torch.from_numpy(rng.standard_normal((rows, vocab)).astype(np.float32) * 3).to(DTYPES[dtype])
    z[0, vocab - 1] = 40.0
    greedy = ReSETState(ReSETConfig.fixed(0.0), rows, vocab, device="cuda")
    out = decode_step(greedy, z.cuda(), torch.full((rows,), -1, device="cuda"))
    assert out.tokens.cpu().tolist() == [vocab - 1, int(z[1].float().argmax())]
    ref = decode_step(ReSETState(ReSETConfig.fixed(0.0), rows, vocab), z, np.full(rows, -1))
    np.testing.assert_allclose(out.entropies.cpu().numpy(), ref.entropies, rtol=1e-5, atol=1e-6)
    state = ReSETState(ReSETConfig.fixed(1.0, top_p=0.5), rows, vocab, device="cuda", seed=3)
    tokens = decode_step(state, z.cuda(), torch.full((rows,), -1, device="cuda")).tokens.cpu().numpy()
    values = z.float().numpy()
    for r in range(rows):
        want, sure = kernel_draw(values[r], 1.0, 0, 0.5, S.uniform(S.default_slot_seed(3, r), 0))
        assert tokens[r] == want or not sure
    state.check_errors()
