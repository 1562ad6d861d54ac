"""NVFP4Linear and quantize_model against independent references (fp64 math on the dequantized weights)."""
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from torch import nn  # noqa: E402

from reset_native import nvfp4  # noqa: E402
from reset_native.integrations.nvfp4_linear import (NVFP4Linear, calibrate_input_scales, model_nbytes,  # noqa: E402
                                                    quantize_model)

from _e2e_models import tiny_llama  # noqa: E402


def _linear(n=48, k=64, bias=True, seed=0):
    torch.manual_seed(seed)
    lin = nn.Linear(k, n, bias=bias)
    with torch.no_grad():
        lin.weight.mul_(torch.logspace(-2, 1, k))  # a wide dynamic range across blocks
    return lin


@pytest.mark.parametrize("lead", [(), (5,), (2, 3)])
def test_matches_linear_on_dequantized_weights(lead):
    lin = _linear()
    q = NVFP4Linear.from_linear(lin)
    w = nvfp4.dequantize(nvfp4.quantize(lin.weight.detach()), torch.float32).double()
    # independent bits: the weight bytes equal a fresh quantize of the same matrix
    t = nvfp4.quantize(lin.weight.detach())
    assert torch.equal(q.weight, t.packed) and torch.equal(q.weight_scale, t.block_scales)
    assert float(q.weight_scale_2) == pytest.approx(t.global_scale, rel=0, abs=0)
    x = torch.randn(*lead, 64)
    ref = x.double() @ w.T + lin.bias.detach().double()
    y = q(x)
    assert y.shape == (*lead, 48) and y.dtype == torch.float32
    assert torch.allclose(y.double(), ref, rtol=1e-5, atol=1e-5 * ref.abs().max().item())


def test_w4a4_static_scale_matches_reference():
    lin = _linear(bias=False)
    x = torch.randn(4, 64)
    scale = float(x.abs().max()) / 2688.0
    q = NVFP4Linear.from_linear(lin, activation="nvfp4", input_scale=scale)
    xq = nvfp4.dequantize(nvfp4.quantize(x, global_scale=scale), torch.float32).double()
    wq = nvfp4.dequantize(nvfp4.quantize(lin.weight.detach()), torch.float32).double()
    ref = xq @ wq.T
    assert torch.allclose(q(x).double(), ref, rtol=1e-5, atol=1e-5 * ref.abs().max().item())
    # W4A4 is a different computation from W4A16: the activations really were quantized
    assert not torch.allclose(q(x).double(), x.double() @ wq.T, rtol=1e-4, atol=0)


def test_buffers_survive_dtype_casts_and_state_dict():
    q = NVFP4Linear.from_linear(_linear())
    before = {k: v.clone() for k, v in q.state_dict().items()}
    q.to(torch.bfloat16)
    assert q.weight.dtype == torch.uint8 and q.weight_scale.dtype == torch.uint8
    assert q.weight_scale_2.dtype == torch.float32 and float(q.weight_scale_2) == float(before["weight_scale_2"])
    assert q.bias.dtype == torch.bfloat16
    assert set(q.state_dict()) == {"weight", "weight_scale", "weight_scale_2", "bias"}
    y = q(torch.randn(3, 64, dtype=torch.bfloat16))
    assert y.dtype == torch.bfloat16


def test_bad_inputs():
    with pytest.raises(ValueError, match="multiple of 16"):
        NVFP4Linear(40, 8)
    with pytest.raises(ValueError, match="activation"):
        NVFP4Linear(32, 8, activation="fp8")
    with pytest.raises(TypeError, match="nn.Linear"):
        NVFP4Linear.from_linear(nn.Conv1d(2, 2, 1))
    with pytest.raises(ValueError, match="multiple of 16"):
        NVFP4Linear.from_linear(nn.Linear(20, 4))
    q = NVFP4Linear.from_linear(_linear())
    with pytest.raises(ValueError, match="in_features=64"):
        q(torch.randn(2, 63))
    with pytest.raises(ValueError, match="input_scale"):
        q.set_input_scale(-1.0)


