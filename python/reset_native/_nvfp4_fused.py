"""NVFP4 GEMV with decoder ops fused into it on CUDA (decode at 1..2 tokens; docs/nvfp4_cuda.md).

``torch.ops.reset_native.nvfp4_gemv_fused`` runs one kernel for what is otherwise two or three launches:
* ``norm_weight`` given: the RMSNorm that produces the GEMV's input, ``gemv(rms_norm(x, norm_weight, eps))``,
  x [M, K] (the q/k/v and gate/up projections of a decoder layer);
* ``silu_mul=True``: the weights are a fused [gate (N/2) | up (N/2)] projection and the result is
  ``silu(gate) * up`` [M, N/2] (the down projection's input), without the gate/up output or a silu_mul kernel.
Both may be combined. The result is bit-identical to the separate ops (``torch.ops.reset_native.rms_norm``,
``nvfp4_gemv``, ``silu_mul``): the kernel repeats their operations, roundings and summation orders. Float16 /
bfloat16 x, W4A16, 1..2 tokens (where it measured faster than the separate launches), K % 1024 == 0, K < 8192
or one token through the weight ring (elsewhere the plain GEMV runs another kernel, whose bits a fused call could
not repeat), x fitting shared
memory, N % 32 == 0 for SiLU: :func:`supported` says whether a call qualifies, and the callers
(integrations.fused_gemv) run the separate ops otherwise. Graph-capturable, no host synchronisation, no
allocation beyond the output.
"""
# No "from __future__ import annotations": torch.library infers the op schema from real annotations.
from typing import Optional

import torch

from . import _core
from . import _torch_launch as _launch
from ._nvfp4_cuda import AVAILABLE, MAX_TOKENS, _aligned, _check_cuda, _check_scale, _check_weights

_native = _core.nvfp4
_RMS_NORM, _SILU_MUL = 1, 1  # the launcher's prologue / epilogue codes


def _dtype_code(dtype) -> int:
    codes = {torch.float16: 1, torch.bfloat16: 2}
    if dtype not in codes:
        raise TypeError(f"x must be float16 or bfloat16 for a fused GEMV, got {dtype}")
    return codes[dtype]


def supported(packed, block_scales, x, norm_weight=None, silu_mul: bool = False) -> bool:
    """Whether the fused kernel takes this call (shapes, dtypes, alignment and shared memory; no launch)."""
    if not AVAILABLE or not isinstance(x, torch.Tensor) or not x.is_cuda or x.dim() != 2:
        return False
    if x.dtype not in (torch.float16, torch.bfloat16) or not x.is_contiguous():
        return False
    n, k = packed.shape[0], 2 * packed.shape[1]
    if x.shape[1] != k or not 1 <= x.shape[0] <= MAX_TOKENS:
        return False
    if norm_weight is not None and (not isinstance(norm_weight, torch.Tensor) or norm_weight.dtype != x.dtype
                                    or not norm_weight.is_contiguous() or norm_weight.device != x.device):
        return False
    with _launch.on_device(x.device.index):
        return bool(_native.cuda_gemv_fusion_supported(
            packed.data_ptr(), block_scales.data_ptr(), n, k, x.data_ptr(), _dtype_code(x.dtype), x.shape[0],
            0 if norm_weight is None else _RMS_NORM, 0 if norm_weight is None else norm_weight.data_ptr(),
            _SILU_MUL if silu_mul else 0))


def _check(packed, block_scales, global_scale, x, norm_weight, eps, silu_mul, bias):
    n, k = _check_weights(packed, block_scales)
    _check_cuda(x, "x", packed.device)
    _dtype_code(x.dtype)
    if x.dim() != 2 or x.shape[1] != k or not 1 <= x.shape[0] <= MAX_TOKENS:
        raise ValueError(f"x must be [M, {k}] (K of the weights) with 1 <= M <= {MAX_TOKENS}, got {tuple(x.shape)}")
    _check_scale(global_scale, "global_scale")
    if norm_weight is not None:
        _check_cuda(norm_weight, "norm_weight", packed.device)
        if norm_weight.dtype != x.dtype or tuple(norm_weight.shape) != (k,):
            raise ValueError(f"norm_weight must be [{k}] of dtype {x.dtype}, got {tuple(norm_weight.shape)} "
                             f"{norm_weight.dtype}")
        if not (isinstance(eps, float) and eps >= 0.0):
            raise ValueError(f"eps must be a float >= 0, got {eps!r}")
    elif not silu_mul:
        raise ValueError("nothing to fuse: give norm_weight (RMSNorm prologue) and/or silu_mul=True")
    if silu_mul and n % 32:
        raise ValueError(f"silu_mul needs the [gate | up] rows to be a multiple of 32 (two 16-row tiles), got N = {n}")
    if bias is not None:
        _check_cuda(bias, "bias", packed.device)
        if bias.dtype != x.dtype or tuple(bias.shape) != (n,):
            raise ValueError(f"bias must be [{n}] of dtype {x.dtype}, got {tuple(bias.shape)} {bias.dtype}")
    return n, x.shape[0]


