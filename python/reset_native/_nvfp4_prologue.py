"""NVFP4 GEMV with a fused prologue on CUDA: the RMSNorm that produces the GEMV's input, computed inside it.

``torch.ops.reset_native.nvfp4_gemv_rms_norm`` runs one kernel for what is otherwise two launches:
``gemv(rms_norm(x, norm_weight, eps))`` (x [M, K]). The result is bit-identical to
running ``torch.ops.reset_native.rms_norm`` and then ``nvfp4_gemv`` (the kernel repeats its operations, roundings
and summation order; docs/nvfp4_cuda.md). Float16/bfloat16 x, W4A16, 1..2 tokens (where it measured faster than
the two launches), K % 1024 == 0, x fitting shared memory: :func:`supported` says whether a call qualifies, and
the callers (integrations.gemv_prologue) run the two ops otherwise. Graph-capturable, no host synchronisation, no
allocation beyond the output.
"""
# No "from __future__ import annotations": torch.library infers the op schema from real annotations.
import functools

from . import _core
from ._nvfp4_cuda import AVAILABLE, MAX_TOKENS, _aligned, _check_cuda, _check_scale, _check_weights, _stream

_native = _core.nvfp4
_RMS_NORM = 1  # the launcher's prologue code


def _torch():
    import torch

    return torch


def _dtype_code(dtype) -> int:
    torch = _torch()
    codes = {torch.float16: 1, torch.bfloat16: 2}
    if dtype not in codes:
        raise TypeError(f"x must be float16 or bfloat16 for the fused RMSNorm, got {dtype}")
    return codes[dtype]


def supported(packed, block_scales, x, norm_weight) -> bool:
    """Whether the fused kernel takes this call (shapes, dtypes, alignment and shared memory; no launch)."""
    torch = _torch()
    if not AVAILABLE or not isinstance(x, torch.Tensor) or not x.is_cuda or x.dim() != 2:
        return False
    if x.dtype not in (torch.float16, torch.bfloat16) or not x.is_contiguous():
        return False
    n, k = packed.shape[0], 2 * packed.shape[1]
    if x.shape[1] != k or not 1 <= x.shape[0] <= MAX_TOKENS:
        return False
    if (not isinstance(norm_weight, torch.Tensor) or norm_weight.dtype != x.dtype or not norm_weight.is_contiguous()
            or norm_weight.device != x.device):
        return False
    with torch.cuda.device(x.device):
        return bool(_native.cuda_gemv_prologue_supported(
            packed.data_ptr(), block_scales.data_ptr(), n, k, x.data_ptr(), _dtype_code(x.dtype), x.shape[0],
            _RMS_NORM, norm_weight.data_ptr()))


def _check(packed, block_scales, global_scale, x, norm_weight, eps, bias):
    n, k = _check_weights(packed, block_scales)
    _check_cuda(x, "x", packed.device)
    _dtype_code(x.dtype)
    if x.dim() != 2 or x.shape[1] != k or not 1 <= x.shape[0] <= MAX_TOKENS:
        raise ValueError(f"x must be [M, {k}] (K of the weights) with 1 <= M <= {MAX_TOKENS}, got {tuple(x.shape)}")
    _check_scale(global_scale, "global_scale")
    _check_cuda(norm_weight, "norm_weight", packed.device)
    if norm_weight.dtype != x.dtype or tuple(norm_weight.shape) != (k,):
        raise ValueError(f"norm_weight must be [{k}] of dtype {x.dtype}, got {tuple(norm_weight.shape)} "
                         f"{norm_weight.dtype}")
    if not (isinstance(eps, float) and eps >= 0.0):
        raise ValueError(f"eps must be a float >= 0, got {eps!r}")
    if bias is not None:
        _check_cuda(bias, "bias", packed.device)
        if bias.dtype != x.dtype or tuple(bias.shape) != (n,):
            raise ValueError(f"bias must be [{n}] of dtype {x.dtype}, got {tuple(bias.shape)} {bias.dtype}")
    return n, x.shape[0]


@functools.lru_cache(maxsize=None)
def _op():
    torch = _torch()
    from typing import Optional

    @torch.library.custom_op("reset_native::nvfp4_gemv_rms_norm", mutates_args=())
    def nvfp4_gemv_rms_norm(packed: torch.Tensor, block_scales: torch.Tensor, global_scale: float, x: torch.Tensor,
                            norm_weight: torch.Tensor, eps: float, bias: Optional[torch.Tensor]) -> torch.Tensor:
        n, m = _check(packed, block_scales, global_scale, x, norm_weight, eps, bias)
        packed, block_scales = _aligned(packed, 16), _aligned(block_scales, 16)
        if not supported(packed, block_scales, x, norm_weight):
            raise NotImplementedError("nvfp4_gemv_rms_norm: no fused kernel for this call (needs M <= 2, "
                                      "K % 1024 == 0, 16-byte aligned x and norm weight, x fitting shared memory); "
                                      "run the rms_norm op and nvfp4_gemv instead")
        out = torch.empty((m, n), dtype=x.dtype, device=x.device)
        with torch.cuda.device(x.device):
            _native.cuda_gemv(packed.data_ptr(), block_scales.data_ptr(), global_scale, n, packed.shape[1] * 2,
                              x.data_ptr(), _dtype_code(x.dtype), m, False, 1.0, 0,
                              0 if bias is None else bias.data_ptr(), out.data_ptr(), _stream(x.device), 0,
                              _RMS_NORM, norm_weight.data_ptr(), float(eps))
        return out

    @nvfp4_gemv_rms_norm.register_fake
    def _(packed, block_scales, global_scale, x, norm_weight, eps, bias):
        return x.new_empty((x.shape[0], packed.shape[0]))

    return torch.ops.reset_native.nvfp4_gemv_rms_norm


def gemv_rms_norm(packed, block_scales, global_scale: float, x, norm_weight, eps: float, bias=None):
    """``gemv(rms_norm(x, norm_weight, eps))`` (+ bias) in one kernel; x [M, K], M <= 2 (see supported)."""
    _check_cuda(norm_weight, "norm_weight")  # before the dispatcher, which rejects non-tensors vaguely
    return _op()(packed, block_scales, float(global_scale), x, norm_weight, float(eps), bias)
