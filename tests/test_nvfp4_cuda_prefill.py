"""Prefill-sized calls (M > 16) of the CUDA nvfp4.gemv: the dequantize + cuBLAS route (_nvfp4_prefill) against fp64
math on the same bytes, its chunking, bias, CUDA-graph capture, an x that requires grad, and agreement with the
16-token slices. GPU only (marker gpu); the route rule itself is tested on CPU in test_nvfp4_prefill_route.py."""
import pytest

torch = pytest.importorskip("torch")
from reset_native import _nvfp4_prefill as prefill  # noqa: E402
from reset_native import nvfp4  # noqa: E402

import nvfp4_gpu_reference as ref  # noqa: E402

pytestmark = [pytest.mark.gpu, pytest.mark.usefixtures("fp32_cublas_reductions")]  # fp64 bounds for fp32 sums
FP32_MM = hasattr(torch.ops.aten.mm, "dtype")  # float32 x takes the route only with torch's mm(out_dtype=float32)
ULP = {torch.bfloat16: 2.0 ** -8, torch.float16: 2.0 ** -11, torch.float32: 2.0 ** -24}


def _case(n, k, m, dtype, seed, bias=False):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, k, generator=g) * torch.exp(torch.randn(n, 1, generator=g))
    t = nvfp4.quantize(w.cuda())
    x = (torch.randn(m, k, generator=g) * 2).to(dtype).cuda()
    b = (torch.randn(n, generator=g)).to(dtype).cuda() if bias else None
    return t, x, b


