"""Fused q/k norm + RoPE and SiLU * up (reset_native.integrations.fused_attention / fused_mlp / fused_ops):
against transformers' own modules, fp64 math, and the unfused models."""
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from reset_native.integrations import fused_attention, fused_mlp, fused_ops, fused_residual  # noqa: E402

from _e2e_models import tiny_llama, tiny_qwen3  # noqa: E402

# bf16/fp16/fp32 unit roundoff; the fused kernel rounds at the same points as transformers, so differences come
# only from the fp32 sum of squares order and rsqrtf (a couple of fp32 ulps), amplified by at most 3 roundings.
ULP = {torch.float32: 2.0**-22, torch.float16: 2.0**-10, torch.bfloat16: 2.0**-7}


def _rope_tables(batch, seq, d, dtype, gen, device="cpu"):
    pos = torch.arange(seq, dtype=torch.float64).unsqueeze(0) + torch.randint(0, 50, (batch, 1), generator=gen)
    inv = 1.0 / (10000 ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    ang = pos.unsqueeze(-1) * inv
    ang = torch.cat((ang, ang), dim=-1)
    return ang.cos().to(dtype).to(device), ang.sin().to(dtype).to(device)


def _qk(batch, seq, hq, hk, d, dtype, gen, device="cpu"):
    """q and k as column slices of one fused [B, S, (hq + 2 hk) d] projection output (what fused q/k/v gives)."""
    total = torch.randn(batch, seq, (hq + 2 * hk) * d, generator=gen).mul(3).to(dtype).to(device)
    q = total[..., : hq * d].view(batch, seq, hq, d)
    k = total[..., hq * d: (hq + hk) * d].view(batch, seq, hk, d)
    return q, k


def _fp64_expected(q, k, qw, kw, cos, sin, eps):
    def norm(x, w):
        x = x.double()
        return w.double() * x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps)

    def rope(x):
        half = x.shape[-1] // 2
        rot = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
        return x * cos.double().unsqueeze(2) + rot * sin.double().unsqueeze(2)

    if qw is not None:
        q, k = norm(q, qw), norm(k, kw)
    return rope(q.double()), rope(k.double())


def test_reference_is_transformers_qwen3_attention_math():
    from transformers.models.qwen3.modeling_qwen3 import Qwen3RMSNorm, apply_rotary_pos_emb

    gen = torch.Generator().manual_seed(1)
    q, k = _qk(2, 3, 4, 2, 32, torch.bfloat16, gen)
    cos, sin = _rope_tables(2, 3, 32, torch.bfloat16, gen)
    qn, kn = Qwen3RMSNorm(32, eps=1e-6).to(torch.bfloat16), Qwen3RMSNorm(32, eps=1e-6).to(torch.bfloat16)
    with torch.no_grad():
        qn.weight.copy_(torch.randn(32, generator=gen).to(torch.bfloat16))
        kn.weight.copy_(torch.randn(32, generator=gen).to(torch.bfloat16))
        want_q, want_k = apply_rotary_pos_emb(qn(q).transpose(1, 2), kn(k).transpose(1, 2), cos, sin)
    got_q, got_k = fused_attention.reference(q, k, qn.weight.detach(), kn.weight.detach(), cos, sin, 1e-6)
    assert torch.equal(got_q.transpose(1, 2), want_q) and torch.equal(got_k.transpose(1, 2), want_k)
    assert got_q.is_contiguous() and got_k.is_contiguous()


