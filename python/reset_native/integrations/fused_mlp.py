"""SiLU-gated MLP product in one kernel for Llama/Qwen-style transformers models on CUDA.

transformers computes ``down_proj(act_fn(gate_proj(x)) * up_proj(x))``: the activation and the product are two
kernels per layer. :func:`fuse_mlp` routes those MLP modules through ``torch.ops.reset_native.silu_mul``, one
kernel with the same operations and roundings (silu in fp32 as x / (1 + exp(-x)), rounded, times up, rounded).
gate and up may be column slices of one fused projection output (reset_native.integrations.fused_projections).
Other activations, CPU tensors and unusual strides keep the module's own forward.
"""
# No "from __future__ import annotations": torch.library infers the op schema from real annotations.
import torch

from .. import _core
from .. import _torch_launch as _launch
from . import fused_gemv
from ._forward_patch import restore_forward, route_forward

_native = _core.ops
#: True when this build contains the CUDA kernel.
AVAILABLE = bool(getattr(_native, "cuda_kernels", False))
_SUPPORTED = ("LlamaMLP", "Qwen2MLP", "Qwen3MLP")
_SILU = ("SiLUActivation", "SiLU")
_DTYPES = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}
_KEY = "_reset_native_mlp_original"  # where a routed module keeps its own forward


def _silu_mul_impl(gate, up):
    """The op's body (validates its inputs); eager callers run it directly (_torch_launch: no dispatcher)."""
    _check(gate, up)
    if gate.device.type != "cuda":
        return reference(gate, up)
    if not AVAILABLE:
        raise NotImplementedError("reset_native was built without CUDA kernels: silu_mul needs "
                                  "RESET_NATIVE_CUDA=ON")
    y = torch.empty(gate.shape, dtype=gate.dtype, device=gate.device)
    if gate.numel() == 0:
        return y
    n = gate.shape[-1]
    index = gate.device.index
    with _launch.on_device(index):
        _native.cuda_silu_mul(gate.data_ptr(), up.data_ptr(), y.data_ptr(), gate.numel() // n, n,
                              _row_stride(gate), _row_stride(up), _DTYPES[gate.dtype], _launch.raw_stream(index))
    return y


