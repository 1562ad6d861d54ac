"""The native ReSET state machine against the Python re-implementation of the spec on long random
streams: identical temperatures at every step, for batch sizes 1..64 and windows 1..64."""
import numpy as np
import pytest

from reset_native.sampler import ReSETConfig, ReSETState, decode_step
from test_sampler_reference import ReferenceSlot, reference_entropy

VOCAB = 40
NEWLINE = (3, 7)
DOUBLE = (11,)


def random_stream(rng, steps, rows):
    """Entropies with frequent exact repeats (threshold ties) and tokens with many newlines."""
    pool = rng.uniform(0.0, 3.0, size=12).astype(np.float32)
    entropies = np.where(rng.random((steps, rows)) < 0.5, rng.choice(pool, size=(steps, rows)),
                         rng.exponential(0.8, size=(steps, rows))).astype(np.float32)
    entropies[rng.random((steps, rows)) < 0.05] = 0.0
    tokens = rng.integers(0, VOCAB, size=(steps, rows))
    special = rng.random((steps, rows))
    tokens[special < 0.25] = rng.choice(NEWLINE, size=(steps, rows))[special < 0.25]
    tokens[(special >= 0.25) & (special < 0.33)] = DOUBLE[0]
    tokens[0] = -1
    return entropies, tokens


@pytest.mark.parametrize("rows,window", [(1, 1), (1, 64), (5, 2), (16, 7), (64, 32), (33, 64), (8, 1)])
def test_update_matches_reference_on_long_streams(rows, window):
    rng = np.random.default_rng(rows * 100 + window)
    config = ReSETConfig(t_low=0.25, tau0=float(rng.uniform(0.3, 1.5)), t_high=1.0, window=window,
                         newline_ids=NEWLINE, double_newline_ids=DOUBLE)
    state = ReSETState(config, batch_size=rows, vocab_size=VOCAB)
    refs = [ReferenceSlot(config.t_low, config.tau0, config.t_high, window, NEWLINE, DOUBLE) for _ in range(rows)]
    steps = 400 if rows <= 16 else 150
    entropies, tokens = random_stream(rng, steps, rows)
    highs = 0
    for t in range(steps):
        temps = state.update(entropies[t], tokens[t])
        expected = np.array([refs[r].step(int(tokens[t, r]), entropies[t, r]) for r in range(rows)], np.float32)
        np.testing.assert_array_equal(temps, expected, err_msg=f"step {t}")
        highs += int((temps == 1.0).sum())
    assert 0 < highs < steps * rows  # both temperatures occur: the comparison is not vacuous
    snap = state.snapshot()
    assert list(snap["ints"][:, 1]) == [steps] * rows
    np.testing.assert_allclose(snap["sums"][:, 1], [r.gsum for r in refs], rtol=0, atol=0)


def test_update_with_slots_and_resets_matches_reference():
    """Rows map to changing subsets of slots; slots are reset for new sequences."""
    rng = np.random.default_rng(7)
    slots_total, window = 12, 4
    config = ReSETConfig(t_low=0.1, tau0=0.8, window=window, newline_ids=NEWLINE, double_newline_ids=DOUBLE)
    state = ReSETState(config, batch_size=slots_total, vocab_size=VOCAB)

    def new_ref():
        return ReferenceSlot(0.1, 0.8, 1.0, window, NEWLINE, DOUBLE)

    refs = [new_ref() for _ in range(slots_total)]
    started = [False] * slots_total
    for t in range(300):
        if t % 37 == 5:
            victim = int(rng.integers(slots_total))
            state.reset(victim)
            refs[victim], started[victim] = new_ref(), False
        rows = int(rng.integers(1, slots_total + 1))
        slots = rng.permutation(slots_total)[:rows]
        h = rng.exponential(0.7, size=rows).astype(np.float32)
        last = np.array([int(rng.integers(VOCAB)) if started[s] else -1 for s in slots])
        last[rng.random(rows) < 0.3] = NEWLINE[0]
        last = np.where([started[s] for s in slots], last, -1)
        temps = state.update(h, last, slots=slots)
        expected = [refs[s].step(int(l), hh) for s, l, hh in zip(slots, last, h)]
        np.testing.assert_array_equal(temps, np.array(expected, np.float32))
        for s in slots:
            started[s] = True


def test_decode_step_uses_the_state_machine_and_exact_entropies():
    rng = np.random.default_rng(3)
    rows, vocab, steps = 6, 300, 60
    config = ReSETConfig(t_low=0.3, tau0=4.0, window=5, newline_ids=(1,), double_newline_ids=(2,), top_p=0.9)
    state = ReSETState(config, rows, vocab, seed=11)
    refs = [ReferenceSlot(0.3, 4.0, 1.0, 5, (1,), (2,)) for _ in range(rows)]
    last = np.full(rows, -1)
    for _ in range(steps):
        scale = rng.uniform(0.2, 4.0, size=(rows, 1))
        logits = (rng.standard_normal((rows, vocab)) * scale).astype(np.float32)
        logits[:, 1] += rng.uniform(0, 6, size=rows)  # newlines are frequent
        out = decode_step(state, logits, last)
        want_h = [reference_entropy(row) for row in logits]
        np.testing.assert_allclose(out.entropies, want_h, rtol=1e-5)
        expected = [refs[r].step(int(last[r]), out.entropies[r]) for r in range(rows)]
        np.testing.assert_array_equal(out.temperatures, np.array(expected, np.float32))
        assert out.tokens.dtype == np.int64 and np.all((out.tokens >= 0) & (out.tokens < vocab))
        last = out.tokens
