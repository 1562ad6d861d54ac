"""The eager route of the fused decoder ops (rms_norm, silu_mul, qk_norm_rope, qk_norm_rope_cache, decode_attention,
nvfp4_gemv_fused): outside a torch.compile trace the package's callables run the op's body directly (no custom-op
dispatcher, reset_native._torch_launch); they must give the op's bits, write the same caches and counters, replay
in CUDA graphs, and a compiled caller must still record the op. CPU tests run the ops' reference paths; GPU tests
(marker gpu) the kernels. The sampler's step: tests/test_sampler_gpu_eager_route.py."""
import pytest

torch = pytest.importorskip("torch")

from reset_native.integrations import decode_attention as da  # noqa: E402
from reset_native.integrations import fused_attention, fused_mlp, fused_norm  # noqa: E402

from test_decode_attention import _case as _attention_case  # noqa: E402

OPS = torch.ops.reset_native


def _recording_aot_eager(graphs):
    """A torch.compile backend that keeps the targets of the traced graph's calls, then runs it like aot_eager
    (functionalised, so the ops' mutations go through their schemas)."""
    aot_eager = torch._dynamo.lookup_backend("aot_eager")

    def backend(gm, example_inputs):
        graphs.append([str(node.target) for node in gm.graph.nodes if node.op == "call_function"])
        return aot_eager(gm, example_inputs)

    return backend


def _rope_tables(batch, seq, d, dtype, gen, device):
    pos = torch.arange(seq, dtype=torch.float64).unsqueeze(0) + torch.randint(0, 50, (batch, 1), generator=gen)
    ang = pos.unsqueeze(-1) * (1.0 / (10000 ** (torch.arange(0, d, 2, dtype=torch.float64) / d)))
    ang = torch.cat((ang, ang), dim=-1)
    return ang.cos().to(dtype).to(device), ang.sin().to(dtype).to(device)


def _qkv(batch, seq, hq, hk, d, dtype, gen, device):
    """q, k, v as column slices of one [B, S, (hq + 2 hk) d] projection output (strided, as fused q/k/v gives)."""
    total = torch.randn(batch, seq, (hq + 2 * hk) * d, generator=gen).mul(3).to(dtype).to(device)
    q = total[..., : hq * d].view(batch, seq, hq, d)
    k = total[..., hq * d: (hq + hk) * d].view(batch, seq, hk, d)
    v = total[..., (hq + hk) * d:].view(batch, seq, hk, d)
    return q, k, v


