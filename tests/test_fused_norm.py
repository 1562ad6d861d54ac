"""One-kernel RMSNorm (reset_native.integrations.fused_norm): against transformers' module and fp64 math."""
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from reset_native.integrations import fused_norm  # noqa: E402

from _e2e_models import tiny_llama  # noqa: E402

# The fused sum of squares runs in another order and rsqrtf may differ from the CPU's by 2 fp32 ulps; through
# the two roundings of the formula that is at most ~2 ulps of the output dtype (relative bounds below).
ULP = {torch.float32: 2.0**-20, torch.float16: 2.0**-9, torch.bfloat16: 2.0**-6}


def _fp64_rms_norm(x, w, eps):
    h = x.double()
    return w.double() * (h / torch.sqrt(h.pow(2).mean(-1, keepdim=True) + eps))


def test_reference_is_transformers_formula_and_close_to_fp64():
    from transformers.models.llama.modeling_llama import LlamaRMSNorm

    gen = torch.Generator().manual_seed(0)
    norm = LlamaRMSNorm(96, eps=1e-6)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(96, generator=gen))
    x = torch.randn(5, 3, 96, generator=gen) * 7
    got = fused_norm.reference(x, norm.weight.detach(), 1e-6)
    assert torch.equal(got, norm(x).detach())
    assert torch.allclose(got.double(), _fp64_rms_norm(x, norm.weight.detach(), 1e-6), rtol=1e-5, atol=1e-6)


def test_fuse_counts_modules_and_keeps_cpu_outputs_identical():
    model = tiny_llama(seed=3)
    ids = torch.tensor([[5, 9, 11, 4]])
    with torch.no_grad():
        before = model(ids).logits
    n = fused_norm.fuse_rms_norms(model)
    assert n == 2 * 2 + 1  # two per decoder layer, two layers, plus the final norm
    assert fused_norm.fuse_rms_norms(model) == n  # idempotent: no double wrapping
    with torch.no_grad():
        assert torch.equal(model(ids).logits, before)  # CPU tensors keep the module's own forward
    assert fused_norm.unfuse_rms_norms(model) == n
    assert fused_norm.unfuse_rms_norms(model) == 0


def test_op_on_cpu_equals_reference():
    x = torch.randn(4, 64, dtype=torch.bfloat16)
    w = torch.randn(64, dtype=torch.bfloat16)
    assert torch.equal(fused_norm.rms_norm(x, w, 1e-5), fused_norm.reference(x, w, 1e-5))


@pytest.mark.parametrize("x, w, eps, exc, words", [
    (torch.zeros(2, 8), torch.zeros(7), 1e-6, ValueError, "last dimension"),
    (torch.zeros(2, 8), torch.zeros(8, dtype=torch.float16), 1e-6, TypeError, "share one dtype"),
    (torch.zeros(2, 8, dtype=torch.int32), torch.zeros(8, dtype=torch.int32), 1e-6, TypeError, "float32"),
    (torch.zeros(8, 2).t(), torch.zeros(8), 1e-6, ValueError, "contiguous"),
    (torch.zeros(2, 8), torch.zeros(8), -1.0, ValueError, "eps"),
    (torch.zeros(2, 0), torch.zeros(0), 1e-6, ValueError, "last dimension"),
])
def test_bad_inputs(x, w, eps, exc, words):
    with pytest.raises(exc, match=words):
        fused_norm.rms_norm(x, w, eps)


def test_fuse_rejects_non_module():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        fused_norm.fuse_rms_norms("model")


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape", [(1, 4096), (3, 8, 128), (7, 100), (2, 5000), (0, 64)])
def test_cuda_kernel_matches_transformers_module(dtype, shape):
    from transformers.models.llama.modeling_llama import LlamaRMSNorm

    gen = torch.Generator().manual_seed(sum(shape))
    h = shape[-1]
    norm = LlamaRMSNorm(h, eps=1e-6).to(dtype)
    with torch.no_grad():
        norm.weight.copy_((torch.randn(h, generator=gen) * 0.5 + 1).to(dtype))
    x = (torch.randn(shape, generator=gen) * 3).to(dtype)
    want = norm(x).detach()  # CPU, transformers' own forward
    torch.cuda.synchronize()
    got = fused_norm.rms_norm(x.cuda(), norm.weight.detach().cuda(), 1e-6).cpu()
    assert got.dtype == dtype and got.shape == x.shape
    tol = ULP[dtype] * want.abs().double() + 1e-30
    assert ((got.double() - want.double()).abs() <= tol).all()


@pytest.mark.gpu
def test_fused_model_on_cuda_matches_and_graph_captures():
    model = tiny_llama(seed=4, dtype=torch.bfloat16).cuda()
    ids = torch.tensor([[5, 9, 11, 4, 7]], device="cuda")
    with torch.no_grad():
        before = model(ids).logits.float()
        fused_norm.fuse_rms_norms(model)
        after = model(ids).logits.float()
        x = torch.randn(2, 64, device="cuda", dtype=torch.bfloat16)
        w = model.model.norm.weight.detach()
        eager = fused_norm.rms_norm(x, w, 1e-6)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            out = fused_norm.rms_norm(x, w, 1e-6)
        g.replay()
        torch.cuda.synchronize()
    assert torch.equal(out, eager)
    # one bf16 ulp per norm can move logits slightly; they must stay within bf16 noise of the unfused model
    assert torch.allclose(after, before, rtol=0.05, atol=0.05 * before.abs().max().item())
