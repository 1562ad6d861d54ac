"""The rule that sends 17..MID_MAX_TOKENS-token CUDA gemv calls to the medium-M GEMM ('mid', _nvfp4_prefill.route).
It reads only x's dtype, shape and grad state, so CPU tensors exercise it without a GPU (the kernel itself:
test_nvfp4_cuda_mid.py)."""
import pytest

torch = pytest.importorskip("torch")
from reset_native import _nvfp4_prefill as prefill  # noqa: E402
from reset_native import _nvfp4_prefill_cpu as prefill_cpu  # noqa: E402
from reset_native import _torch_launch  # noqa: E402

MID = prefill.MID_MAX_TOKENS
K = prefill.MID_K_MULTIPLE


@pytest.mark.parametrize("activation", ["bf16", "nvfp4"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_16_bit_x_takes_the_mid_gemm_up_to_its_maximum(activation, dtype, monkeypatch):
    monkeypatch.delenv("RESET_NATIVE_GEMV_PREFILL", raising=False)
    x = torch.zeros(1, 3 * K, dtype=dtype)
    assert prefill.MIN_TOKENS <= MID  # the mid GEMM covers the tokens below dequantize + cuBLAS's crossover
    for m in (17, 40, prefill.MIN_TOKENS, MID):
        assert prefill.route(m, 4, activation, x) == "mid"  # any N, even below 16 rows
    assert prefill.route(MID + 1, 256, activation, x) == "dequant"
    assert prefill.route(MID + 1, 4, activation, x) == "slices"  # the dequantize route's 16-row minimum


def test_k_off_the_stage_and_float32_x_keep_the_other_routes(monkeypatch):
    monkeypatch.delenv("RESET_NATIVE_GEMV_PREFILL", raising=False)
    assert prefill.route(40, 256, "bf16", torch.zeros(1, K + 16, dtype=torch.bfloat16)) == "slices"
    assert prefill.route(prefill.MIN_TOKENS, 256, "bf16", torch.zeros(1, K + 16, dtype=torch.bfloat16)) == "dequant"
    fp32_mm = hasattr(torch.ops.aten.mm, "dtype")
    assert prefill.route(40, 256, "bf16", torch.zeros(1, K, dtype=torch.float32)) == ("dequant" if fp32_mm
                                                                                     else "slices")


def test_traced_w4a16_takes_the_mid_op_and_traced_w4a4_does_not(monkeypatch):
    """Under torch.compile W4A16 reaches the kernel through reset_native::nvfp4_gemm_mid; W4A4 quantizes x outside
    any op (and may read its scale to the host), so a traced W4A4 call keeps the slices (or the dequantize route)."""
    monkeypatch.delenv("RESET_NATIVE_GEMV_PREFILL", raising=False)
    monkeypatch.setattr(_torch_launch, "eager", lambda: False)  # a torch.compile trace
    x = torch.zeros(1, K, dtype=torch.bfloat16)
    assert prefill.route(40, 256, "bf16", x) == "mid"
    assert prefill.route(MID, 256, "bf16", x) == "mid"
    assert prefill.route(40, 256, "nvfp4", x) == "slices"


def test_autograd_records_keep_the_slices(monkeypatch):
    monkeypatch.setenv("RESET_NATIVE_GEMV_PREFILL", "mid")
    x = torch.zeros(1, K, dtype=torch.bfloat16, requires_grad=True)
    assert prefill.route(40, 256, "bf16", x) == "slices"
    with torch.no_grad():
        assert prefill.route(40, 256, "bf16", x) == "mid"


def test_a_bias_that_records_autograd_keeps_its_gradient(monkeypatch):
    """The kernel has no gradient: such a call takes addmm (dequantize), which differentiates the bias, or the slices
    below its crossover (whose op raises on backward), never a silent cut of the graph."""
    monkeypatch.delenv("RESET_NATIVE_GEMV_PREFILL", raising=False)
    x = torch.zeros(1, K, dtype=torch.bfloat16)
    bias = torch.zeros(256, dtype=torch.bfloat16, requires_grad=True)
    assert prefill.route(prefill.MIN_TOKENS, 256, "bf16", x, bias) == "dequant"
    assert prefill.route(40, 256, "bf16", x, bias) == "slices"
    assert prefill.route(40, 256, "bf16", x, bias.detach()) == "mid"
    with torch.no_grad():
        assert prefill.route(40, 256, "bf16", x, bias) == "mid"


def test_rows_and_outputs_past_the_kernels_limits_take_the_other_routes(monkeypatch):
    monkeypatch.setenv("RESET_NATIVE_GEMV_PREFILL", "mid")
    x = torch.zeros(1, K, dtype=torch.bfloat16)
    assert prefill.route(40, prefill.MID_KERNEL_MAX_ROWS, "bf16", x) == "mid"
    assert prefill.route(40, prefill.MID_KERNEL_MAX_ROWS + 1, "bf16", x) == "slices"
    n = prefill.MID_KERNEL_MAX_OUTPUTS // 1024 + 1  # 1024 tokens of it pass M * N <= 2^31
    assert n <= prefill.MID_KERNEL_MAX_ROWS
    assert prefill.route(1024, n, "bf16", x) == "dequant"
    assert prefill.route(1024, n - 1, "bf16", x) == "mid"


@pytest.mark.parametrize("value,want", [("slices", "slices"), ("dequant", "dequant"), ("mid", "mid"),
                                        ("auto", "mid"), ("", "mid")])
def test_environment_forces_a_route(value, want, monkeypatch):
    monkeypatch.setenv("RESET_NATIVE_GEMV_PREFILL", value)
    x = torch.zeros(1, K, dtype=torch.bfloat16)
    assert prefill.route(40, 256, "bf16", x) == want
    # 'mid' where the kernel cannot take the call falls back to the rule
    assert prefill.route(40, 256, "bf16", torch.zeros(1, 16, dtype=torch.bfloat16)) == ("dequant" if value == "dequant"
                                                                                       else "slices")


def test_forced_mid_goes_up_to_the_kernels_limit(monkeypatch):
    monkeypatch.setenv("RESET_NATIVE_GEMV_PREFILL", "mid")
    x = torch.zeros(1, K, dtype=torch.bfloat16)
    assert prefill.route(prefill.MID_KERNEL_MAX_TOKENS, 256, "bf16", x) == "mid"
    assert prefill.route(prefill.MID_KERNEL_MAX_TOKENS + 1, 256, "bf16", x) == "dequant"  # the rule


def test_mid_on_the_cpu_means_the_cpu_rule(monkeypatch):
    monkeypatch.setenv("RESET_NATIVE_GEMV_PREFILL", "mid")
    assert prefill_cpu.use_route(prefill_cpu.MIN_TOKENS, "bf16")
    assert not prefill_cpu.use_route(prefill_cpu.MIN_TOKENS - 1, "bf16")