def _rope_case(batch, seq, hq, hk, d, dtype, device, norm=True, broadcast=False, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q, k, v = _qkv(batch, seq, hq, hk, d, dtype, gen, device)
    cos, sin = _rope_tables(1 if broadcast else batch, seq, d, dtype, gen, device)
    qw = (torch.randn(d, generator=gen) * 0.5 + 1).to(dtype).to(device) if norm else None
    kw = (torch.randn(d, generator=gen) * 0.5 + 1).to(dtype).to(device) if norm else None
    return q, k, v, qw, kw, cos, sin


# ------------------------------------------------------------------------------------------------ CPU
def test_eager_calls_do_not_go_through_the_ops(monkeypatch):
    """With every op accessor broken, the package's callables still work eagerly: they run the bodies."""
    def broken():
        raise AssertionError("the eager route called the custom op")

    for module, name in ((fused_norm, "_op"), (fused_mlp, "_op"), (fused_attention, "_op"),
                         (fused_attention, "_cache_op"), (da, "op")):
        monkeypatch.setattr(module, name, broken)
    x, w = torch.randn(3, 16), torch.randn(16)
    assert torch.equal(fused_norm.rms_norm(x, w, 1e-6), fused_norm.reference(x, w, 1e-6))
    g, u = torch.randn(2, 8), torch.randn(2, 8)
    assert torch.equal(fused_mlp.silu_mul(g, u), fused_mlp.reference(g, u))
    q, k, v, qw, kw, cos, sin = _rope_case(2, 3, 4, 2, 8, torch.float32, "cpu")
    got = fused_attention.qk_norm_rope(q, k, qw, kw, cos, sin, 1e-6)
    want = fused_attention.reference(q, k, qw, kw, cos, sin, 1e-6)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    q1, kc, vc, mask = _attention_case(2, 4, 2, 8, 12, torch.float32, "cpu", "rows")
    assert torch.equal(da.decode_attention(q1, kc, vc, mask, 0.25), da.reference(q1, kc, vc, mask, 0.25))


def test_calls_autograd_would_record_keep_the_op(monkeypatch):
    """Grad mode and an argument requiring grad: the op (its backward raises: no formula), as before the eager
    route; under no_grad the same call takes the eager route."""
    x, w = torch.randn(3, 16), torch.randn(16, requires_grad=True)
    y = fused_norm.rms_norm(x, w, 1e-6)
    assert y.grad_fn is not None
    with pytest.raises(RuntimeError, match="no autograd formula"):
        y.sum().backward()
    g, u = torch.randn(2, 8, requires_grad=True), torch.randn(2, 8)
    assert fused_mlp.silu_mul(g, u).grad_fn is not None
    monkeypatch.setattr(fused_norm, "_op", lambda: pytest.fail("the op was called under no_grad"))
    with torch.no_grad():
        assert torch.equal(fused_norm.rms_norm(x, w, 1e-6), fused_norm.reference(x, w, 1e-6))


def test_eager_route_keeps_the_ops_errors():
    x, w = torch.randn(3, 16), torch.randn(16)
    with pytest.raises(ValueError, match="eps must be a float >= 0"):
        fused_norm.rms_norm(x, w, -1.0)
    with pytest.raises(TypeError, match="gate and up must share one dtype"):
        fused_mlp.silu_mul(torch.randn(2, 8), torch.randn(2, 8).double())
    q, k, v, qw, kw, cos, sin = _rope_case(1, 2, 4, 2, 8, torch.float32, "cpu")
    with pytest.raises(ValueError, match="eps must be a float >= 0, got 0"):
        fused_attention.qk_norm_rope(q, k, qw, kw, cos, sin, 0)  # an int eps is refused, as before
    with pytest.raises(ValueError, match="q_weight and k_weight must both be given"):
        fused_attention.qk_norm_rope(q, k, qw, None, cos, sin, 1e-6)
    q1, kc, vc, _ = _attention_case(1, 4, 2, 8, 12, torch.float32, "cpu")
    with pytest.raises(ValueError, match="advance must be None or a one-element int64"):
        da.decode_attention(q1, kc, vc, None, 0.25, advance=torch.zeros(2, dtype=torch.int64))


def _compiled_cases(device):
    """(name, op name in the graph, function of fresh inputs) for each module's callable; each returns tensors
    including the buffers it mutates."""
    gen = torch.Generator().manual_seed(5)
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    x, w = torch.randn(2, 128, generator=gen).to(dtype).to(device), torch.randn(128, generator=gen).to(dtype).to(device)
    gu = torch.randn(2, 256, generator=gen).to(dtype).to(device)
    q, k, v, qw, kw, cos, sin = _rope_case(1, 1, 8, 2, 128, dtype, device, seed=6)
    qa, kc, vc, mask = _attention_case(1, 8, 2, 128, 40, dtype, device, "rows", seed=7)

    def cache_call(kc, vc, pos):
        return fused_attention.qk_norm_rope_cache(q, k, v, qw, kw, cos, sin, 1e-6, kc, vc, pos), kc, vc

    def attention_call(adv):
        return da.decode_attention(qa, kc, vc, mask, 128 ** -0.5, advance=adv), adv

    def zeros_cache():
        return torch.zeros(1, 2, 16, 128, dtype=dtype, device=device), torch.zeros(1, 2, 16, 128, dtype=dtype,
                                                                                 device=device)

    return [
        ("rms_norm", "reset_native.rms_norm", lambda: (fused_norm.rms_norm(x, w, 1e-6) * 2,)),
        ("silu_mul", "reset_native.silu_mul", lambda: (fused_mlp.silu_mul(gu[:, :128], gu[:, 128:]) + 1,)),
        ("qk_norm_rope", "reset_native.qk_norm_rope", lambda: fused_attention.qk_norm_rope(q, k, qw, kw, cos, sin)),
        ("qk_norm_rope_cache", "reset_native.qk_norm_rope_cache",
         lambda: cache_call(*zeros_cache(), torch.tensor([5], device=device))),
        ("decode_attention", "reset_native.decode_attention",
         lambda: attention_call(torch.tensor([3], device=device))),
    ]


def _check_compiled_callers(device):
    for name, target, fn in _compiled_cases(device):
        graphs = []
        torch._dynamo.reset()
        got = torch.compile(fn, backend=_recording_aot_eager(graphs), fullgraph=True)()
        want = fn()
        assert any(target in g for g in graphs), (name, graphs)
        assert len(got) == len(want) and all(torch.equal(a, b) for a, b in zip(got, want)), name


def test_compiled_callers_record_the_ops_on_cpu():
    _check_compiled_callers("cpu")


# ------------------------------------------------------------------------------------------------ GPU
def _need_kernels():
    if not fused_norm.AVAILABLE or not torch.cuda.is_available():
        pytest.skip("needs the CUDA kernels")


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("shape", [(1, 4096), (3, 5, 128), (2, 1, 5120)])
def test_rms_norm_eager_route_equals_the_op(dtype, shape):
    _need_kernels()
    gen = torch.Generator().manual_seed(shape[-1] + len(shape))
    x = (torch.randn(shape, generator=gen) * 3).to(dtype).cuda()
    w = (1 + 0.3 * torch.randn(shape[-1], generator=gen)).to(dtype).cuda()
    want = OPS.rms_norm(x, w, 1e-6)
    assert torch.equal(fused_norm.rms_norm(x, w, 1e-6), want)
    module = type("Norm", (), {"weight": w, "variance_epsilon": 1e-6})()  # what the routed forward reads
    assert torch.equal(fused_norm._fused_forward(module, x), want)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("rows, n, sliced", [(1, 12288, True), (4, 3072, False), (2, 1000, True)])
def test_silu_mul_eager_route_equals_the_op(dtype, rows, n, sliced):
    _need_kernels()
    gen = torch.Generator().manual_seed(rows * 7 + n)
    both = (torch.randn(rows, 2 * n, generator=gen) * 3).to(dtype).cuda()
    gate, up = (both[:, :n], both[:, n:]) if sliced else (both[:, :n].contiguous(), both[:, n:].contiguous())
    assert torch.equal(fused_mlp.silu_mul(gate, up), OPS.silu_mul(gate, up))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("batch, seq, hq, hk, d, norm, broadcast", [
    (1, 1, 32, 8, 128, True, False), (3, 5, 4, 2, 64, True, True), (2, 1, 6, 6, 80, False, False)])
def test_qk_norm_rope_eager_route_equals_the_op(dtype, batch, seq, hq, hk, d, norm, broadcast):
    _need_kernels()
    q, k, _, qw, kw, cos, sin = _rope_case(batch, seq, hq, hk, d, dtype, "cuda", norm, broadcast, seed=batch + d)
    got = fused_attention.qk_norm_rope(q, k, qw, kw, cos, sin, 1e-6)
    want = OPS.qk_norm_rope(q, k, qw, kw, cos, sin, 1e-6)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    routed = fused_attention._qk_norm_rope_call(q, k, qw, kw, cos, sin, 1e-6)  # what the attention forward calls
    assert torch.equal(routed[0], want[0]) and torch.equal(routed[1], want[1])


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("seq, start", [(1, 0), (1, 37), (4, 10)])
def test_qk_norm_rope_cache_eager_route_writes_the_ops_caches(dtype, seq, start):
    _need_kernels()
    q, k, v, qw, kw, cos, sin = _rope_case(2, seq, 16, 4, 128, dtype, "cuda", seed=seq * 3 + start)
    gen = torch.Generator().manual_seed(start)
    k_cache = torch.randn(2, 4, 48, 128, generator=gen).to(dtype).cuda()
    v_cache = torch.randn(2, 4, 48, 128, generator=gen).to(dtype).cuda()
    caches = [(k_cache.clone(), v_cache.clone()) for _ in range(3)]
    pos = torch.tensor([start], device="cuda")
    want = OPS.qk_norm_rope_cache(q, k, v, qw, kw, cos, sin, 1e-6, *caches[0], pos)
    got = fused_attention.qk_norm_rope_cache(q, k, v, qw, kw, cos, sin, 1e-6, *caches[1], pos)
    routed = fused_attention._qk_norm_rope_cache_call(q, k, v, qw, kw, cos, sin, 1e-6, *caches[2], pos)
    assert int(pos.item()) == start  # read, not advanced
    for out, (kc, vc) in ((got, caches[1]), (routed, caches[2])):
        assert torch.equal(out, want)
        assert torch.equal(kc, caches[0][0]) and torch.equal(vc, caches[0][1])
    assert not torch.equal(caches[0][0], k_cache)  # the op did write


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("batch, hq, hk, d, length, mask_kind", [
    (1, 32, 8, 128, 300, "none"), (2, 16, 4, 64, 77, "rows"), (3, 8, 8, 128, 40, "additive"),
    (2, 32, 8, 128, 129, "broadcast")])
def test_decode_attention_eager_route_equals_the_op_and_advances_alike(dtype, batch, hq, hk, d, length, mask_kind):
    if not da.AVAILABLE or not torch.cuda.is_available():
        pytest.skip("needs the CUDA kernels")
    q, k, v, mask = _attention_case(batch, hq, hk, d, length, dtype, "cuda", mask_kind, seed=batch * 11 + length)
    scale = d ** -0.5
    counters = [torch.tensor([9], device="cuda") for _ in range(3)]
    want = OPS.decode_attention(q, k, v, mask, scale, counters[0])
    assert torch.equal(da.decode_attention(q, k, v, mask, scale, advance=counters[1]), want)
    assert torch.equal(da.call(q, k, v, mask, scale, counters[2]), want)  # what the attention forward calls
    assert [int(c.item()) for c in counters] == [10, 10, 10]


def _nvfp4_case(n, k, m, dtype=torch.bfloat16, seed=0):
    from reset_native import nvfp4

    gen = torch.Generator().manual_seed(seed)
    t = nvfp4.quantize((torch.randn(n, k, generator=gen) * 0.05).cuda())
    x = (torch.randn(m, k, generator=gen) * 3).to(dtype).cuda()
    nw = (1 + 0.3 * torch.randn(k, generator=gen)).to(dtype).cuda()
    bias = torch.randn(n, generator=gen).to(dtype).cuda()
    return t, x, nw, bias


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("m", [1, 2])
@pytest.mark.parametrize("n, k, norm, silu, bias", [
    (264, 1024, True, False, False), (136, 2048, True, False, True), (512, 1024, True, True, False),
    (96, 4096, False, True, False), (3104, 2048, True, True, False)])
def test_nvfp4_gemv_fused_eager_route_equals_the_op(dtype, m, n, k, norm, silu, bias):
    from reset_native import _nvfp4_fused

    if not _nvfp4_fused.AVAILABLE or not torch.cuda.is_available():
        pytest.skip("needs the CUDA kernels")
    t, x, nw, b = _nvfp4_case(n, k, m, dtype, seed=n + k + m)
    nw, b = (nw if norm else None), (b if bias else None)
    assert _nvfp4_fused.supported(t.packed, t.block_scales, x, nw, silu_mul=silu)
    want = OPS.nvfp4_gemv_fused(t.packed, t.block_scales, t.global_scale, x, nw, 1e-6, silu, b)
    got = _nvfp4_fused.gemv_fused(t.packed, t.block_scales, t.global_scale, x, nw, 1e-6, silu, b)
    assert got.shape == (m, n // 2 if silu else n) and torch.equal(got, want)


def _graph_cases():
    """(name, inputs to refresh, call) for the CUDA graph test: call() runs the eager route and returns tensors."""
    dtype = torch.bfloat16
    gen = torch.Generator().manual_seed(13)
    x, w = (torch.randn(1, 4096, generator=gen) * 3).to(dtype).cuda(), torch.randn(4096, generator=gen).to(dtype).cuda()
    gu = (torch.randn(1, 2 * 12288, generator=gen) * 3).to(dtype).cuda()
    q, k, v, qw, kw, cos, sin = _rope_case(1, 1, 32, 8, 128, dtype, "cuda", seed=14)
    kc, vc = torch.zeros(1, 8, 64, 128, dtype=dtype, device="cuda"), torch.zeros(1, 8, 64, 128, dtype=dtype,
                                                                                device="cuda")
    pos = torch.tensor([17], device="cuda")
    qa, ka, va, mask = _attention_case(1, 32, 8, 128, 200, dtype, "cuda", "additive", seed=15)
    adv = torch.tensor([0], device="cuda")
    cases = [
        ("rms_norm", [x], lambda: (fused_norm.rms_norm(x, w, 1e-6),)),
        ("silu_mul", [gu], lambda: (fused_mlp.silu_mul(gu[:, :12288], gu[:, 12288:]),)),
        ("qk_norm_rope", [q, k], lambda: fused_attention.qk_norm_rope(q, k, qw, kw, cos, sin, 1e-6)),
        ("qk_norm_rope_cache", [q, k, v],
         lambda: (fused_attention.qk_norm_rope_cache(q, k, v, qw, kw, cos, sin, 1e-6, kc, vc, pos), kc, vc)),
        ("decode_attention", [qa], lambda: (da.decode_attention(qa, ka, va, mask, 128 ** -0.5, advance=adv), adv)),
    ]
    from reset_native import _nvfp4_fused

    if _nvfp4_fused.AVAILABLE:
        t, xg, nw, _ = _nvfp4_case(3104, 2048, 1, dtype, seed=16)
        cases.append(("nvfp4_gemv_fused", [xg], lambda: (
            _nvfp4_fused.gemv_fused(t.packed, t.block_scales, t.global_scale, xg, nw, 1e-6, True),)))
    return cases


@pytest.mark.gpu
def test_eager_routes_replay_in_a_cuda_graph_like_eager_calls():
    _need_kernels()
    gen = torch.Generator().manual_seed(99)
    for name, inputs, call in _graph_cases():
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):  # warm-up outside capture, and on a side stream
            call()
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            captured = call()
        for _ in range(2):
            for t in inputs:  # new values in the captured input buffers (views write through to their base)
                t.copy_((torch.randn(t.shape, generator=gen) * 3).to(t.dtype))
            g.replay()
            torch.cuda.synchronize()
            replayed = [c.clone() for c in captured]
            want = call()  # eager, on the same inputs and the same mutated buffers
            assert all(torch.equal(a, b) for a, b in zip(replayed[:1], want[:1])), name
            if name == "qk_norm_rope":
                assert torch.equal(replayed[1], want[1])
            if name == "qk_norm_rope_cache":  # the eager call rewrote the replay's cache rows with the same values
                assert torch.equal(replayed[1], want[1]) and torch.equal(replayed[2], want[2])
        if name == "decode_attention":  # warm-up, two replays, two eager calls
            assert int(captured[1].item()) == 5


@pytest.mark.gpu
def test_compiled_callers_record_the_ops_on_cuda():
    _need_kernels()
    _check_compiled_callers("cuda")


@pytest.mark.gpu
def test_compiled_caller_of_the_fused_gemv_records_the_op():
    from reset_native import _nvfp4_fused

    if not _nvfp4_fused.AVAILABLE or not torch.cuda.is_available():
        pytest.skip("needs the CUDA kernels")
    t, x, nw, _ = _nvfp4_case(512, 1024, 1, seed=3)
    packed, scales, gs = t.packed, t.block_scales, t.global_scale

    def f(x):
        return _nvfp4_fused.gemv_fused(packed, scales, gs, x, nw, 1e-6, True) * 2

    graphs = []
    torch._dynamo.reset()
    got = torch.compile(f, backend=_recording_aot_eager(graphs), fullgraph=True)(x)
    assert any("reset_native.nvfp4_gemv_fused" in g for g in graphs), graphs
    assert torch.equal(got, f(x))
