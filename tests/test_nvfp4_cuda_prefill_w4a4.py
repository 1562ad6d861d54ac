"""W4A4 prefill (M > 16) of the CUDA nvfp4.gemv through the dequantize + cuBLAS route (_nvfp4_prefill.w4a4_gemm):
the bits of its activation operand (quantize_values) against the numpy quantizer (tests/nvfp4_gpu_reference.py);
fp64 math on x quantized by that reference for each x dtype, a static and a dynamic activation scale, with and
without bias; agreement with the 16-token slices; non-finite x; CUDA-graph capture with a static scale. GPU only
(marker gpu); the route rule is tested on CPU in test_nvfp4_prefill_route.py."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
from reset_native import _nvfp4_cuda as nc  # noqa: E402
from reset_native import _nvfp4_prefill as prefill  # noqa: E402
from reset_native import nvfp4  # noqa: E402

import nvfp4_gpu_reference as ref  # noqa: E402

pytestmark = [pytest.mark.gpu, pytest.mark.usefixtures("fp32_cublas_reductions")]  # fp64 bounds for fp32 sums
FP32_MM = hasattr(torch.ops.aten.mm, "dtype")


def _case(n, k, m, dtype, seed, bias=False):
    # rows of different magnitude (a dynamic scale from the whole x leaves the small rows on small block scales),
    # small enough at K = 1024 and these M that x @ W^T stays inside float16's range
    return ref.random_nvfp4_case(n, k, m, dtype, seed, bias)


_w64 = ref.dequantized64


def _counted(monkeypatch):
    calls = []
    real = prefill.w4a4_gemm
    monkeypatch.setattr(prefill, "w4a4_gemm", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    return calls


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("out_dtype", [torch.bfloat16, torch.float16])
def test_quantize_values_are_the_reference_quantizers_values(dtype, out_dtype):
    """Bit for bit: e2m1 * e4m3 of the numpy quantizer's codes (SPEC section 2) with the same global scale, for
    blocks of every magnitude (block scales clamped at both ends, saturated codes, an all-zero block), on both of the
    kernel's paths (fast and general); a NaN or Inf element comes out NaN. An odd view of x takes element loads."""
    g = torch.Generator().manual_seed(int(torch.randint(0, 2**31, ())))
    block_mag = torch.exp(2 * torch.randn(37, 16, 1, generator=g)).expand(37, 16, 16).reshape(37, 256)
    x = torch.randn(37, 256, generator=g) * block_mag
    x[4, 32:48] = 0
    x = x.to(dtype)
    # 1e-13 puts s = e4m3 scale * gs below 2^-32, outside the fast quantizer's range: the kernel's general path
    for gs in (1e-4, float(ref.global_scale_of(x.float().numpy())), 0.37, 1e-13):
        got = nc.quantize_values(x.cuda(), gs, out_dtype).cpu()
        packed, scales, _ = ref.quantize(x.float().numpy(), gs)
        want = torch.from_numpy(ref.dequantize(packed, scales, 1.0)).to(out_dtype)
        assert got.dtype == out_dtype and torch.equal(got, want), gs
    buf = torch.empty(x.numel() + 1, dtype=dtype, device="cuda")
    odd = buf[1:].view(x.shape)  # 2 or 4 bytes past a 16-byte boundary
    odd.copy_(x.cuda())
    packed, scales, _ = ref.quantize(x.float().numpy(), 0.01)
    want = torch.from_numpy(ref.dequantize(packed, scales, 1.0)).to(out_dtype)
    assert torch.equal(nc.quantize_values(odd, 0.01, out_dtype).cpu(), want)
    x[3, 5], x[30, 200] = float("nan"), float("inf")
    got = nc.quantize_values(x.cuda(), 0.01, out_dtype).cpu()
    assert bool(got[3, 5].isnan()) and bool(got[30, 200].isnan())
    assert int(got.isnan().sum()) == 2


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("act_gs,bias", [(None, False), (None, True), (0.004, True), (0.0007, False)])
def test_w4a4_prefill_matches_fp64(dtype, act_gs, bias, monkeypatch):
    if dtype == torch.float32 and not FP32_MM:
        pytest.skip("float32 x takes the route only with torch's mm(out_dtype=float32)")
    monkeypatch.setenv("RESET_NATIVE_GEMV_PREFILL", "dequant")  # 16-bit x up to MID_MAX_TOKENS would take 'mid'
    seed = int(torch.randint(0, 2**31, ()))
    t, x, b = _case(200, 1024, prefill.MIN_TOKENS + 7, dtype, seed, bias)
    calls = _counted(monkeypatch)
    y = nvfp4.gemv(t, x, activation="nvfp4", act_global_scale=act_gs, bias=b)
    assert calls == [1] and y.dtype == dtype and y.shape == (x.shape[0], 200)
    ref.check_vs_fp64_weights(y, x, _w64(t), "nvfp4", b, None, f32_eps=2.0**-22, act_gs=act_gs)


