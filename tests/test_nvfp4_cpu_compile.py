"""torch.compile of the CPU NVFP4 GEMV: inside a trace nvfp4.gemv on CPU tensors is the custom op
reset_native::nvfp4_gemv_cpu (reset_native/_nvfp4_cpu_op.py), so a compiled caller is one graph with no break and
gives the eager call's bits: W4A16 and W4A4 (static and dynamic activation scale), every float dtype, the decode
kernels and the prefill route (from _nvfp4_prefill_cpu.MIN_TOKENS tokens), 1-D x, bias; NVFP4Linear; the op's own
schema / fake checks (opcheck); bad input raises the eager call's error."""
import pytest

torch = pytest.importorskip("torch")
from reset_native import _nvfp4_prefill_cpu  # noqa: E402
from reset_native import nvfp4  # noqa: E402

OP = "reset_native.nvfp4_gemv_cpu"


def _recording(targets):
    """A backend that keeps the traced graph's call targets and runs it as traced (eager)."""
    def backend(gm, example_inputs):
        targets.extend(str(node.target) for node in gm.graph.nodes if node.op == "call_function")
        return gm.forward

    return backend


def _weights(n, k, seed):
    gen = torch.Generator().manual_seed(seed)
    return nvfp4.quantize(torch.randn(n, k, generator=gen)), gen


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("activation,act_gs", [("bf16", None), ("nvfp4", None), ("nvfp4", 0.002)])
@pytest.mark.parametrize("m", [1, 5, _nvfp4_prefill_cpu.MIN_TOKENS])  # GEMV kernels, and the prefill route
def test_compiled_gemv_is_one_graph_with_the_eager_bits(m, activation, act_gs, dtype):
    t, gen = _weights(48, 256, m)
    x = torch.randn(m, 256, generator=gen).to(dtype)
    bias = torch.randn(48, generator=gen).to(dtype)

    def f(x):
        return nvfp4.gemv(t, x, activation=activation, act_global_scale=act_gs, bias=bias) + 1

    want = f(x)
    targets = []
    torch._dynamo.reset()
    got = torch.compile(f, backend=_recording(targets), fullgraph=True)(x)
    assert OP in targets, targets
    assert torch.equal(got, want)
    if dtype == torch.bfloat16 and act_gs is None:  # inductor around the op (a few cases: its compiles are slow)
        torch._dynamo.reset()
        assert torch.equal(torch.compile(f, fullgraph=True)(x), want)


def test_one_dimensional_x_and_no_bias():
    t, gen = _weights(40, 128, 3)
    x = torch.randn(128, generator=gen)
    torch._dynamo.reset()
    got = torch.compile(lambda x: nvfp4.gemv(t, x), fullgraph=True)(x)
    assert got.shape == (40,) and torch.equal(got, nvfp4.gemv(t, x))


def test_compiled_nvfp4_linear_on_the_cpu():
    from reset_native.integrations.nvfp4_linear import NVFP4Linear

    gen = torch.Generator().manual_seed(5)
    lin = torch.nn.Linear(256, 96, bias=True)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(96, 256, generator=gen))
    q = NVFP4Linear.from_linear(lin)
    x = torch.randn(2, 7, 256, generator=gen)
    with torch.no_grad():
        want = q(x)
        targets = []
        torch._dynamo.reset()
        got = torch.compile(q, backend=_recording(targets), fullgraph=True)(x)
    assert OP in targets and torch.equal(got, want)


def test_the_op_passes_opcheck():
    from reset_native import _nvfp4_cpu_op

    t, gen = _weights(32, 128, 9)
    x = torch.randn(3, 128, generator=gen).to(torch.bfloat16)
    b = torch.randn(32, generator=gen).to(torch.bfloat16)
    torch.library.opcheck(_nvfp4_cpu_op.op(), (t.packed, t.block_scales, t.global_scale, x, "bf16", None, b))
    torch.library.opcheck(_nvfp4_cpu_op.op(), (t.packed, t.block_scales, t.global_scale, x, "nvfp4", 0.01, None))


def test_bad_input_raises_the_eager_error_from_a_compiled_caller():
    """The front's checks run while dynamo traces; the raise ends the trace and the call raises the eager error
    (with fullgraph=True dynamo reports it wrapped in its own exception instead)."""
    t, gen = _weights(32, 128, 2)
    x = torch.randn(2, 64, generator=gen)
    with pytest.raises(ValueError, match="x has K = 64"):
        nvfp4.gemv(t, x)
    torch._dynamo.reset()
    with pytest.raises(ValueError, match="x has K = 64"):
        torch.compile(lambda x: nvfp4.gemv(t, x))(x)
