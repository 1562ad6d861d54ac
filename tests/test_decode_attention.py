"""Decode attention (one query token over a static KV cache): the fp64 reference against torch SDPA, the CUDA
kernel against the reference for every dtype, head grouping, head dim and mask form, graph replay, bad input.
GPU tests skip without a device (marker gpu)."""
import pytest

torch = pytest.importorskip("torch")

from reset_native.integrations import decode_attention as da  # noqa: E402

DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def _case(batch, hq, hk, d, length, dtype, device, mask_kind="none", seed=0):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn((batch, 1, hq, d), generator=gen).to(dtype).to(device)
    k = torch.randn((batch, hk, length, d), generator=gen).to(dtype).to(device)
    v = torch.randn((batch, hk, length, d), generator=gen).to(dtype).to(device)
    mask = None
    if mask_kind != "none":
        rows = batch if mask_kind != "broadcast" else 1
        m = torch.rand((rows, 1, 1, length), generator=gen) < 0.6
        m[..., length // 2] = True  # at least one position per row
        if mask_kind == "one_row_empty":
            m[0] = False
        mask = m.to(device)
        if mask_kind == "additive":  # as generate() builds it: 0 or the dtype's min, plus a small bias
            bias = 0.5 * torch.rand(m.shape, generator=gen, dtype=torch.float64)
            mask = bias.masked_fill_(~m, torch.finfo(dtype).min).to(dtype).to(device)
    return q, k, v, mask


def _sdpa(q, k, v, mask, scale):
    group = q.shape[2] // k.shape[1]
    kr, vr = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    out = torch.nn.functional.scaled_dot_product_attention(q.transpose(1, 2), kr, vr, attn_mask=mask, scale=scale)
    return out.transpose(1, 2)


@pytest.mark.parametrize("batch,hq,hk,d,length", [(1, 8, 2, 64, 37), (3, 4, 4, 16, 9), (2, 6, 3, 32, 100)])
@pytest.mark.parametrize("mask_kind", ["none", "rows", "broadcast", "additive"])
def test_reference_matches_torch_sdpa(batch, hq, hk, d, length, mask_kind):
    q, k, v, mask = _case(batch, hq, hk, d, length, torch.float64, "cpu", mask_kind)
    scale = d ** -0.5
    torch.testing.assert_close(da.reference(q, k, v, mask, scale), _sdpa(q, k, v, mask, scale), rtol=1e-12,
                               atol=1e-12)


def test_cpu_op_is_the_reference_and_all_masked_rows_are_zero():
    q, k, v, mask = _case(2, 4, 2, 16, 12, torch.float32, "cpu", "one_row_empty")
    pos = torch.tensor([7], dtype=torch.int64)
    out = da.decode_attention(q, k, v, mask, 0.3, advance=pos)
    torch.testing.assert_close(out, da.reference(q, k, v, mask, 0.3), rtol=0, atol=0)
    assert out.shape == (2, 1, 4, 16) and torch.equal(out[0], torch.zeros_like(out[0]))
    assert torch.isfinite(out).all()
    assert int(pos) == 8


def test_bad_inputs_name_the_argument():
    q, k, v, mask = _case(2, 4, 2, 16, 12, torch.float32, "cpu", "rows")
    with pytest.raises(TypeError, match="mask"):
        da.decode_attention(q, k, v, mask.double(), 0.3)
    with pytest.raises(ValueError, match="mask must be"):
        da.decode_attention(q, k, v, mask[..., :5], 0.3)
    with pytest.raises(ValueError, match="multiple of kv_heads"):
        da.decode_attention(q[:, :, :3], k, v, None, 0.3)
    with pytest.raises(ValueError, match=r"q must be \[batch, 1"):
        da.decode_attention(q.expand(2, 2, 4, 16), k, v, None, 0.3)
    with pytest.raises(ValueError, match="v_cache"):
        da.decode_attention(q, k, v[:, :, :5], None, 0.3)
    with pytest.raises(TypeError, match="dtype"):
        da.decode_attention(q, k.double(), v, None, 0.3)
    with pytest.raises(ValueError, match="scale"):
        da.decode_attention(q, k, v, None, -1.0)
    with pytest.raises(ValueError, match="scale"):
        da.decode_attention(q, k, v, None, "big")
    with pytest.raises(TypeError, match="k_cache"):
        da.decode_attention(q, [1, 2], v, None, 0.3)
    with pytest.raises(ValueError, match="advance"):
        da.decode_attention(q, k, v, None, 0.3, advance=torch.zeros(2, dtype=torch.int64))
    with pytest.raises(ValueError, match="advance"):
        da.decode_attention(q, k, v, None, 0.3, advance=torch.zeros(1, dtype=torch.int32))


def test_not_applied_on_cpu():
    class Cfg:
        _attn_implementation = "sdpa"

    class M:
        training, config, scaling, sliding_window = False, Cfg(), 0.125, None

    q, k, _, _ = _case(1, 4, 2, 64, 8, torch.float32, "cpu")
    assert not da.applies(M(), q, k, None, {})


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch,hq,hk,d,length", [(1, 32, 8, 128, 160), (3, 8, 8, 64, 37), (2, 16, 2, 128, 1000),
                                                  (2, 64, 8, 128, 50), (1, 4, 2, 64, 1)])
