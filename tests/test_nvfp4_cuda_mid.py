"""The medium-M NVFP4 GEMM (cuda/nvfp4/gemm_mid_kernel.cuh on mma.sync, gemm_wg_kernel.cuh and gemm_ws_kernel.cuh on
wgmma; route 'mid' of nvfp4.gemv for 17..MID_MAX_TOKENS tokens of 16-bit x): fp64 math on the same bytes for every tile
edge (rows past N, tokens past a column tile, several token blocks, K split or not) with the rule's kernels and every
wgmma shape, bias, both 16-bit dtypes, W4A4 through it, poisoned outputs, a deterministic K split, CUDA graphs,
agreement with the slices, and the launcher's errors. GPU only (marker gpu); the route rule is tested on CPU in
test_nvfp4_mid_route.py, the shape rule in test_nvfp4_mid_shape_rule.py."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
from reset_native import _nvfp4_cuda as nc  # noqa: E402
from reset_native import _nvfp4_prefill as prefill  # noqa: E402
from reset_native import nvfp4  # noqa: E402

import nvfp4_gpu_reference as ref  # noqa: E402

pytestmark = pytest.mark.gpu


_case = ref.mid_case


_w64 = ref.dequantized64


def _counted(monkeypatch):
    calls = []
    real = nc.gemm_mid
    monkeypatch.setattr(nc, "gemm_mid", lambda *a, **kw: calls.append(a[5]) or real(*a, **kw))
    return calls  # the workspace bytes of each launch


def _splits(n, k, m):
    """K splits the launcher picks for this shape on this GPU (1: none)."""
    splits = ref.mid_launch_plan(n, k, m)[1]
    assert splits >= 1
    return splits


# (n, k, m): rows past N in the last CTA (N % 256 != 0, N < 16), tokens past an 8-column tile, one and several token
# blocks (32 or 64 tokens per CTA), short K (one stage) and K longer than the weight ring, split and unsplit K; the
# last one gives every CTA of every warp-specialised shape 10..20 K stages, so that both of its rings (up to 8 weight
# and 6 x slots) wrap, also where K is split
SHAPES = [(300, 1024, 17), (5, 128, 40), (1000, 384, 64), (4097, 2048, 33), (640, 4096, 100), (256, 256, 256),
          (36000, 256, 24), (12000, 2560, 33)]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("n,k,m", SHAPES)
def test_mid_gemm_matches_fp64(n, k, m, dtype, monkeypatch):
    monkeypatch.setenv("RESET_NATIVE_GEMV_PREFILL", "mid")  # also past MID_MAX_TOKENS (the kernel takes up to 1024)
    seed = int(torch.randint(0, 2**31, ()))
    t, x, b = _case(n, k, m, dtype, seed, bias=m % 2 == 0)
    calls = _counted(monkeypatch)
    y = nvfp4.gemv(t, x, bias=b)
    assert len(calls) == 1 and y.dtype == dtype and y.shape == (m, n)
    ref.check_vs_fp64_weights(y, x, _w64(t), "bf16", b)


needs_wgmma = pytest.mark.skipif(not getattr(nc._native, "cuda_gemm_mid_wgmma", False),
                                 reason="build without sm_90a (no wgmma kernels)")


@needs_wgmma
@pytest.mark.parametrize("shape", ["wg32", "wg64", "wg128", "wg64g4", "wg128g4", "wg128g4s", "ws16c2", "ws32c2",
                                   "ws64c2", "ws128c2", "ws32c3", "ws64c3", "ws128c3", "ws32c4", "ws64c4", "ws32c2m2",
                                   "ws64c2m2"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("n,k,m", SHAPES)
def test_wgmma_kernels_match_fp64(n, k, m, dtype, shape, monkeypatch):
    """Every wgmma tile (32, 64, 128 tokens per CTA; 128 rows, 256 with g4) and every warp-specialised one (16..128
    tokens, 2 or 4 consumer warpgroups, one or two CTAs per SM) on every edge of SHAPES, split K or not."""
    monkeypatch.setenv("RESET_NATIVE_GEMV_PREFILL", "mid")
    monkeypatch.setenv("RESET_NATIVE_GEMM_MID", shape)
    t, x, b = _case(n, k, m, dtype, int(torch.randint(0, 2**31, ())), bias=m % 2 == 1)
    calls = _counted(monkeypatch)
    y = nvfp4.gemv(t, x, bias=b)
    assert len(calls) == 1 and y.dtype == dtype and y.shape == (m, n)
    ref.check_vs_fp64_weights(y, x, _w64(t), "bf16", b)


@pytest.mark.parametrize("shape", ["n4m1", "n4m2", "n8m1"])
@pytest.mark.parametrize("n,k,m", SHAPES)
def test_mma_sync_kernels_match_fp64(n, k, m, shape, monkeypatch):
    """The mma.sync kernels (the rule where the build or GPU has no wgmma) on every edge."""
    monkeypatch.setenv("RESET_NATIVE_GEMV_PREFILL", "mid")
    monkeypatch.setenv("RESET_NATIVE_GEMM_MID", shape)
    t, x, b = _case(n, k, m, torch.bfloat16, int(torch.randint(0, 2**31, ())), bias=m % 2 == 1)
    calls = _counted(monkeypatch)
    y = nvfp4.gemv(t, x, bias=b)
    assert len(calls) == 1 and y.shape == (m, n)
    ref.check_vs_fp64_weights(y, x, _w64(t), "bf16", b)


@needs_wgmma
@pytest.mark.parametrize("shape", ["wg64", "ws64c2", "ws32c2m2", "ws32c4", "ws128c3"])
def test_wgmma_kernel_writes_every_output_over_poison_and_is_deterministic(shape, monkeypatch):
    """Poisoned output and workspace (the ws kernels' permuted x lives there too): every output written, twice the
    same bits."""
    monkeypatch.setenv("RESET_NATIVE_GEMM_MID", shape)
    for n, k, m in [(1000, 384, 100), (640, 4096, 48)]:  # unsplit, split K
        t, x, b = _case(n, k, m, torch.bfloat16, 11, bias=True)
        outs = [ref.mid_gemm_over_poison(t, x, b) for _ in range(2)]
        ref.check_vs_fp64_weights(outs[0], x, _w64(t), "bf16", b)
        assert torch.equal(outs[0], outs[1])


@needs_wgmma
def test_the_rule_takes_three_warpgroups_where_their_grid_fills_one_wave(monkeypatch):
    """192-row CTAs where they fill one wave of this GPU's SMs (N = 192 x SMs at 40 tokens: one token block), against
    fp64; 2 warpgroups one row block more."""
    monkeypatch.setenv("RESET_NATIVE_GEMV_PREFILL", "mid")
    monkeypatch.delenv("RESET_NATIVE_GEMM_MID", raising=False)
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    hopper = torch.cuda.get_device_capability() == (9, 0)
    n = 192 * sms
    assert nc._native.cuda_gemm_mid_shape(40, n, hopper, "", sms) == ("ws64c3" if hopper else "n8m1")
    assert nc._native.cuda_gemm_mid_shape(40, n + 192, hopper, "", sms) == ("ws64c2" if hopper else "n8m1")
    t, x, b = _case(n, 1024, 40, torch.bfloat16, int(torch.randint(0, 2**31, ())), bias=True)
    ref.check_vs_fp64_weights(nvfp4.gemv(t, x, bias=b), x, _w64(t), "bf16", b)


@needs_wgmma
@pytest.mark.parametrize("shape", ["ws64c3", "ws32c4"])
def test_the_ws_path_gives_the_same_bits_with_and_without_pdl(shape, monkeypatch):
    """RESET_NATIVE_GEMM_MID_PDL turns programmatic dependent launch of the permutation and the GEMM off (0; 1 and
    unset: on; gemm: only the GEMM's): the same bits every way, within the fp64 bound, in a chain of calls on one
    stream. Each call of the chain takes another x: the caching allocator hands a call the workspace the one before
    used, so with one x a GEMM that read the permuted x before this call's permutation wrote it would still find the
    right bytes."""
    monkeypatch.setenv("RESET_NATIVE_GEMV_PREFILL", "mid")
    monkeypatch.setenv("RESET_NATIVE_GEMM_MID", shape)
    t, x, b = _case(4097, 2048, 48, torch.bfloat16, 23, bias=True)
    xs = [x, x * -0.5, x * 2.0]
    monkeypatch.setenv("RESET_NATIVE_GEMM_MID_PDL", "0")
    want = [nvfp4.gemv(t, xi, bias=b) for xi in xs]
    torch.cuda.synchronize()
    w64 = _w64(t)
    for xi, y in zip(xs, want):
        ref.check_vs_fp64_weights(y, xi, w64, "bf16", b)
    for value in ("0", "1", "gemm"):
        monkeypatch.setenv("RESET_NATIVE_GEMM_MID_PDL", value)
        ys = [nvfp4.gemv(t, xi, bias=b) for xi in xs]
        assert all(torch.equal(y, w) for y, w in zip(ys, want)), value


def test_shapes_cover_a_split_and_an_unsplit_k():
    kinds = {_splits(n, k, m) > 1 for n, k, m in SHAPES}
    assert kinds == {True, False}


def test_every_output_is_written_over_poison():
    """The launcher on a NaN-filled output and workspace, split K and not, the rule's kernels (in sm_90a builds the
    warp-specialised kernel at 32, 64 and 128 tokens per CTA; else mma.sync): every element finite and within the fp64
    bound."""
    for n, k, m in [(1000, 384, 64), (36000, 256, 24), (1000, 384, 100), (640, 4096, 100)]:
        t, x, b = _case(n, k, m, torch.bfloat16, 7, bias=True)
        ref.check_vs_fp64_weights(ref.mid_gemm_over_poison(t, x, b), x, _w64(t), "bf16", b)


def test_split_k_is_deterministic():
    n, k, m = 640, 4096, 48
    assert _splits(n, k, m) > 1
    t, x, _ = _case(n, k, m, torch.bfloat16, 9)
    y1, y2 = nvfp4.gemv(t, x), nvfp4.gemv(t, x)
    assert torch.equal(y1, y2)  # partial sums added in split order, no atomics


@pytest.mark.parametrize("act_gs", [None, 0.003])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_w4a4_through_the_mid_gemm_matches_fp64(act_gs, dtype, monkeypatch):
    monkeypatch.delenv("RESET_NATIVE_GEMV_PREFILL", raising=False)
    t, x, b = _case(700, 1024, 40, dtype, int(torch.randint(0, 2**31, ())), bias=True)
    calls = _counted(monkeypatch)
    y = nvfp4.gemv(t, x, activation="nvfp4", act_global_scale=act_gs, bias=b)
    assert len(calls) == 1
    ref.check_vs_fp64_weights(y, x, _w64(t), "nvfp4", b, act_gs=act_gs)


def test_mid_and_slices_agree(monkeypatch):
    """Same operands, fp32 sums in another order: at most an output ulp apart plus the sums' fp32 errors."""
    t, x, b = _case(384, 2048, 64, torch.bfloat16, int(torch.randint(0, 2**31, ())), bias=True)
    monkeypatch.setenv("RESET_NATIVE_GEMV_PREFILL", "slices")
    y_slices = nvfp4.gemv(t, x, bias=b).double()
    monkeypatch.setenv("RESET_NATIVE_GEMV_PREFILL", "mid")
    y_mid = nvfp4.gemv(t, x, bias=b).double()
    mag = x.double().abs() @ torch.from_numpy(np.abs(_w64(t))).cuda().T
    assert bool(((y_mid - y_slices).abs() <= 2.0 ** -7 * y_slices.abs() + 2.0 ** -17 * mag).all())
    assert (y_mid != y_slices).double().mean() < 0.05


@pytest.mark.parametrize("m", [24, 48, 100])  # the rule's three shapes (32, 64 and 128 tokens per CTA)
@pytest.mark.parametrize("n", [640, 20000])  # K split (two launches) and not
def test_mid_gemm_captures_in_a_cuda_graph(n, m, monkeypatch):
    monkeypatch.delenv("RESET_NATIVE_GEMV_PREFILL", raising=False)
    monkeypatch.setenv("RESET_NATIVE_GEMM_MID_SK", "0")  # the grid (stream-K replays: test_nvfp4_cuda_mid_streamk.py)
    t, x, b = _case(n, 1024, m, torch.bfloat16, 5, bias=True)
    assert (_splits(n, 1024, m) > 1) == (n == 640)
    y_eager, y_graph = ref.eager_then_graph_replay(lambda: nvfp4.gemv(t, x, bias=b), x)
    ref.check_vs_fp64_weights(y_graph, x, _w64(t), "bf16", b)
    assert not torch.equal(y_graph, y_eager)  # the replay read the new x


def test_unaligned_operands_are_copied_aligned(monkeypatch):
    """Views at odd offsets (x at 2 bytes past 16, scales at 1 byte past 8) give the same bits as aligned copies."""
    monkeypatch.setenv("RESET_NATIVE_GEMV_PREFILL", "mid")
    t, x, _ = _case(300, 1024, 20, torch.bfloat16, 3)
    want = nvfp4.gemv(t, x)
    buf = torch.empty(x.numel() + 1, dtype=x.dtype, device="cuda")
    xo = buf[1:].view(x.shape)
    xo.copy_(x)
    sbuf = torch.empty(t.block_scales.numel() + 1, dtype=torch.uint8, device="cuda")
    so = sbuf[1:].view(t.block_scales.shape)
    so.copy_(t.block_scales)
    to = nvfp4.NVFP4Tensor.from_parts(t.packed, so, t.global_scale)
    assert torch.equal(nvfp4.gemv(to, xo), want)


def test_launcher_rejects_what_it_cannot_take(monkeypatch):
    monkeypatch.setenv("RESET_NATIVE_GEMM_MID_SK", "0")  # the grid's workspace (stream-K's: its own test file)
    t, x, _ = _case(64, 1024, 20, torch.bfloat16, 1)
    out = torch.empty(20, 64, dtype=torch.bfloat16, device="cuda")
    stream = torch.cuda.current_stream().cuda_stream
    native = nc._native
    args = (t.packed.data_ptr(), t.block_scales.data_ptr(), 1.0, 64)

    def call(k=1024, xp=x.data_ptr(), code=2, m=20, ws=0, ws_bytes=0):
        native.cuda_gemm_mid(*args, k, xp, code, m, 0, out.data_ptr(), ws, ws_bytes, stream)

    for bad in (dict(k=192), dict(code=0), dict(m=0), dict(m=2000), dict(xp=x.data_ptr() + 2)):
        # K stages of 128; float32 x; m out of 1..1024; x 2 bytes past a 16-byte boundary
        with pytest.raises(ValueError, match=r"needs 16-bit x, k % 128 == 0, 1 <= m <= 1024, .*aligned"):
            call(**bad)
    ok, ws = nc.gemm_mid_plan(64, 1024, x)
    # one row block, 8 K stages: two splits of 4; the warp-specialised rule also permutes x (one block of 32 tokens)
    rule = native.cuda_gemm_mid_shape(20, 64, torch.cuda.get_device_capability() == (9, 0))
    permuted_x = 32 * 1024 * 2 if rule.startswith("ws") else 0
    assert ok and nc.gemm_mid_launch_plan(64, 1024, x)[1:] == (2, 0) and ws == permuted_x + 2 * 20 * 64 * 4
    with pytest.raises(ValueError, match=rf"workspace needs {ws} bytes"):
        call()
    with pytest.raises(ValueError, match=rf"workspace needs {ws} bytes"):
        call(ws=out.data_ptr(), ws_bytes=ws - 4)
    with pytest.raises(ValueError, match=r"null pointer"):
        call(xp=0)
    assert nc.gemm_mid_plan(64, 192, x[:, :192])[0] is False
    assert nc.gemm_mid_plan(64, 1024, x.float())[0] is False


def test_the_route_knows_the_kernels_limits():
    native = nc._native
    assert prefill.MID_KERNEL_MAX_TOKENS == native.cuda_gemm_mid_max_tokens
    assert prefill.MID_KERNEL_MAX_ROWS == native.cuda_gemm_mid_max_rows
    assert prefill.MID_KERNEL_MAX_OUTPUTS == native.cuda_gemm_mid_max_outputs
    x = torch.empty(1024, 128, dtype=torch.bfloat16, device="cuda")
    n = prefill.MID_KERNEL_MAX_OUTPUTS // 1024
    assert nc.gemm_mid_plan(n, 128, x)[0] and not nc.gemm_mid_plan(n + 1, 128, x)[0]
    assert nc.gemm_mid_plan(prefill.MID_KERNEL_MAX_ROWS, 128, x[:1])[0]
    assert not nc.gemm_mid_plan(prefill.MID_KERNEL_MAX_ROWS + 1, 128, x[:1])[0]


def test_route_takes_the_mid_gemm_from_17_tokens_to_its_maximum(monkeypatch):
    monkeypatch.delenv("RESET_NATIVE_GEMV_PREFILL", raising=False)
    t, x, _ = _case(256, 256, prefill.MID_MAX_TOKENS + 1, torch.bfloat16, 2)
    calls = _counted(monkeypatch)
    for m in (17, prefill.MID_MAX_TOKENS):
        nvfp4.gemv(t, x[:m])
    assert len(calls) == 2
    nvfp4.gemv(t, x)  # one token more: dequantize + cuBLAS
    assert len(calls) == 2


def _recording_aot_eager(targets):
    """A torch.compile backend that keeps the traced graphs' call targets, then runs the graph like aot_eager."""
    aot_eager = torch._dynamo.lookup_backend("aot_eager")

    def backend(gm, example_inputs):
        targets.extend(str(node.target) for node in gm.graph.nodes if node.op == "call_function")
        return aot_eager(gm, example_inputs)

    return backend


@pytest.mark.parametrize("m", [24, 48, 100])  # the rule's three shapes (32, 64 and 128 tokens per CTA)
def test_a_compiled_caller_runs_the_mid_op_with_the_eager_bits(m, monkeypatch):
    """The route's call (_nvfp4_prefill.mid_gemm) compiled by torch.compile (inductor, whole graph) runs the op
    reset_native::nvfp4_gemm_mid: the same kernel, so the same bits as the eager call, K split or not. (nvfp4.gemv's
    way there, through the route rule: the NVFP4Linear test below.)"""
    monkeypatch.delenv("RESET_NATIVE_GEMV_PREFILL", raising=False)
    calls = _counted(monkeypatch)
    for n in (640, 20000):  # K split and not
        t, x, b = _case(n, 1024, m, torch.bfloat16, 17, bias=True)
        want = prefill.mid_gemm(t.packed, t.block_scales, t.global_scale, x, "bf16", None, b)
        torch._dynamo.reset()
        f = torch.compile(lambda x: prefill.mid_gemm(t.packed, t.block_scales, t.global_scale, x, "bf16", None, b),
                          fullgraph=True)
        before = len(calls)
        assert torch.equal(f(x), want)
        assert len(calls) == before + 1  # one launch through the op


@pytest.mark.parametrize("m", [8, 48, 100])
def test_a_compiled_nvfp4_linear_records_the_op_and_keeps_the_bits(m, monkeypatch):
    """NVFP4Linear under torch.compile, as one graph (no break): 17..128 tokens record the medium-M op (the GEMV
    op at <= 16 tokens), and the compiled module gives the eager module's bits."""
    from reset_native.integrations.nvfp4_linear import NVFP4Linear

    monkeypatch.delenv("RESET_NATIVE_GEMV_PREFILL", raising=False)
    gen = torch.Generator().manual_seed(m)
    lin = torch.nn.Linear(1024, 640, bias=True).to(torch.bfloat16)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(640, 1024, generator=gen))
        lin.bias.copy_(torch.randn(640, generator=gen))
    q = NVFP4Linear.from_linear(lin.cuda())
    x = torch.randn(m, 1024, generator=gen).to(torch.bfloat16).cuda()
    with torch.no_grad():
        want = q(x)
        targets = []
        torch._dynamo.reset()
        got = torch.compile(q, backend=_recording_aot_eager(targets), fullgraph=True)(x)
    op = "reset_native.nvfp4_gemv" if m <= 16 else "reset_native.nvfp4_gemm_mid"
    assert op in targets, targets
    assert torch.equal(got, want)