# Registered at import, not on first use: dynamo traces through functools.lru_cache wrappers (ignoring the cache),
# so a compiled caller must find the op in torch.ops without running a registration.
def _register() -> None:
    @torch.library.custom_op("reset_native::silu_mul", mutates_args=())
    def silu_mul(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        return _silu_mul_impl(gate, up)

    @silu_mul.register_fake
    def _(gate, up):
        return torch.empty(gate.shape, dtype=gate.dtype, device=gate.device)


_register()


def _op():
    return torch.ops.reset_native.silu_mul


def _row_stride(t):
    """The row stride when t [..., n] is rows of n contiguous elements (what the kernel reads), else None."""
    n = t.shape[-1]
    if n > 1 and t.stride(-1) != 1:
        return None
    try:
        flat = t.view(-1, n)  # fails when the leading dimensions do not collapse into one stride
    except RuntimeError:
        return None
    if flat.shape[0] <= 1:
        return n
    return flat.stride(0) if flat.stride(0) >= n else None


def _check(gate, up) -> None:
    for name, t in (("gate", gate), ("up", up)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if gate.dtype not in _DTYPES or up.dtype != gate.dtype:
        raise TypeError(f"gate and up must share one dtype of float32/float16/bfloat16, got {gate.dtype} and "
                        f"{up.dtype}")
    if gate.shape != up.shape or gate.dim() < 1:
        raise ValueError(f"gate and up must have one shape with >= 1 dimension, got {tuple(gate.shape)} and "
                         f"{tuple(up.shape)}")
    if up.device != gate.device:
        raise ValueError(f"gate is on {gate.device} but up is on {up.device}")
    for name, t in (("gate", gate), ("up", up)):
        if t.numel() and _row_stride(t) is None:
            raise ValueError(f"{name} must be rows of contiguous elements (inner stride 1, leading dimensions "
                             f"that flatten), got strides {t.stride()}")


def reference(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """transformers' act_fn(gate) * up for SiLU (the op's CPU path)."""
    return torch.nn.functional.silu(gate) * up


def silu_mul(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """silu(gate) * up (see the module docstring); CUDA: one kernel. Outside a torch.compile trace the op's body
    runs directly (no dispatcher); inside, the op stands in the graph."""
    return _silu_mul_call(gate, up, check=True)


def _silu_mul_call(gate, up, check: bool = False):
    """The op, or its body directly outside a torch.compile trace (the body checks its inputs). check: validate them
    before the op too (public callers: the dispatcher rejects non-tensors vaguely); the MLP forward passes inputs it
    has already vetted."""
    if _launch.eager_without_grad(gate, up):
        return _silu_mul_impl(gate, up)
    if check:
        _check(gate, up)
    return _op()(gate, up)


def _fused_group(self):
    """The fused [gate, up] projection group of this MLP (fused_projections), or None."""
    group = getattr(self.gate_proj, "_group", None)
    return group if group is not None and group.members == [self.gate_proj, self.up_proj] else None


def _gate_up(self, x, norm):
    """gate and up projections; with the post-attention RMSNorm module deferred by the decoder layer (norm), x is
    the norm's input: the fused gate/up GEMV applies it (fused_gemv), or the norm runs first."""
    group = _fused_group(self) if norm is not None else None
    if group is not None:
        gate_up = fused_gemv.group_output(group, x, norm)
        if gate_up is not None:
            (g0, g1), (u0, u1) = group.rows
            return gate_up[..., g0:g1], gate_up[..., u0:u1]
    if norm is not None:
        x = fused_gemv.apply_norm(x, norm)
    return self.gate_proj(x), self.up_proj(x)


def _fused_forward(self, x, reset_native_residual=None, reset_native_norm=None):
    """act_fn(gate) * up as one kernel, or (NVFP4 gate/up group, 1..2 tokens) as the epilogue of the gate/up GEMV
    (fused_gemv); with reset_native_residual (fused_residual's decoder layer) the result is residual +
    down_proj(...); reset_native_norm: see _gate_up."""
    group = _fused_group(self) if type(self.act_fn).__name__ in _SILU else None
    norm = reset_native_norm
    if group is not None and norm is not None and not fused_gemv.norm_with_silu():
        x, norm = fused_gemv.apply_norm(x, norm), None  # the norm op, then SiLU * up inside the GEMV
    h = fused_gemv.group_output(group, x, norm, silu_mul=True) if group is not None else None
    if h is None:
        gate, up = _gate_up(self, x, norm)
        if (AVAILABLE and gate.is_cuda and gate.dtype in _DTYPES and up.dtype == gate.dtype and gate.shape == up.shape
                and gate.numel() and _row_stride(gate) is not None and _row_stride(up) is not None):
            h = _silu_mul_call(gate, up)
        else:
            h = self.act_fn(gate) * up
    if reset_native_residual is None:
        return self.down_proj(h)
    from .fused_residual import linear_add

    return linear_add(self.down_proj, h, reset_native_residual)


def fuse_mlp(model) -> int:
    """Routes every Llama/Qwen2/Qwen3 MLP with a SiLU activation through the one-kernel product; returns how many.

    Idempotent; other modules are left alone. Undo with :func:`unfuse_mlp`.
    """
    return route_forward(model, _eligible, _KEY, _fused_forward)


def _eligible(module) -> bool:
    return (type(module).__name__ in _SUPPORTED and type(getattr(module, "act_fn", None)).__name__ in _SILU
            and all(hasattr(module, a) for a in ("gate_proj", "up_proj", "down_proj")))


def unfuse_mlp(model) -> int:
    """Restores the MLP modules' own forward; returns how many were restored."""
    return restore_forward(model, _KEY)
