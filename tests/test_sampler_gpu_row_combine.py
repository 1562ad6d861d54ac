"""The row combine of the CUDA decode step's entropy parts (docs/sampler.md, CUDA details: one warp, max
first, then each chunk's sums rescaled once and added in a fixed tree) on rows built to stress it:
chunk maxima hundreds of nats apart (rescale factors that underflow), whole chunks of -inf (parts that
add nothing), ties of the maximum across chunks (the first index wins, also for -0 against +0), NaN
in one chunk (the row is rejected, its neighbours are not), and rows of more chunks than the combine
keeps in registers (V = 300000: 147 chunks, a second read of the parts), and a maximum tied inside
one chunk across the warps of its block. Entropies are checked
against fp64 numpy, greedy tokens against numpy's first argmax, and the three GPU paths (kernels,
one kernel, resident), which share the combine, against each other bit for bit."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from reset_native.sampler import ReSETConfig, ReSETState, decode_step  # noqa: E402
from test_sampler_reference import reference_entropy  # noqa: E402

pytestmark = pytest.mark.gpu
CHUNK = 2048  # detail::kChunk
PATHS = {"kernels": ("0", "0"), "one-kernel": ("1", "0"), "resident": ("0", "1")}  # FUSED, RESIDENT


def _rows(vocab, seed):
    """[rows, vocab] float32 logits, one stress case per row (docstring), and the rows that are bad."""
    rng = np.random.default_rng(seed)
    chunks = -(-vocab // CHUNK)
    z = rng.standard_normal((9, vocab)).astype(np.float32)
    chunk_of = np.arange(vocab) // CHUNK
    # 0: chunk offsets spread over ~200 nats, the largest in a middle chunk.
    offsets = np.linspace(-150.0, 50.0, chunks)
    rng.shuffle(offsets)
    z[0] += offsets[chunk_of].astype(np.float32)
    # 1: every other chunk -inf, and the first and last chunks too.
    dead = (chunk_of % 2 == 1) | (chunk_of == 0) | (chunk_of == chunks - 1)
    z[1, dead] = -np.inf
    # 2: the maximum tied in three chunks: the first of them is the token.
    top = z[2].max() + 1.0
    z[2, [CHUNK * (chunks - 1) + 3, CHUNK + 17, CHUNK * (chunks // 2) + 5]] = top
    # 3: -0 and +0 tie as the maximum, -0 first.
    z[3] = -np.abs(z[3]) - 1.0
    z[3, CHUNK * (chunks // 2) + 1] = -0.0
    z[3, CHUNK * (chunks - 1)] = 0.0
    # 4: NaN in one chunk: rejected.
    z[4, CHUNK * (chunks // 3) + 9] = np.nan
    # 5: one logit dominates by 60 nats: entropy ~1e-20 (absolute tolerance).
    z[5, vocab - 1] = z[5].max() + 60.0
    # 6: all logits equal: entropy log(V), every chunk's max tied, the first index wins.
    z[6] = 0.25
    # 7: plain N(0, 3^2).
    z[7] *= 3.0
    # 8: the maximum tied inside one chunk, in different warps and thread slots of its block (a thread
    # holds logits t, t + 256, ...): index 700 (thread 188, warp 5) comes before 773 (thread 5, warp 0).
    top = z[8].max() + 0.5
    z[8, [CHUNK + 773, CHUNK + 1500, CHUNK + 700]] = top
    return z, [4]


def _run(z, config, path, monkeypatch):
    fused, resident = PATHS[path]
    monkeypatch.setenv("RESET_NATIVE_SAMPLER_FUSED", fused)
    monkeypatch.setenv("RESET_NATIVE_SAMPLER_RESIDENT", resident)
    rows, vocab = z.shape
    state = ReSETState(config, rows, vocab, device="cuda", seed=5)
    out = decode_step(state, torch.from_numpy(z).cuda(), torch.full((rows,), -1, device="cuda"))
    tokens, temps, ents = (t.cpu().numpy() for t in (out.tokens, out.temperatures, out.entropies))
    with pytest.raises(ValueError, match="NaN"):
        state.check_errors()
    return tokens, temps, ents


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("vocab", [6151, 151936, 300000])
def test_cuda_row_combine_matches_fp64_and_first_argmax(vocab, path, monkeypatch):
    z, bad = _rows(vocab, seed=vocab)
    tokens, temps, ents = _run(z, ReSETConfig.fixed(0.0), path, monkeypatch)
    for r in range(z.shape[0]):
        if r in bad:
            assert tokens[r] == -1 and np.isnan(temps[r])
            continue
        np.testing.assert_allclose(ents[r], reference_entropy(z[r]), rtol=1e-5, atol=1e-6, err_msg=f"row {r}")
        assert tokens[r] == int(np.argmax(z[r])), f"row {r}"  # numpy: the first index of the maximum
    assert tokens[2] == CHUNK + 17 and tokens[6] == 0 and tokens[8] == CHUNK + 700
    assert tokens[3] == CHUNK * (-(-vocab // CHUNK) // 2) + 1  # -0 == +0: the first one


@pytest.mark.parametrize("vocab", [6151, 151936, 300000])
def test_cuda_row_combine_is_the_same_bits_on_every_path(vocab, monkeypatch):
    z, _ = _rows(vocab, seed=vocab + 1)
    config = ReSETConfig(t_low=0.5, tau0=2.0, t_high=1.1, window=4, top_p=0.8)
    want = _run(z, config, "kernels", monkeypatch)
    for path in ("one-kernel", "resident"):
        got = _run(z, config, path, monkeypatch)
        for name, a, b in zip(("tokens", "temperatures", "entropies"), got, want):
            np.testing.assert_array_equal(a, b, err_msg=f"{path}: {name}")
