"""The public reset_native.nvfp4 API on CUDA tensors agrees with the CPU path on the same bytes: GPU quantize is
bit-identical to CPU quantize, dequantize is exact, gemv matches the CPU gemv (W4A16 and W4A4, M up to 40, so
the 16-token slicing of prefill-sized M is covered). GPU only (marker gpu)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
from reset_native import nvfp4  # noqa: E402

pytestmark = pytest.mark.gpu


def _fresh(shape, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g) * torch.exp(torch.randn(shape[0], 1, generator=g))).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_gpu_quantize_is_bit_identical_to_cpu(dtype):
    w = _fresh((96, 512), dtype, seed=int(torch.randint(0, 2**31, ())))
    cpu = nvfp4.quantize(w)
    gpu = nvfp4.quantize(w.cuda())
    assert gpu.device.type == "cuda" and gpu.packed.is_cuda
    assert torch.equal(gpu.packed.cpu(), cpu.packed)
    assert torch.equal(gpu.block_scales.cpu(), cpu.block_scales)
    assert np.float32(gpu.global_scale) == np.float32(cpu.global_scale)
    assert torch.equal(nvfp4.dequantize(gpu).cpu(), nvfp4.dequantize(cpu))


@pytest.mark.parametrize("m", [1, 3, 16, 17, 40])
@pytest.mark.parametrize("activation", ["bf16", "nvfp4"])
def test_gpu_gemv_matches_cpu_gemv_on_the_same_bytes(m, activation):
    seed = int(torch.randint(0, 2**31, ()))
    t_cpu = nvfp4.quantize(_fresh((200, 1024), torch.float32, seed))
    t_gpu = nvfp4.NVFP4Tensor.from_parts(t_cpu.packed.cuda(), t_cpu.block_scales.cuda(), t_cpu.global_scale)
    x = _fresh((m, 1024), torch.float32, seed + 1)
    y_cpu = nvfp4.gemv(t_cpu, x, activation=activation).double()
    y_gpu = nvfp4.gemv(t_gpu, x.cuda(), activation=activation).double().cpu()
    assert y_gpu.shape == (m, 200)
    # both accumulate in fp32 in different orders: agreement to a few fp32 ulps of the row norm
    err = (y_gpu - y_cpu).norm() / y_cpu.norm()
    assert err < 1e-5, (m, activation, float(err))


def test_cuda_gemv_rejects_x_on_another_device_than_t():
    t = nvfp4.quantize(torch.randn(32, 64))
    with pytest.raises(ValueError):
        nvfp4.gemv(t, torch.randn(1, 64, device="cuda"))


@pytest.mark.parametrize("m", [1, 5, 16])
@pytest.mark.parametrize("activation,act_gs", [("bf16", None), ("nvfp4", None), ("nvfp4", 0.02)])
def test_public_gemv_launches_without_repeating_the_backend_checks(m, activation, act_gs, monkeypatch):
    """nvfp4.gemv's eager CUDA calls launch through gemv_prechecked (not through the checking _gemv_impl): the same
    bits as the checked backend route and the custom op, with and without bias, for 1-D and 2-D x; an x that
    requires grad takes the op (which checks again; its backward raises: no autograd formula)."""
    from reset_native import _nvfp4_cuda as nc

    seed = int(torch.randint(0, 2**31, ()))
    t = nvfp4.quantize(_fresh((96, 2048), torch.float32, seed).cuda())
    x = _fresh((m, 2048), torch.float32, seed + 1).to(torch.bfloat16).cuda()
    bias = _fresh((96, 1), torch.float32, seed + 2).reshape(96).to(torch.bfloat16).cuda()
    checked = nc._gemv_impl
    for b in (None, bias):
        want = checked(t.packed, t.block_scales, t.global_scale, x, activation, act_gs, b)
        op = nc._ops().nvfp4_gemv(t.packed, t.block_scales, t.global_scale, x, activation, act_gs, b, None)
        monkeypatch.setattr(nc, "_gemv_impl", lambda *a: pytest.fail("the public call repeated the checks"))
        public = nvfp4.gemv(t, x, activation=activation, act_global_scale=act_gs, bias=b)
        one = nvfp4.gemv(t, x[0], activation=activation, act_global_scale=act_gs, bias=b)
        monkeypatch.setattr(nc, "_gemv_impl", checked)
        assert torch.equal(public, want) and torch.equal(public, op)
        assert one.shape == (96,) and torch.equal(one, checked(t.packed, t.block_scales, t.global_scale, x[:1],
                                                               activation, act_gs, b)[0])
    y = nvfp4.gemv(t, x.float().requires_grad_(), activation=activation, act_global_scale=act_gs)
    assert y.grad_fn is not None
    with pytest.raises(RuntimeError, match="no autograd formula"):
        y.sum().backward()
