"""CPU prefill of nvfp4.gemv (_nvfp4_prefill_cpu): from MIN_TOKENS tokens W4A16 and W4A4 expand the weights chunk by
chunk and multiply with BLAS. Checked against fp64 math on the same bytes (numpy and torch CPU inputs, every float
dtype, bias, ragged chunks, W4A4 with a dynamic and a static scale), against the GEMV kernels, and for which calls
take it."""
import numpy as np
import pytest

from reset_native import _nvfp4_prefill_cpu as prefill
from reset_native import nvfp4

LO = prefill.MIN_TOKENS


@pytest.fixture
def route_calls(monkeypatch):
    """Counts the route's GEMMs (and lets them run)."""
    monkeypatch.delenv("RESET_NATIVE_GEMV_PREFILL", raising=False)
    calls = []
    real = prefill.gemm
    monkeypatch.setattr(prefill, "gemm", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    return calls


def _case(n, k, m, seed, bias=False):
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((n, k)) * np.exp(rng.standard_normal((n, 1)))).astype(np.float32)
    t = nvfp4.quantize(w)
    x = (rng.standard_normal((m, k)) * 2).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32) if bias else None
    return t, x, b


def _check(y, t, x, b, out_ulp):
    """|y - ref| within y's own rounding plus a worst-case fp32 summation bound ((K + 4) ulps of sum |x w|)."""
    w64 = nvfp4.dequantize(t).astype(np.float64)
    x64 = np.asarray(x, dtype=np.float64)
    ref = x64 @ w64.T + (0 if b is None else np.asarray(b, dtype=np.float64))
    mag = np.abs(x64) @ np.abs(w64).T + (0 if b is None else np.abs(np.asarray(b, dtype=np.float64)))
    bound = out_ulp * np.abs(ref) + (x.shape[1] + 4) * 2.0 ** -24 * mag + 1e-30
    err = np.abs(np.asarray(y, dtype=np.float64) - ref)
    assert (err <= bound).all(), float((err / bound).max())


@pytest.mark.parametrize("dtype,ulp", [(np.float32, 0.0), (np.float16, 2.0 ** -11)])
@pytest.mark.parametrize("bias", [False, True])
def test_numpy_prefill_matches_fp64(dtype, ulp, bias, route_calls):
    seed = int(np.random.default_rng().integers(2**31))
    t, x, b = _case(200, 256, LO + 5, seed, bias)
    x, b = x.astype(dtype), None if b is None else b.astype(dtype)
    y = nvfp4.gemv(t, x, bias=b)
    assert route_calls == [1] and y.dtype == dtype and y.shape == (LO + 5, 200) and isinstance(y, np.ndarray)
    _check(y, t, x.astype(np.float32), None if b is None else b.astype(np.float32), ulp)


@pytest.mark.parametrize("name,ulp", [("float32", 0.0), ("float16", 2.0 ** -11), ("bfloat16", 2.0 ** -8)])
def test_torch_cpu_prefill_matches_fp64(name, ulp, route_calls):
    torch = pytest.importorskip("torch")
    dtype = getattr(torch, name)
    t, x, b = _case(96, 512, LO, 11, bias=True)
    xt, bt = torch.from_numpy(x).to(dtype), torch.from_numpy(b).to(dtype)
    y = nvfp4.gemv(nvfp4.NVFP4Tensor.from_parts(torch.from_numpy(np.asarray(t.packed)),
                                                torch.from_numpy(np.asarray(t.block_scales)), t.global_scale),
                   xt.requires_grad_(name == "float32"), bias=bt)
    assert route_calls == [1] and isinstance(y, torch.Tensor) and y.dtype == dtype and not y.requires_grad
    _check(y.double().numpy(), t, xt.detach().float().numpy(), bt.float().numpy(), ulp)


@pytest.mark.parametrize("chunk_rows", [1, 7, 64, 1000])
def test_chunks_of_any_size_cover_every_row(chunk_rows):
    """N = 200 split into chunks that do not divide it (1 row, 7 rows, ...): every output column computed."""
    t, x, b = _case(200, 128, 3, 5, bias=True)
    y = prefill.gemm(np.asarray(t.packed), np.asarray(t.block_scales), t.global_scale, x, b,
                     chunk_bytes=chunk_rows * 4 * 128)
    _check(y, t, x, b, 0.0)


def test_route_and_kernels_agree(monkeypatch):
    t, x, b = _case(384, 1024, LO, 7, bias=True)
    monkeypatch.setenv("RESET_NATIVE_GEMV_PREFILL", "slices")
    y_kernels = nvfp4.gemv(t, x, bias=b).astype(np.float64)
    monkeypatch.setenv("RESET_NATIVE_GEMV_PREFILL", "auto")
    y_route = nvfp4.gemv(t, x, bias=b).astype(np.float64)
    mag = np.abs(x.astype(np.float64)) @ np.abs(nvfp4.dequantize(t).astype(np.float64)).T
    assert (np.abs(y_route - y_kernels) <= 2.0 ** -16 * mag + 2.0 ** -23 * np.abs(y_kernels)).all()


