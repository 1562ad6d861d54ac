"""q/k head norm + rotary embedding in one kernel for Llama/Qwen-style attention on CUDA.

A transformers Qwen3 attention block spends twelve small kernels per layer between the q/k/v projection and the
attention itself (two head RMSNorms, then ``q * cos + rotate_half(q) * sin`` for q and k: mul, neg, cat, mul, add
each); at batch 1 each is a launch of a few microseconds, ~400 per decode step of a 36-layer model.
:func:`fuse_attention` routes those modules through ``torch.ops.reset_native.qk_norm_rope``: one kernel, the same
operations and roundings (only the order of the fp32 sum of squares differs). The rest of the forward (KV cache
update, the configured attention implementation, o_proj) is transformers' own, replayed as in transformers 5;
with a static cache the k/v cache write joins the RoPE kernel, and a one-token decode step's SDPA becomes one
kernel (decode_attention.py).
Anything the kernel does not cover (CPU tensors, mixed dtypes, partial rotary, unusual strides) runs the
module's own forward. Works inside CUDA graphs and torch.compile: no host synchronisation, no allocation beyond
the two outputs.
"""
# No "from __future__ import annotations": torch.library infers the op schema from real annotations.
import sys
from typing import Optional, Tuple

import torch

from .. import _core
from .. import _torch_launch as _launch
from . import decode_attention, fused_gemv
from ._forward_patch import restore_forward, route_forward

_native = _core.ops
#: True when this build contains the CUDA kernel.
AVAILABLE = bool(getattr(_native, "cuda_kernels", False))
# Attention classes whose forward (transformers 5) is exactly the one _fused_forward replays; Qwen3's has the
# head norms, Qwen2's passes sliding_window like Qwen3's, Llama's has neither.
_SUPPORTED = ("LlamaAttention", "Qwen2Attention", "Qwen3Attention")
_NORMS = ("LlamaRMSNorm", "Qwen2RMSNorm", "Qwen3RMSNorm")
_DTYPES = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}
_KEY = "_reset_native_attention_original"  # where a routed module keeps its own forward


# The op bodies (they validate their inputs); eager callers run them directly (_torch_launch: no dispatcher).
def _qk_norm_rope_impl(q, k, q_weight, k_weight, cos, sin, eps):
    _check(q, k, q_weight, k_weight, cos, sin, eps)
    if q.device.type != "cuda":
        return reference(q, k, q_weight, k_weight, cos, sin, eps)
    if not AVAILABLE:
        raise NotImplementedError("reset_native was built without CUDA kernels: qk_norm_rope needs "
                                  "RESET_NATIVE_CUDA=ON")
    q_out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    k_out = torch.empty(k.shape, dtype=k.dtype, device=k.device)
    batch, seq, hq, d = q.shape
    if batch * seq == 0:
        return q_out, k_out
    cs_sb = cos.stride(0) if cos.shape[0] == batch else 0  # a [1, seq, d] table broadcasts over the batch
    index = q.device.index
    with _launch.on_device(index):
        _native.cuda_qk_norm_rope(
            q.data_ptr(), k.data_ptr(), q_out.data_ptr(), k_out.data_ptr(),
            0 if q_weight is None else q_weight.data_ptr(), 0 if k_weight is None else k_weight.data_ptr(),
            cos.data_ptr(), sin.data_ptr(), batch, seq, hq, k.shape[2], d,
            (q.stride(0), q.stride(1), q.stride(2)), (k.stride(0), k.stride(1), k.stride(2)),
            (cs_sb, cos.stride(1)), float(eps), _DTYPES[q.dtype], _launch.raw_stream(index))
    return q_out, k_out


