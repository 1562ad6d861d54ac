"""The rule that sends prefill-sized CUDA gemv calls (M > 16) to dequantize + cuBLAS or to 16-token GEMV slices
(_nvfp4_prefill.route). It reads only x's dtype and grad state, so CPU tensors exercise it without a GPU."""
import pytest

torch = pytest.importorskip("torch")
from reset_native import _nvfp4_prefill as prefill  # noqa: E402

LO = prefill.MIN_TOKENS


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_w4a16_with_16_bit_x_takes_the_gemm_from_the_crossover(dtype, monkeypatch):
    monkeypatch.delenv("RESET_NATIVE_GEMV_PREFILL", raising=False)
    x = torch.zeros(1, 16, dtype=dtype)
    assert 16 < LO  # M <= 16 never reaches the rule: those are the GEMV kernels' own calls
    assert prefill.route(LO - 1, 256, "bf16", x) == "slices"
    assert prefill.route(LO, 256, "bf16", x) == "dequant"
    assert prefill.route(4096, 256, "bf16", x) == "dequant"


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_w4a4_takes_the_gemm_from_the_crossover_with_any_x_dtype(dtype, monkeypatch):
    """W4A4 quantizes x first, so its GEMM operands are exact in 16 bits whatever x's dtype; float32 x needs torch's
    fp32-output mm for its float32 result."""
    monkeypatch.delenv("RESET_NATIVE_GEMV_PREFILL", raising=False)
    x = torch.zeros(1, 16, dtype=dtype)
    fp32_ok = dtype != torch.float32 or hasattr(torch.ops.aten.mm, "dtype")
    assert prefill.route(LO - 1, 256, "nvfp4", x) == "slices"
    assert prefill.route(LO, 256, "nvfp4", x) == ("dequant" if fp32_ok else "slices")


def test_a_traced_w4a4_call_keeps_the_slices(monkeypatch):
    """The route quantizes x with a plain launch, which a torch.compile trace cannot hold."""
    from reset_native import _torch_launch

    monkeypatch.setenv("RESET_NATIVE_GEMV_PREFILL", "dequant")
    monkeypatch.setattr(_torch_launch, "eager", lambda: False)
    assert prefill.route(4096, 256, "nvfp4", torch.zeros(1, 16, dtype=torch.bfloat16)) == "slices"


def test_w4a16_float32_x_takes_the_gemm_with_an_fp32_output_mm(monkeypatch):
    """float32 x runs as three exact bfloat16 parts through mm(out_dtype=float32); without that mm, the slices."""
    monkeypatch.delenv("RESET_NATIVE_GEMV_PREFILL", raising=False)
    want = "dequant" if hasattr(torch.ops.aten.mm, "dtype") else "slices"
    lo32 = prefill.MIN_TOKENS_FP32
    assert 16 < lo32 <= LO  # its slices cost three MMAs per weight fragment: an earlier crossover
    assert prefill.route(lo32, 256, "bf16", torch.zeros(1, 16, dtype=torch.float32)) == want
    assert prefill.route(lo32 - 1, 256, "bf16", torch.zeros(1, 16, dtype=torch.float32)) == "slices"
    assert prefill.route(lo32, 256, "nvfp4", torch.zeros(1, 16, dtype=torch.float32)) == "slices"  # W4A4: from LO


def test_split_bf16_parts_sum_to_x_exactly():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(5, 64, generator=g) * torch.exp(10 * torch.randn(5, 64, generator=g))
    x[0, :5] = torch.tensor([0.0, -0.0, 1.0 + 2.0 ** -23, -(2.0 ** 100) * (1 + 2.0 ** -20), 3.4028234e38])
    parts = prefill.split_bf16(x)
    assert parts.dtype == torch.bfloat16 and parts.shape == (15, 64)
    hi, mid, lo = parts.double().split(5)
    assert torch.equal(hi + mid + lo, x.double())  # each part holds 8 of the 24 significant bits (float32's max too)
    assert bool((hi.abs() <= x.double().abs()).all())  # truncated, never rounded up (so never overflowing)


