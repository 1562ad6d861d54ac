"""The fused NVFP4 GEMVs' session-12 forms (RESET_NATIVE_GEMV_BD_SMALL_FUSED, read at every call; gemv_bd_kernel.cuh):
cbw (kSmallHeadWait: the weight-load wait at the head of the step loop) and async (kSmallAsync: the weights through
per-thread cp.async stages in shared memory) must not change a bit of the output. Every fused kernel (RMSNorm
prologue, SiLU * up epilogue, both) at M = 1, 2, bf16 and fp16 x, against the default form, the separate ops and fp64
math; shapes from a single tile to several gate/up tile pairs per CTA (12288 rows at K = 4096: more tiles than CTAs,
so the stages wrap many times) and the largest K the fused kernels take here (7168)."""
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from reset_native import _nvfp4_cuda, _nvfp4_fused, nvfp4  # noqa: E402
from reset_native.integrations import fused_mlp, fused_norm  # noqa: E402

SWITCH = "RESET_NATIVE_GEMV_BD_SMALL_FUSED"
_WEIGHTS = {}


def _weights(n, k):
    if (n, k) not in _WEIGHTS:
        w = (torch.randn(n, k, generator=torch.Generator().manual_seed(n * 7 + k)) * 0.05).cuda()
        _WEIGHTS[(n, k)] = nvfp4.quantize(w)
    return _WEIGHTS[(n, k)]


def _fp64_reference(t, x, nw, silu, eps):
    x64 = x.double()
    if nw is not None:
        x64 = nw.double() * x64 / torch.sqrt(x64.pow(2).mean(-1, keepdim=True) + eps)
    y = x64 @ nvfp4.dequantize(t, torch.float32).double().T
    if silu:
        n2 = y.shape[1] // 2
        g = y[:, :n2]
        y = g / (1 + torch.exp(-g)) * y[:, n2:]
    return y


@pytest.fixture
def clean_switches(monkeypatch):
    monkeypatch.setenv("RESET_NATIVE_GEMV_RING", "0")  # the register path (the ring has no SMALL forms)
    for name in ("RESET_NATIVE_GEMV_BD", "RESET_NATIVE_GEMV_BD_SMALL", SWITCH):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("m", [1, 2])
