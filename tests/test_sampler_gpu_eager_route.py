"""The sampler's eager route: outside a torch.compile trace decode_step runs the custom op's body directly
(_sampler_torch.decode_step_impl, no dispatcher). Two states of one seed and config, one stepped through
torch.ops.reset_native.sampler_decode_step and one through decode_step, must give the same tokens, temperatures
and entropies and hold the same state buffers after every step; the route must replay in a CUDA graph, a compiled
caller must record the op, and bad input must raise what it raised before. GPU only (marker gpu)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from reset_native.sampler import ReSETConfig, ReSETState, decode_step  # noqa: E402
from sampler_gpu_helpers import capture_decode_step, replay_like_eager  # noqa: E402

pytestmark = pytest.mark.gpu
NEWLINE, DOUBLE = (3, 7), (11,)
# The state the step carries over. Not _workspace: the kernels' scratch (partial sums, tagged words) whose bytes depend
# on block scheduling; it differed between the two routes on an H200 (session 22 round 3) while every output and every
# buffer here was equal.
_BUFFERS = ("_window", "_sums", "_ints", "_error_flag", "_slot_busy")


def _config(kind):
    if kind == "fixed":
        return ReSETConfig.fixed(0.7, top_k=50)
    return ReSETConfig(t_low=0.3, tau0=4.5, window=8, newline_ids=NEWLINE, double_newline_ids=DOUBLE, top_p=0.95)


def _via_op(state, logits, last, slots=None):
    c = state.config
    return torch.ops.reset_native.sampler_decode_step(
        logits, last, slots, state._classes, state._window, state._sums, state._ints, state._error_flag,
        state._slot_busy, state._workspace, c.t_low, c.tau0, c.t_high, c.window, c.top_p, c.top_k)


def _logits(rng, rows, vocab, dtype):
    z = torch.from_numpy((rng.standard_normal((rows, vocab)) * rng.uniform(0.5, 3, (rows, 1))).astype(np.float32))
    z[:, 3] += float(rng.uniform(0, 8))  # frequent newlines: the state machine moves
    return z.to(dtype).cuda()


def _assert_same_state(a, b):
    for name in _BUFFERS:
        assert torch.equal(getattr(a, name), getattr(b, name)), name


@pytest.mark.parametrize("kind", ["reset", "fixed"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("rows, batch, vocab, with_slots", [
    (1, 1, 151936, False), (8, 8, 151936, False), (5, 12, 32000, True), (64, 64, 5000, False)])
def test_eager_route_equals_the_op_step_by_step(kind, dtype, rows, batch, vocab, with_slots):
    rng = np.random.default_rng(rows * 13 + vocab % 97)
    config = _config(kind)
    eager, via_op = (ReSETState(config, batch, vocab, device="cuda", seed=5) for _ in range(2))
    slots = torch.from_numpy(rng.permutation(batch)[:rows]).cuda() if with_slots else None
    last_e = last_o = torch.full((rows,), -1, device="cuda")
    for _ in range(6):
        z = _logits(rng, rows, vocab, dtype)
        got = decode_step(eager, z, last_e, slots)
        want = _via_op(via_op, z, last_o, slots)
        assert torch.equal(got.tokens, want[0]) and torch.equal(got.temperatures, want[1])
        assert torch.equal(got.entropies, want[2])
        _assert_same_state(eager, via_op)
        last_e, last_o = got.tokens, want[0]
    eager.check_errors()
    via_op.check_errors()
    assert bool((got.tokens >= 0).all())


def test_eager_route_does_not_call_the_op(monkeypatch):
    from reset_native import _sampler_torch

    def broken():
        raise AssertionError("the eager route called the custom op")

    monkeypatch.setattr(_sampler_torch, "step_op", broken)
    state = ReSETState(_config("reset"), 2, 1000, device="cuda", seed=1)
    out = decode_step(state, torch.randn(2, 1000, device="cuda"), torch.full((2,), -1, device="cuda"))
    state.check_errors()
    assert out.tokens.shape == (2,) and bool((out.tokens >= 0).all())


@pytest.mark.parametrize("rows", [1, 8])
def test_eager_route_replays_in_a_cuda_graph_like_eager_steps(rows):
    rng = np.random.default_rng(rows)
    vocab = 151936
    config = _config("reset")
    eager, graphed = (ReSETState(config, rows, vocab, device="cuda", seed=2) for _ in range(2))

    def check(captured, want):  # also the entropies and every state buffer, step after step
        torch.cuda.synchronize()
        assert torch.equal(captured.entropies, want.entropies)
        _assert_same_state(graphed, eager)

    replay_like_eager(capture_decode_step(graphed), eager, lambda: _logits(rng, rows, vocab, torch.float32), steps=5,
                      check=check)
    graphed.check_errors()


def test_compiled_caller_records_the_op_and_steps_like_eager():
    rng = np.random.default_rng(4)
    rows, vocab = 4, 32000
    config = _config("reset")
    compiled_state, eager = (ReSETState(config, rows, vocab, device="cuda", seed=8) for _ in range(2))
    graphs = []
    aot_eager = torch._dynamo.lookup_backend("aot_eager")

    def backend(gm, example_inputs):
        graphs.append([str(node.target) for node in gm.graph.nodes if node.op == "call_function"])
        return aot_eager(gm, example_inputs)

    torch._dynamo.reset()
    step = torch.compile(lambda z, last: decode_step(compiled_state, z, last), backend=backend, fullgraph=True)
    last_c = last_e = torch.full((rows,), -1, device="cuda")
    for _ in range(3):
        z = _logits(rng, rows, vocab, torch.float32)
        got, want = step(z, last_c), decode_step(eager, z, last_e)
        assert torch.equal(got.tokens, want.tokens) and torch.equal(got.temperatures, want.temperatures)
        assert torch.equal(got.entropies, want.entropies)
        _assert_same_state(compiled_state, eager)
        last_c, last_e = got.tokens, want.tokens
    assert any("reset_native.sampler_decode_step" in g for g in graphs), graphs


def test_update_eager_route_matches_the_cpu_state_machine():
    rng = np.random.default_rng(6)
    rows, vocab = 16, 50
    config = _config("reset")
    cpu, gpu = ReSETState(config, rows, vocab), ReSETState(config, rows, vocab, device="cuda")
    slots = rng.permutation(rows)
    for step in range(20):
        h = rng.exponential(1.0, rows).astype(np.float32)
        last = rng.choice([3, 7, 11, 20, -1], size=rows)
        use = slots if step % 2 else None
        want = cpu.update(h, last, use)
        got = gpu.update(torch.from_numpy(h).cuda(), torch.from_numpy(last).cuda(),
                         None if use is None else torch.from_numpy(use).cuda())
        np.testing.assert_array_equal(got.cpu().numpy(), want)
    for name, a in cpu.snapshot().items():
        np.testing.assert_array_equal(gpu.snapshot()[name], a)


def test_bad_input_raises_the_messages_of_the_full_checks():
    rows, vocab = 3, 64
    state = ReSETState(_config("reset"), rows, vocab, device="cuda")
    z, last = torch.zeros(rows, vocab, device="cuda"), torch.full((rows,), -1, device="cuda")
    cases = [
        ((z.cpu(), last), ValueError, r"logits must be on cuda:\d like the state, got torch tensor \(3, 64\) float32"),
        ((z.double(), last), TypeError, r"logits must be float32 or bfloat16 or float16, got torch tensor"),
        ((z[None], last), ValueError, r"logits must be 2-D, got torch tensor \(1, 3, 64\)"),
        ((z.t().contiguous().t(), last), ValueError, r"logits must have unit stride along its last dimension"),
        ((z[:, :10], last), ValueError, r"logits must have 64 columns \(vocab_size\), got torch tensor \(3, 10\)"),
        ((torch.zeros(4, vocab, device="cuda"), torch.full((4,), -1, device="cuda")), ValueError,
         r"batch of 4 rows does not fit the state's batch_size 3"),
        ((z, last.int()), TypeError, r"last_tokens must be int64, got torch tensor \(3,\) int32"),
        ((z, last[:2]), ValueError, r"last_tokens must have shape \(3,\), got \(2,\)"),
        ((z, last.tolist()), TypeError, r"last_tokens must be a torch tensor on cuda:\d for a CUDA state, got list"),
        ((z, last, torch.arange(2, device="cuda")), ValueError, r"slots must have shape \(3,\), got \(2,\)"),
        ((z, last, torch.arange(3)), ValueError, r"slots must be on cuda:\d like the state, got torch tensor"),
    ]
    for args, exc, words in cases:
        with pytest.raises(exc, match=words):
            decode_step(state, *args)
    with pytest.raises(TypeError, match=r"entropies must be float32, got torch tensor \(3,\) float64"):
        state.update(torch.zeros(rows, dtype=torch.float64, device="cuda"), last)
    with pytest.raises(ValueError, match=r"batch of 4 rows does not fit the state's batch_size 3"):
        state.update(torch.zeros(4, device="cuda"), torch.full((4,), -1, device="cuda"))
    # A tensor subclass passes the full checks, as before: the cheap ones only send it there.
    out = decode_step(state, torch.nn.Parameter(z, requires_grad=False), last)
    state.check_errors()
    assert bool((out.tokens >= 0).all())