def test_reference_close_to_fp64_and_op_on_cpu_is_reference():
    gen = torch.Generator().manual_seed(2)
    q, k = _qk(1, 5, 8, 2, 64, torch.float32, gen)
    cos, sin = _rope_tables(1, 5, 64, torch.float32, gen)
    qw, kw = torch.randn(64, generator=gen), torch.randn(64, generator=gen)
    got_q, got_k = fused_attention.qk_norm_rope(q, k, qw, kw, cos, sin, 1e-6)
    ref_q, ref_k = fused_attention.reference(q, k, qw, kw, cos, sin, 1e-6)
    assert torch.equal(got_q, ref_q) and torch.equal(got_k, ref_k)
    want_q, want_k = _fp64_expected(q, k, qw, kw, cos, sin, 1e-6)
    assert torch.allclose(got_q.double(), want_q, rtol=1e-5, atol=1e-5)
    assert torch.allclose(got_k.double(), want_k, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("make, expected, norms", [(tiny_qwen3, 2, 9), (tiny_llama, 2, 5)])
def test_fuse_attention_and_mlp_keep_cpu_outputs_identical(make, expected, norms):
    model = make(seed=5)
    ids = torch.tensor([[5, 9, 11, 4, 7, 3]])
    with torch.no_grad():
        before = model(ids).logits
    counts = fused_ops.fuse_decoder_ops(model)
    assert counts["attention"] == expected and counts["mlp"] == expected and counts["residual"] == expected
    assert counts["rms_norm"] == norms  # two per layer and the final one, plus Qwen3's q/k head norms
    assert fused_ops.fuse_decoder_ops(model) == counts  # idempotent: no double wrapping
    with torch.no_grad():
        assert torch.equal(model(ids).logits, before)  # CPU runs the modules' own operations
    assert fused_ops.unfuse_decoder_ops(model) == counts
    assert fused_ops.unfuse_decoder_ops(model) == {"rms_norm": 0, "attention": 0, "mlp": 0, "residual": 0}
    with torch.no_grad():
        assert torch.equal(model(ids).logits, before)


@pytest.mark.parametrize("make", [tiny_qwen3, tiny_llama])
def test_quantized_model_with_every_fusion_keeps_cpu_outputs(make):
    """NVFP4 model (fused q/k/v and gate/up groups) under every decoder fusion: on CPU each routed forward runs
    the module's own operations (NVFP4Linear.forward_add is residual + self(x) there), so logits are equal."""
    from reset_native.integrations.nvfp4_linear import quantize_model

    model = make(seed=13)
    quantize_model(model)
    ids = torch.tensor([[5, 9, 11, 4, 7, 3], [1, 2, 3, 4, 5, 6]])
    with torch.no_grad():
        before = model(ids).logits
        assert fused_ops.fuse_decoder_ops(model)["residual"] == 2
        assert torch.equal(model(ids).logits, before)


def test_unfusing_one_kind_leaves_the_others_fused():
    model = tiny_qwen3(seed=6)
    fused_ops.fuse_decoder_ops(model)
    from reset_native.integrations import fused_norm

    assert fused_norm.unfuse_rms_norms(model) == 9
    assert fused_attention.unfuse_attention(model) == 2
    ids = torch.tensor([[4, 8, 15, 16]])
    with torch.no_grad():  # layers whose attention is no longer routed run their own forward
        assert torch.equal(model(ids).logits, tiny_qwen3(seed=6)(ids).logits)
    assert fused_mlp.unfuse_mlp(model) == 2
    assert fused_residual.unfuse_residuals(model) == 2


def _cache_case(batch, seq, hq, hk, d, length, dtype, gen, device="cpu"):
    total = torch.randn(batch, seq, (hq + 2 * hk) * d, generator=gen).mul(3).to(dtype).to(device)
    q = total[..., : hq * d].view(batch, seq, hq, d)
    k = total[..., hq * d: (hq + hk) * d].view(batch, seq, hk, d)
    v = total[..., (hq + hk) * d:].view(batch, seq, hk, d)
    k_cache = torch.randn(batch, hk, length, d, generator=gen).to(dtype).to(device)
    v_cache = torch.randn(batch, hk, length, d, generator=gen).to(dtype).to(device)
    return q, k, v, k_cache, v_cache


def test_cache_reference_writes_rows_like_static_cache_and_cpu_op_matches():
    gen = torch.Generator().manual_seed(4)
    q, k, v, k_cache, v_cache = _cache_case(2, 3, 4, 2, 16, 10, torch.float32, gen)
    cos, sin = _rope_tables(2, 3, 16, torch.float32, gen)
    qw, kw = torch.randn(16, generator=gen), torch.randn(16, generator=gen)
    pos = torch.tensor(5)
    want_q, want_k = fused_attention.reference(q, k, qw, kw, cos, sin, 1e-6)
    kc, vc = k_cache.clone(), v_cache.clone()
    got_q = fused_attention.qk_norm_rope_cache(q, k, v, qw, kw, cos, sin, 1e-6, kc, vc, pos)
    assert torch.equal(got_q, want_q)
    assert torch.equal(kc[:, :, 5:8], want_k.transpose(1, 2)) and torch.equal(vc[:, :, 5:8], v.transpose(1, 2))
    untouched = torch.ones(10, dtype=torch.bool)
    untouched[5:8] = False
    assert torch.equal(kc[:, :, untouched], k_cache[:, :, untouched])
    assert torch.equal(vc[:, :, untouched], v_cache[:, :, untouched])
    assert int(pos) == 5  # the position is read, not advanced (the caller advances it, as StaticLayer does)
    kc, vc = k_cache.clone(), v_cache.clone()
    full = fused_attention.qk_norm_rope_cache(q, k, v, qw, kw, cos, sin, 1e-6, kc, vc, torch.tensor(8))
    assert torch.isnan(full).all() and torch.equal(kc, k_cache) and torch.equal(vc, v_cache)


@pytest.mark.parametrize("change, exc, words", [
    ({"v": torch.zeros(1, 2, 3, 8)}, ValueError, "v must be shaped like k"),
    ({"k_cache": torch.zeros(1, 2, 4, 8, dtype=torch.float16)}, TypeError, "k_cache"),
    ({"k_cache": torch.zeros(1, 3, 4, 8)}, ValueError, "k_cache must be"),
    ({"v_cache": torch.zeros(1, 2, 5, 8)}, ValueError, "one shape"),
    ({"cache_position": torch.tensor(1.0)}, ValueError, "int64"),
    ({"cache_position": torch.tensor([1, 2])}, ValueError, "one int64"),
    ({"v": "v"}, TypeError, "torch.Tensor"),
])
def test_qk_norm_rope_cache_bad_inputs(change, exc, words):
    args = {"q": _q4(), "k": _q4((1, 2, 2, 8)), "v": _q4((1, 2, 2, 8)), "q_weight": None, "k_weight": None,
            "cos": torch.zeros(1, 2, 8), "sin": torch.zeros(1, 2, 8), "eps": 1e-6,
            "k_cache": torch.zeros(1, 2, 4, 8), "v_cache": torch.zeros(1, 2, 4, 8),
            "cache_position": torch.tensor(0)}
    fused_attention.qk_norm_rope_cache(**args)  # the well-formed call runs
    args.update(change)
    with pytest.raises(exc, match=words):
        fused_attention.qk_norm_rope_cache(**args)


def test_silu_mul_reference_and_cpu_op():
    gen = torch.Generator().manual_seed(3)
    gu = torch.randn(3, 2 * 40, generator=gen).to(torch.bfloat16)
    gate, up = gu[:, :40], gu[:, 40:]  # column slices of one fused gate/up output
    want = torch.nn.functional.silu(gate) * up
    assert torch.equal(fused_mlp.reference(gate, up), want)
    assert torch.equal(fused_mlp.silu_mul(gate, up), want)
    g64, u64 = gate.double(), up.double()
    exact = g64 / (1 + torch.exp(-g64)) * u64
    assert torch.allclose(fused_mlp.silu_mul(gate.float(), up.float()).double(), exact, rtol=1e-6, atol=1e-6)


def _q4(shape=(1, 2, 4, 8), dtype=torch.float32):
    return torch.zeros(shape, dtype=dtype)


@pytest.mark.parametrize("args, exc, words", [
    ((_q4(), _q4((1, 2, 2, 8)), None, None, torch.zeros(1, 2, 8), torch.zeros(1, 2, 8), 1e-6), None, None),
    ((_q4(), _q4((1, 3, 2, 8)), None, None, torch.zeros(1, 2, 8), torch.zeros(1, 2, 8), 1e-6), ValueError,
     "k must match"),
    ((_q4((1, 2, 4, 7)), _q4((1, 2, 2, 7)), None, None, torch.zeros(1, 2, 7), torch.zeros(1, 2, 7), 1e-6),
     ValueError, "even"),
    ((_q4(), _q4((1, 2, 2, 8)), torch.ones(8), None, torch.zeros(1, 2, 8), torch.zeros(1, 2, 8), 1e-6), ValueError,
     "both"),
    ((_q4(), _q4((1, 2, 2, 8)), torch.ones(7), torch.ones(7), torch.zeros(1, 2, 8), torch.zeros(1, 2, 8), 1e-6),
     ValueError, "q_weight"),
    ((_q4(), _q4((1, 2, 2, 8)), None, None, torch.zeros(1, 3, 8), torch.zeros(1, 3, 8), 1e-6), ValueError, "cos"),
    ((_q4(), _q4((1, 2, 2, 8), torch.float16), None, None, torch.zeros(1, 2, 8), torch.zeros(1, 2, 8), 1e-6),
     TypeError, "dtype"),
    ((_q4()[..., ::2], _q4((1, 2, 2, 4)), None, None, torch.zeros(1, 2, 4), torch.zeros(1, 2, 4), 1e-6), ValueError,
     "contiguous"),
    ((_q4(), _q4((1, 2, 2, 8)), None, None, torch.zeros(1, 2, 8), torch.zeros(1, 2, 8), -1.0), ValueError, "eps"),
    ((_q4()[0], _q4((1, 2, 2, 8)), None, None, torch.zeros(1, 2, 8), torch.zeros(1, 2, 8), 1e-6), ValueError,
     "batch, seq, heads"),
    (("q", _q4((1, 2, 2, 8)), None, None, torch.zeros(1, 2, 8), torch.zeros(1, 2, 8), 1e-6), TypeError,
     "torch.Tensor"),
])
def test_qk_norm_rope_bad_inputs(args, exc, words):
    if exc is None:  # the well-formed case in the table runs (so the others fail for their named reason)
        q_out, k_out = fused_attention.qk_norm_rope(*args)
        assert q_out.shape == args[0].shape and k_out.shape == args[1].shape
        return
    with pytest.raises(exc, match=words):
        fused_attention.qk_norm_rope(*args)


@pytest.mark.parametrize("gate, up, exc, words", [
    (torch.zeros(2, 8), torch.zeros(2, 7), ValueError, "one shape"),
    (torch.zeros(2, 8), torch.zeros(2, 8, dtype=torch.float16), TypeError, "share one dtype"),
    (torch.zeros(2, 8, dtype=torch.int32), torch.zeros(2, 8, dtype=torch.int32), TypeError, "float32"),
    (torch.zeros(8, 2).t(), torch.zeros(2, 8), ValueError, "contiguous"),
    ("gate", torch.zeros(2, 8), TypeError, "torch.Tensor"),
])
def test_silu_mul_bad_inputs(gate, up, exc, words):
    with pytest.raises(exc, match=words):
        fused_mlp.silu_mul(gate, up)


def test_linear_add_on_cpu_is_the_unfused_sum():
    gen = torch.Generator().manual_seed(11)
    lin = torch.nn.Linear(32, 24, bias=True)
    x, r = torch.randn(3, 32, generator=gen), torch.randn(3, 24, generator=gen)
    with torch.no_grad():
        assert torch.equal(fused_residual.linear_add(lin, x, r), r + lin(x))


def test_fuse_rejects_non_module():
    for fn in (fused_attention.fuse_attention, fused_mlp.fuse_mlp, fused_residual.fuse_residuals):
        with pytest.raises(TypeError, match="torch.nn.Module"):
            fn("model")


# ---------------------------------------------------------------------------------------------- GPU


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("batch, seq, hq, hk, d, norm", [
    (1, 1, 32, 8, 128, True), (3, 5, 4, 2, 64, True), (2, 1, 6, 6, 80, False), (1, 7, 3, 1, 2, True),
    (4, 2, 40, 8, 128, False)])
def test_cuda_qk_norm_rope_matches_reference(dtype, batch, seq, hq, hk, d, norm):
    gen = torch.Generator().manual_seed(batch * 1000 + seq * 100 + hq + d)
    q, k = _qk(batch, seq, hq, hk, d, dtype, gen)
    cos, sin = _rope_tables(batch, seq, d, dtype, gen)
    qw = (torch.randn(d, generator=gen) * 0.5 + 1).to(dtype) if norm else None
    kw = (torch.randn(d, generator=gen) * 0.5 + 1).to(dtype) if norm else None
    want_q, want_k = fused_attention.reference(q, k, qw, kw, cos, sin, 1e-6)
    exact_q, exact_k = _fp64_expected(q, k, qw, kw, cos, sin, 1e-6)
    cuda = [t.cuda() if t is not None else None for t in (q, k, qw, kw, cos, sin)]
    got_q, got_k = fused_attention.qk_norm_rope(*cuda, 1e-6)
    assert got_q.is_cuda and got_q.is_contiguous() and got_q.shape == q.shape and got_k.shape == k.shape
    for got, want, exact in ((got_q.cpu(), want_q, exact_q), (got_k.cpu(), want_k, exact_k)):
        scale = exact.abs().amax(-1, keepdim=True) + 1e-30  # per row: the rope sum cancels elementwise
        assert ((got.double() - want.double()).abs() <= 4 * ULP[dtype] * scale).all()
        assert ((got.double() - exact).abs() <= 8 * ULP[dtype] * scale).all()
        if dtype != torch.float32:  # same roundings to a coarse dtype: most elements are bit-identical
            assert (got == want).double().mean() > 0.9


@pytest.mark.gpu
def test_cuda_qk_norm_rope_broadcast_tables_and_graph_capture():
    gen = torch.Generator().manual_seed(9)
    q, k = _qk(3, 2, 8, 4, 64, torch.bfloat16, gen, "cuda")
    cos, sin = _rope_tables(1, 2, 64, torch.bfloat16, gen, "cuda")  # one table for the whole batch
    qw, kw = torch.ones(64, dtype=torch.bfloat16, device="cuda"), torch.ones(64, dtype=torch.bfloat16, device="cuda")
    want_q, want_k = fused_attention.reference(q.cpu(), k.cpu(), qw.cpu(), kw.cpu(), cos.cpu().expand(3, 2, 64),
                                               sin.cpu().expand(3, 2, 64), 1e-6)
    eager_q, eager_k = fused_attention.qk_norm_rope(q, k, qw, kw, cos, sin, 1e-6)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        gq, gk = fused_attention.qk_norm_rope(q, k, qw, kw, cos, sin, 1e-6)
    gq.fill_(float("nan"))
    g.replay()
    torch.cuda.synchronize()
    assert torch.equal(gq, eager_q) and torch.equal(gk, eager_k)
    assert torch.allclose(eager_q.cpu().float(), want_q.float(), rtol=0.02, atol=0.02)
    assert torch.allclose(eager_k.cpu().float(), want_k.float(), rtol=0.02, atol=0.02)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("start, seq, norm", [(0, 1, True), (7, 1, False), (3, 4, True), (9, 2, True)])
def test_cuda_qk_norm_rope_cache_matches_reference(dtype, start, seq, norm):
    gen = torch.Generator().manual_seed(start * 10 + seq)
    q, k, v, k_cache, v_cache = _cache_case(2, seq, 8, 2, 64, 10, dtype, gen)
    cos, sin = _rope_tables(2, seq, 64, dtype, gen)
    qw = (torch.randn(64, generator=gen) * 0.5 + 1).to(dtype) if norm else None
    kw = (torch.randn(64, generator=gen) * 0.5 + 1).to(dtype) if norm else None
    pos = torch.tensor(start)
    kc, vc = k_cache.clone(), v_cache.clone()
    want_q = fused_attention.qk_norm_rope_cache(q, k, v, qw, kw, cos, sin, 1e-6, kc, vc, pos)
    cuda = [t.cuda() if t is not None else None for t in (q, k, v, qw, kw, cos, sin)]
    gkc, gvc = k_cache.cuda(), v_cache.cuda()
    got_q = fused_attention.qk_norm_rope_cache(*cuda, 1e-6, gkc, gvc, pos.cuda())
    torch.cuda.synchronize()
    if start + seq > 10:  # past the end: NaN q, caches untouched
        assert torch.isnan(got_q).all() and torch.equal(gkc.cpu(), k_cache) and torch.equal(gvc.cpu(), v_cache)
        return
    tol = 4 * ULP[dtype] * (want_q.abs().double().amax(-1, keepdim=True) + 1e-30)
    assert ((got_q.cpu().double() - want_q.double()).abs() <= tol).all()
    assert torch.equal(gvc.cpu(), vc)  # v rows are copied bit for bit, other rows untouched
    ktol = 4 * ULP[dtype] * (kc.abs().double().amax(-1, keepdim=True) + 1e-30)
    assert ((gkc.cpu().double() - kc.double()).abs() <= ktol).all()


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape", [(1, 12288), (3, 5, 40), (7, 1), (0, 8)])
def test_cuda_silu_mul_matches_torch(dtype, shape):
    gen = torch.Generator().manual_seed(sum(shape))
    gu = (torch.randn(*shape[:-1], 2 * shape[-1], generator=gen) * 4).to(dtype).cuda()
    gate, up = gu[..., : shape[-1]], gu[..., shape[-1]:]
    got = fused_mlp.silu_mul(gate, up)
    want = torch.nn.functional.silu(gate) * up  # torch's own CUDA kernels
    assert got.shape == want.shape and got.dtype == dtype
    if want.numel():
        tol = 2 * ULP[dtype] * want.abs().double() + 1e-30
        assert ((got.double() - want.double()).abs() <= tol).all()
        assert (got == want).double().mean() > 0.99


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("m", [1, 5, 16, 17])
def test_cuda_linear_add_bf16_linear_and_nvfp4_linear(dtype, m):
    from reset_native.integrations.nvfp4_linear import NVFP4Linear

    gen = torch.Generator().manual_seed(m)
    lin = torch.nn.Linear(256, 96, bias=False).to(dtype).cuda()
    x = torch.randn(m, 256, generator=gen).to(dtype).cuda()
    r = (torch.randn(m, 96, generator=gen) * 4).to(dtype).cuda()
    unit = ULP[dtype]
    with torch.no_grad():
        exact = r.double() + x.double() @ lin.weight.double().t()
        got = fused_residual.linear_add(lin, x, r)
        assert got.shape == r.shape and got.dtype == dtype
        # one rounding of the sum (plus cuBLAS's fp32 accumulation) vs transformers' two roundings
        assert ((got.double() - exact).abs() <= 2 * unit * (exact.abs() + x.double().abs() @
                                                             lin.weight.double().abs().t())).all()
        q = NVFP4Linear.from_linear(lin)
        wq = q.dequantized_weight(torch.float32).double()  # exact: e2m1 * e4m3 * global scale fits fp32
        exact_q = r.double() + x.double() @ wq.t()
        got_q = q.forward_add(x, r)
        bound = 2 * unit * (exact_q.abs() + x.double().abs() @ wq.abs().t()) + 1e-30
        assert got_q.shape == r.shape and ((got_q.double() - exact_q).abs() <= bound).all()


@pytest.mark.gpu
@pytest.mark.parametrize("make", [tiny_qwen3, tiny_llama])
def test_fused_model_on_cuda_matches_unfused_and_generates(make):
    from reset_native.integrations.generate import generate

    model = make(seed=7, dtype=torch.bfloat16).cuda()
    ids = torch.tensor([[5, 9, 11, 4, 7], [3, 3, 8, 1, 2]], device="cuda")
    with torch.no_grad():
        before = model(ids).logits.float()
        counts = fused_ops.fuse_decoder_ops(model)
        after = model(ids).logits.float()
    assert counts["attention"] == 2 and counts["mlp"] == 2 and counts["residual"] == 2
    assert torch.allclose(after, before, rtol=0.05, atol=0.05 * before.abs().max().item())
    # the fused model inside the CUDA-graph decode loop: same tokens as the eager fused loop for one seed
    graph = generate(model, None, ids.cpu(), max_new_tokens=6, temperature=0.0, cuda_graph=True)
    eager = generate(model, None, ids.cpu(), max_new_tokens=6, temperature=0.0, cuda_graph=False)
    assert graph.token_ids == eager.token_ids and graph.cuda_graph and not eager.cuda_graph


@pytest.mark.gpu
@pytest.mark.parametrize("make", [tiny_qwen3, tiny_llama])
def test_fused_float32_model_decodes_the_same_greedy_tokens(make):
    """Static-cache writes from the kernel, norms and RoPE: in float32 the fused decode loop (graph) must pick
    exactly the unfused model's greedy tokens over a long continuation."""
    from reset_native.integrations.generate import generate

    model = make(seed=8, dtype=torch.float32).cuda()
    ids = torch.tensor([[5, 9, 11, 4, 7], [3, 3, 8, 1, 2]])
    want = generate(model, None, ids, max_new_tokens=24, temperature=0.0, cuda_graph=False, stop_at_eos=False)
    fused_ops.fuse_decoder_ops(model)
    got = generate(model, None, ids, max_new_tokens=24, temperature=0.0, cuda_graph=True, stop_at_eos=False)
    assert got.token_ids == want.token_ids and got.cuda_graph
