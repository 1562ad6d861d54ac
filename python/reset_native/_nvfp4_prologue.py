"""NVFP4 GEMV with a fused prologue on CUDA: the decoder op that produces the GEMV's input, computed inside it.

``torch.ops.reset_native.nvfp4_gemv_prologue`` runs one kernel for what is otherwise two launches:
``gemv(rms_norm(x, norm_weight, eps))`` (``prologue="rms_norm"``, x [M, K]) or ``gemv(silu(gate) * up)``
(``prologue="silu_mul"``, x = [gate | up] of shape [M, 2K], the fused gate/up projection's output). The result is
bit-identical to running ``torch.ops.reset_native.rms_norm`` / ``silu_mul`` and then ``nvfp4_gemv`` (the kernel
repeats their operations, roundings and summation order; docs/nvfp4_cuda.md). Float16/bfloat16 x, W4A16, 1..16
tokens, K % 1024 == 0, x staged whole in shared memory: :func:`supported` says whether a call qualifies, and the
callers (integrations.fused_projections, integrations.fused_mlp) run the two ops otherwise. Graph-capturable, no
host synchronisation, no allocation beyond the output.
"""
# No "from __future__ import annotations": torch.library infers the op schema from real annotations.
import functools

from . import _core
from ._nvfp4_cuda import AVAILABLE, MAX_TOKENS, _aligned, _check_cuda, _check_scale, _check_weights, _stream

_native = _core.nvfp4
#: Prologue name -> the launcher's code.
PROLOGUES = {"rms_norm": 1, "silu_mul": 2}


def _torch():
    import torch

    return torch


def _dtype_code(dtype) -> int:
    torch = _torch()
    codes = {torch.float16: 1, torch.bfloat16: 2}
    if dtype not in codes:
        raise TypeError(f"x must be float16 or bfloat16 for a fused prologue, got {dtype}")
    return codes[dtype]


def _input_width(prologue: str, k: int) -> int:
    if prologue not in PROLOGUES:
        raise ValueError(f"prologue must be one of {tuple(PROLOGUES)}, got {prologue!r}")
    return 2 * k if prologue == "silu_mul" else k


def supported(packed, block_scales, x, prologue: str, norm_weight=None) -> bool:
    """Whether the fused kernel takes this call (shapes, dtypes, alignment and shared memory; no launch)."""
    torch = _torch()
    if not AVAILABLE or not isinstance(x, torch.Tensor) or not x.is_cuda or x.dim() != 2:
        return False
    if x.dtype not in (torch.float16, torch.bfloat16) or not x.is_contiguous():
        return False
    n, k = packed.shape[0], 2 * packed.shape[1]
    if x.shape[1] != _input_width(prologue, k) or not 1 <= x.shape[0] <= MAX_TOKENS:
        return False
    if prologue == "rms_norm" and (norm_weight is None or norm_weight.dtype != x.dtype
                                   or not norm_weight.is_contiguous() or norm_weight.device != x.device):
        return False
    with torch.cuda.device(x.device):
        return bool(_native.cuda_gemv_prologue_supported(
            packed.data_ptr(), block_scales.data_ptr(), n, k, x.data_ptr(), _dtype_code(x.dtype), x.shape[0],
            PROLOGUES[prologue], 0 if norm_weight is None else norm_weight.data_ptr()))