def _w4a4_reference(t, x, act_gs):
    """x quantized as the spec says (nvfp4.quantize with the activation global scale: gx = act_gs or amax / 2688
    in fp32), its exact values times the dequantized weights, in fp64; and sum |x_q w|."""
    xa = np.asarray(x, dtype=np.float32)
    gx = np.float32(act_gs) if act_gs is not None else np.float32(np.abs(xa).max()) / np.float32(2688.0)
    q = nvfp4.quantize(xa, global_scale=float(gx))
    xq = nvfp4.dequantize(q).astype(np.float64)  # e2m1 * e4m3 * gx: exact in fp64
    w64 = nvfp4.dequantize(t).astype(np.float64)
    return xq @ w64.T, np.abs(xq) @ np.abs(w64).T


@pytest.mark.parametrize("act_gs", [None, 0.003])
@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_w4a4_prefill_matches_fp64_and_the_kernels(act_gs, kind, route_calls, monkeypatch):
    t, x, b = _case(160, 256, LO + 2, 13, bias=True)
    if kind == "torch":
        torch = pytest.importorskip("torch")
        t = nvfp4.NVFP4Tensor.from_parts(torch.from_numpy(np.asarray(t.packed)),
                                         torch.from_numpy(np.asarray(t.block_scales)), t.global_scale)
        x, b = torch.from_numpy(x).to(torch.bfloat16), torch.from_numpy(b).to(torch.bfloat16)
    y = nvfp4.gemv(t, x, activation="nvfp4", act_global_scale=act_gs, bias=b)
    assert route_calls == [1]
    x32 = np.asarray(x.float() if kind == "torch" else x, dtype=np.float32)
    b64 = np.asarray(b.float() if kind == "torch" else b, dtype=np.float64)
    ref, mag = _w4a4_reference(t if kind == "numpy" else nvfp4.NVFP4Tensor.from_parts(
        np.asarray(t.packed), np.asarray(t.block_scales), t.global_scale), x32, act_gs)
    ref, mag = ref + b64, mag + np.abs(b64)
    out_ulp = 2.0 ** -8 if kind == "torch" else 0.0
    y64 = np.asarray(y.double() if kind == "torch" else y, dtype=np.float64)
    assert (np.abs(y64 - ref) <= out_ulp * np.abs(ref) + (x32.shape[1] + 4) * 2.0 ** -24 * mag + 1e-30).all()
    monkeypatch.setenv("RESET_NATIVE_GEMV_PREFILL", "slices")
    y_kernels = nvfp4.gemv(t, x, activation="nvfp4", act_global_scale=act_gs, bias=b)
    k64 = np.asarray(y_kernels.double() if kind == "torch" else y_kernels, dtype=np.float64)
    assert (np.abs(y64 - k64) <= 2 * out_ulp * np.abs(k64) + 2.0 ** -16 * mag).all()  # the same quantized operands


def test_w4a4_prefill_with_a_non_finite_x_raises_the_kernels_error(route_calls):
    t, x, _ = _case(32, 64, LO, 17)
    x[3, 20] = np.nan
    with pytest.raises(ValueError, match=r"x\[3, 20\] is nan"):
        nvfp4.gemv(t, x, activation="nvfp4")
    assert route_calls == []


def test_which_calls_take_the_route(route_calls, monkeypatch):
    t, x, _ = _case(64, 128, LO, 3)
    nvfp4.gemv(t, x[:LO - 1])  # below the crossover
    nvfp4.gemv(t, x[:LO - 1], activation="nvfp4")
    nvfp4.gemv(t, x[0])  # one token
    assert route_calls == []
    nvfp4.gemv(t, x, activation="nvfp4")
    assert route_calls == [1]
    route_calls.clear()
    nvfp4.gemv(t, x)
    assert route_calls == [1]
    monkeypatch.setenv("RESET_NATIVE_GEMV_PREFILL", "slices")
    nvfp4.gemv(t, x)
    assert route_calls == [1]
    monkeypatch.setenv("RESET_NATIVE_GEMV_PREFILL", "dequant")
    nvfp4.gemv(t, x[:2])
    assert route_calls == [1, 1]


def test_a_bad_environment_value_is_named(monkeypatch):
    t, x, _ = _case(16, 32, 4, 1)
    monkeypatch.setenv("RESET_NATIVE_GEMV_PREFILL", "fast")
    with pytest.raises(ValueError, match="RESET_NATIVE_GEMV_PREFILL must be one of .*'fast'"):
        nvfp4.gemv(t, x)
