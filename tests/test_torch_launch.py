"""The eager route of the torch-facing CUDA entry points (reset_native._torch_launch): outside a torch.compile trace
they run the custom op's body directly (no dispatcher), inside one the op stands in the graph; both give the same
bits, in CUDA graphs too, on the current stream and device. GPU tests skip without a device (marker gpu)."""
from __future__ import annotations

import pytest

from reset_native import _nvfp4_cuda as nc
from reset_native import _torch_launch as launch

torch = pytest.importorskip("torch")


def test_eager_is_true_outside_and_false_inside_a_compile_trace():
    def f(x):
        return x + (0.0 if launch.eager() else 1.0)

    compiled = torch.compile(f, backend="eager", fullgraph=True)
    x = torch.zeros(3)
    assert torch.equal(f(x), x)
    assert torch.equal(compiled(x), x + 1.0)  # traced: eager() was False while dynamo ran f


@pytest.mark.skipif(not nc.AVAILABLE, reason="built without the CUDA kernels (no ops to register)")
def test_a_compile_trace_of_a_caller_records_the_custom_ops():
    graphs = []

    def record(gm, example_inputs):  # a backend that keeps the graph and never runs a kernel
        graphs.append(gm)
        return lambda *args: (torch.zeros(2, 64, dtype=torch.bfloat16), torch.zeros(64, 32))

    def f(packed, scales, x):
        return nc.gemv(packed, scales, 0.5, x, "nvfp4"), nc.dequantize(packed, scales, 0.5, torch.float32)

    packed, scales = torch.zeros(64, 16, dtype=torch.uint8), torch.zeros(64, 2, dtype=torch.uint8)
    torch.compile(f, backend=record, fullgraph=True)(packed, scales, torch.zeros(2, 32, dtype=torch.bfloat16))
    targets = {str(node.target) for node in graphs[0].graph.nodes if node.op == "call_function"}
    assert {"reset_native.nvfp4_gemv", "reset_native.nvfp4_dequantize"} <= targets, targets


@pytest.mark.skipif(not nc.AVAILABLE, reason="built without the CUDA kernels (no ops to register)")
def test_a_compile_trace_of_the_mid_route_records_its_op():
    """17..128 tokens of 16-bit x: a traced call of the medium-M route is the op reset_native::nvfp4_gemm_mid."""
    from reset_native import _nvfp4_prefill as prefill

    graphs = []

    def record(gm, example_inputs):  # keeps the graph, never runs a kernel
        graphs.append(gm)
        return lambda *args: (torch.zeros(40, 64, dtype=torch.bfloat16),)

    def f(packed, scales, x):
        return prefill.mid_gemm(packed, scales, 0.5, x, "bf16", None, None)

    packed, scales = torch.zeros(64, 64, dtype=torch.uint8), torch.zeros(64, 8, dtype=torch.uint8)
    torch.compile(f, backend=record, fullgraph=True)(packed, scales, torch.zeros(40, 128, dtype=torch.bfloat16))
    targets = {str(node.target) for node in graphs[0].graph.nodes if node.op == "call_function"}
    assert "reset_native.nvfp4_gemm_mid" in targets, targets


def _weights(n=384, k=1024, seed=3):
    gen = torch.Generator().manual_seed(seed)
    packed, scales, gs = nc.quantize(torch.randn((n, k), generator=gen).cuda())
    return packed, scales, gs, gen


@pytest.mark.gpu
def test_raw_stream_is_torchs_current_stream():
    dev = torch.cuda.current_device()
    assert launch.current_device() == dev
    assert launch.raw_stream(dev) == torch.cuda.current_stream(dev).cuda_stream
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        assert launch.raw_stream(dev) == s.cuda_stream != torch.cuda.default_stream(dev).cuda_stream


@pytest.mark.gpu
@pytest.mark.parametrize("activation", ["bf16", "nvfp4"])
@pytest.mark.parametrize("m", [1, 8, 16])
def test_eager_route_equals_the_custom_op_bit_for_bit(activation, m):
    packed, scales, gs, gen = _weights()
    x = torch.randn((m, 1024), generator=gen).to(torch.bfloat16).cuda()
    bias = torch.randn(384, generator=gen).to(torch.bfloat16).cuda()
    direct = nc.gemv(packed, scales, gs, x, activation, None, bias)
    via_op = nc._ops().nvfp4_gemv(packed, scales, gs, x, activation, None, bias)
    assert direct.shape == (m, 384) and direct.dtype == torch.bfloat16
    assert torch.equal(direct, via_op)
    assert torch.equal(nc.dequantize(packed, scales, gs, torch.float32),
                       nc._ops().nvfp4_dequantize(packed, scales, gs, torch.float32))


@pytest.mark.gpu
def test_eager_route_runs_on_a_side_stream_and_in_a_cuda_graph():
    packed, scales, gs, gen = _weights()
    x = torch.randn((4, 1024), generator=gen).to(torch.bfloat16).cuda()
    want = nc.gemv(packed, scales, gs, x, "nvfp4")
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        side = nc.gemv(packed, scales, gs, x, "nvfp4")  # the right bits on s (which stream: the test above)
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    assert torch.equal(side, want)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        y = nc.gemv(packed, scales, gs, x, "nvfp4")
    x.copy_(torch.randn((4, 1024), generator=gen).to(torch.bfloat16))
    y.fill_(float("nan"))
    g.replay()
    torch.cuda.synchronize()
    assert torch.equal(y, nc._ops().nvfp4_gemv(packed, scales, gs, x, "nvfp4", None, None))


@pytest.mark.gpu
def test_compiled_caller_of_the_backend_traces_the_op():
    packed, scales, gs, gen = _weights()
    x = torch.randn((2, 1024), generator=gen).to(torch.bfloat16).cuda()

    @torch.compile(fullgraph=True)  # tracing the body (data_ptr, native calls) instead of the op would fail here
    def f(x):
        return nc.gemv(packed, scales, gs, x, "bf16") * 2

    assert torch.equal(f(x), 2 * nc.gemv(packed, scales, gs, x, "bf16"))

