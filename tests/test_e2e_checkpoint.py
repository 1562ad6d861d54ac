"""ModelOpt-layout NVFP4 checkpoints: bit-exact round trip, loading a checkpoint written by other code, errors."""
import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
safetensors_torch = pytest.importorskip("safetensors.torch")
pytest.importorskip("accelerate")  # load_nvfp4 builds the model skeleton with empty weights

from torch import nn  # noqa: E402

from reset_native import nvfp4  # noqa: E402
from reset_native.integrations.checkpoint import is_nvfp4_checkpoint, load_nvfp4, save_nvfp4  # noqa: E402
from reset_native.integrations.nvfp4_linear import NVFP4Linear, calibrate_input_scales, quantize_model  # noqa: E402

from _e2e_models import tiny_llama  # noqa: E402


def test_round_trip_is_bit_exact(tmp_path):
    model = tiny_llama()
    scales = calibrate_input_scales(model, [{"input_ids": torch.randint(3, 51, (1, 6))}])
    quantize_model(model, input_scales=scales)
    save_nvfp4(model, tmp_path)
    assert is_nvfp4_checkpoint(tmp_path)
    # the files follow the ModelOpt layout
    hq = json.loads((tmp_path / "hf_quant_config.json").read_text())
    assert hq["quantization"]["quant_algo"] == "NVFP4" and hq["quantization"]["group_size"] == 16
    assert hq["quantization"]["exclude_modules"] == ["lm_head"]
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["quantization_config"]["quant_method"] == "modelopt"
    assert cfg["quantization_config"]["quant_algo"] == "NVFP4"
    files = safetensors_torch.load_file(str(tmp_path / "model.safetensors"))
    name = "model.layers.0.self_attn.q_proj"
    assert files[f"{name}.weight"].dtype == torch.uint8 and files[f"{name}.weight"].shape == (64, 32)
    assert files[f"{name}.weight_scale"].dtype == torch.float8_e4m3fn and files[f"{name}.weight_scale"].shape == (64, 4)
    assert files[f"{name}.weight_scale_2"].dtype == torch.float32 and files[f"{name}.weight_scale_2"].numel() == 1
    assert files[f"{name}.input_scale"].dtype == torch.float32
    assert "lm_head.weight" not in files  # tied to the embeddings: written once

    loaded = load_nvfp4(tmp_path)
    a, b = model.state_dict(), loaded.state_dict()
    assert set(a) == set(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k
    assert loaded.lm_head.weight.data_ptr() == loaded.model.embed_tokens.weight.data_ptr()
    assert isinstance(loaded.get_submodule(name), NVFP4Linear)
    ids = torch.randint(3, 51, (2, 8))
    with torch.no_grad():
        assert torch.equal(model(ids).logits, loaded(ids).logits)
    w4a4 = load_nvfp4(tmp_path, activation="nvfp4")
    assert w4a4.get_submodule(name).activation == "nvfp4"
    assert float(w4a4.get_submodule(name).input_scale) == scales[name]


def _write_foreign_checkpoint(tmp_path, model):
    """A checkpoint as ModelOpt's exporter writes it, built by hand: nothing from our save path."""
    tensors = {}
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Linear) and name != "lm_head":
            t = nvfp4.quantize(mod.weight.detach())
            tensors[f"{name}.weight"] = t.packed.clone()
            tensors[f"{name}.weight_scale"] = t.block_scales.clone().view(torch.float8_e4m3fn)
            tensors[f"{name}.weight_scale_2"] = torch.tensor([t.global_scale], dtype=torch.float32)  # shape [1]
            tensors[f"{name}.input_scale"] = torch.tensor(0.01, dtype=torch.float32)
            tensors[f"{name}.k_scale"] = torch.tensor(1.0)  # an FP8 KV-cache scale we ignore
    for name, p in model.named_parameters():
        if name.endswith("norm.weight") or name == "model.embed_tokens.weight":
            tensors[name] = p.detach().to(torch.bfloat16).clone()
    safetensors_torch.save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp_path / "model.safetensors"))
    cfg = model.config.to_dict()
    cfg["quantization_config"] = {"quant_method": "modelopt", "quant_algo": "NVFP4"}
    (tmp_path / "config.json").write_text(json.dumps(cfg, default=str))
    (tmp_path / "hf_quant_config.json").write_text(json.dumps({
        "producer": {"name": "modelopt", "version": "0.x"},
        "quantization": {"quant_algo": "NVFP4", "kv_cache_quant_algo": None, "group_size": 16,
                         "exclude_modules": ["lm_head"]}}))


def test_loads_checkpoint_made_elsewhere(tmp_path):
    model = tiny_llama()
    _write_foreign_checkpoint(tmp_path, model)
    loaded = load_nvfp4(tmp_path, dtype=torch.float32)
    # reference: the float model with every projection replaced by its dequantized NVFP4 weight, and the
    # embeddings/norms rounded through bf16 as stored
    with torch.no_grad():
        for name, mod in model.named_modules():
            if isinstance(mod, nn.Linear) and name != "lm_head":
                mod.weight.copy_(nvfp4.dequantize(nvfp4.quantize(mod.weight.detach()), torch.float32))
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or name == "model.embed_tokens.weight":
                p.copy_(p.to(torch.bfloat16).to(torch.float32))
    q = loaded.get_submodule("model.layers.1.mlp.gate_proj")
    assert isinstance(q, NVFP4Linear) and q.input_scale is not None and q.weight_scale_2.shape == ()
    ids = torch.randint(3, 51, (2, 8))
    with torch.no_grad():
        assert torch.allclose(loaded(ids).logits, model(ids).logits, rtol=1e-4, atol=1e-4)


def test_bad_checkpoints(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_nvfp4(tmp_path / "missing")
    with pytest.raises(ValueError, match="not a ModelOpt checkpoint"):
        load_nvfp4(tmp_path)
    with pytest.raises(ValueError, match="quantize_model"):
        save_nvfp4(tiny_llama(), tmp_path / "x")
    model = tiny_llama()
    _write_foreign_checkpoint(tmp_path, model)
    hq = json.loads((tmp_path / "hf_quant_config.json").read_text())
    hq["quantization"]["quant_algo"] = "FP8"
    (tmp_path / "hf_quant_config.json").write_text(json.dumps(hq))
    with pytest.raises(ValueError, match="only quant_algo NVFP4"):
        load_nvfp4(tmp_path)
    hq["quantization"]["quant_algo"] = "NVFP4"
    (tmp_path / "hf_quant_config.json").write_text(json.dumps(hq))
    files = safetensors_torch.load_file(str(tmp_path / "model.safetensors"))
    files["model.layers.0.mlp.up_proj.weight"] = files["model.layers.0.mlp.up_proj.weight"][:, :16].contiguous()
    safetensors_torch.save_file(files, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match="up_proj.weight must be uint8"):
        load_nvfp4(tmp_path)
