"""The fused NVFP4 GEMVs with session 12's weight-load wait at the head of the step loop (kSmallHeadWait, their form
since; gemv_bd_kernel.cuh kBdFusedForm) against the kernels before session 11 (RESET_NATIVE_GEMV_BD_SMALL_FUSED=legacy,
read at every call), the separate ops and fp64 math: the same bits. Every fused kernel (RMSNorm prologue, SiLU * up
epilogue, both) at M = 1, 2, bf16 and fp16 x; shapes from a single tile to several gate/up tile pairs per CTA (12288
rows at K = 4096: more tiles than CTAs), K = 5120 (3 and 2 prologue groups per lane) and the largest K the fused
kernels take here at two tokens (7168), plus K = 12288 at one token."""
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from reset_native import _nvfp4_cuda, _nvfp4_fused, nvfp4  # noqa: E402
from reset_native.integrations import fused_mlp, fused_norm  # noqa: E402

from nvfp4_gpu_reference import poison_next_block  # noqa: E402

SWITCH = "RESET_NATIVE_GEMV_BD_SMALL_FUSED"
FORMS = (None, "legacy")  # None: unset = the default
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


def _fused_under_forms(monkeypatch, t, x, nw, silu):
    outs = {}
    for form in FORMS:
        if form is None:
            monkeypatch.delenv(SWITCH, raising=False)
        else:
            monkeypatch.setenv(SWITCH, form)
        n = t.packed.shape[0]
        poison_next_block(x.shape[0] * n * 2)
        outs[form] = _nvfp4_fused.gemv_fused(t.packed, t.block_scales, t.global_scale, x, nw, 1e-6, silu_mul=silu)
    return outs


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("m", [1, 2])
@pytest.mark.parametrize("norm, silu", [(True, False), (False, True), (True, True)])
@pytest.mark.parametrize("n, k", [(96, 4096), (12288, 4096), (160, 5120), (1056, 7168)])
def test_head_wait_form_gives_the_legacy_bits_and_the_fp64_result(dtype, m, norm, silu, n, k, clean_switches):
    t = _weights(n, k)
    gen = torch.Generator().manual_seed(13 * m + 4 * norm + 2 * silu + n)
    x = (torch.randn(m, k, generator=gen) * 3).to(dtype).cuda()
    nw = (1 + 0.3 * torch.randn(k, generator=gen)).to(dtype).cuda() if norm else None
    assert _nvfp4_fused.supported(t.packed, t.block_scales, x, nw, silu_mul=silu)
    outs = _fused_under_forms(clean_switches, t, x, nw, silu)
    got = outs[None]
    assert got.dtype == dtype and got.shape == (m, n // 2 if silu else n)
    for form in FORMS[1:]:
        assert torch.equal(outs[form], got), f"form {form}"
    xin = fused_norm.rms_norm(x, nw, 1e-6) if norm else x
    y = _nvfp4_cuda.gemv(t.packed, t.block_scales, t.global_scale, xin, "bf16")
    assert torch.equal(got, fused_mlp.silu_mul(y[:, :n // 2], y[:, n // 2:]) if silu else y)
    ref = _fp64_reference(t, x, nw, silu, 1e-6)
    err = (got.double() - ref).abs().max() / ref.abs().max()
    assert err < (2e-2 if dtype == torch.bfloat16 else 4e-3)


@pytest.mark.gpu
@pytest.mark.parametrize("silu", [False, True])
def test_head_wait_form_at_long_k_gives_the_norm_ops_bits(silu, clean_switches):
    """K = 12288 at one token (12 chunks per tile: the step loop wraps tiles mid-way)."""
    n, k = 256, 12288
    t = _weights(n, k)
    gen = torch.Generator().manual_seed(31 + silu)
    x = (torch.randn(1, k, generator=gen) * 2).to(torch.bfloat16).cuda()
    nw = (1 + 0.3 * torch.randn(k, generator=gen)).to(torch.bfloat16).cuda()
    assert _nvfp4_fused.supported(t.packed, t.block_scales, x, nw, silu_mul=silu)
    outs = _fused_under_forms(clean_switches, t, x, nw, silu)
    y = _nvfp4_cuda.gemv(t.packed, t.block_scales, t.global_scale, fused_norm.rms_norm(x, nw, 1e-6), "bf16")
    want = fused_mlp.silu_mul(y[:, :n // 2], y[:, n // 2:]) if silu else y
    for form, got in outs.items():
        assert torch.equal(got, want), f"form {form}"