@pytest.mark.parametrize("act_gs", [None, 0.002])
def test_w4a4_prefill_and_slices_agree(act_gs, monkeypatch):
    """Same quantized operands, sums in a different order: one bf16 ulp apart at most plus fp32 sum errors."""
    seed = int(torch.randint(0, 2**31, ()))
    t, x, b = _case(384, 2048, 64, torch.bfloat16, seed, bias=True)
    monkeypatch.setenv("RESET_NATIVE_GEMV_PREFILL", "slices")
    y_slices = nvfp4.gemv(t, x, activation="nvfp4", act_global_scale=act_gs, bias=b).double()
    monkeypatch.setenv("RESET_NATIVE_GEMV_PREFILL", "dequant")
    calls = _counted(monkeypatch)
    y_route = nvfp4.gemv(t, x, activation="nvfp4", act_global_scale=act_gs, bias=b).double()
    assert calls == [1]
    xq = ref.dequantize(*ref.quantize(x.float().cpu().numpy(), act_gs)).astype(np.float64)
    mag = torch.from_numpy(np.abs(xq) @ np.abs(_w64(t)).T).cuda()
    assert bool(((y_route - y_slices).abs() <= 2.0 ** -7 * y_slices.abs() + 2.0 ** -17 * mag).all())
    assert (y_route != y_slices).double().mean() < 0.05


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_w4a4_prefill_rows_with_non_finite_x_are_nan(bad, monkeypatch):
    """With a static scale (no host read) a NaN / Inf in a row of x makes that row's outputs NaN; the others are
    exact. With a dynamic scale the call raises, naming x, on either route."""
    monkeypatch.delenv("RESET_NATIVE_GEMV_PREFILL", raising=False)
    t, x, _ = _case(64, 512, prefill.MIN_TOKENS, torch.bfloat16, 11)
    x[5, 300] = bad
    y = nvfp4.gemv(t, x, activation="nvfp4", act_global_scale=0.003)
    assert bool(torch.isnan(y[5]).all())
    keep = [i for i in range(x.shape[0]) if i != 5]
    ref.check_vs_fp64_weights(y[keep], x[keep], _w64(t), "nvfp4", act_gs=0.003)
    for route in ("dequant", "slices", "mid"):
        monkeypatch.setenv("RESET_NATIVE_GEMV_PREFILL", route)
        with pytest.raises(ValueError, match=r"x must be finite .*nvfp4"):
            nvfp4.gemv(t, x, activation="nvfp4")


def test_w4a4_all_zero_x_uses_scale_one():
    t, x, b = _case(48, 256, prefill.MIN_TOKENS, torch.float16, 13, bias=True)
    y = nvfp4.gemv(t, torch.zeros_like(x), activation="nvfp4", bias=b)
    assert torch.equal(y, b.expand_as(y))  # every product is zero; the bias is added once and rounded to itself


def test_w4a4_prefill_with_a_static_scale_captures_in_a_cuda_graph(monkeypatch):
    monkeypatch.delenv("RESET_NATIVE_GEMV_PREFILL", raising=False)
    t, x, b = _case(128, 512, prefill.MIN_TOKENS, torch.bfloat16, 17, bias=True)
    call = lambda: nvfp4.gemv(t, x, activation="nvfp4", act_global_scale=0.01, bias=b)  # noqa: E731
    y_eager, y_graph = ref.eager_then_graph_replay(call, x)
    ref.check_vs_fp64_weights(y_graph, x, _w64(t), "nvfp4", b, act_gs=0.01)
    assert not torch.equal(y_graph, y_eager)  # the replay read the new x
