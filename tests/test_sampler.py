"""reset_native.sampler on the CPU: entropy, sampling distribution, greedy, seeds and batch
independence, dtypes, calibration, the CLI, and every bad input."""
import json
import math

import numpy as np
import pytest

from reset_native import _core
from reset_native.sampler import (DecodeOutput, ReSETConfig, ReSETState, calibrate_tau0, decode_step,
                                  newline_token_ids)
from test_sampler_reference import assert_follows, expected_token, reference_distribution, reference_entropy

torch = pytest.importorskip("torch") if False else None
try:
    import torch
except ImportError:  # the CPU API works without torch
    torch = None


def fixed_state(rows, vocab, temperature, top_k=0, top_p=1.0, seed=0):
    return ReSETState(ReSETConfig.fixed(temperature, top_k=top_k, top_p=top_p), rows, vocab, seed=seed)


# ------------------------------------------------------------------ entropy
def test_entropy_matches_float64_reference_on_wide_rows():
    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((4, 151936)) * np.array([[0.1], [1.0], [4.0], [12.0]])).astype(np.float32)
    logits[2, ::7] = -np.inf
    out = decode_step(fixed_state(4, 151936, 1.0), logits, np.full(4, -1))
    np.testing.assert_allclose(out.entropies, [reference_entropy(r) for r in logits], rtol=1e-5)


