"""Decoder ops fused into the NVFP4 GEMV (reset_native._nvfp4_fused, integrations.fused_gemv): the RMSNorm prologue
and the SiLU * up epilogue must give exactly the bits of the separate ops around the plain GEMV, whole models must
not change by a bit, and every call the fused kernel cannot take must fall back to the separate ops."""
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from reset_native import _nvfp4_cuda, _nvfp4_fused, nvfp4  # noqa: E402
from reset_native.integrations import fused_attention, fused_mlp, fused_norm, fused_ops, fused_gemv  # noqa: E402

from _e2e_models import tiny_qwen3  # noqa: E402
from nvfp4_gpu_reference import poison_next_block  # noqa: E402

DTYPES = (torch.bfloat16, torch.float16)


# ------------------------------------------------------------------------------------------------ CPU paths
def test_mlp_with_a_deferred_norm_on_cpu_applies_the_norm_op_first():
    """Without a fused kernel the MLP must apply the handed-over RMSNorm itself: same result as norm then MLP."""
    model = tiny_qwen3(seed=3)
    layer = model.model.layers[0]
    fused_ops.fuse_decoder_ops(model)
    x = torch.randn(1, 4, 64, generator=torch.Generator().manual_seed(1))
    norm = layer.post_attention_layernorm
    with torch.no_grad():
        want = layer.mlp(norm(x))
        got = fused_mlp._fused_forward(layer.mlp, x, reset_native_norm=norm)
    assert torch.equal(got, want)