def _gemv_fused_impl(packed, block_scales, global_scale, x, norm_weight, eps, silu_mul, bias):
    """The op's body (validates its inputs); eager callers run it directly (_torch_launch: no dispatcher)."""
    n, m = _check(packed, block_scales, global_scale, x, norm_weight, eps, silu_mul, bias)
    packed, block_scales = _aligned(packed, 16), _aligned(block_scales, 16)
    # A call no fused kernel takes raises NotImplementedError from the launcher ("no fused kernel ..."): the
    # same conditions as supported(), which callers that want a fallback ask first.
    out = torch.empty((m, n // 2 if silu_mul else n), dtype=x.dtype, device=x.device)
    index = x.device.index
    with _launch.on_device(index):
        _native.cuda_gemv(packed.data_ptr(), block_scales.data_ptr(), global_scale, n, packed.shape[1] * 2,
                          x.data_ptr(), _dtype_code(x.dtype), m, False, 1.0, 0,
                          0 if bias is None else bias.data_ptr(), out.data_ptr(), _launch.raw_stream(index), 0,
                          0 if norm_weight is None else _RMS_NORM,
                          0 if norm_weight is None else norm_weight.data_ptr(), float(eps),
                          _SILU_MUL if silu_mul else 0)
    return out


# Registered at import, not on first use: dynamo traces through functools.lru_cache wrappers (ignoring the cache),
# so a compiled caller must find the op in torch.ops without running a registration.
def _register() -> None:
    @torch.library.custom_op("reset_native::nvfp4_gemv_fused", mutates_args=())
    def nvfp4_gemv_fused(packed: torch.Tensor, block_scales: torch.Tensor, global_scale: float, x: torch.Tensor,
                         norm_weight: Optional[torch.Tensor], eps: float, silu_mul: bool,
                         bias: Optional[torch.Tensor]) -> torch.Tensor:
        return _gemv_fused_impl(packed, block_scales, global_scale, x, norm_weight, eps, silu_mul, bias)

    @nvfp4_gemv_fused.register_fake
    def _(packed, block_scales, global_scale, x, norm_weight, eps, silu_mul, bias):
        return x.new_empty((x.shape[0], packed.shape[0] // 2 if silu_mul else packed.shape[0]))


_register()


def _op():
    return torch.ops.reset_native.nvfp4_gemv_fused


def gemv_fused(packed, block_scales, global_scale: float, x, norm_weight=None, eps: float = 0.0,
               silu_mul: bool = False, bias=None):
    """One kernel for ``gemv(rms_norm(x))`` (norm_weight given), ``silu(gate) * up`` of a [gate | up] GEMV
    (silu_mul), or both; x [M, K], M <= 2 (see supported). Output [M, N] or [M, N/2] with silu_mul."""
    if norm_weight is not None:
        _check_cuda(norm_weight, "norm_weight")  # before the dispatcher, which rejects non-tensors vaguely
    if _launch.eager_without_grad(x, norm_weight, bias):  # the op's body without the dispatcher (it checks inputs)
        return _gemv_fused_impl(packed, block_scales, float(global_scale), x, norm_weight, float(eps), bool(silu_mul),
                                bias)
    return _op()(packed, block_scales, float(global_scale), x, norm_weight, float(eps), bool(silu_mul), bias)


def gemv_rms_norm(packed, block_scales, global_scale: float, x, norm_weight, eps: float, bias=None):
    """``gemv(rms_norm(x, norm_weight, eps))`` (+ bias) in one kernel; x [M, K], M <= 2."""
    _check_cuda(norm_weight, "norm_weight")
    return gemv_fused(packed, block_scales, global_scale, x, norm_weight, eps, False, bias)