def _check(packed, block_scales, global_scale, x, prologue, norm_weight, eps, bias, residual):
    n, k = _check_weights(packed, block_scales)
    _check_cuda(x, "x", packed.device)
    width = _input_width(prologue, k)
    _dtype_code(x.dtype)
    if x.dim() != 2 or x.shape[1] != width or not 1 <= x.shape[0] <= MAX_TOKENS:
        raise ValueError(f"x must be [M, {width}] (K = {k}{', gate then up' if prologue == 'silu_mul' else ''}) with "
                         f"1 <= M <= {MAX_TOKENS}, got {tuple(x.shape)}")
    _check_scale(global_scale, "global_scale")
    m = x.shape[0]
    if prologue == "rms_norm":
        if norm_weight is None:
            raise ValueError("norm_weight is required for prologue='rms_norm'")
        _check_cuda(norm_weight, "norm_weight", packed.device)
        if norm_weight.dtype != x.dtype or tuple(norm_weight.shape) != (k,):
            raise ValueError(f"norm_weight must be [{k}] of dtype {x.dtype}, got {tuple(norm_weight.shape)} "
                             f"{norm_weight.dtype}")
        if not (isinstance(eps, float) and eps >= 0.0):
            raise ValueError(f"eps must be a float >= 0, got {eps!r}")
    elif norm_weight is not None:
        raise ValueError("norm_weight is only used with prologue='rms_norm'")
    for name, t, shape in (("bias", bias, (n,)), ("residual", residual, (m, n))):
        if t is None:
            continue
        _check_cuda(t, name, packed.device)
        if t.dtype != x.dtype or tuple(t.shape) != shape:
            raise ValueError(f"{name} must be {list(shape)} of dtype {x.dtype}, got {tuple(t.shape)} {t.dtype}")
    return n, m


@functools.lru_cache(maxsize=None)
def _op():
    torch = _torch()
    from typing import Optional

    @torch.library.custom_op("reset_native::nvfp4_gemv_prologue", mutates_args=())
    def nvfp4_gemv_prologue(packed: torch.Tensor, block_scales: torch.Tensor, global_scale: float, x: torch.Tensor,
                            prologue: str, norm_weight: Optional[torch.Tensor], eps: float,
                            bias: Optional[torch.Tensor], residual: Optional[torch.Tensor]) -> torch.Tensor:
        n, m = _check(packed, block_scales, global_scale, x, prologue, norm_weight, eps, bias, residual)
        packed, block_scales = _aligned(packed, 16), _aligned(block_scales, 16)
        if not supported(packed, block_scales, x, prologue, norm_weight):
            raise NotImplementedError("nvfp4_gemv_prologue: no fused kernel for this call (needs K % 1024 == 0, "
                                      "16-byte aligned x and norm weight, x fitting shared memory); run the "
                                      "prologue op and nvfp4_gemv instead")
        out = torch.empty((m, n), dtype=x.dtype, device=x.device)
        with torch.cuda.device(x.device):
            _native.cuda_gemv(packed.data_ptr(), block_scales.data_ptr(), global_scale, n, packed.shape[1] * 2,
                              x.data_ptr(), _dtype_code(x.dtype), m, False, 1.0, 0,
                              0 if bias is None else bias.data_ptr(), out.data_ptr(), _stream(x.device),
                              0 if residual is None else residual.data_ptr(), PROLOGUES[prologue],
                              0 if norm_weight is None else norm_weight.data_ptr(), float(eps))
        return out

    @nvfp4_gemv_prologue.register_fake
    def _(packed, block_scales, global_scale, x, prologue, norm_weight, eps, bias, residual):
        return x.new_empty((x.shape[0], packed.shape[0]))

    return torch.ops.reset_native.nvfp4_gemv_prologue


def gemv_rms_norm(packed, block_scales, global_scale: float, x, norm_weight, eps: float, bias=None, residual=None):
    """``gemv(rms_norm(x, norm_weight, eps))`` (+ bias) (+ residual) in one kernel; x [M, K]."""
    return _op()(packed, block_scales, float(global_scale), x, "rms_norm", norm_weight, float(eps), bias, residual)


def gemv_silu_mul(packed, block_scales, global_scale: float, gate_up, bias=None, residual=None):
    """``gemv(silu(gate_up[:, :K]) * gate_up[:, K:])`` (+ bias) (+ residual) in one kernel; gate_up [M, 2K]."""
    return _op()(packed, block_scales, float(global_scale), gate_up, "silu_mul", None, 0.0, bias, residual)
