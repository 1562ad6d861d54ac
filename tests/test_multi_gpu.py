"""Every CUDA entry point launches on its tensors' device, not on the current one: with device 0 current, the same
inputs on cuda:1 give the same bits as on cuda:0 (the eager route switches the device only when needed,
reset_native._torch_launch.on_device). Needs two GPUs (marker gpu; skipped otherwise)."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.device_count() < 2,
                                                  reason="needs two GPUs")]


def _on_both(make):
    """make(device) -> output already copied to the CPU (a synchronising copy), for cuda:0 and cuda:1 with device 0
    current."""
    with torch.cuda.device(0):
        a = make(torch.device("cuda:0"))
        b = make(torch.device("cuda:1"))
    return a, b


def _cpu(out):
    return tuple(t.cpu() for t in out) if isinstance(out, tuple) else out.cpu()


def _assert_same(a, b):
    a, b = (a, b) if isinstance(a, tuple) else ((a,), (b,))
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.dtype == y.dtype and torch.equal(x, y)


def _randn(shape, seed, scale=1.0, dtype=torch.bfloat16):
    return (torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * scale).to(dtype)


@pytest.mark.parametrize("activation", ["bf16", "nvfp4"])
@pytest.mark.parametrize("m", [1, 16])
def test_nvfp4_quantize_dequantize_gemv(activation, m):
    from reset_native import nvfp4

    w, x = _randn((512, 2048), 1, dtype=torch.float32), _randn((m, 2048), 2, scale=3)

    def make(dev):
        t = nvfp4.quantize(w.to(dev))
        assert t.packed.device == dev
        y = nvfp4.gemv(t, x.to(dev), activation=activation)
        assert y.device == dev
        return _cpu((t.packed, t.block_scales, nvfp4.dequantize(t), y))

    _assert_same(*_on_both(make))


def test_sampler_decode_step_and_update():
    from reset_native.sampler import ReSETConfig, ReSETState, decode_step

    config = ReSETConfig(t_low=0.3, tau0=4.5, window=8, newline_ids=(3,), double_newline_ids=(5,), top_p=0.95)
    rows, vocab = 4, 32000
    logits = [_randn((rows, vocab), 10 + i, scale=3, dtype=torch.float32) for i in range(5)]

    def make(dev):
        state = ReSETState(config, rows, vocab, device=str(dev), seed=7)
        last = torch.full((rows,), -1, device=dev)
        outs = []
        for z in logits:
            out = decode_step(state, z.to(dev), last)
            assert out.tokens.device == dev
            outs += [out.tokens, out.temperatures, out.entropies]
            last = out.tokens
        temps = state.update(torch.full((rows,), 2.0, device=dev), last)
        state.check_errors()
        return _cpu(tuple(outs) + (temps,))

    _assert_same(*_on_both(make))


def test_fused_decoder_ops():
    from reset_native.integrations import decode_attention as da
    from reset_native.integrations import fused_attention, fused_mlp, fused_norm

    x, w = _randn((2, 4096), 20, scale=3), 1 + _randn(4096, 21, scale=0.3)
    gu = _randn((2, 2 * 1024), 22, scale=3)
    q, k = _randn((1, 1, 32, 128), 23, scale=3), _randn((1, 1, 8, 128), 24, scale=3)
    qw, kw = 1 + _randn(128, 25, scale=0.3), 1 + _randn(128, 26, scale=0.3)
    ang = torch.rand((1, 1, 128), generator=torch.Generator().manual_seed(27)) * 6.28
    qa, kc, vc = _randn((1, 1, 32, 128), 28), _randn((1, 8, 256, 128), 29), _randn((1, 8, 256, 128), 30)

    def make(dev):
        g, u = gu.to(dev)[:, :1024], gu.to(dev)[:, 1024:]
        cos, sin = ang.cos().to(torch.bfloat16).to(dev), ang.sin().to(torch.bfloat16).to(dev)
        qn, kn = fused_attention.qk_norm_rope(q.to(dev), k.to(dev), qw.to(dev), kw.to(dev), cos, sin, 1e-6)
        return _cpu((fused_norm.rms_norm(x.to(dev), w.to(dev), 1e-6), fused_mlp.silu_mul(g, u), qn, kn,
                     da.decode_attention(qa.to(dev), kc.to(dev), vc.to(dev), None, 128 ** -0.5)))

    _assert_same(*_on_both(make))


def test_fused_gemv():
    from reset_native import _nvfp4_fused, nvfp4

    wf, xg, nw = _randn((6144, 4096), 31, scale=0.05), _randn((1, 4096), 32, scale=3), 1 + _randn(4096, 33, scale=0.3)

    def make(dev):
        t = nvfp4.quantize(wf.to(dev))
        if not _nvfp4_fused.supported(t.packed, t.block_scales, xg.to(dev), nw.to(dev), silu_mul=False):
            pytest.skip("no fused kernel for this shape on this device")
        return _cpu(_nvfp4_fused.gemv_fused(t.packed, t.block_scales, t.global_scale, xg.to(dev), nw.to(dev), 1e-6,
                                            False))

    _assert_same(*_on_both(make))