def _qk_norm_rope_cache_impl(q, k, v, q_weight, k_weight, cos, sin, eps, k_cache, v_cache, cache_position):
    _check(q, k, q_weight, k_weight, cos, sin, eps)
    _check_cache(q, k, v, k_cache, v_cache, cache_position)
    if q.device.type != "cuda":
        return reference_cache(q, k, v, q_weight, k_weight, cos, sin, eps, k_cache, v_cache, cache_position)
    if not AVAILABLE:
        raise NotImplementedError("reset_native was built without CUDA kernels: qk_norm_rope_cache needs "
                                  "RESET_NATIVE_CUDA=ON")
    q_out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    batch, seq, hq, d = q.shape
    if batch * seq == 0:
        return q_out
    cs_sb = cos.stride(0) if cos.shape[0] == batch else 0
    index = q.device.index
    with _launch.on_device(index):
        _native.cuda_qk_norm_rope(
            q.data_ptr(), k.data_ptr(), q_out.data_ptr(), 0,
            0 if q_weight is None else q_weight.data_ptr(), 0 if k_weight is None else k_weight.data_ptr(),
            cos.data_ptr(), sin.data_ptr(), batch, seq, hq, k.shape[2], d,
            (q.stride(0), q.stride(1), q.stride(2)), (k.stride(0), k.stride(1), k.stride(2)),
            (cs_sb, cos.stride(1)), float(eps), _DTYPES[q.dtype], _launch.raw_stream(index),
            v.data_ptr(), (v.stride(0), v.stride(1), v.stride(2)), k_cache.data_ptr(), v_cache.data_ptr(),
            cache_position.data_ptr(), k_cache.shape[2])
    return q_out


# Registered at import, not on first use: dynamo traces through functools.lru_cache wrappers (ignoring the cache),
# so a compiled caller must find the op in torch.ops without running a registration.
def _register() -> None:
    @torch.library.custom_op("reset_native::qk_norm_rope", mutates_args=())
    def qk_norm_rope(q: torch.Tensor, k: torch.Tensor, q_weight: Optional[torch.Tensor],
                     k_weight: Optional[torch.Tensor], cos: torch.Tensor, sin: torch.Tensor,
                     eps: float) -> Tuple[torch.Tensor, torch.Tensor]:
        return _qk_norm_rope_impl(q, k, q_weight, k_weight, cos, sin, eps)

    @qk_norm_rope.register_fake
    def _(q, k, q_weight, k_weight, cos, sin, eps):
        return torch.empty(q.shape, dtype=q.dtype, device=q.device), torch.empty(k.shape, dtype=k.dtype,
                                                                                 device=k.device)

    @torch.library.custom_op("reset_native::qk_norm_rope_cache", mutates_args=("k_cache", "v_cache"))
    def qk_norm_rope_cache(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, q_weight: Optional[torch.Tensor],
                           k_weight: Optional[torch.Tensor], cos: torch.Tensor, sin: torch.Tensor, eps: float,
                           k_cache: torch.Tensor, v_cache: torch.Tensor, cache_position: torch.Tensor) -> torch.Tensor:
        return _qk_norm_rope_cache_impl(q, k, v, q_weight, k_weight, cos, sin, eps, k_cache, v_cache, cache_position)

    @qk_norm_rope_cache.register_fake
    def _(q, k, v, q_weight, k_weight, cos, sin, eps, k_cache, v_cache, cache_position):
        return torch.empty(q.shape, dtype=q.dtype, device=q.device)


_register()


def _op():
    return torch.ops.reset_native.qk_norm_rope


def _cache_op():
    return torch.ops.reset_native.qk_norm_rope_cache


def _qk_norm_rope_call(q, k, q_weight, k_weight, cos, sin, eps: float, check: bool = False):
    """The op (eps a float), or its body directly outside a torch.compile trace (the body checks its inputs).
    check: validate them before the op too (public callers: the dispatcher rejects non-tensors vaguely); the
    attention forward passes inputs it has already vetted."""
    if _launch.eager_without_grad(q, k, q_weight, k_weight, cos, sin):
        return _qk_norm_rope_impl(q, k, q_weight, k_weight, cos, sin, eps)
    if check:
        _check(q, k, q_weight, k_weight, cos, sin, eps)
    return _op()(q, k, q_weight, k_weight, cos, sin, eps)