def _check_against_fp64(y, t, x, b):
    """|y - ref| within half an output ulp of |ref| (one rounding) plus fp32 accumulation error of sum |x| |w|."""
    w64 = nvfp4.dequantize(t).double()  # e2m1 * e4m3 * gs, one fp32 rounding per element (2^-24 relative)
    ref = x.double() @ w64.T + (0 if b is None else b.double())
    mag = x.double().abs() @ w64.abs().T
    bound = ULP[x.dtype] * ref.abs() + 2.0 ** -18 * mag + 1e-30
    err = (y.double() - ref).abs()
    assert y.dtype == x.dtype and y.shape == ref.shape
    assert bool((err <= bound).all()), float((err / bound).max())


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("extra,bias", [(0, False), (13, True), (300, False)])
def test_prefill_route_matches_fp64(dtype, extra, bias, monkeypatch):
    if dtype == torch.float32 and not FP32_MM:
        pytest.skip("float32 x takes the route only with torch's mm(out_dtype=float32)")
    monkeypatch.setenv("RESET_NATIVE_GEMV_PREFILL", "dequant")  # 16-bit x up to MID_MAX_TOKENS would take 'mid'
    seed = int(torch.randint(0, 2**31, ()))
    t, x, b = _case(200, 1024, prefill.MIN_TOKENS + extra, dtype, seed, bias)
    calls = []
    real = prefill.gemm
    monkeypatch.setattr(prefill, "gemm", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    y = nvfp4.gemv(t, x, bias=b)
    assert calls == [1]  # the dequantize + GEMM route ran, not the slices
    _check_against_fp64(y, t, x, b)


@pytest.mark.parametrize("rows_per_chunk", [16, 48, 10_000])
@pytest.mark.parametrize("bias", [False, True])
def test_chunks_cover_every_row_including_a_ragged_last_one(rows_per_chunk, bias):
    """N = 200 is not a multiple of the chunk: every chunk size gives the fp64 result (a row left unwritten would
    hold whatever the allocator's block held), written in place (no bias) or joined (bias)."""
    seed = int(torch.randint(0, 2**31, ()))
    t, x, b = _case(200, 512, 40, torch.bfloat16, seed, bias=bias)
    ref.poison_next_block(40 * 200 * 2)
    y = prefill.gemm(t.packed, t.block_scales, t.global_scale, x, b, chunk_bytes=rows_per_chunk * 512 * 2)
    _check_against_fp64(y, t, x, b)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_prefill_and_slices_agree(dtype, monkeypatch):
    if dtype == torch.float32 and not FP32_MM:
        pytest.skip("float32 x takes the route only with torch's mm(out_dtype=float32)")
    seed = int(torch.randint(0, 2**31, ()))
    t, x, b = _case(384, 2048, 64, dtype, seed, bias=True)
    monkeypatch.setenv("RESET_NATIVE_GEMV_PREFILL", "slices")
    y_slices = nvfp4.gemv(t, x, bias=b).double()
    monkeypatch.setenv("RESET_NATIVE_GEMV_PREFILL", "dequant")
    y_dequant = nvfp4.gemv(t, x, bias=b).double()
    # both round an fp32 sum once to x's dtype, summed in different orders: at most one output ulp apart plus the two
    # sums' fp32 errors (which dominate where x @ W^T and the bias nearly cancel); float32 x: both split x into the
    # same three exact bfloat16 parts
    mag = x.double().abs() @ nvfp4.dequantize(t).double().abs().T
    assert bool(((y_dequant - y_slices).abs() <= 2 * ULP[dtype] * y_slices.abs() + 2.0 ** -17 * mag).all())
    if dtype != torch.float32:  # 16-bit outputs mostly round to the same value; float32 ones keep the sums' order
        assert (y_dequant != y_slices).double().mean() < 0.05


def test_unsupported_calls_keep_the_slices(monkeypatch):
    calls = []
    monkeypatch.setattr(prefill, "gemm", lambda *a, **kw: calls.append(1))
    t, x, _ = _case(64, 256, prefill.MIN_TOKENS, torch.bfloat16, 1)
    nvfp4.gemv(t, x[:prefill.MIN_TOKENS - 1].contiguous())  # below the crossover
    assert calls == []


def test_a_call_autograd_records_keeps_the_slices(monkeypatch):
    """nvfp4.gemv has no autograd formula at any M: with x requiring grad the prefill route is not taken (the slices'
    op records a node whose backward raises, as at M <= 16)."""
    monkeypatch.setenv("RESET_NATIVE_GEMV_PREFILL", "dequant")  # forced: still not with autograd recording
    calls = []
    monkeypatch.setattr(prefill, "gemm", lambda *a, **kw: calls.append(1))
    t, x, _ = _case(96, 256, prefill.MIN_TOKENS, torch.float16, 3)
    y = nvfp4.gemv(t, x.requires_grad_(True))
    assert calls == [] and y.requires_grad
    with pytest.raises(RuntimeError):
        y.sum().backward()
    with torch.no_grad():
        nvfp4.gemv(t, x)
    assert calls == [1]


@pytest.mark.parametrize("route", ["dequant", "mid"])  # mid: unsplit here (test_nvfp4_cuda_mid.py: split K too)
def test_prefill_route_captures_in_a_cuda_graph(route, monkeypatch):
    monkeypatch.setenv("RESET_NATIVE_GEMV_PREFILL", route)
    t, x, b = _case(128, 512, prefill.MIN_TOKENS, torch.bfloat16, 5, bias=True)
    y_eager, y_graph = ref.eager_then_graph_replay(lambda: nvfp4.gemv(t, x, bias=b), x)
    _check_against_fp64(y_graph, t, x, b)
    assert not torch.equal(y_graph, y_eager)  # the replay read the new x


def test_dequantize_of_an_unaligned_packed_view_is_exact():
    """A packed view at an odd byte offset takes the dequantize kernel's byte loads: the same bits as the CPU."""
    t_cpu = nvfp4.quantize(torch.randn(48, 256))
    buf = torch.empty(t_cpu.packed.numel() + 1, dtype=torch.uint8, device="cuda")
    packed = buf[1:].view(t_cpu.packed.shape)
    packed.copy_(t_cpu.packed.cuda())
    assert packed.data_ptr() % 4 != 0
    t_gpu = nvfp4.NVFP4Tensor.from_parts(packed, t_cpu.block_scales.cuda(), t_cpu.global_scale)
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        assert torch.equal(nvfp4.dequantize(t_gpu, dtype).cpu(), nvfp4.dequantize(t_cpu, dtype))


@pytest.mark.parametrize("dtype,bias", [(torch.bfloat16, False), (torch.bfloat16, True), (torch.float32, True)])
def test_prefill_gemm_under_torch_compile(dtype, bias):
    """A traced call takes the out-of-place form (dequantize as the custom op, fp32-output mm, cat): the fp64 result
    with the route's default chunks and with several chunks."""
    if not FP32_MM:
        pytest.skip("traced calls take the route only with torch's mm(out_dtype=float32)")
    t, x, b = _case(200, 512, prefill.MIN_TOKENS, dtype, 7, bias=bias)
    gs = t.global_scale

    @torch.compile(fullgraph=True)
    def f(x, chunk_bytes):
        return prefill.gemm(t.packed, t.block_scales, gs, x, b, chunk_bytes=chunk_bytes)

    for chunk_bytes in (prefill.CHUNK_BYTES, 48 * 512 * 2):
        _check_against_fp64(f(x, chunk_bytes), t, x, b)
