"""Setups and checks shared by the CUDA sampler test files (test_sampler_gpu*.py, sampler_switch_suite.py): a
decode_step captured in a CUDA graph and replayed against eager steps, the bad-rows-and-duplicate-slots input, and
steps of one state with a switch set per step. Imports no test module, so that every test file may import it."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from reset_native.sampler import ReSETConfig, ReSETState, decode_step  # noqa: E402


def capture_decode_step(state):
    """One decode_step of `state` captured in a CUDA graph, after a warm-up step on a state of its own on a side
    stream (outside capture: custom-op registration, caching). Returns the graph, the static logits and last tokens
    it reads (zeros, -1) and the outputs it writes."""
    config, rows, vocab = state.config, state.batch_size, state.vocab_size
    static_logits = torch.zeros(rows, vocab, device="cuda")
    static_last = torch.full((rows,), -1, device="cuda")
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        decode_step(ReSETState(config, rows, vocab, device="cuda"), static_logits, static_last)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = decode_step(state, static_logits, static_last)
    return graph, static_logits, static_last, static_out


def replay_like_eager(captured, eager, next_logits, steps, check=None):
    """`steps` replays of a capture_decode_step result against eager steps of the state `eager`, each on new logits
    from next_logits() with the eager step's previous tokens fed back: the same tokens and temperatures every step;
    check(static_out, want), if given, after those."""
    graph, static_logits, static_last, static_out = captured
    rows = static_last.shape[0]
    last = torch.full((rows,), -1, device="cuda")
    for _ in range(steps):
        z = next_logits()
        want = decode_step(eager, z, last)
        static_logits.copy_(z)
        static_last.copy_(last)
        graph.replay()
        assert torch.equal(static_out.tokens, want.tokens)
        assert torch.equal(static_out.temperatures, want.temperatures)
        if check is not None:
            check(static_out, want)
        last = want.tokens


def bad_rows_and_duplicate_slots():
    """Two steps of 7 rows of 6151 logits (one with a NaN, one all -inf, one with +inf; at the first step row 4's
    last token out of range) on slots 0, 1, 2, 3, 4, 0, 9 (row 5 repeats row 0's slot; 9 is outside).
    Returns config, logits, last tokens (a tensor per step) and slots."""
    rows, vocab = 7, 6151
    z = torch.randn(rows, vocab, device="cuda")
    z[1, 4000] = float("nan")
    z[2] = float("-inf")
    z[3, 7] = float("inf")
    last = [torch.tensor([-1, -1, -1, -1, vocab, -1, -1], device="cuda"), torch.full((rows,), -1, device="cuda")]
    slots = torch.tensor([0, 1, 2, 3, 4, 0, 9], device="cuda")
    return ReSETConfig.fixed(1.0, top_p=0.9), [z, z], last, slots


def assert_bad_rows_rejected(tokens, error):
    """tokens [step, row] and error text of the bad_rows_and_duplicate_slots steps: rows 1, 2, 3 and 6 rejected at
    both steps, exactly one of rows 0 and 5 (slot 0) going on, every error named."""
    for step in range(2):
        assert (tokens[step, [1, 2, 3, 6]] == -1).all()
        assert (tokens[step, [0, 5]] >= 0).sum() == 1  # exactly one row of slot 0 goes on
    for text in ("NaN or +inf", "all -inf", "last_tokens", "slot index", "same slot"):
        assert text in error


def assert_switched_steps_like(monkeypatch, variable, config, rows, vocab, logits, switched, seed, reference="0",
                               prepare=None):
    """Steps of one state with `variable` set to switched[k] at step k (None: unset) give the bits (outputs, NaN
    equal to NaN, and final state) of the same steps with it `reference` at every step; prepare(), if given, runs
    before each run's steps (after its state is made)."""
    def run(values):
        state = ReSETState(config, rows, vocab, device="cuda", seed=seed)
        last = torch.full((rows,), -1, device="cuda")
        out = []
        if prepare is not None:
            prepare()
        for z, value in zip(logits, values):
            if value is None:
                monkeypatch.delenv(variable, raising=False)
            else:
                monkeypatch.setenv(variable, value)
            step = decode_step(state, z, last)
            out.append(torch.stack([step.tokens.double(), step.temperatures.double(), step.entropies.double()]))
            last = step.tokens
        state.check_errors()
        return torch.stack(out).cpu(), state.snapshot()

    got, got_state = run(switched)
    want, want_state = run([reference] * len(switched))
    assert torch.equal(torch.nan_to_num(got, nan=-7.0), torch.nan_to_num(want, nan=-7.0))
    for key in want_state:
        np.testing.assert_array_equal(got_state[key], want_state[key], err_msg=key)