def test_w4a4_calls_autograd_records_keep_the_slices(monkeypatch):
    monkeypatch.setenv("RESET_NATIVE_GEMV_PREFILL", "dequant")  # not even forced
    xa = torch.zeros(1, 16, dtype=torch.bfloat16, requires_grad=True)
    assert prefill.route(4096, 256, "nvfp4", xa) == "slices"
    x = torch.zeros(1, 16, dtype=torch.bfloat16, requires_grad=True)
    assert prefill.route(4096, 256, "bf16", x) == "slices"
    with torch.no_grad():
        assert prefill.route(4096, 256, "bf16", x) == "dequant"


@pytest.mark.parametrize("value,want", [("slices", "slices"), ("dequant", "dequant"), ("auto", "slices"),
                                        ("", "slices")])
def test_environment_forces_a_route(value, want, monkeypatch):
    monkeypatch.setenv("RESET_NATIVE_GEMV_PREFILL", value)
    assert prefill.route(17, 256, "bf16", torch.zeros(1, 16, dtype=torch.bfloat16)) == want
    assert prefill.route(LO, 256, "bf16", torch.zeros(1, 16, dtype=torch.bfloat16)) == ("slices" if value == "slices"
                                                                                   else "dequant")


def test_a_bad_environment_value_is_named(monkeypatch):
    monkeypatch.setenv("RESET_NATIVE_GEMV_PREFILL", "fast")
    with pytest.raises(ValueError, match="RESET_NATIVE_GEMV_PREFILL must be one of .*'fast'"):
        prefill.route(LO, 256, "bf16", torch.zeros(1, 16, dtype=torch.bfloat16))


def test_a_traced_call_takes_the_gemm_only_with_an_fp32_output_mm(monkeypatch):
    """Under torch.compile the route's GEMM needs mm(out_dtype=float32) (inductor splits addmm's bias epilogue)."""
    from reset_native import _torch_launch

    monkeypatch.delenv("RESET_NATIVE_GEMV_PREFILL", raising=False)
    monkeypatch.setattr(_torch_launch, "eager", lambda: False)
    x = torch.zeros(1, 16, dtype=torch.bfloat16)
    want = "dequant" if hasattr(torch.ops.aten.mm, "dtype") else "slices"
    assert prefill.route(LO, 256, "bf16", x) == want


def test_fewer_than_16_outputs_keep_the_slices(monkeypatch):
    monkeypatch.setenv("RESET_NATIVE_GEMV_PREFILL", "dequant")
    x = torch.zeros(1, 16, dtype=torch.bfloat16)
    assert prefill.route(4096, 15, "bf16", x) == "slices"
    assert prefill.route(4096, 16, "bf16", x) == "dequant"


@pytest.mark.parametrize("n,rows_fit", [(200, 48), (200, 10_000), (16, 1), (4097, 4096), (4111, 4096), (4112, 4096),
                                        (50, 16), (33, 0)])
def test_chunks_tile_the_rows_in_multiples_of_16_with_no_narrow_tail(n, rows_fit):
    chunks = prefill.chunks(n, rows_fit)
    assert chunks[0][0] == 0 and chunks[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:]))  # contiguous, no gaps or overlaps
    width = max(16, min(n, rows_fit) // 16 * 16)
    for r0, r1 in chunks:
        assert r0 % 16 == 0 and r1 > r0
        assert r1 - r0 >= min(16, n)  # never a tail under 16 rows (cuBLASLt's bias epilogue needs >= 2 columns)
        assert r1 - r0 < width + 16  # at most the budget plus a joined tail


@pytest.mark.parametrize("amax", [0.0, 1.0, 2688.0, 3.0e38, 1e-30, 7.123456789])
def test_global_scale_of_amax_is_the_float32_quotient(amax):
    """The decode global scale quantize and the W4A4 prefill scale share: amax / 2688 divided in float32 (checked
    here against torch's float32 division), 1.0 for an all-zero array."""
    from reset_native import _nvfp4_cuda

    want = 1.0 if amax == 0 else float(torch.tensor(amax, dtype=torch.float32) / torch.tensor(2688.0))
    assert _nvfp4_cuda.global_scale_of_amax(amax) == want