def test_quantize_model_on_tiny_llama():
    model = tiny_llama()
    ref = tiny_llama()  # same seed: identical weights, replaced below by their dequantized NVFP4 values
    linears = {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    with torch.no_grad():
        for name, m in ref.named_modules():
            if isinstance(m, nn.Linear) and name != "lm_head":
                m.weight.copy_(nvfp4.dequantize(nvfp4.quantize(m.weight.detach()), torch.float32))
    before = model_nbytes(model)
    report = quantize_model(model, fuse_projections=False)  # each layer on its own (fused: test_fused_projections)
    assert set(report["quantized"]) == set(linears) - {"lm_head"}
    assert report["skipped"] == {"lm_head": "skip list"}
    assert isinstance(model.lm_head, nn.Linear)
    assert all(isinstance(model.get_submodule(n), NVFP4Linear) for n in report["quantized"])
    # bytes by hand: each quantized [N, K] float32 weight (4 B/elem) becomes N*K/2 + N*K/16 bytes + 4 (scale)
    saved = sum(m.weight.numel() * 4 - (m.weight.numel() // 2 + m.weight.numel() // 16 + 4)
                for n, m in linears.items() if n != "lm_head")
    assert report["bytes_before"] == before and report["bytes_after"] == before - saved
    ids = torch.randint(3, 51, (2, 9))
    with torch.no_grad():
        got, want = model(ids).logits, ref(ids).logits
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-4)


def test_quantize_model_skip_patterns_and_errors():
    model = tiny_llama()
    report = quantize_model(model, skip=("lm_head", "*.mlp.*"))
    assert all(".mlp." not in n for n in report["quantized"]) and report["quantized"]
    assert isinstance(model.model.layers[0].mlp.up_proj, nn.Linear)
    with pytest.raises(TypeError, match="sequence of names"):
        quantize_model(tiny_llama(), skip="lm_head")
    with pytest.raises(ValueError, match="activation"):
        quantize_model(tiny_llama(), activation="int4")
    with pytest.raises(ValueError, match="input_scales"):
        quantize_model(tiny_llama(), input_scales={"nope": 1.0})
    with pytest.raises(TypeError, match="nn.Module"):
        quantize_model("model")


def test_calibrate_input_scales_records_amax():
    model = tiny_llama()
    ids = torch.randint(3, 51, (2, 7))
    seen = {}
    h = model.model.layers[1].mlp.down_proj.register_forward_pre_hook(
        lambda m, a: seen.__setitem__("x", a[0].detach().abs().max().item()))
    scales = calibrate_input_scales(model, [{"input_ids": ids}])
    h.remove()
    assert "lm_head" not in scales
    assert scales["model.layers.1.mlp.down_proj"] == float(torch.tensor(seen["x"]) / 2688.0)
    report = quantize_model(model, activation="nvfp4", input_scales=scales)
    q = model.get_submodule("model.layers.1.mlp.down_proj")
    assert q.activation == "nvfp4" and float(q.input_scale) == pytest.approx(seen["x"] / 2688.0, rel=1e-6)
    assert report["quantized"]
    with pytest.raises(ValueError, match="at least one"):
        calibrate_input_scales(tiny_llama(), [])


@pytest.mark.gpu
def test_quantize_model_on_cuda_matches_cpu():
    cpu, gpu = tiny_llama(seed=4), tiny_llama(seed=4).cuda()
    quantize_model(cpu)
    quantize_model(gpu)
    a, b = cpu.state_dict(), gpu.state_dict()
    for k in a:
        assert torch.equal(a[k], b[k].cpu()), k  # GPU quantization is bit-identical to the CPU reference
    ids = torch.randint(3, 51, (2, 9))
    with torch.no_grad():
        want = cpu(ids).logits
        got = gpu(ids.cuda()).logits.cpu()
    assert torch.allclose(got, want, rtol=1e-3, atol=1e-3)
    q = gpu.model.layers[0].mlp.down_proj
    assert q.weight.is_cuda and q.weight_scale.is_cuda and q.weight.dtype == torch.uint8
