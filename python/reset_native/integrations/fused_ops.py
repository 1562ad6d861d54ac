"""One call for every decoder-op fusion reset_native has for Llama/Qwen-style transformers models on CUDA.

At batch 1 a decode step is launch-bound outside the GEMVs: these fusions cut a Qwen3 layer's small kernels
from ~30 to ~6 (RMSNorm: fused_norm; q/k head norm + RoPE + static KV cache write: fused_attention; SiLU * up:
fused_mlp; residual adds inside o_proj / down_proj: fused_residual). Each keeps
the model's arithmetic operation by operation (only fp32 sum orders differ) and falls back to the module's own
forward wherever its kernel does not apply (CPU, other dtypes, unusual strides), so applying it is always safe.
Independent of quantization: apply it to a BF16 model too (bench/bench_e2e.py does, for a fair baseline).
"""
from __future__ import annotations

from .fused_attention import fuse_attention, unfuse_attention
from .fused_mlp import fuse_mlp, unfuse_mlp
from .fused_norm import fuse_rms_norms, unfuse_rms_norms
from .fused_residual import fuse_residuals, unfuse_residuals


def fuse_decoder_ops(model) -> dict:
    """Applies every fusion to ``model`` in place; returns how many modules each one routed."""
    return {"rms_norm": fuse_rms_norms(model), "attention": fuse_attention(model), "mlp": fuse_mlp(model),
            "residual": fuse_residuals(model)}


def unfuse_decoder_ops(model) -> dict:
    """Restores every fused module's own forward; returns how many each fusion restored."""
    return {"rms_norm": unfuse_rms_norms(model), "attention": unfuse_attention(model), "mlp": unfuse_mlp(model),
            "residual": unfuse_residuals(model)}