def test_the_mid_op_checks_its_arguments():
    """A direct call of torch.ops.reset_native.nvfp4_gemm_mid validates what the route would have (opcheck runs its
    schema, fake and dispatch checks on a good call)."""
    t, x, b = _case(300, 1024, 40, torch.bfloat16, 4, bias=True)
    op = torch.ops.reset_native.nvfp4_gemm_mid
    torch.library.opcheck(op, (t.packed, t.block_scales, t.global_scale, x, b))
    with pytest.raises(ValueError, match="K % 128 == 0"):
        op(t.packed[:, :96].contiguous(), t.block_scales[:, :12].contiguous(), t.global_scale,
           x[:, :192].contiguous(), b)
    with pytest.raises(TypeError, match="x must be float16 or bfloat16"):
        op(t.packed, t.block_scales, t.global_scale, x.float(), None)
    with pytest.raises(ValueError, match="x must be contiguous"):
        op(t.packed, t.block_scales, t.global_scale, x.t().contiguous().t(), b)
    with pytest.raises(ValueError, match="K = 1024"):
        op(t.packed, t.block_scales, t.global_scale, x[:, :512].contiguous(), b)
    with pytest.raises(ValueError, match="bias must be"):
        op(t.packed, t.block_scales, t.global_scale, x, b[:10])
    with pytest.raises(ValueError, match="x must be a CUDA tensor"):
        op(t.packed, t.block_scales, t.global_scale, x.cpu(), b)
    with pytest.raises(ValueError, match="global_scale must be a finite float > 0"):
        op(t.packed, t.block_scales, -1.0, x, b)
