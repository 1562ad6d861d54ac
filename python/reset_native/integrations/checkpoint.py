"""NVFP4 checkpoints in the NVIDIA ModelOpt layout (safetensors), readable by ModelOpt-aware loaders.

Layout written and read (the ModelOpt "unified HF" export of quant_algo NVFP4):
- ``hf_quant_config.json``: {"producer": ..., "quantization": {"quant_algo": "NVFP4", "group_size": 16,
  "kv_cache_quant_algo": null, "exclude_modules": [...]}}; the same settings as ``quantization_config``
  (``quant_method: "modelopt"``) in config.json.
- per quantized linear ``<name>``: ``<name>.weight`` uint8 [N, K/2] (element 2i in bits 3:0: the ModelOpt,
  vLLM and torchao nibble order; this loader reads that order only), ``<name>.weight_scale`` float8_e4m3fn
  [N, K/16] (linear, not swizzled), ``<name>.weight_scale_2`` fp32 scalar (decode multiplier, amax/2688),
  optional ``<name>.input_scale`` fp32 scalar (static activation scale, decode multiplier), ``<name>.bias``.
- everything else (embeddings, norms, skipped linears such as lm_head) as ordinary tensors.
Checkpoints without ``input_scale`` (weight-only NVFP4) are valid here; W4A4 serving stacks need the scales:
calibrate first (nvfp4_linear.calibrate_input_scales) to write them.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Dict, Optional, Union

import torch
from torch import nn

from .nvfp4_linear import NVFP4Linear, _check_activation

QUANT_CONFIG_FILE = "hf_quant_config.json"
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX_FILE = "model.safetensors.index.json"
_SCALE_KEYS = ("weight_scale", "weight_scale_2", "input_scale")
# Extra per-layer tensors some ModelOpt exports carry that this runtime does not use (FP8 KV-cache scales).
_IGNORED_SUFFIXES = (".k_scale", ".v_scale", ".output_scale")


def _quantized_modules(model: nn.Module) -> Dict[str, NVFP4Linear]:
    return {name: m for name, m in model.named_modules() if isinstance(m, NVFP4Linear)}


def save_nvfp4(model: nn.Module, directory: Union[str, os.PathLike], *, tokenizer=None) -> Path:
    """Write ``model`` (after quantize_model) as a ModelOpt-layout NVFP4 checkpoint into ``directory``."""
    from safetensors.torch import save_file

    from .._version import __version__

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    quantized = _quantized_modules(model)
    if not quantized:
        raise ValueError("model has no NVFP4Linear layers: call quantize_model(model) before save_nvfp4")
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "to_dict"):
        raise TypeError("model must be a transformers PreTrainedModel (it needs .config to be reloadable)")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)

    excluded = sorted(name for name, m in model.named_modules() if isinstance(m, nn.Linear))
    activations = {m.activation for m in quantized.values()}
    quant = {"quant_algo": "NVFP4", "kv_cache_quant_algo": None, "group_size": 16, "exclude_modules": excluded}
    producer = {"name": "reset_native", "version": __version__}
    (out / QUANT_CONFIG_FILE).write_text(json.dumps(
        {"producer": producer, "quantization": quant,
         "reset_native": {"activation": activations.pop() if len(activations) == 1 else "mixed"}}, indent=2))

    # Tensors: one entry per storage (tied weights are written once, re-tied on load).
    tensors: Dict[str, torch.Tensor] = {}
    seen = set()
    for name, tensor in model.state_dict().items():
        key = (tensor.device, tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
        if key in seen:
            continue
        seen.add(key)
        module_name, _, leaf = name.rpartition(".")
        if module_name in quantized and leaf == "weight_scale":
            tensor = tensor.view(torch.float8_e4m3fn)
        tensor = tensor.detach().to("cpu").contiguous()
        if tensor.untyped_storage().nbytes() != tensor.numel() * tensor.element_size():
            tensor = tensor.clone()  # a row view of a fused group's tensor: safetensors wants its own storage
        tensors[name] = tensor
    save_file(tensors, str(out / WEIGHTS_FILE), metadata={"format": "pt"})

    config_dict = config.to_dict()
    config_dict.pop("quantization_config", None)
    config_dict["quantization_config"] = {"quant_method": "modelopt", **quant, "producer": producer}
    (out / "config.json").write_text(json.dumps(config_dict, indent=2, default=str))
    if tokenizer is not None:
        tokenizer.save_pretrained(str(out))
    return out


def read_quant_config(directory: Union[str, os.PathLike]) -> Optional[dict]:
    """The NVFP4 settings of a checkpoint directory, or None when it is not a ModelOpt-style checkpoint."""
    d = Path(directory)
    if (d / QUANT_CONFIG_FILE).is_file():
        data = json.loads((d / QUANT_CONFIG_FILE).read_text())
        return dict(data.get("quantization", data))
    if (d / "config.json").is_file():
        qc = json.loads((d / "config.json").read_text()).get("quantization_config")
        if isinstance(qc, dict) and str(qc.get("quant_method", "")).startswith("modelopt"):
            return dict(qc)
    return None


def is_nvfp4_checkpoint(directory: Union[str, os.PathLike]) -> bool:
    qc = read_quant_config(directory)
    return qc is not None and str(qc.get("quant_algo", "")).upper() == "NVFP4"


def _read_tensors(directory: Path) -> Dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    if (directory / WEIGHTS_INDEX_FILE).is_file():
        index = json.loads((directory / WEIGHTS_INDEX_FILE).read_text())
        tensors: Dict[str, torch.Tensor] = {}
        for shard in sorted(set(index["weight_map"].values())):
            tensors.update(load_file(str(directory / shard)))
        return tensors
    if (directory / WEIGHTS_FILE).is_file():
        return load_file(str(directory / WEIGHTS_FILE))
    files = sorted(directory.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no .safetensors weights in {directory}")
    tensors = {}
    for f in files:
        tensors.update(load_file(str(f)))
    return tensors


def _as_scalar(t: torch.Tensor, name: str) -> torch.Tensor:
    if t.numel() != 1:
        raise ValueError(f"{name} must be a scalar (fp32 per-tensor scale), got shape {tuple(t.shape)}")
    return t.reshape(()).to(torch.float32)


def load_nvfp4(directory: Union[str, os.PathLike], *, device: Union[str, torch.device] = "cpu",
               dtype: Optional[torch.dtype] = None, activation: str = "bf16",
               fuse_projections: bool = True) -> nn.Module:
    """Load a ModelOpt-layout NVFP4 checkpoint (ours or ModelOpt's) as a transformers model with NVFP4Linear.

    ``activation``: "bf16" (W4A16, default: how Hopper serves NVFP4 checkpoints) or "nvfp4" (W4A4, using each
    layer's ``input_scale`` when the checkpoint has one). ``dtype``: cast the unquantized float tensors
    (embeddings, norms, lm_head, biases); None keeps the file's dtypes. Fused/FP8 KV-cache scales are ignored.
    ``fuse_projections``: run q/k/v and gate/up as one GEMV each where the checkpoint gives them one global
    scale (integrations/fused_projections.py).
    """
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM

    _check_activation(activation)
    d = Path(directory)
    if not d.is_dir():
        raise FileNotFoundError(f"checkpoint directory not found: {d}")
    qc = read_quant_config(d)
    if qc is None:
        raise ValueError(f"{d} is not a ModelOpt checkpoint: no {QUANT_CONFIG_FILE} and no modelopt "
                         f"quantization_config in config.json")
    algo = str(qc.get("quant_algo", "")).upper()
    if algo != "NVFP4":
        raise ValueError(f"only quant_algo NVFP4 is supported, {d} has quant_algo {qc.get('quant_algo')!r}")
    if int(qc.get("group_size", 16)) != 16:
        raise ValueError(f"NVFP4 group_size must be 16, got {qc.get('group_size')!r}")
    if qc.get("kv_cache_quant_algo"):
        warnings.warn(f"kv_cache_quant_algo {qc['kv_cache_quant_algo']!r} is ignored: the KV cache stays in the "
                      f"model dtype", stacklevel=2)

    config = AutoConfig.from_pretrained(str(d))
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # transformers has no modelopt quantizer: we do the replacement here
    tensors = _read_tensors(d)
    quantized = sorted(k[: -len(".weight_scale")] for k in tensors if k.endswith(".weight_scale"))
    with init_empty_weights(include_buffers=False):
        model = AutoModelForCausalLM.from_config(config)

    state: Dict[str, torch.Tensor] = {}
    for name in quantized:
        try:
            linear = model.get_submodule(name)
        except AttributeError:
            raise ValueError(f"checkpoint quantizes {name!r}, which this model architecture does not have") from None
        if not isinstance(linear, nn.Linear):
            raise ValueError(f"checkpoint quantizes {name!r}, which is a {type(linear).__name__}, not nn.Linear")
        n, k = linear.out_features, linear.in_features
        packed = tensors.pop(f"{name}.weight")
        scales = tensors.pop(f"{name}.weight_scale")
        if packed.dtype not in (torch.uint8, torch.int8) or tuple(packed.shape) != (n, k // 2):
            raise ValueError(f"{name}.weight must be uint8 [{n}, {k // 2}] (packed NVFP4), got "
                             f"{packed.dtype} {tuple(packed.shape)}")
        if scales.dtype not in (torch.float8_e4m3fn, torch.uint8) or tuple(scales.shape) != (n, k // 16):
            raise ValueError(f"{name}.weight_scale must be float8_e4m3fn [{n}, {k // 16}] in the linear layout "
                             f"(swizzled scales: unswizzle first), got {scales.dtype} {tuple(scales.shape)}")
        state[f"{name}.weight"] = packed.view(torch.uint8)
        state[f"{name}.weight_scale"] = scales.view(torch.uint8)
        state[f"{name}.weight_scale_2"] = _as_scalar(tensors.pop(f"{name}.weight_scale_2"), f"{name}.weight_scale_2")
        if f"{name}.input_scale" in tensors:
            state[f"{name}.input_scale"] = _as_scalar(tensors.pop(f"{name}.input_scale"), f"{name}.input_scale")
        bias = tensors.pop(f"{name}.bias", None)
        if (bias is None) != (linear.bias is None):
            raise ValueError(f"{name}: bias presence differs between checkpoint and model config")
        if bias is not None:
            state[f"{name}.bias"] = bias.to(dtype) if dtype is not None else bias
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        bias_dtype = bias.dtype if bias is not None else (dtype or torch.bfloat16)
        setattr(parent, child, NVFP4Linear(k, n, bias=bias is not None, activation=activation,
                                           dtype=bias_dtype, device="meta"))

    ignored = [k for k in tensors if k.endswith(_IGNORED_SUFFIXES)]
    for k in ignored:
        tensors.pop(k)
    for key, t in tensors.items():
        state[key] = t.to(dtype) if (dtype is not None and t.is_floating_point()) else t

    result = model.load_state_dict(state, strict=False, assign=True)
    if result.unexpected_keys:
        raise ValueError(f"checkpoint tensors unknown to the model: {result.unexpected_keys[:8]}")
    model.tie_weights()
    still_empty = [n for n, p in list(model.named_parameters()) + list(model.named_buffers()) if p.is_meta]
    if still_empty:
        raise ValueError(f"checkpoint is missing tensors: {still_empty[:8]}")
    for m in _quantized_modules(model).values():
        m._refresh_scalars()
    model = model.to(device).eval()
    if fuse_projections:
        from .fused_projections import fuse_projections as fuse

        fuse(model)
    return model
