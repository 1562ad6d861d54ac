"""Attention of one new token per sequence over a static KV cache, as one CUDA kernel.

At batch 1 a decode step's attention is a tiny computation (a few hundred cache positions), yet torch's SDPA
spends two kernels on it in a CUDA graph (the mask materialisation and the attention). The fused attention
forward (fused_attention.py) calls :func:`decode_attention` instead when it computes exactly what SDPA would:
one query token, transformers' "sdpa" implementation, no dropout, no sliding window, the mask None, boolean
(True = attend) or additive in q's dtype (added to the scaled scores, -inf or the dtype's min = masked, as
generate() builds it), shaped [batch or 1, 1, 1, cache_len], grouped-query heads with hq / hk in {1, 2, 4, 8} and head dim 64 or 128.
Softmax and products are fp32 (flash kernels round the probabilities to bf16 before the value product: this
is at least as accurate). A row whose positions are all masked gives zeros (SDPA gives NaN).
RESET_NATIVE_DECODE_ATTENTION=0 in the environment keeps SDPA (read at every call; a captured graph keeps the
choice made at capture).
"""
# No "from __future__ import annotations": torch.library infers the op schema from real annotations.
import os
from typing import Optional

import torch

from .. import _core
from .. import _torch_launch as _launch

_native = _core.ops
AVAILABLE = bool(getattr(_native, "cuda_kernels", False))
_DTYPES = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}


def supported(hq: int, hk: int, d: int) -> bool:
    """Whether the kernel covers these head counts and head dim (see the module docstring)."""
    return AVAILABLE and bool(_native.decode_attention_supported(int(hq), int(hk), int(d)))