@pytest.mark.parametrize("mask_kind", ["none", "rows", "broadcast", "one_row_empty", "additive"])
def test_kernel_matches_fp64_reference(dtype, batch, hq, hk, d, length, mask_kind):
    if not da.AVAILABLE or not torch.cuda.is_available():
        pytest.skip("needs the CUDA kernels")
    q, k, v, mask = _case(batch, hq, hk, d, length, dtype, "cuda", mask_kind, seed=batch * 7 + length)
    scale = d ** -0.5
    out = da.decode_attention(q, k, v, mask, scale)
    exact = da.reference(q.cpu().double(), k.cpu().double(), v.cpu().double(),
                         None if mask is None else mask.cpu(), scale)
    out_eps = {torch.float32: 2.0 ** -22, torch.float16: 2.0 ** -11, torch.bfloat16: 2.0 ** -8}[dtype]
    err = (out.cpu().double() - exact).abs()
    tol = out_eps * exact.abs() + 1e-5 * float(v.abs().max())
    assert bool((err <= tol).all()), f"max err/tol {float((err / tol).max()):.3g}"
    assert out.shape == (batch, 1, hq, d) and out.dtype == dtype
    if mask_kind == "one_row_empty":
        assert torch.equal(out[0].cpu(), torch.zeros_like(out[0].cpu()))


@pytest.mark.gpu
def test_kernel_close_to_torch_sdpa_and_replays_in_a_graph():
    if not da.AVAILABLE or not torch.cuda.is_available():
        pytest.skip("needs the CUDA kernels")
    q, k, v, mask = _case(2, 32, 8, 128, 300, torch.bfloat16, "cuda", "rows", seed=3)
    scale = 128 ** -0.5
    pos = torch.tensor([5], dtype=torch.int64, device="cuda")
    eager = da.decode_attention(q, k, v, mask, scale, advance=pos)
    torch.testing.assert_close(eager, _sdpa(q, k, v, mask, scale), rtol=2e-2, atol=2e-2)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        da.decode_attention(q, k, v, mask, scale, advance=pos)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        out = da.decode_attention(q, k, v, mask, scale, advance=pos)
    for _ in range(3):
        g.replay()
    torch.cuda.synchronize()
    assert torch.equal(out, eager)
    assert int(pos.item()) == 5 + 1 + 1 + 3  # eager, warm-up, three replays (capture itself runs nothing)


@pytest.mark.gpu
def test_unsupported_grouping_is_refused_by_the_kernel_and_not_applied():
    if not da.AVAILABLE or not torch.cuda.is_available():
        pytest.skip("needs the CUDA kernels")
    q, k, v, _ = _case(1, 9, 3, 64, 10, torch.bfloat16, "cuda")
    assert not da.supported(9, 3, 64) and not da.supported(8, 8, 96)
    with pytest.raises(NotImplementedError, match="q_heads=9"):
        da.decode_attention(q, k, v, None, 0.125)
