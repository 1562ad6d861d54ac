"""q/k/v and gate/up as one NVFP4 GEMV (integrations/fused_projections.py): the fused model must compute
exactly what its members compute one by one, against fp64-free references built from the same bytes."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
from torch import nn  # noqa: E402

from _e2e_models import tiny_llama  # noqa: E402
from reset_native import nvfp4  # noqa: E402
from reset_native.integrations.fused_projections import fuse_projections, unfuse_projections  # noqa: E402
from reset_native.integrations.nvfp4_linear import NVFP4Linear, model_nbytes, quantize_model  # noqa: E402

GROUPS = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))


def _joint_reference(seed):
    """tiny_llama(seed) with each q/k/v and gate/up group replaced by the dequantized joint quantization
    and every other linear (but lm_head) by its own: what a fused quantize_model must equal."""
    ref = tiny_llama(seed)
    with torch.no_grad():
        for layer in ref.model.layers:
            for parent in (layer.self_attn, layer.mlp):
                for group in GROUPS:
                    if not all(hasattr(parent, n) for n in group):
                        continue
                    lins = [getattr(parent, n) for n in group]
                    w = nvfp4.dequantize(nvfp4.quantize(torch.cat([m.weight for m in lins])), torch.float32)
                    row = 0
                    for m in lins:
                        m.weight.copy_(w[row:row + m.out_features])
                        row += m.out_features
            layer.mlp.down_proj.weight.copy_(
                nvfp4.dequantize(nvfp4.quantize(layer.mlp.down_proj.weight), torch.float32))
            layer.self_attn.o_proj.weight.copy_(
                nvfp4.dequantize(nvfp4.quantize(layer.self_attn.o_proj.weight), torch.float32))
    return ref


def test_quantize_model_fuses_groups_and_matches_joint_reference():
    model, ref = tiny_llama(3), _joint_reference(3)
    before = model_nbytes(model)
    report = quantize_model(model)
    assert len(report["fused"]) == 2 * len(model.model.layers)
    attn = model.model.layers[0].self_attn
    q, k, v = attn.q_proj, attn.k_proj, attn.v_proj
    assert q._group is k._group is v._group is not None
    # members are row views of one tensor, with one global scale
    assert q.weight.untyped_storage().data_ptr() == v.weight.untyped_storage().data_ptr()
    assert k.weight.data_ptr() == q.weight.data_ptr() + q.weight.numel()
    assert float(q.weight_scale_2) == float(k.weight_scale_2) == float(v.weight_scale_2)
    lin_bytes = sum(m.weight.numel() * 4 for m in tiny_llama(3).modules()
                    if isinstance(m, nn.Linear) and m.out_features != 51)
    assert report["bytes_after"] < before - lin_bytes * 0.8  # ~4.5 of 32 bits kept per weight, storages once
    ids = torch.randint(3, 51, (2, 9))
    with torch.no_grad():
        got, want = model(ids).logits, ref(ids).logits
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-4)


def test_fused_equals_members_one_by_one():
    model = tiny_llama(5)
    quantize_model(model)
    ids = torch.randint(3, 51, (3, 8))
    with torch.no_grad():
        fused = model(ids).logits
        assert unfuse_projections(model) == 2 * len(model.model.layers)
        alone = model(ids).logits
        assert fuse_projections(model) == 2 * len(model.model.layers)
        again = model(ids).logits
    assert torch.equal(fused, alone) and torch.equal(fused, again)


def test_followers_compute_their_own_rows_unless_given_the_leaders_input():
    model = tiny_llama(6)
    quantize_model(model)
    mlp = model.model.layers[1].mlp
    x = torch.randn(4, 64)
    with torch.no_grad():
        up_alone = mlp.up_proj(x)  # no leader call yet: own rows
        g = mlp.gate_proj(x)
        up_cached = mlp.up_proj(x)  # the leader's slice
        y = torch.randn(4, 64)
        up_other = mlp.up_proj(y)  # another input: own rows, not the cache
        mlp.gate_proj(x)
        x.mul_(2.0)  # modified in place after the leader ran: the cache must not be used
        up_modified = mlp.up_proj(x)
        unfuse_projections(model)
        want_x, want_y, want_2x = mlp.up_proj(x / 2.0), mlp.up_proj(y), mlp.up_proj(x)
    assert torch.equal(up_alone, want_x) and torch.equal(up_cached, want_x)
    assert torch.equal(up_other, want_y) and torch.equal(up_modified, want_2x)
    assert g.shape == (4, 128)


def test_state_dict_load_and_incompatible_members():
    a, b = tiny_llama(7), tiny_llama(8)
    quantize_model(a)
    quantize_model(b)
    ids = torch.randint(3, 51, (2, 6))
    a.load_state_dict(b.state_dict())
    with torch.no_grad():
        assert torch.equal(a(ids).logits, b(ids).logits)
    # quantized one by one: three global scales, nothing to fuse
    c = tiny_llama(9)
    quantize_model(c, fuse_projections=False)
    assert fuse_projections(c) == 0
    assert all(m._group is None for m in c.modules() if isinstance(m, NVFP4Linear))
    with pytest.raises(TypeError, match="nn.Module"):
        fuse_projections("model")


def test_hf_module_exports_every_lazy_name():
    from reset_native.integrations import hf

    for name in hf._LAZY:
        assert getattr(hf, name) is not None, name
    from reset_native.integrations.hf import fuse_projections as f, quantize_model as q  # the documented form

    assert f is fuse_projections and q is quantize_model
    with pytest.raises(AttributeError, match="no attribute"):
        hf.not_a_name


def test_checkpoint_round_trip_keeps_fusion(tmp_path):
    from reset_native.integrations.checkpoint import load_nvfp4, save_nvfp4

    model = tiny_llama(10)
    quantize_model(model)
    save_nvfp4(model, tmp_path)
    loaded = load_nvfp4(tmp_path, dtype=torch.float32)
    assert loaded.model.layers[0].mlp.up_proj._group is not None
    for name, t in model.state_dict().items():
        assert torch.equal(t, loaded.state_dict()[name]), name
    ids = torch.randint(3, 51, (2, 6))
    with torch.no_grad():
        assert torch.equal(model(ids).logits, loaded(ids).logits)


@pytest.mark.gpu
def test_fused_on_cuda_matches_cpu():
    cpu, gpu = tiny_llama(11), tiny_llama(11).cuda()
    quantize_model(cpu)
    quantize_model(gpu)
    ids = torch.randint(3, 51, (1, 7))
    with torch.no_grad():
        want = cpu(ids).logits
        got = gpu(ids.cuda()).logits.cpu()
    assert gpu.model.layers[0].self_attn.q_proj._group is not None
    assert torch.allclose(got, want, rtol=1e-3, atol=1e-3)
