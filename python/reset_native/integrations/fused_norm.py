"""One-kernel RMSNorm for Llama/Qwen-style transformers models on CUDA.

transformers computes ``weight * (x.float() * rsqrt(x.float().pow(2).mean(-1) + eps)).to(x.dtype)`` as about
seven small kernels; a Qwen3-8B decode step runs 145 of these norms, ~1.9 ms of kernel time on an H100
(``bench/bench_e2e.py --profile``). :func:`fuse_rms_norms` routes those modules through
``torch.ops.reset_native.rms_norm``, one kernel with the same operations in the same precision (only the
order of the fp32 sum of squares differs, so results agree to within one rounding of the output dtype).
CPU tensors, mixed dtypes and non-contiguous inputs keep the module's own forward. Works inside CUDA graphs
and torch.compile (no host synchronisation, no allocation beyond the output).
"""
# No "from __future__ import annotations": torch.library infers the op schema from real annotations.
import torch

from .. import _core
from .. import _torch_launch as _launch
from ._forward_patch import restore_forward, route_forward

_native = _core.ops
#: True when this build contains the CUDA kernel.
AVAILABLE = bool(getattr(_native, "cuda_kernels", False))
# Classes known to implement exactly the Llama RMSNorm formula above (Gemma's uses 1 + weight: not listed).
_SUPPORTED = ("LlamaRMSNorm", "Qwen2RMSNorm", "Qwen3RMSNorm", "Qwen3MoeRMSNorm", "MistralRMSNorm",
              "SmolLM3RMSNorm")
_DTYPES = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}


def _rms_norm_impl(x, weight, eps):
    """The op's body (validates its inputs); eager callers run it directly (_torch_launch: no dispatcher)."""
    _check(x, weight, eps)
    if x.device.type != "cuda":
        return reference(x, weight, eps)
    if not AVAILABLE:
        raise NotImplementedError("reset_native was built without CUDA kernels: rms_norm needs RESET_NATIVE_CUDA=ON")
    y = torch.empty_like(x)
    h = x.shape[-1]
    if x.numel() == 0:  # nothing to launch (an empty tensor may not even have an address)
        return y
    index = x.device.index
    with _launch.on_device(index):
        _native.cuda_rms_norm(x.data_ptr(), weight.data_ptr(), y.data_ptr(), x.numel() // h, h, float(eps),
                              _DTYPES[x.dtype], _launch.raw_stream(index))
    return y


# Registered at import, not on first use: dynamo traces through functools.lru_cache wrappers (ignoring the cache),
# so a compiled caller must find the op in torch.ops without running a registration.
def _register() -> None:
    @torch.library.custom_op("reset_native::rms_norm", mutates_args=())
    def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
        return _rms_norm_impl(x, weight, eps)

    @rms_norm.register_fake
    def _(x, weight, eps):
        return torch.empty_like(x)


_register()


def _op():
    return torch.ops.reset_native.rms_norm


def _check(x, weight, eps) -> None:
    if not isinstance(x, torch.Tensor) or not isinstance(weight, torch.Tensor):
        raise TypeError(f"x and weight must be torch.Tensors, got {type(x).__name__} and {type(weight).__name__}")
    if x.dtype not in _DTYPES or weight.dtype != x.dtype:
        raise TypeError(f"x and weight must share one dtype of float32/float16/bfloat16, got {x.dtype} and "
                        f"{weight.dtype}")
    if x.dim() < 1 or weight.dim() != 1 or weight.shape[0] != x.shape[-1] or x.shape[-1] == 0:
        raise ValueError(f"weight must be 1-D with the size of x's last dimension, got x {tuple(x.shape)} and "
                         f"weight {tuple(weight.shape)}")
    if weight.device != x.device:
        raise ValueError(f"x is on {x.device} but weight is on {weight.device}")
    if not x.is_contiguous() or not weight.is_contiguous():
        raise ValueError("x and weight must be contiguous")
    if not (isinstance(eps, float) and eps >= 0.0):
        raise ValueError(f"eps must be a float >= 0, got {eps!r}")


def reference(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """transformers' LlamaRMSNorm forward, operation by operation (the CPU path of the op)."""
    h = x.to(torch.float32)
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return weight * h.to(x.dtype)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm of x over its last dimension times weight (see the module docstring); CUDA: one kernel. Outside a
    torch.compile trace the op's body runs directly (no dispatcher); inside, the op stands in the graph."""
    if _launch.eager_without_grad(x, weight):
        return _rms_norm_impl(x, weight, float(eps))
    return _op()(x, weight, float(eps))


def _fused_forward(self, hidden_states):
    w = self.weight
    if (hidden_states.is_cuda and hidden_states.dtype == w.dtype and hidden_states.device == w.device
            and hidden_states.is_contiguous() and AVAILABLE):
        return rms_norm(hidden_states, w, self.variance_epsilon)
    return self._reset_native_original_forward(hidden_states)


def fuse_rms_norms(model) -> int:
    """Routes every Llama/Qwen-style RMSNorm module of ``model`` through the one-kernel op; returns how many.

    Idempotent; modules of other classes are left alone. Undo with :func:`unfuse_rms_norms`.
    """
    return route_forward(model, _eligible, "_reset_native_original_forward", _fused_forward)


def _eligible(module) -> bool:
    return type(module).__name__ in _SUPPORTED and hasattr(module, "variance_epsilon")


def unfuse_rms_norms(model) -> int:
    """Restores the modules' own forward; returns how many were restored."""
    return restore_forward(model, "_reset_native_original_forward")
