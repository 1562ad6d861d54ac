"""Residual adds of Llama/Qwen-style decoder layers fused into the projections that feed them.

A decoder layer ends its attention and its MLP with ``residual + o_proj(...)`` and ``residual + down_proj(...)``:
two elementwise kernels per layer. :func:`fuse_residuals` routes those adds into the projection: NVFP4 linears
add the residual in the GEMV epilogue, BF16/FP16 nn.Linear without bias use one ``torch.addmm`` (cuBLAS adds C
in its epilogue). Either way the sum is rounded once (transformers rounds the projection, then the sum), so
outputs agree to within one rounding of the dtype. It needs the attention and MLP modules routed by
fused_attention / fused_mlp (they accept the residual); a layer whose modules are not routed, CPU tensors and
M > 16 tokens use the unfused computation.
"""
from __future__ import annotations

import torch

from . import fused_gemv
from ._forward_patch import restore_forward, route_forward

_SUPPORTED = ("LlamaDecoderLayer", "Qwen2DecoderLayer", "Qwen3DecoderLayer")
_MAX_TOKENS = 16  # the NVFP4 GEMV's one-launch limit; beyond it (prefill) the add stays separate


def linear_add(linear, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
    """``residual + linear(x)`` with the add inside the projection's kernel where one exists."""
    forward_add = getattr(linear, "forward_add", None)
    if forward_add is not None:  # NVFP4Linear
        return forward_add(x, residual)
    w = getattr(linear, "weight", None)
    if (type(linear) is torch.nn.Linear and linear.bias is None and x.is_cuda and w is not None
            and w.dtype == x.dtype and residual.dtype == x.dtype and residual.device == x.device
            and residual.shape[:-1] == x.shape[:-1] and residual.shape[-1] == w.shape[0]
            and x.numel() // x.shape[-1] <= _MAX_TOKENS):
        out = torch.addmm(residual.reshape(-1, w.shape[0]), x.reshape(-1, w.shape[1]), w.t())
        return out.view(residual.shape)
    return residual + linear(x)


def _routed(layer) -> bool:
    from . import fused_attention, fused_mlp

    return fused_attention._KEY in layer.self_attn.__dict__ and fused_mlp._KEY in layer.mlp.__dict__


def _fused_forward(self, hidden_states, attention_mask=None, position_ids=None, cache=None, use_cache=False,
                   position_embeddings=None, **kwargs):
    """transformers 5's Llama/Qwen2/Qwen3 decoder layer with the two residual adds inside the projections."""
    if cache is None and "past_key_values" in kwargs:
        cache = kwargs.pop("past_key_values")
    if not _routed(self):
        return self._reset_native_residual_original(hidden_states, attention_mask=attention_mask,
                                                    position_ids=position_ids, cache=cache, use_cache=use_cache,
                                                    position_embeddings=position_embeddings, **kwargs)
    # Each RMSNorm is left to the NVFP4 GEMV it feeds where one can take it (fused_gemv): then the attention /
    # MLP get the norm's input and (weight, eps) instead of the norm's output.
    residual = hidden_states
    norm = fused_gemv.deferred_norm(self.input_layernorm, self.self_attn.q_proj)
    if norm is None:
        hidden_states = self.input_layernorm(hidden_states)
    hidden_states, _ = self.self_attn(hidden_states=hidden_states, attention_mask=attention_mask,
                                      position_ids=position_ids, cache=cache, use_cache=use_cache,
                                      position_embeddings=position_embeddings, reset_native_residual=residual,
                                      reset_native_norm=norm, **kwargs)
    residual = hidden_states
    norm = fused_gemv.deferred_norm(self.post_attention_layernorm, self.mlp.gate_proj)
    if norm is None:
        hidden_states = self.post_attention_layernorm(hidden_states)
    return self.mlp(hidden_states, reset_native_residual=residual, reset_native_norm=norm)


def fuse_residuals(model) -> int:
    """Routes every Llama/Qwen2/Qwen3 decoder layer's residual adds into its projections; returns how many layers.

    Takes effect in layers whose attention and MLP are routed by fuse_attention / fuse_mlp (fuse_decoder_ops
    does all three). Idempotent. Undo with :func:`unfuse_residuals`.
    """
    return route_forward(model, _eligible, "_reset_native_residual_original", _fused_forward)


def _eligible(module) -> bool:
    return type(module).__name__ in _SUPPORTED and all(
        hasattr(module, a) for a in ("self_attn", "mlp", "input_layernorm", "post_attention_layernorm"))


def unfuse_residuals(model) -> int:
    """Restores the decoder layers' own forward; returns how many were restored."""
    return restore_forward(model, "_reset_native_residual_original")