@pytest.mark.parametrize("norm, silu", [(True, False), (False, True), (True, True)])
@pytest.mark.parametrize("n, k", [(96, 4096), (12288, 4096), (1056, 7168)])
def test_session12_forms_give_the_default_bits_and_the_fp64_result(dtype, m, norm, silu, n, k, clean_switches):
    t = _weights(n, k)
    gen = torch.Generator().manual_seed(13 * m + 4 * norm + 2 * silu + n)
    x = (torch.randn(m, k, generator=gen) * 3).to(dtype).cuda()
    nw = (1 + 0.3 * torch.randn(k, generator=gen)).to(dtype).cuda() if norm else None
    assert _nvfp4_fused.supported(t.packed, t.block_scales, x, nw, silu_mul=silu)
    outs = {}
    for form in (None, "cbw", "async"):
        if form is None:
            clean_switches.delenv(SWITCH, raising=False)
        else:
            clean_switches.setenv(SWITCH, form)
        torch.full(((m * n * 2 + (1 << 20)) // 4,), float("nan"), device="cuda")  # poison the allocator's next block
        outs[form] = _nvfp4_fused.gemv_fused(t.packed, t.block_scales, t.global_scale, x, nw, 1e-6, silu_mul=silu)
    got = outs["cbw"]
    assert got.dtype == dtype and got.shape == (m, n // 2 if silu else n)
    assert torch.equal(got, outs[None])
    assert torch.equal(outs["async"], outs[None])
    xin = fused_norm.rms_norm(x, nw, 1e-6) if norm else x
    y = _nvfp4_cuda.gemv(t.packed, t.block_scales, t.global_scale, xin, "bf16")
    assert torch.equal(got, fused_mlp.silu_mul(y[:, :n // 2], y[:, n // 2:]) if silu else y)
    ref = _fp64_reference(t, x, nw, silu, 1e-6)
    err = (got.double() - ref).abs().max() / ref.abs().max()
    assert err < (2e-2 if dtype == torch.bfloat16 else 4e-3)


@pytest.mark.gpu
def test_async_form_with_scale_rows_not_4_byte_aligned_takes_the_cb_form(clean_switches):
    """The async form reads each scale pair as an aligned 4-byte word: scales at a 2-byte offset run the cb form."""
    n, k = 2080, 3072
    t = _weights(n, k)
    store = torch.empty(n * k // 16 + 2, dtype=torch.uint8, device="cuda")
    scales = store[2:].view(n, k // 16)
    scales.copy_(t.block_scales)
    assert scales.data_ptr() % 4 == 2
    gen = torch.Generator().manual_seed(22)
    x = torch.randn(1, k, generator=gen).to(torch.bfloat16).cuda()
    nw = (1 + 0.3 * torch.randn(k, generator=gen)).to(torch.bfloat16).cuda()
    want = _nvfp4_fused.gemv_fused(t.packed, t.block_scales, t.global_scale, x, nw, 1e-6, silu_mul=True)
    clean_switches.setenv(SWITCH, "async")
    got = _nvfp4_fused.gemv_fused(t.packed, scales, t.global_scale, x, nw, 1e-6, silu_mul=True)
    assert torch.equal(got, want)


@pytest.mark.gpu
@pytest.mark.parametrize("form", ["cbw", "async"])
def test_session12_forms_in_a_cuda_graph_follow_new_inputs(form, clean_switches):
    """Norm + SiLU at one token, captured under the form (chosen at capture), replayed with new x and norm weight."""
    clean_switches.setenv(SWITCH, form)
    n, k = 2080, 3072
    t = _weights(n, k)
    gen = torch.Generator().manual_seed(21)
    x = torch.randn(1, k, generator=gen).to(torch.bfloat16).cuda()
    nw = (1 + 0.3 * torch.randn(k, generator=gen)).to(torch.bfloat16).cuda()

    def fused():
        return _nvfp4_fused.gemv_fused(t.packed, t.block_scales, t.global_scale, x, nw, 1e-6, silu_mul=True)

    fused()  # warm-up outside the capture
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        y = fused()
    x.copy_(torch.randn(1, k, generator=gen).to(torch.bfloat16))
    nw.copy_((1 + 0.3 * torch.randn(k, generator=gen)).to(torch.bfloat16))
    graph.replay()
    torch.cuda.synchronize()
    clean_switches.delenv(SWITCH)
    gu = _nvfp4_cuda.gemv(t.packed, t.block_scales, t.global_scale, fused_norm.rms_norm(x, nw, 1e-6), "bf16")
    assert torch.equal(y, fused_mlp.silu_mul(gu[:, :n // 2], gu[:, n // 2:]))


# The plain GEMV's async form (RESET_NATIVE_GEMV_BD_SMALL=a; its other forms: tests/test_nvfp4_gpu_bd_small.py) at the
# decoder's long K: 8B down at one token (K = 12288: 12 chunks), Qwen3-32B o (K = 8192) at one and two tokens.
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("n, k, m", [(4096, 12288, 1), (5120, 8192, 1), (5120, 8192, 2), (2080, 3072, 2)])
def test_plain_async_form_gives_the_default_bits_and_the_fp64_result(dtype, n, k, m, clean_switches):
    t = _weights(n, k)
    gen = torch.Generator().manual_seed(n + k + m)
    x = (torch.randn(m, k, generator=gen) * 3).to(dtype).cuda()
    want = _nvfp4_cuda.gemv(t.packed, t.block_scales, t.global_scale, x, "bf16")
    clean_switches.setenv("RESET_NATIVE_GEMV_BD_SMALL", "a")
    torch.full(((m * n * 2 + (1 << 20)) // 4,), float("nan"), device="cuda")  # poison the allocator's next block
    got = _nvfp4_cuda.gemv(t.packed, t.block_scales, t.global_scale, x, "bf16")
    assert torch.equal(got, want)
    ref = _fp64_reference(t, x, None, False, 0.0)
    err = (got.double() - ref).abs().max() / ref.abs().max()
    assert err < (1e-2 if dtype == torch.bfloat16 else 2e-3)
    # scale rows at a 2-byte offset: the async form cannot read them as aligned words, the call takes the default
    store = torch.empty(t.block_scales.numel() + 2, dtype=torch.uint8, device="cuda")
    scales = store[2:].view(t.block_scales.shape)
    scales.copy_(t.block_scales)
    assert torch.equal(_nvfp4_cuda.gemv(t.packed, scales, t.global_scale, x, "bf16"), want)