def _qk_norm_rope_cache_call(q, k, v, q_weight, k_weight, cos, sin, eps: float, k_cache, v_cache, cache_position,
                             check: bool = False):
    """The cache-writing op (eps a float), or its body directly outside a torch.compile trace; check as in
    _qk_norm_rope_call."""
    if _launch.eager_without_grad(q, k, v, q_weight, k_weight, cos, sin, k_cache, v_cache):
        return _qk_norm_rope_cache_impl(q, k, v, q_weight, k_weight, cos, sin, eps, k_cache, v_cache, cache_position)
    if check:
        _check(q, k, q_weight, k_weight, cos, sin, eps)
        _check_cache(q, k, v, k_cache, v_cache, cache_position)
    return _cache_op()(q, k, v, q_weight, k_weight, cos, sin, eps, k_cache, v_cache, cache_position)


def _check_cache(q, k, v, k_cache, v_cache, cache_position) -> None:
    for name, t in (("v", v), ("k_cache", k_cache), ("v_cache", v_cache), ("cache_position", cache_position)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.device != q.device:
            raise ValueError(f"q is on {q.device} but {name} is on {t.device}")
    for name, t in (("v", v), ("k_cache", k_cache), ("v_cache", v_cache)):
        if t.dtype != q.dtype:
            raise TypeError(f"{name} must have q's dtype {q.dtype}, got {t.dtype}")
    batch, seq, _, d = q.shape
    hk = k.shape[2]
    if tuple(v.shape) != tuple(k.shape) or (v.numel() and v.stride(-1) != 1):
        raise ValueError(f"v must be shaped like k {tuple(k.shape)} with a contiguous last dimension, got "
                         f"{tuple(v.shape)}")
    for name, t in (("k_cache", k_cache), ("v_cache", v_cache)):
        if t.dim() != 4 or t.shape[0] != batch or t.shape[1] != hk or t.shape[3] != d or t.shape[2] < 1 \
                or not t.is_contiguous():
            raise ValueError(f"{name} must be a contiguous [batch, kv_heads, cache_len >= 1, head_dim] = "
                             f"[{batch}, {hk}, L, {d}] tensor, got {tuple(t.shape)}")
    if k_cache.shape != v_cache.shape:
        raise ValueError(f"k_cache and v_cache must have one shape, got {tuple(k_cache.shape)} and "
                         f"{tuple(v_cache.shape)}")
    if cache_position.dtype != torch.int64 or cache_position.numel() != 1:
        raise ValueError(f"cache_position must be one int64 element (the write position), got "
                         f"{cache_position.dtype} with {cache_position.numel()} elements")


def _check(q, k, q_weight, k_weight, cos, sin, eps) -> None:
    named = {"q": q, "k": k, "cos": cos, "sin": sin}
    for name, t in named.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if (q_weight is None) != (k_weight is None):
        raise ValueError("q_weight and k_weight must both be given (head norm) or both be None (no norm)")
    weights = {} if q_weight is None else {"q_weight": q_weight, "k_weight": k_weight}
    for name, t in {**named, **weights}.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor or None, got {type(t).__name__}")
        if t.dtype != q.dtype or q.dtype not in _DTYPES:
            raise TypeError(f"all tensors must share one dtype of float32/float16/bfloat16; q is {q.dtype}, "
                            f"{name} is {t.dtype}")
        if t.device != q.device:
            raise ValueError(f"q is on {q.device} but {name} is on {t.device}")
    if q.dim() != 4 or k.dim() != 4:
        raise ValueError(f"q and k must be [batch, seq, heads, head_dim], got {tuple(q.shape)} and {tuple(k.shape)}")
    batch, seq, _, d = q.shape
    if k.shape[0] != batch or k.shape[1] != seq or k.shape[3] != d or q.shape[2] == 0 or k.shape[2] == 0:
        raise ValueError(f"k must match q's batch, seq and head_dim with >= 1 head each, got q {tuple(q.shape)} "
                         f"and k {tuple(k.shape)}")
    if d < 2 or d % 2:
        raise ValueError(f"head_dim must be even and >= 2, got {d}")
    for name, t in (("cos", cos), ("sin", sin)):
        if t.dim() != 3 or t.shape[0] not in (1, batch) or t.shape[1] != seq or t.shape[2] != d:
            raise ValueError(f"{name} must be [batch or 1, seq, head_dim] = [{batch} or 1, {seq}, {d}], got "
                             f"{tuple(t.shape)}")
    if cos.stride() != sin.stride() or cos.shape != sin.shape:
        raise ValueError("cos and sin must have the same shape and strides")
    for name, t in (("q", q), ("k", k), ("cos", cos), ("sin", sin)):
        if t.numel() and t.stride(-1) != 1:
            raise ValueError(f"{name} must be contiguous in its last dimension")
    for name, t in weights.items():
        if t.dim() != 1 or t.shape[0] != d or not t.is_contiguous():
            raise ValueError(f"{name} must be a contiguous [head_dim] = [{d}] tensor, got {tuple(t.shape)}")
    if not (isinstance(eps, float) and eps >= 0.0):
        raise ValueError(f"eps must be a float >= 0, got {eps!r}")


def _rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _head_rms_norm(x, weight, eps):
    h = x.to(torch.float32)
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return weight * h.to(x.dtype)


def reference(q, k, q_weight, k_weight, cos, sin, eps):
    """transformers' head norms and apply_rotary_pos_emb on [batch, seq, heads, d] tensors (the op's CPU path)."""
    if q_weight is not None:
        q, k = _head_rms_norm(q, q_weight, eps), _head_rms_norm(k, k_weight, eps)
    c, s = cos.unsqueeze(2), sin.unsqueeze(2)
    return (q * c + _rotate_half(q) * s).contiguous(), (k * c + _rotate_half(k) * s).contiguous()


def reference_cache(q, k, v, q_weight, k_weight, cos, sin, eps, k_cache, v_cache, cache_position):
    """reference() with k and v written into [B, Hk, L, D] caches at cache_position (transformers' StaticLayer
    index copies); the op's CPU path. A position outside the cache writes nothing and returns a NaN q."""
    q_out, k_out = reference(q, k, q_weight, k_weight, cos, sin, eps)
    seq, length = q.shape[1], k_cache.shape[2]
    start = int(cache_position.reshape(()).item())
    slots = torch.arange(start, start + seq, device=q.device)
    if start < 0 or start + seq > length:
        return torch.full_like(q_out, float("nan"))
    k_cache.index_copy_(2, slots, k_out.transpose(1, 2))
    v_cache.index_copy_(2, slots, v.transpose(1, 2))
    return q_out


def _float(eps):
    """A float (subclass) as a plain float, like the op's schema; anything else as is, for _check to reject (a valid
    eps is a float, so after _check this equals float(eps))."""
    return float(eps) if isinstance(eps, float) else eps


def qk_norm_rope(q, k, q_weight, k_weight, cos, sin, eps: float = 1e-6):
    """Head RMSNorm (when weights are given) and rotary embedding of q [B, S, Hq, D] and k [B, S, Hk, D].

    Returns contiguous [B, S, H, D] tensors (transpose(1, 2) gives transformers' [B, H, S, D] view).
    """
    return _qk_norm_rope_call(q, k, q_weight, k_weight, cos, sin, _float(eps), check=True)


def qk_norm_rope_cache(q, k, v, q_weight, k_weight, cos, sin, eps, k_cache, v_cache, cache_position):
    """qk_norm_rope whose k (after norm and RoPE) and v go straight into static KV caches [B, Hk, L, D] at
    positions cache_position .. cache_position + S - 1 (an int64 device scalar, read, not advanced).

    Returns q [B, S, Hq, D]. A write past the cache's end writes nothing and returns NaN for q, so the logits
    turn NaN (the sampler's error flag reports it) instead of memory being overwritten.
    """
    return _qk_norm_rope_cache_call(q, k, v, q_weight, k_weight, cos, sin, _float(eps), k_cache, v_cache,
                                    cache_position, check=True)


def _norm_weights(module):
    q_norm, k_norm = getattr(module, "q_norm", None), getattr(module, "k_norm", None)
    if q_norm is None and k_norm is None:
        return None, None, 0.0
    return q_norm.weight, k_norm.weight, float(q_norm.variance_epsilon)


def _fusable(module, hidden_states, q, k, cos, sin, q_weight, k_weight) -> bool:
    return (AVAILABLE and hidden_states.is_cuda and q.dtype in _DTYPES and k.dtype == q.dtype
            and cos.dtype == q.dtype and sin.dtype == q.dtype and cos.device == q.device and sin.device == q.device
            and sin.shape == cos.shape
            and cos.dim() == 3 and cos.shape[-1] == module.head_dim and cos.stride() == sin.stride()
            and cos.shape[0] in (1, q.shape[0]) and cos.shape[1] == q.shape[1]
            and q.stride(-1) == 1 and k.stride(-1) == 1 and cos.stride(-1) == 1
            and (q_weight is None or (q_weight.dtype == q.dtype and k_weight.dtype == q.dtype
                                      and q_weight.device == q.device and k_weight.device == q.device)))


def _static_layer(cache, layer_idx, k):
    """The cache's layer when it is a plain, initialised transformers StaticLayer the kernel can write into
    (same update as StaticLayer.update: keys/values [B, Hk, L, D] at cumulative_length), else None."""
    layers = getattr(cache, "layers", None)
    if cache is None or getattr(cache, "offloading", False) or layers is None or layer_idx >= len(layers):
        return None
    layer = layers[layer_idx]
    if type(layer).__name__ != "StaticLayer" or not getattr(layer, "is_initialized", False):
        return None
    keys, values, pos = getattr(layer, "keys", None), getattr(layer, "values", None), \
        getattr(layer, "cumulative_length", None)
    if not all(isinstance(t, torch.Tensor) for t in (keys, values, pos)):
        return None
    batch, seq, hk, d = k.shape
    ok = (keys.dtype == k.dtype and values.dtype == k.dtype and keys.device == k.device and pos.device == k.device
          and pos.dtype == torch.int64 and pos.numel() == 1 and keys.shape == values.shape and keys.dim() == 4
          and tuple(keys.shape[:2]) == (batch, hk) and keys.shape[3] == d and keys.is_contiguous()
          and values.is_contiguous())
    return layer if ok else None


def _projections(self, hidden_states, norm):
    """q, k, v projections; with the input RMSNorm module deferred by the decoder layer (norm), hidden_states is
    the norm's input and the q/k/v group's GEMV applies it (fused_gemv), or the norm runs first."""
    if norm is not None:
        group = getattr(self.q_proj, "_group", None)
        if group is not None and group.members == [self.q_proj, self.k_proj, self.v_proj]:
            y = fused_gemv.group_output(group, hidden_states, norm)
            if y is not None:
                return tuple(y[..., r0:r1] for r0, r1 in group.rows)
        hidden_states = fused_gemv.apply_norm(hidden_states, norm)
    return self.q_proj(hidden_states), self.k_proj(hidden_states), self.v_proj(hidden_states)


def _fused_forward(self, hidden_states, position_embeddings=None, attention_mask=None, cache=None,
                   reset_native_residual=None, reset_native_norm=None, **kwargs):
    """transformers 5's Llama/Qwen2/Qwen3 attention forward with the norms and RoPE as one kernel.

    reset_native_residual (from fused_residual's decoder layer): returned output is residual + o_proj(...).
    reset_native_norm (the input RMSNorm module), also from there: hidden_states is the norm's input, not its output.
    """
    if cache is None and "past_key_values" in kwargs:  # the name transformers deprecates in favour of cache
        cache = kwargs.pop("past_key_values")
    input_shape = hidden_states.shape[:-1]
    hidden_shape = (*input_shape, -1, self.head_dim)
    q_weight, k_weight, eps = _norm_weights(self)
    if position_embeddings is None or hidden_states.dim() != 3:
        if reset_native_norm is not None:
            hidden_states = fused_gemv.apply_norm(hidden_states, reset_native_norm)
        out, weights = getattr(self, _KEY)(hidden_states, position_embeddings, attention_mask, cache=cache,
                                           **kwargs)
        return (out if reset_native_residual is None else reset_native_residual + out), weights
    cos, sin = position_embeddings
    q, k, v = (t.view(hidden_shape) for t in _projections(self, hidden_states, reset_native_norm))
    fusable = _fusable(self, hidden_states, q, k, cos, sin, q_weight, k_weight)
    layer = _static_layer(cache, self.layer_idx, k) if fusable and v.stride(-1) == 1 else None
    attn_output = None
    if layer is not None:  # norm, RoPE and the cache write in one kernel; the position advances as in transformers
        q = _qk_norm_rope_cache_call(q, k, v, q_weight, k_weight, cos, sin, eps, layer.keys, layer.values,
                                     layer.cumulative_length)
        query_states, key_states, value_states = q.transpose(1, 2), layer.keys, layer.values
        if decode_attention.applies(self, q, layer.keys, attention_mask, kwargs):
            # SDPA's result in one kernel, which also advances the position (one add kernel less)
            attn_output, attn_weights = decode_attention.call(
                q, layer.keys, layer.values, attention_mask, float(self.scaling), layer.cumulative_length), None
        else:
            layer.cumulative_length.add_(q.shape[1])
    else:
        if fusable:
            q, k = _qk_norm_rope_call(q, k, q_weight, k_weight, cos, sin, eps)
            query_states, key_states = q.transpose(1, 2), k.transpose(1, 2)
        else:  # the module's own operations, on the projections already computed
            if q_weight is not None:
                q, k = self.q_norm(q), self.k_norm(k)
            module = sys.modules[type(self).__module__]
            query_states, key_states = module.apply_rotary_pos_emb(q.transpose(1, 2), k.transpose(1, 2), cos, sin)
        value_states = v.transpose(1, 2)
        if cache is not None:
            key_states, value_states = cache.update(key_states, value_states, self.layer_idx, kwargs=kwargs)

    if attn_output is None:
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

        eager = sys.modules[type(self).__module__].eager_attention_forward
        attention_interface = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation, eager)
        extra = {"sliding_window": self.sliding_window} if "sliding_window" in vars(self) else {}
        attn_output, attn_weights = attention_interface(
            self, query_states, key_states, value_states, attention_mask,
            dropout=0.0 if not self.training else self.attention_dropout, scaling=self.scaling, **extra, **kwargs)
    attn_output = attn_output.reshape(*input_shape, -1).contiguous()
    if reset_native_residual is not None:
        from .fused_residual import linear_add

        return linear_add(self.o_proj, attn_output, reset_native_residual), attn_weights
    return self.o_proj(attn_output), attn_weights


def _eligible(module) -> bool:
    if type(module).__name__ not in _SUPPORTED:
        return False
    if not all(hasattr(module, a) for a in ("q_proj", "k_proj", "v_proj", "o_proj", "head_dim", "scaling",
                                            "layer_idx", "config")):
        return False
    norms = [getattr(module, "q_norm", None), getattr(module, "k_norm", None)]
    if all(n is None for n in norms):
        return True
    return all(n is not None and type(n).__name__ in _NORMS and hasattr(n, "variance_epsilon") for n in norms)


def fuse_attention(model) -> int:
    """Routes every Llama/Qwen2/Qwen3 attention module of ``model`` through the fused norm+RoPE kernel.

    Returns how many modules were routed. Idempotent; other modules are left alone. On CPU (or whenever the
    kernel does not apply) the patched forward computes what the module's own forward computes. Undo with
    :func:`unfuse_attention`.
    """
    return route_forward(model, _eligible, _KEY, _fused_forward)


def unfuse_attention(model) -> int:
    """Restores the attention modules' own forward; returns how many were restored."""
    return restore_forward(model, _KEY)