def test_attention_projections_with_a_deferred_norm_on_cpu_apply_the_norm_op_first():
    model = tiny_qwen3(seed=4)
    attn, norm = model.model.layers[1].self_attn, model.model.layers[1].input_layernorm
    x = torch.randn(2, 3, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want = (attn.q_proj(norm(x)), attn.k_proj(norm(x)), attn.v_proj(norm(x)))
        got = fused_attention._projections(attn, x, norm)
    assert all(torch.equal(g, w) for g, w in zip(got, want))


def test_no_norm_is_deferred_on_cpu_or_without_a_fused_nvfp4_group():
    from reset_native.integrations.nvfp4_linear import quantize_model

    model = tiny_qwen3(seed=5)
    layer = model.model.layers[0]
    assert fused_gemv.deferred_norm(layer.input_layernorm, layer.self_attn.q_proj) is None  # nn.Linear
    quantize_model(model, fuse_projections=True)
    assert fused_gemv.deferred_norm(layer.input_layernorm, layer.self_attn.q_proj) is None  # CPU weights
    x = torch.randn(1, 1024)
    assert not _nvfp4_fused.supported(torch.zeros(8, 512, dtype=torch.uint8),
                                         torch.zeros(8, 64, dtype=torch.uint8), x, torch.ones(1024))


# ------------------------------------------------------------------------------------------------ GPU kernels
def _weights(n, k, gen):
    w = (torch.randn(n, k, generator=gen) * 0.05).cuda()
    return nvfp4.quantize(w)


def _fp64_gemv(t, x64):
    return x64 @ nvfp4.dequantize(t, torch.float32).double().T


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m", [1, 2])
@pytest.mark.parametrize("n, k", [(264, 1024), (96, 4096), (40, 7168)])
def test_rms_norm_prologue_is_bit_identical_to_the_op_then_the_gemv(dtype, m, n, k):
    gen = torch.Generator().manual_seed(m * 31 + k)
    t = _weights(n, k, gen)
    x = (torch.randn(m, k, generator=gen) * 4).to(dtype).cuda()
    nw = (1 + 0.3 * torch.randn(k, generator=gen)).to(dtype).cuda()
    assert _nvfp4_fused.supported(t.packed, t.block_scales, x, nw)
    normed = fused_norm.rms_norm(x, nw, 1e-6)
    want = _nvfp4_cuda.gemv(t.packed, t.block_scales, t.global_scale, normed, "bf16", None, None)
    got = _nvfp4_fused.gemv_rms_norm(t.packed, t.block_scales, t.global_scale, x, nw, 1e-6)
    assert got.dtype == dtype and got.shape == (m, n)
    assert torch.equal(got, want)
    # and what both compute is the norm-then-product of fp64 math (to the dtype's roundings)
    x64 = x.double()
    ref_norm = nw.double() * x64 / torch.sqrt(x64.pow(2).mean(-1, keepdim=True) + 1e-6)
    ref = _fp64_gemv(t, ref_norm)
    err = (got.double() - ref).abs().max() / ref.abs().max()
    assert err < (2e-2 if dtype == torch.bfloat16 else 4e-3)


@pytest.mark.gpu
@pytest.mark.parametrize("m", [1, 2])
def test_rms_norm_prologue_with_bias(m):
    gen = torch.Generator().manual_seed(9)
    n, k = 136, 2048
    t = _weights(n, k, gen)
    dt = torch.bfloat16
    x = torch.randn(m, k, generator=gen).to(dt).cuda()
    nw = torch.randn(k, generator=gen).to(dt).cuda()
    bias = torch.randn(n, generator=gen).to(dt).cuda()
    want = _nvfp4_cuda.gemv(t.packed, t.block_scales, t.global_scale, fused_norm.rms_norm(x, nw, 1e-5), "bf16",
                            None, bias)
    got = _nvfp4_fused.gemv_rms_norm(t.packed, t.block_scales, t.global_scale, x, nw, 1e-5, bias)
    assert torch.equal(got, want)


@pytest.mark.gpu
def test_rms_norm_prologue_in_a_cuda_graph_follows_new_inputs():
    gen = torch.Generator().manual_seed(11)
    n, k = 200, 2048
    t = _weights(n, k, gen)
    x = torch.randn(2, k, generator=gen).to(torch.bfloat16).cuda()
    nw = torch.randn(k, generator=gen).to(torch.bfloat16).cuda()
    _nvfp4_fused.gemv_rms_norm(t.packed, t.block_scales, t.global_scale, x, nw, 1e-6)  # warm-up (op registry)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        y = _nvfp4_fused.gemv_rms_norm(t.packed, t.block_scales, t.global_scale, x, nw, 1e-6)
    x.copy_(torch.randn(2, k, generator=gen).to(torch.bfloat16))
    graph.replay()
    want = _nvfp4_fused.gemv_rms_norm(t.packed, t.block_scales, t.global_scale, x, nw, 1e-6)
    assert torch.equal(y, want)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m", [1, 2])
@pytest.mark.parametrize("norm", [False, True])
@pytest.mark.parametrize("half_n, k", [(256, 1024), (48, 4096), (1552, 2048)])
def test_silu_mul_epilogue_is_bit_identical_to_the_gemv_then_the_op(dtype, m, norm, half_n, k):
    gen = torch.Generator().manual_seed(m * 7 + k + half_n)
    t = _weights(2 * half_n, k, gen)  # rows [gate | up]
    x = (torch.randn(m, k, generator=gen) * 3).to(dtype).cuda()
    nw = (1 + 0.3 * torch.randn(k, generator=gen)).to(dtype).cuda() if norm else None
    xin = fused_norm.rms_norm(x, nw, 1e-6) if norm else x
    gate_up = _nvfp4_cuda.gemv(t.packed, t.block_scales, t.global_scale, xin, "bf16", None, None)
    want = fused_mlp.silu_mul(gate_up[:, :half_n], gate_up[:, half_n:])
    assert _nvfp4_fused.supported(t.packed, t.block_scales, x, nw, silu_mul=True)
    got = _nvfp4_fused.gemv_fused(t.packed, t.block_scales, t.global_scale, x, nw, 1e-6, silu_mul=True)
    assert got.shape == (m, half_n) and got.dtype == dtype
    assert torch.equal(got, want)
    g, u = gate_up[:, :half_n].double(), gate_up[:, half_n:].double()  # and it is SiLU * up (fp64 of the rounded)
    assert torch.allclose(got.double(), g / (1 + torch.exp(-g)) * u, rtol=2e-2, atol=1e-3)


@pytest.mark.gpu
def test_silu_mul_epilogue_with_bias_and_its_limits():
    gen = torch.Generator().manual_seed(21)
    t = _weights(96, 1024, gen)
    x = torch.randn(1, 1024, generator=gen).to(torch.bfloat16).cuda()
    bias = torch.randn(96, generator=gen).to(torch.bfloat16).cuda()
    gu = _nvfp4_cuda.gemv(t.packed, t.block_scales, t.global_scale, x, "bf16", None, bias)
    got = _nvfp4_fused.gemv_fused(t.packed, t.block_scales, t.global_scale, x, silu_mul=True, bias=bias)
    assert torch.equal(got, fused_mlp.silu_mul(gu[:, :48], gu[:, 48:]))
    t_odd = _weights(80, 1024, gen)  # 40 + 40 rows: not whole 16-row tile pairs
    assert not _nvfp4_fused.supported(t_odd.packed, t_odd.block_scales, x, None, silu_mul=True)
    with pytest.raises(ValueError, match="multiple of 32"):
        _nvfp4_fused.gemv_fused(t_odd.packed, t_odd.block_scales, t_odd.global_scale, x, silu_mul=True)
    with pytest.raises(ValueError, match="nothing to fuse"):
        _nvfp4_fused.gemv_fused(t.packed, t.block_scales, t.global_scale, x)
    x3 = torch.randn(3, 1024, generator=gen).to(torch.bfloat16).cuda()
    with pytest.raises(NotImplementedError, match="no fused kernel"):
        _nvfp4_fused.gemv_fused(t.packed, t.block_scales, t.global_scale, x3, silu_mul=True)


def _fused_uses_ring(t, x, nw, silu):
    return bool(_nvfp4_fused._native.cuda_gemv_uses_weight_ring(
        t.packed.data_ptr(), t.block_scales.data_ptr(), t.packed.shape[0], 2 * t.packed.shape[1], x.data_ptr(),
        _nvfp4_fused._dtype_code(x.dtype), x.shape[0], False, 0 if nw is None else _nvfp4_fused._RMS_NORM,
        0 if nw is None else nw.data_ptr(), _nvfp4_fused._SILU_MUL if silu else 0))


# The fused kernels take the TMA weight ring exactly when the plain calls do (opt-in since session 10:
# RESET_NATIVE_GEMV_RING=1 / =0 or unset: force it / never): the producer warp walks SILU's gate/up tile pairs and the
# RMSNorm prologue syncs without it. Every variant gives the bits of the separate ops (whose GEMV takes the ring by
# the same rule), also replayed in a CUDA graph with new x.
@pytest.mark.gpu
@pytest.mark.parametrize("m", [1, 2])
@pytest.mark.parametrize("norm, silu", [(True, False), (False, True), (True, True)])
def test_fused_kernels_take_the_weight_ring_by_the_plain_rule_with_the_same_bits(m, norm, silu, monkeypatch):
    monkeypatch.delenv("RESET_NATIVE_GEMV_RING", raising=False)
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    gen = torch.Generator().manual_seed(31 * m + 2 * norm + silu)
    k = 4096
    for n in (16 * 4 * sms, 16 * 4 * sms - 32):  # the measured rule's threshold and two tiles under
        t = _weights(n, k, gen)
        x = (torch.randn(m, k, generator=gen) * 3).to(torch.bfloat16).cuda()
        nw = (1 + 0.3 * torch.randn(k, generator=gen)).to(torch.bfloat16).cuda() if norm else None

        def separate():
            xin = fused_norm.rms_norm(x, nw, 1e-6) if norm else x
            y = _nvfp4_cuda.gemv(t.packed, t.block_scales, t.global_scale, xin, "bf16", None, None)
            return fused_mlp.silu_mul(y[:, :n // 2], y[:, n // 2:]) if silu else y

        def fused():
            return _nvfp4_fused.gemv_fused(t.packed, t.block_scales, t.global_scale, x, nw, 1e-6, silu_mul=silu)

        assert _nvfp4_fused.supported(t.packed, t.block_scales, x, nw, silu_mul=silu)
        for ring, uses in ((None, False), ("0", False), ("1", True)):
            if ring is None:
                monkeypatch.delenv("RESET_NATIVE_GEMV_RING", raising=False)
            else:
                monkeypatch.setenv("RESET_NATIVE_GEMV_RING", ring)
            assert _fused_uses_ring(t, x, nw, silu) == uses
            want = separate()
            assert torch.equal(fused(), want)
        monkeypatch.setenv("RESET_NATIVE_GEMV_RING", "1")
        fused()  # warm-up outside the capture
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            y = fused()
        x.copy_((torch.randn(m, k, generator=gen) * 3).to(torch.bfloat16))
        graph.replay()
        torch.cuda.synchronize()
        monkeypatch.setenv("RESET_NATIVE_GEMV_RING", "0")
        assert torch.equal(y, separate())
    # With the ring forced, K >= 16384 has a fused kernel at one token only (the plain call takes the block-diagonal
    # kernel through the ring there; at two tokens the 16-bit kernel); three tokens: no fused kernel, no ring.
    monkeypatch.setenv("RESET_NATIVE_GEMV_RING", "1")
    t = _weights(64, 16384, gen)
    nw = torch.ones(16384, dtype=torch.bfloat16, device="cuda") if norm else None
    x8 = torch.zeros((m, 16384), dtype=torch.bfloat16, device="cuda")
    assert _fused_uses_ring(t, x8, nw, silu) == (m == 1)
    assert _nvfp4_fused.supported(t.packed, t.block_scales, x8, nw, silu_mul=silu) == (m == 1)
    t = _weights(64, 1024, gen)
    nw = torch.ones(1024, dtype=torch.bfloat16, device="cuda") if norm else None
    assert not _fused_uses_ring(t, torch.zeros((3, 1024), dtype=torch.bfloat16, device="cuda"), nw, silu)


# The fused kernels' register-path form (RESET_NATIVE_GEMV_BD_SMALL_FUSED, read at every call; gemv_bd_kernel.cuh
# kBdFusedForm): by default the session-10 "cb" form (one output per thread in the tile epilogue, SiLU's stash
# included; x staged two units at a time through the RMSNorm prologue) with session 12's weight-load wait at the loop
# head (tests/test_fused_gemv_head_wait.py), "legacy" = the kernels before. Every form must give the separate ops'
# bits. Shapes: a few tiles; K = 3 chunks with 65 gate/up tile pairs; enough tiles (768 at K = 4096) that every CTA
# computes several gate/up pairs one after another through the same stash; the largest K (7168) the fused kernels
# take. K % 1024 != 0 has no fused kernel (test_calls_without_a_fused_kernel_are_reported_and_refused).
_FORM_WEIGHTS = {}


def _form_weights(n, k):
    if (n, k) not in _FORM_WEIGHTS:
        _FORM_WEIGHTS[(n, k)] = _weights(n, k, torch.Generator().manual_seed(n + k))
    return _FORM_WEIGHTS[(n, k)]


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m", [1, 2])
@pytest.mark.parametrize("norm, silu", [(True, False), (False, True), (True, True)])
@pytest.mark.parametrize("n, k", [(96, 4096), (2080, 3072), (12288, 4096), (1056, 7168)])
def test_fused_small_forms_give_the_separate_ops_bits(dtype, m, norm, silu, n, k, monkeypatch):
    monkeypatch.setenv("RESET_NATIVE_GEMV_RING", "0")  # the register path (the ring keeps the legacy form)
    for name in ("RESET_NATIVE_GEMV_BD", "RESET_NATIVE_GEMV_BD_SMALL", "RESET_NATIVE_GEMV_BD_SMALL_FUSED"):
        monkeypatch.delenv(name, raising=False)
    t = _form_weights(n, k)
    gen = torch.Generator().manual_seed(17 * m + 2 * norm + silu + k)
    x = (torch.randn(m, k, generator=gen) * 3).to(dtype).cuda()
    nw = (1 + 0.3 * torch.randn(k, generator=gen)).to(dtype).cuda() if norm else None
    bias = torch.randn(n, generator=gen).to(dtype).cuda() if m == 2 else None
    xin = fused_norm.rms_norm(x, nw, 1e-6) if norm else x
    y = _nvfp4_cuda.gemv(t.packed, t.block_scales, t.global_scale, xin, "bf16", None, bias)
    want = fused_mlp.silu_mul(y[:, :n // 2], y[:, n // 2:]) if silu else y
    assert _nvfp4_fused.supported(t.packed, t.block_scales, x, nw, silu_mul=silu)
    for form in (None, "legacy", "cb", "legacy ", "", "legacy"):  # unset, junk and "" = the default
        if form is None:
            monkeypatch.delenv("RESET_NATIVE_GEMV_BD_SMALL_FUSED", raising=False)
        else:
            monkeypatch.setenv("RESET_NATIVE_GEMV_BD_SMALL_FUSED", form)
        poison_next_block(m * n * 2)
        got = _nvfp4_fused.gemv_fused(t.packed, t.block_scales, t.global_scale, x, nw, 1e-6, silu_mul=silu, bias=bias)
        assert torch.equal(got, want), f"form {form!r}"
    # the plain GEMV's own forms (RESET_NATIVE_GEMV_BD_SMALL) give the same bits too
    monkeypatch.setenv("RESET_NATIVE_GEMV_BD_SMALL", "legacy")
    y_legacy = _nvfp4_cuda.gemv(t.packed, t.block_scales, t.global_scale, xin, "bf16", None, bias)
    assert torch.equal(y_legacy, y)


@pytest.mark.gpu
@pytest.mark.parametrize("m", [1, 2])
@pytest.mark.parametrize("form", [None, "legacy"])
def test_fused_small_forms_in_a_cuda_graph_follow_new_inputs(form, m, monkeypatch):
    """Norm + SiLU at one and two tokens, captured under each form (the choice is made at capture; unset = session
    12's head-wait form), replayed with new x and norm weight."""
    monkeypatch.setenv("RESET_NATIVE_GEMV_RING", "0")
    if form is None:
        monkeypatch.delenv("RESET_NATIVE_GEMV_BD_SMALL_FUSED", raising=False)
    else:
        monkeypatch.setenv("RESET_NATIVE_GEMV_BD_SMALL_FUSED", form)
    n, k = 2080, 3072
    t = _form_weights(n, k)
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(m, k, generator=gen).to(torch.bfloat16).cuda()
    nw = (1 + 0.3 * torch.randn(k, generator=gen)).to(torch.bfloat16).cuda()

    def fused():
        return _nvfp4_fused.gemv_fused(t.packed, t.block_scales, t.global_scale, x, nw, 1e-6, silu_mul=True)

    fused()  # warm-up outside the capture
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        y = fused()
    x.copy_(torch.randn(m, k, generator=gen).to(torch.bfloat16))
    nw.copy_((1 + 0.3 * torch.randn(k, generator=gen)).to(torch.bfloat16))
    graph.replay()
    torch.cuda.synchronize()
    gu = _nvfp4_cuda.gemv(t.packed, t.block_scales, t.global_scale, fused_norm.rms_norm(x, nw, 1e-6), "bf16")
    assert torch.equal(y, fused_mlp.silu_mul(gu[:, :n // 2], gu[:, n // 2:]))


@pytest.mark.gpu
@pytest.mark.parametrize("change, exc, words", [
    (dict(k_x=1040), ValueError, "must be \\[M, 1024\\]"),
    (dict(norm_shape=512), ValueError, "norm_weight must be \\[1024\\]"),
    (dict(no_norm=True), TypeError, "norm_weight must be a torch.Tensor"),
    (dict(eps=-1.0), ValueError, "eps must be a float >= 0"),
    (dict(dtype=torch.float32), TypeError, "float16 or bfloat16"),
    (dict(cpu_x=True), ValueError, "x must be a CUDA tensor"),
    (dict(m=17), ValueError, "1 <= M <= 16"),
    (dict(bias_shape=3), ValueError, "bias must be \\[64\\]"),
])
def test_rms_norm_prologue_bad_inputs(change, exc, words):
    gen = torch.Generator().manual_seed(12)
    t = _weights(64, 1024, gen)
    dtype = change.get("dtype", torch.bfloat16)
    x = torch.randn(change.get("m", 2), change.get("k_x", 1024), generator=gen).to(dtype)
    x = x if change.get("cpu_x") else x.cuda()
    nw = None if change.get("no_norm") else torch.ones(change.get("norm_shape", 1024), dtype=dtype, device="cuda")
    bias = torch.zeros(change["bias_shape"], dtype=dtype, device="cuda") if "bias_shape" in change else None
    with pytest.raises(exc, match=words):
        _nvfp4_fused.gemv_rms_norm(t.packed, t.block_scales, t.global_scale, x, nw, change.get("eps", 1e-6), bias)


@pytest.mark.gpu
@pytest.mark.parametrize("m, n, k", [(3, 64, 1024), (1, 64, 1040), (1, 48, 57344), (1, 64, 16384), (2, 64, 12288)])
def test_calls_without_a_fused_kernel_are_reported_and_refused(m, n, k):
    """More than 2 tokens, K % 1024 != 0, K >= 12288 at two tokens or K >= 16384 at one (where the plain GEMV runs the
    16-bit kernel, so a fused call could not give its bits) or x too large for two CTAs per SM: supported() says no, the op refuses, and the
    model path runs the norm op instead (test below)."""
    gen = torch.Generator().manual_seed(13)
    t = _weights(n, k, gen)
    x = torch.randn(m, k, generator=gen).to(torch.bfloat16).cuda()
    nw = torch.ones(k, dtype=torch.bfloat16, device="cuda")
    assert not _nvfp4_fused.supported(t.packed, t.block_scales, x, nw)
    with pytest.raises(NotImplementedError, match="no fused kernel"):
        _nvfp4_fused.gemv_rms_norm(t.packed, t.block_scales, t.global_scale, x, nw, 1e-6)


# ------------------------------------------------------------------------------------------------ GPU models
def _quantized_qwen3(seed):
    from reset_native.integrations.nvfp4_linear import quantize_model

    model = tiny_qwen3(seed=seed, hidden=1024, layers=2, dtype=torch.bfloat16, init_std=0.02).cuda()
    quantize_model(model, fuse_projections=True)
    fused_ops.fuse_decoder_ops(model)
    return model


@pytest.mark.gpu
@pytest.mark.parametrize("ids, fused_calls", [([[5]], 4), ([[5], [9]], 4), ([[5, 9, 11, 4, 7], [3, 3, 8, 1, 2]], 0)])
@pytest.mark.parametrize("norm_silu", [None, "0", "1"])
def test_model_outputs_do_not_change_by_a_bit(monkeypatch, ids, fused_calls, norm_silu):
    """1-2 tokens: per layer one fused q/k/v GEMV (input norm inside) and one fused gate/up GEMV (SiLU * up on its
    results; the post-attention norm inside too unless RESET_NATIVE_FUSED_NORM_SILU=0, which runs the norm op first;
    unset = inside since session 12); 10 tokens: none (the separate ops run). Either way the logits are exactly those
    of the model without the fusions."""
    if norm_silu is None:
        monkeypatch.delenv("RESET_NATIVE_FUSED_NORM_SILU", raising=False)
    else:
        monkeypatch.setenv("RESET_NATIVE_FUSED_NORM_SILU", norm_silu)
    model = _quantized_qwen3(seed=14)
    ids = torch.tensor(ids, device="cuda")
    calls = []
    real = _nvfp4_fused.gemv_fused

    def counted(*a, **kw):
        calls.append(a[4] is not None and (len(a) > 6 and a[6] or kw.get("silu_mul", False)))
        return real(*a, **kw)

    monkeypatch.setattr(_nvfp4_fused, "gemv_fused", counted)
    with torch.no_grad():
        fused = model(ids).logits
        # half of them norm + SiLU, none with the switch at 0
        assert len(calls) == fused_calls and calls.count(True) == (0 if norm_silu == "0" else fused_calls // 2)
        monkeypatch.setenv("RESET_NATIVE_FUSED_GEMV", "0")
        plain = model(ids).logits
    assert len(calls) == fused_calls
    assert torch.equal(fused, plain)


@pytest.mark.gpu
def test_graph_decode_tokens_are_the_same_with_and_without_the_fusions(monkeypatch):
    from reset_native.integrations.generate import generate

    model = _quantized_qwen3(seed=15)
    ids = torch.tensor([[5, 9, 11, 4, 7]])
    got = generate(model, None, ids, max_new_tokens=12, temperature=0.0, cuda_graph=True, stop_at_eos=False)
    monkeypatch.setenv("RESET_NATIVE_FUSED_GEMV", "0")
    want = generate(model, None, ids, max_new_tokens=12, temperature=0.0, cuda_graph=True, stop_at_eos=False)
    assert got.token_ids == want.token_ids and got.cuda_graph


@pytest.mark.gpu
def test_binding_rejects_unknown_fusion_codes():
    with pytest.raises(ValueError, match="prologue code must be 0"):
        _nvfp4_fused._native.cuda_gemv_fusion_supported(0, 0, 64, 1024, 0, 2, 1, 7, 0, 0)
    with pytest.raises(ValueError, match="epilogue code must be 0"):
        _nvfp4_fused._native.cuda_gemv_fusion_supported(0, 0, 64, 1024, 0, 2, 1, 0, 0, 3)
    # neither a prologue nor an epilogue: always supported (the plain GEMV takes every call)
    assert _nvfp4_fused._native.cuda_gemv_fusion_supported(0, 0, 64, 1024, 0, 2, 1, 0, 0, 0)