def _check(q, k_cache, v_cache, mask, scale, advance=None) -> None:
    for name, t in (("q", q), ("k_cache", k_cache), ("v_cache", v_cache)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype not in _DTYPES or t.dtype != q.dtype:
            raise TypeError(f"q, k_cache and v_cache must share one dtype of float32/float16/bfloat16, got "
                            f"{q.dtype} and {name} {t.dtype}")
        if t.device != q.device:
            raise ValueError(f"q is on {q.device} but {name} is on {t.device}")
    if q.dim() != 4 or q.shape[1] != 1 or q.stride(-1) != 1:
        raise ValueError(f"q must be [batch, 1, q_heads, head_dim] with a contiguous last dimension, got "
                         f"{tuple(q.shape)}")
    batch, _, hq, d = q.shape
    if k_cache.dim() != 4 or k_cache.shape[0] != batch or k_cache.shape[3] != d or not k_cache.is_contiguous():
        raise ValueError(f"k_cache must be a contiguous [batch, kv_heads, cache_len, head_dim] = [{batch}, H, L, {d}] "
                         f"tensor, got {tuple(k_cache.shape)}")
    if v_cache.shape != k_cache.shape or not v_cache.is_contiguous():
        raise ValueError(f"v_cache must be contiguous and shaped like k_cache {tuple(k_cache.shape)}, got "
                         f"{tuple(v_cache.shape)}")
    hk = k_cache.shape[1]
    if hk < 1 or hq % hk:
        raise ValueError(f"q_heads ({hq}) must be a multiple of kv_heads ({hk})")
    if mask is not None:
        if not isinstance(mask, torch.Tensor) or mask.dtype not in (torch.bool, q.dtype):
            raise TypeError(f"mask must be None, a bool tensor or an additive one of q's dtype {q.dtype}, got "
                            f"{getattr(mask, 'dtype', type(mask).__name__)}")
        if mask.device != q.device:
            raise ValueError(f"q is on {q.device} but mask is on {mask.device}")
        if mask.dim() != 4 or mask.shape[0] not in (1, batch) or mask.shape[1] != 1 or mask.shape[2] != 1 \
                or mask.shape[3] != k_cache.shape[2]:
            raise ValueError(f"mask must be [batch or 1, 1, 1, cache_len] = [{batch} or 1, 1, 1, {k_cache.shape[2]}], "
                             f"got {tuple(mask.shape)}")
    if not (isinstance(scale, float) and scale > 0.0 and scale != float("inf")):
        raise ValueError(f"scale must be a finite float > 0, got {scale!r}")
    if advance is not None and not (isinstance(advance, torch.Tensor) and advance.dtype == torch.int64
                                    and advance.numel() == 1 and advance.device == q.device):
        raise ValueError("advance must be None or a one-element int64 tensor on q's device (a counter to increment)")


def reference(q, k_cache, v_cache, mask, scale):
    """The op's CPU path and the tests' reference: fp64 softmax(scale * q k^T + mask) v per query head,
    grouped-query heads sharing kv head h // (hq / hk); a bool mask excludes its False positions; all-masked rows
    give zeros."""
    batch, _, hq, d = q.shape
    group = hq // k_cache.shape[1]
    qd = q.double()[:, 0].reshape(batch, hq, 1, d)
    k = k_cache.double().repeat_interleave(group, dim=1)
    v = v_cache.double().repeat_interleave(group, dim=1)
    s = (qd @ k.transpose(-1, -2)) * scale  # [B, Hq, 1, L]
    if mask is not None and mask.dtype == torch.bool:
        s = s.masked_fill(~mask.expand(batch, 1, 1, -1), float("-inf"))
    elif mask is not None:
        s = s + mask.double().expand(batch, 1, 1, -1)
    p = torch.softmax(s, dim=-1).nan_to_num(0.0)
    return (p @ v).transpose(1, 2).to(q.dtype).contiguous()  # [B, 1, Hq, D]


def _decode_attention_impl(q, k_cache, v_cache, mask, scale, advance):
    """The op's body (validates its inputs); eager callers run it directly (_torch_launch: no dispatcher)."""
    _check(q, k_cache, v_cache, mask, scale, advance)
    if q.device.type != "cuda":
        out = reference(q, k_cache, v_cache, mask, scale)
        if advance is not None:
            advance.add_(1)
        return out
    batch, _, hq, d = q.shape
    hk, length = k_cache.shape[1], k_cache.shape[2]
    if not supported(hq, hk, d):
        raise NotImplementedError(f"decode_attention has no CUDA kernel for q_heads={hq}, kv_heads={hk}, "
                                  f"head_dim={d} (or this build has no CUDA kernels)")
    out = torch.empty((batch, 1, hq, d), dtype=q.dtype, device=q.device)
    if batch == 0:
        return out
    m_sb = 0 if mask is None or mask.shape[0] == 1 else mask.stride(0)
    m_sl = 0 if mask is None else mask.stride(3)
    index = q.device.index
    with _launch.on_device(index):
        _native.cuda_decode_attention(
            q.data_ptr(), k_cache.data_ptr(), v_cache.data_ptr(), 0 if mask is None else mask.data_ptr(),
            out.data_ptr(), batch, length, hq, hk, d, (q.stride(0), q.stride(2)), (m_sb, m_sl),
            mask is not None and mask.dtype != torch.bool, float(scale), _DTYPES[q.dtype], _launch.raw_stream(index),
            0 if advance is None else advance.data_ptr())
    return out


# Registered at import, not on first use: dynamo traces through functools.lru_cache wrappers (ignoring the cache),
# so a compiled caller must find the op in torch.ops without running a registration.
def _register() -> None:
    @torch.library.custom_op("reset_native::decode_attention", mutates_args=("advance",))
    def decode_attention(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, mask: Optional[torch.Tensor],
                         scale: float, advance: Optional[torch.Tensor]) -> torch.Tensor:
        return _decode_attention_impl(q, k_cache, v_cache, mask, scale, advance)

    @decode_attention.register_fake
    def _(q, k_cache, v_cache, mask, scale, advance):
        return torch.empty((q.shape[0], 1, q.shape[2], q.shape[3]), dtype=q.dtype, device=q.device)


_register()


def op():
    """torch.ops.reset_native.decode_attention; it validates its inputs itself."""
    return torch.ops.reset_native.decode_attention


def call(q, k_cache, v_cache, mask, scale: float, advance, check: bool = False):
    """The op with these arguments (scale a float), or its body directly outside a torch.compile trace (the body
    checks its inputs). check: validate them before the op too (public callers: the dispatcher rejects non-tensors
    vaguely); the attention forward passes inputs it has already vetted."""
    if _launch.eager_without_grad(q, k_cache, v_cache, mask):
        return _decode_attention_impl(q, k_cache, v_cache, mask, scale, advance)
    if check:
        _check(q, k_cache, v_cache, mask, scale, advance)
    return op()(q, k_cache, v_cache, mask, scale, advance)


def decode_attention(q, k_cache, v_cache, mask=None, scale: Optional[float] = None, advance=None):
    """softmax(scale * q k^T + mask) v for q [B, 1, Hq, D] over caches [B, Hk, L, D]; returns [B, 1, Hq, D].

    scale defaults to D ** -0.5; mask is None (every position), bool [B or 1, 1, 1, L] (True = attend) or
    additive of q's dtype (-inf = masked). advance: an int64 one-element device tensor incremented by one in
    the same kernel (the static cache layer's position), or None.
    """
    if scale is None and isinstance(q, torch.Tensor):
        scale = q.shape[-1] ** -0.5
    if isinstance(scale, (int, float)) and not isinstance(scale, bool):
        scale = float(scale)
    return call(q, k_cache, v_cache, mask, scale, advance, check=True)


def applies(module, q, k_cache, attention_mask, kwargs) -> bool:
    """Whether the fused forward may replace the attention interface by the kernel for this call (q is the
    [B, S, Hq, D] output of the cache-writing RoPE kernel; k_cache the layer's [B, Hk, L, D] keys)."""
    if os.environ.get("RESET_NATIVE_DECODE_ATTENTION") == "0" or not AVAILABLE or not q.is_cuda:
        return False
    if q.shape[1] != 1 or module.training or getattr(module.config, "_attn_implementation", None) != "sdpa":
        return False
    if getattr(module, "sliding_window", None) is not None or any(kwargs.get(n) is not None for n in ("s_aux", "softcap")):
        return False
    m = attention_mask
    if m is not None and not (isinstance(m, torch.Tensor) and m.dtype in (torch.bool, q.dtype) and m.dim() == 4
                              and m.shape[0] in (1, q.shape[0]) and m.shape[1] == 1 and m.shape[2] == 1
                              and m.shape[3] == k_cache.shape[2] and m.device == q.device):
        return False
    scaling = getattr(module, "scaling", None)
    return isinstance(scaling, float) and scaling > 0.0 and supported(q.shape[2], k_cache.shape[1], q.shape[3])
