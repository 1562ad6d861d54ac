"""Hugging Face transformers integration: NVFP4 models and ReSET decoding.

- ``ReSETLogitsProcessor``: ReSET inside ``model.generate()`` (transformers LogitsProcessor).
- ``NVFP4Linear`` / ``quantize_model`` / ``calibrate_input_scales``: NVFP4 weights in any causal LM;
  ``fuse_projections`` / ``unfuse_projections``: one GEMV for q/k/v and for gate/up.
- ``fuse_decoder_ops`` / ``unfuse_decoder_ops``: one-kernel RMSNorm, q/k norm + RoPE and SiLU * up on CUDA.
- ``save_nvfp4`` / ``load_nvfp4``: checkpoints in the NVIDIA ModelOpt NVFP4 layout.
- ``generate``: a decode loop with a static KV cache that samples every token with decode_step (CUDA graph
  on GPU).
- CLI: ``reset-native demo`` and ``reset-native study``.

Torch and transformers are imported on first use, so importing this module (as the CLI does) stays cheap.
"""
from __future__ import annotations

import importlib

from ._hf_processor import ReSETLogitsProcessor  # noqa: F401

_LAZY = {
    "NVFP4Linear": "nvfp4_linear",
    "quantize_model": "nvfp4_linear",
    "calibrate_input_scales": "nvfp4_linear",
    "model_nbytes": "nvfp4_linear",
    "fuse_projections": "fused_projections",
    "unfuse_projections": "fused_projections",
    "fuse_decoder_ops": "fused_ops",
    "unfuse_decoder_ops": "fused_ops",
    "save_nvfp4": "checkpoint",
    "load_nvfp4": "checkpoint",
    "is_nvfp4_checkpoint": "checkpoint",
    "generate": "generate",
    "GenerationResult": "generate",
    "load_model": "models",
    "embedded_model_path": "models",
}

__all__ = ["ReSETLogitsProcessor", *_LAZY, "register_cli"]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __package__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo(args)


def _cmd_study(args) -> int:
    from .study import run_study

    return run_study(args)


def register_cli(subparsers) -> None:
    from . import demo, study

    p = subparsers.add_parser("demo", help="quantize a model to NVFP4 and answer a question with ReSET sampling "
                                           "(default: embedded SmolLM2-135M-Instruct, offline)")
    demo.add_arguments(p)
    p.set_defaults(func=_cmd_demo)
    p = subparsers.add_parser("study", help="float32 vs NVFP4 vs NVFP4+ReSET on arithmetic word problems; "
                                            "writes figures and a JSON/markdown summary")
    study.add_arguments(p)
    p.set_defaults(func=_cmd_study)