def test_entropy_when_the_maximum_moves_late_and_every_chunk_raises_it():
    """The one-read kernel sums each chunk against the running maximum and re-sums a chunk that
    raises it: ascending rows raise it in every chunk, a late spike in one."""
    rng = np.random.default_rng(4)
    vocab = 151936 - 5  # a ragged tail after the last full vector
    ascending = np.sort(rng.standard_normal(vocab) * 3).astype(np.float32)
    spike = (rng.standard_normal(vocab) * 2).astype(np.float32)
    spike[vocab - 3] = 40.0  # in the scalar tail
    spike[100_000] = 39.0    # in a middle chunk
    descending = ascending[::-1].copy()
    logits = np.stack([ascending, spike, descending])
    out = decode_step(fixed_state(3, vocab, 0.0), logits, np.full(3, -1))
    np.testing.assert_allclose(out.entropies, [reference_entropy(r) for r in logits], rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(out.tokens, [vocab - 1, vocab - 3, 0])


def test_nan_or_pos_inf_anywhere_in_a_row_is_rejected():
    vocab = 2000 + 3
    for position in (0, 7, 517, 1500, vocab - 1):  # first chunk, vector body, later chunk, tail
        for bad in (np.nan, np.inf):
            row = np.zeros((1, vocab), np.float32)
            row[0, 100] = 5.0
            row[0, position] = bad
            with pytest.raises(ValueError, match="NaN or \\+inf"):
                decode_step(fixed_state(1, vocab, 1.0), row, [-1])


def test_entropy_hand_values():
    rows = np.array([[0.0] * 8, [5.0, -np.inf, -np.inf, -np.inf, -np.inf, -np.inf, -np.inf, -np.inf],
                     [1e4, 1e4, -1e4, -1e4, -np.inf, -1e4, -1e4, -1e4]], dtype=np.float32)
    out = decode_step(fixed_state(3, 8, 1.0), rows, [-1, -1, -1])
    np.testing.assert_allclose(out.entropies, [math.log(8), 0.0, math.log(2)], rtol=1e-6, atol=1e-7)
    assert out.tokens[1] == 0  # the only finite token


def test_entropy_low_precision_inputs():
    rng = np.random.default_rng(1)
    z16 = (rng.standard_normal((3, 5000)) * 3).astype(np.float16)
    out = decode_step(fixed_state(3, 5000, 0.0), z16, [-1, -1, -1])
    np.testing.assert_allclose(out.entropies, [reference_entropy(r.astype(np.float64)) for r in z16], rtol=1e-5)
    np.testing.assert_array_equal(out.tokens, z16.astype(np.float32).argmax(axis=1))
    if torch is not None:
        zb = torch.from_numpy(rng.standard_normal((3, 5000)).astype(np.float32) * 3).to(torch.bfloat16)
        outb = decode_step(fixed_state(3, 5000, 0.0), zb, torch.full((3,), -1))
        assert isinstance(outb.tokens, torch.Tensor) and outb.tokens.dtype == torch.int64
        np.testing.assert_allclose(outb.entropies.numpy(), [reference_entropy(r) for r in zb.float().numpy()],
                                   rtol=1e-5)
        np.testing.assert_array_equal(outb.tokens.numpy(), zb.float().argmax(dim=1).numpy())


def test_strided_rows_are_read_correctly():
    rng = np.random.default_rng(2)
    big = rng.standard_normal((4, 200)).astype(np.float32)
    view = big[:, 50:150]  # non-contiguous rows, unit inner stride
    out = decode_step(fixed_state(4, 100, 1.0), view, [-1] * 4)
    np.testing.assert_allclose(out.entropies, [reference_entropy(r) for r in view], rtol=1e-5)


# ------------------------------------------------------------------ sampling distribution
@pytest.mark.parametrize("temperature,top_k,top_p", [(1.0, 0, 1.0), (0.5, 3, 1.0), (1.3, 0, 0.7),
                                                     (0.8, 6, 0.9), (2.0, 4, 0.5)])
def test_samples_follow_restricted_softmax(temperature, top_k, top_p):
    rng = np.random.default_rng(int(temperature * 10) + top_k)
    vocab, rows, steps = 12, 2000, 6
    z = rng.standard_normal(vocab).astype(np.float32) * 1.5
    z[[2, 9]] = z[5]  # exact ties exercise the tie rules
    z[[3, 7]] = [0.0, -0.0]  # and the two zeros are equal
    logits = np.tile(z, (rows, 1))
    state = fixed_state(rows, vocab, temperature, top_k=top_k, top_p=top_p, seed=5)
    samples = []
    last = np.full(rows, -1)
    for _ in range(steps):
        out = decode_step(state, logits, last)
        assert np.all(out.temperatures == np.float32(temperature))
        samples.append(out.tokens)
        last = out.tokens
    assert_follows(np.concatenate(samples), reference_distribution(z, temperature, top_k, top_p), vocab)


def test_single_row_sampler_follows_distribution_across_positions():
    """One slot over many positions (the random stream advances with the position)."""
    z = np.array([1.0, 0.5, 0.0, -0.5, 2.0, -np.inf], dtype=np.float32)
    state = fixed_state(1, 6, 0.9, top_p=0.95, seed=3)
    samples = [int(decode_step(state, z[None], [-1]).tokens[0]) for _ in range(6000)]
    assert_follows(np.array(samples), reference_distribution(z, 0.9, 0, 0.95), 6)


def test_reset_sampling_uses_the_chosen_temperature():
    """Under ReSET, rows given t_low are sampled at t_low: with t_low = 0 they are exactly argmax."""
    rng = np.random.default_rng(4)
    rows, vocab = 64, 50
    config = ReSETConfig(t_low=0.0, tau0=2.0, t_high=1.0)
    state = ReSETState(config, rows, vocab, seed=2)
    logits = (rng.standard_normal((rows, vocab)) * rng.uniform(0.1, 5, size=(rows, 1))).astype(np.float32)
    out = decode_step(state, logits, np.full(rows, -1))
    low = out.temperatures == 0.0
    assert 0 < low.sum() < rows
    np.testing.assert_array_equal(out.tokens[low], logits[low].argmax(axis=1))
    np.testing.assert_array_equal(out.entropies >= 2.0, ~low)  # first step: tau = tau0


def test_tokens_are_the_inverse_cdf_of_the_slot_uniform():
    """Each row's token is the float64 inverse CDF (index order) of its top-p set at the uniform of
    (slot seed, position); only a uniform within rounding of a CDF step may pick a neighbour."""
    rng = np.random.default_rng(9)
    rows, vocab, steps, seed = 8, 3000, 12, 21
    config = ReSETConfig(t_low=0.4, tau0=5.0, top_p=0.9)
    state = ReSETState(config, rows, vocab, seed=seed)
    order = np.arange(vocab)
    last = np.full(rows, -1)
    matches = 0
    for step in range(steps):
        z = (rng.standard_normal((rows, vocab)) * rng.uniform(0.5, 3, (rows, 1))).astype(np.float32)
        out = decode_step(state, z, last)
        for r in range(rows):
            u = _core.sampler.uniform(_core.sampler.default_slot_seed(seed, r), step)
            token, probs = expected_token(z[r], float(out.temperatures[r]), config.top_p, u, order)
            assert probs[out.tokens[r]] > 0
            matches += int(out.tokens[r] == token)
        last = out.tokens
    assert matches >= 0.98 * rows * steps, matches


def test_greedy_is_first_argmax():
    z = np.array([[0.0, 3.0, 1.0, 3.0], [-np.inf, -1.0, -1.0, -2.0]], dtype=np.float32)
    out = decode_step(fixed_state(2, 4, 0.0), z, [-1, -1])
    np.testing.assert_array_equal(out.tokens, [1, 1])
    np.testing.assert_array_equal(out.temperatures, [0.0, 0.0])


def test_native_sample_row_matches_distribution_with_uniforms():
    z = np.array([0.3, -1.0, 2.0, 2.0, 0.0], dtype=np.float32)
    probs = reference_distribution(z, 0.7, 0, 0.8)
    us = (np.arange(4000) + 0.5) / 4000  # stratified: the inverse CDF gives exact frequencies
    picks = np.array([_core.sampler.sample_row(z.ctypes.data, 5, 0.7, 0, 0.8, float(u)) for u in us])
    np.testing.assert_allclose(np.bincount(picks, minlength=5) / len(us), probs, atol=1e-3)


# ------------------------------------------------------------------ seeds and batch composition
def run_steps(state, logits_seq, slots=None):
    last = np.full(logits_seq[0].shape[0], -1)
    tokens, temps = [], []
    for logits in logits_seq:
        out = decode_step(state, logits, last, slots=slots)
        tokens.append(out.tokens.copy())
        temps.append(out.temperatures.copy())
        last = out.tokens
    return np.array(tokens), np.array(temps)


def test_determinism_per_seed():
    rng = np.random.default_rng(8)
    seq = [rng.standard_normal((5, 300)).astype(np.float32) for _ in range(20)]
    config = ReSETConfig(t_low=0.5, tau0=5.0, top_p=0.95, top_k=40)
    a = run_steps(ReSETState(config, 5, 300, seed=1), seq)
    b = run_steps(ReSETState(config, 5, 300, seed=1), seq)
    c = run_steps(ReSETState(config, 5, 300, seed=2), seq)
    np.testing.assert_array_equal(a[0], b[0])
    assert (a[0] != c[0]).mean() > 0.5


def test_tokens_do_not_depend_on_batch_composition():
    rng = np.random.default_rng(9)
    seq = [rng.standard_normal((8, 200)).astype(np.float32) for _ in range(15)]
    config = ReSETConfig(t_low=0.4, tau0=5.0, top_p=0.9)
    full = ReSETState(config, 8, 200, seed=21)
    tokens8, temps8 = run_steps(full, seq)
    # The same three sequences alone, in another order, in a smaller state keyed with their seeds.
    chosen = [6, 1, 3]
    small = ReSETState(config, 3, 200, seed=99)
    for row, slot in enumerate(chosen):
        small.reset(row, seed=full.slot_seed(slot))
    tokens3, temps3 = run_steps(small, [x[chosen] for x in seq])
    np.testing.assert_array_equal(tokens3, tokens8[:, chosen])
    np.testing.assert_array_equal(temps3, temps8[:, chosen])
    # ... and through `slots` in a state of 8 where only those rows are present.
    again = ReSETState(config, 8, 200, seed=21)
    tokens_s, _ = run_steps(again, [x[chosen] for x in seq], slots=np.array(chosen))
    np.testing.assert_array_equal(tokens_s, tokens8[:, chosen])


def test_reset_restarts_the_stream():
    z = np.random.default_rng(1).standard_normal((1, 100)).astype(np.float32)
    state = fixed_state(1, 100, 1.0, seed=4)
    first = [int(decode_step(state, z, [-1]).tokens[0]) for _ in range(10)]
    state.reset(0)
    assert [int(decode_step(state, z, [-1]).tokens[0]) for _ in range(10)] == first
    assert state.snapshot()["ints"][0, 1] == 10


# ------------------------------------------------------------------ config, outputs, fixed mode
def test_config_fixed_and_validation():
    c = ReSETConfig.fixed(0.6, top_p=0.95)
    assert (c.t_low, c.t_high, c.top_p, c.is_fixed) == (0.6, 0.6, 0.95, True)
    assert not ReSETConfig(t_low=0.1, tau0=0.55).is_fixed
    assert ReSETConfig(0.1, 0.5, newline_ids=np.array([5, 3, 5])).newline_ids == (3, 5)
    bad = [dict(t_low=-0.1), dict(t_high=float("nan")), dict(tau0=-1.0), dict(tau0=float("inf")), dict(window=0),
           dict(window=5000), dict(top_p=0.0), dict(top_p=1.5), dict(top_k=-1), dict(newline_ids=[-1]),
           dict(newline_ids=[4], double_newline_ids=[4])]
    for kw in bad:
        args = dict(t_low=0.1, tau0=0.5) | kw
        with pytest.raises(ValueError, match=list(kw)[0] if list(kw)[0] != "double_newline_ids" else "disjoint"):
            ReSETConfig(**args)
    for kw in [dict(t_low="0.1"), dict(window=2.5), dict(top_k=True), dict(newline_ids="\n")]:
        with pytest.raises(TypeError, match=list(kw)[0]):
            ReSETConfig(**(dict(t_low=0.1, tau0=0.5) | kw))


def test_decode_output_shape_and_kinds():
    out = decode_step(fixed_state(3, 10, 1.0), np.zeros((2, 10), np.float32), [-1, -1])
    assert isinstance(out, DecodeOutput)
    assert out.tokens.shape == (2,) and out.temperatures.dtype == np.float32 and out.entropies.dtype == np.float32


# ------------------------------------------------------------------ bad input
def test_bad_inputs_raise_and_leave_state_unchanged():
    state = ReSETState(ReSETConfig(0.2, 1.0, newline_ids=(1,)), 4, 16)
    before = state.snapshot()
    good = np.zeros((4, 16), np.float32)
    nan_row = good.copy()
    nan_row[2, 5] = np.nan
    ninf = good.copy()
    ninf[1] = -np.inf
    cases = [
        (ValueError, "NaN", lambda: decode_step(state, nan_row, [-1] * 4)),
        (ValueError, "all -inf", lambda: decode_step(state, ninf, [-1] * 4)),
        (ValueError, "vocabulary", lambda: decode_step(state, good, [-1, 16, 0, 0])),
        (ValueError, "vocabulary", lambda: decode_step(state, good, [-2, 0, 0, 0])),
        (ValueError, "shape", lambda: decode_step(state, good, [-1] * 3)),
        (ValueError, "batch_size", lambda: decode_step(state, np.zeros((5, 16), np.float32), [-1] * 5)),
        (ValueError, "columns", lambda: decode_step(state, np.zeros((4, 15), np.float32), [-1] * 4)),
        (ValueError, "2-D", lambda: decode_step(state, np.zeros(16, np.float32), [-1])),
        (TypeError, "float32", lambda: decode_step(state, good.astype(np.float64), [-1] * 4)),
        (TypeError, "integers", lambda: decode_step(state, good, [0.5] * 4)),
        (ValueError, "twice", lambda: decode_step(state, good[:2], [-1, -1], slots=[1, 1])),
        (ValueError, "outside", lambda: decode_step(state, good[:2], [-1, -1], slots=[0, 4])),
        (TypeError, "ReSETState", lambda: decode_step("state", good, [-1] * 4)),
        (ValueError, "entropies", lambda: state.update(np.array([0.1, -1.0, 0, 0], np.float32), [-1] * 4)),
        (ValueError, "entropies", lambda: state.update(np.array([0.1, np.nan, 0, 0]), [-1] * 4)),
        (ValueError, "vocabulary", lambda: state.update(np.zeros(4), [0, 0, 99, 0])),
        (ValueError, "slot", lambda: state.reset(4)),
        (ValueError, "seed", lambda: state.reset(0, seed=-1)),
    ]
    for exc, text, call in cases:
        with pytest.raises(exc, match=text):
            call()
    after = state.snapshot()
    for key in before:
        np.testing.assert_array_equal(before[key], after[key])


def test_bad_state_arguments():
    c = ReSETConfig(0.1, 0.5, newline_ids=(20,))
    with pytest.raises(ValueError, match="newline_ids"):
        ReSETState(c, 1, 20)
    with pytest.raises(ValueError, match="batch_size"):
        ReSETState(ReSETConfig(0.1, 0.5), 0, 20)
    with pytest.raises(ValueError, match="vocab_size"):
        ReSETState(ReSETConfig(0.1, 0.5), 1, 0)
    with pytest.raises(ValueError, match="device"):
        ReSETState(ReSETConfig(0.1, 0.5), 1, 5, device="tpu")
    with pytest.raises(TypeError, match="config"):
        ReSETState({"t_low": 0.1}, 1, 5)
    import reset_native

    if not reset_native.has_cuda():
        with pytest.raises(NotImplementedError, match="CUDA"):
            ReSETState(ReSETConfig(0.1, 0.5), 1, 5, device="cuda")


@pytest.mark.skipif(torch is None, reason="needs torch")
def test_cpu_state_rejects_cuda_like_inputs_and_keeps_tensor_kinds():
    state = fixed_state(2, 8, 1.0)
    out = decode_step(state, torch.zeros(2, 8), torch.tensor([-1, -1]))
    assert all(isinstance(x, torch.Tensor) for x in out)
    temps = ReSETState(ReSETConfig(0.1, 0.5), 2, 8).update(torch.tensor([0.1, 2.0]), torch.tensor([-1, -1]))
    assert isinstance(temps, torch.Tensor) and temps.tolist() == pytest.approx([0.1, 1.0])


# ------------------------------------------------------------------ calibration and CLI
def test_calibrate_tau0():
    values = [0.1, 0.2, 0.3, 0.4, 0.5]
    assert calibrate_tau0(values) == pytest.approx(0.42)  # 80th percentile, linear: 0.4 + 0.2 * 0.1
    assert calibrate_tau0([[0.1, 0.2], np.array([0.3, 0.4, 0.5])], percentile=50) == pytest.approx(0.3)
    assert calibrate_tau0(np.array([[1.0, 3.0]]), percentile=0) == 1.0
    for bad, exc in [([], ValueError), ([0.1, float("nan")], ValueError), ([-0.5], ValueError),
                     (["a"], TypeError)]:
        with pytest.raises(exc):
            calibrate_tau0(bad)
    with pytest.raises(ValueError, match="percentile"):
        calibrate_tau0([0.1], percentile=101)


def test_cli_calibrate(tmp_path, capsys):
    from reset_native.cli import main

    path = tmp_path / "h.jsonl"
    path.write_text("0.1\n[0.2, 0.3]\n\n" + json.dumps({"entropies": [0.4, 0.5], "id": 3}) + "\n")
    assert main(["calibrate", str(path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["tau0"] == pytest.approx(0.42) and result["tokens"] == 5
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"other": 1}\n')
    assert main(["calibrate", str(bad)]) == 2
    assert "entropies" in capsys.readouterr().err


# ------------------------------------------------------------------ newline ids
class FakeTokenizer:
    def __init__(self, texts):
        self.texts = texts

    def __len__(self):
        return len(self.texts)

    def batch_decode(self, ids, skip_special_tokens=False):
        return [self.texts[i[0]] for i in ids]


def test_newline_token_ids_scans_decoded_text():
    tok = FakeTokenizer(["a", "\n", "\n\n", " \n", "x\n\ny", "\n", "\n\n\n", "b"])
    assert newline_token_ids(tok) == ((1, 5), (2, 4, 6))
    with pytest.raises(TypeError, match="tokenizer"):
        newline_token_ids(object())


def test_newline_token_ids_with_a_real_tokenizer():
    tokenizers = pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    vocab = {"[UNK]": 0, "a": 1, "\n": 2, "\n\n": 3, "b": 4}
    model = tokenizers.models.WordLevel(vocab=vocab, unk_token="[UNK]")
    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizers.Tokenizer(model), unk_token="[UNK]")
    assert newline_token_ids(tok) == ((2,), (3,))


def test_cuda_path_needs_a_cuda_state():
    with pytest.raises(ValueError, match="CUDA state"):
        ReSETState(ReSETConfig.fixed(0.5), 2, 100).cuda_path(1)
