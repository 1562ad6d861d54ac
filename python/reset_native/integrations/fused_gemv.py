"""Decoder ops fused into the NVFP4 GEMVs of a decoder layer (reset_native._nvfp4_fused), for the layers of
integrations.fused_residual: the input RMSNorm inside the q/k/v GEMV, the post-attention RMSNorm inside the
gate/up GEMV, and SiLU * up on that GEMV's results, so the down projection's input comes out of it directly.
Three kernels less per layer at 1..2 tokens (decode at batch 1-2), bit-identical to the separate ops. The decoder
layer hands the attention / MLP its un-normalised input plus the norm module (:func:`deferred_norm`); they either
run the fused GEMV or apply the norm module first (:func:`apply_norm`), so the result never depends on which path
ran. ``RESET_NATIVE_FUSED_GEMV=0`` turns all of it off (read per call, so a benchmark can compare both in one
process; a captured CUDA graph keeps the choice made at capture).
"""
from __future__ import annotations

import os
from typing import Optional

import torch

from .. import _nvfp4_fused


def enabled() -> bool:
    return _nvfp4_fused.AVAILABLE and os.environ.get("RESET_NATIVE_FUSED_GEMV", "1") != "0"


def norm_with_silu() -> bool:
    """Whether the post-attention RMSNorm also goes inside the gate/up GEMV that applies SiLU * up
    (``RESET_NATIVE_FUSED_NORM_SILU``, read per call: "0" = no, the norm op runs first and the GEMV applies SiLU * up
    only; unset or anything else = yes). Yes since session 12: the RMSNorm kernels had been slow because ptxas made
    each weight step wait for every load in flight (fixed: kSmallHeadWait, cuda/nvfp4/gemv_bd_kernel.cuh). On an
    H200 (bench/RESULTS.md, session 12 gemv15, round 2), norm + SiLU in one kernel against the norm op plus the
    SiLU-only kernel: Qwen3-32B gate/up 45.54 vs 48.89 us at M = 1, 50.45 vs 52.10 at M = 2; Qwen3-8B 20.10 vs
    23.10 and 22.56 vs 24.76. The same bits either way."""
    return os.environ.get("RESET_NATIVE_FUSED_NORM_SILU", "1") != "0"


def deferred_norm(norm_module, leader):
    """``norm_module`` itself when it (an RMSNorm of the exact Llama formula) may be left to the NVFP4 GEMV of
    ``leader`` (the first projection its output feeds: a fused q/k/v or gate/up group's leader, W4A16), else
    None (the caller applies the norm module itself)."""
    from .fused_norm import _SUPPORTED
    from .nvfp4_linear import NVFP4Linear

    if not enabled() or type(norm_module).__name__ not in _SUPPORTED or not hasattr(norm_module, "variance_epsilon"):
        return None
    if not isinstance(leader, NVFP4Linear) or leader._group is None or leader.activation != "bf16":
        return None
    w = getattr(norm_module, "weight", None)
    if not isinstance(w, torch.Tensor) or not w.is_cuda or w.device != leader.weight.device:
        return None
    return norm_module


def apply_norm(x: torch.Tensor, norm_module) -> torch.Tensor:
    """The deferred RMSNorm where no fused GEMV took it: the module's own (routed) forward, as the layer would."""
    return norm_module(x)


def group_output(group, x: torch.Tensor, norm_module=None, silu_mul: bool = False) -> Optional[torch.Tensor]:
    """A fused projection group's output from one fused kernel: all its rows for norm_module(x) (or x), or
    silu(gate) * up for a [gate, up] group (silu_mul); None where no fused kernel takes the call."""
    if norm_module is None:
        return group.fused_forward(x, silu_mul=silu_mul)
    return group.fused_forward(x, norm_module.weight, float(norm_module.variance_epsilon), silu_mul)


def fused_gemv(t, activation: str, bias, x: torch.Tensor, norm_weight: Optional[torch.Tensor] = None,
               eps: float = 0.0, silu_mul: bool = False) -> Optional[torch.Tensor]:
    """The NVFP4 tensor t's GEMV with the RMSNorm prologue and/or the SiLU * up epilogue in one kernel, shaped
    [..., N] (or [..., N/2]); None when the fusion is off or no fused kernel takes the call (16-bit x, W4A16,
    1..2 tokens, shapes; see reset_native._nvfp4_fused)."""
    if not enabled() or activation != "bf16" or not x.is_cuda or x.shape[-1] != t.shape[1]:
        return None
    lead = x.shape[:-1]
    x2 = x.reshape(-1, x.shape[-1])
    if bias is not None and bias.dtype != x.dtype:
        bias = bias.to(x.dtype)
    if not x2.is_contiguous() or not _nvfp4_fused.supported(t.packed, t.block_scales, x2, norm_weight, silu_mul):
        return None
    y = _nvfp4_fused.gemv_fused(t.packed, t.block_scales, t.global_scale, x2, norm_weight, eps, silu_mul, bias)
    return y.reshape(*lead, y.shape[-1])
