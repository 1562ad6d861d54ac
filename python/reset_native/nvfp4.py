"""NVFP4: exact quantization, dequantization and a GEMV that reads packed weights (CPU and CUDA).

Format and quantization semantics follow shared/docs/SPEC-nvfp4.md bit for bit: E2M1 elements packed two per
byte (element 2i in the low nibble), one E4M3 block scale per 16 elements along K (linear [N, K/16] layout),
and one fp32 ``global_scale`` that is the *decode multiplier* ``amax / 2688``. Block scales are clamped to
[2^-9, 448] (torchao clamps at 2^-6 instead).

Arrays come back as the kind (numpy / torch) and on the device of the input. numpy float32 / float16 and torch
float32 / float16 / bfloat16 (CPU or CUDA) are accepted. Torch is optional: it is only imported when a torch
tensor is passed.

W4A4 (``gemv(..., activation="nvfp4")``), the exact semantics every backend implements:

1. The activation global scale ``gx`` is ``act_global_scale`` when given (a static, calibrated decode
   multiplier such as ModelOpt's ``input_scale``), otherwise it is computed per call over the WHOLE x:
   ``gx = amax(|x|) / 2688`` in fp32 (``gx = 1`` when x is all zeros).
2. Every row of x [M, K] is quantized exactly like a weight row with that global scale: per 16-element block
   ``bs = amax_b / (6 * gx)`` clamped to [2^-9, 448] and rounded to E4M3 (RNE); each element
   ``RNE_E2M1(x / (e4m3(bs) * gx))`` saturating at +-6 (SPEC section 2, steps 2-5). Non-finite x is an error.
3. ``y[m, n] = gw * gx * sum_b e4m3(sw[n, b]) * e4m3(sx[m, b]) * sum_j e2m1(cw[n, 16b+j]) * e2m1(cx[m, 16b+j])``:
   the products of the two quantized operands are exact; the sum over K is accumulated in fp32 (order
   unspecified), then scaled by the two global scales, ``bias`` is added in fp32 and the result is rounded
   once to x's dtype. Any two correct backends agree to fp32 accumulation error, not bit for bit.

W4A16 (``activation="bf16"``, the default) multiplies x as given (float32, float16 or bfloat16; the name is
the serving-path convention) by the dequantized weights with fp32 accumulation: ``y = x @ dequantize(t).T``.
"""
from __future__ import annotations

import math
import os
import sys
from typing import Any, Optional, Tuple

import numpy as np

from . import _core
from . import _nvfp4_prefill_cpu
from . import _torch_launch  # imports torch only when asked (a tensor in hand)

__all__ = [
    "BLOCK_SIZE",
    "NVFP4Tensor",
    "quantize",
    "dequantize",
    "gemv",
    "swizzle_block_scales",
    "unswizzle_block_scales",
    "cpu_info",
]

BLOCK_SIZE = 16
_C = _core.nvfp4
_ACTIVATIONS = ("bf16", "nvfp4")

# ---------------------------------------------------------------------------------------------- array kinds


def _is_torch(a: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(a, torch.Tensor)


def _kind(a: Any, name: str) -> str:
    if isinstance(a, np.ndarray):
        return "numpy"
    if _is_torch(a):
        if not (a.is_cuda or a.is_cpu):  # the two device types; cheaper than building a.device per call
            raise ValueError(f"{name} is on device {a.device}; reset_native.nvfp4 supports cpu and cuda tensors")
        return "torch"
    raise TypeError(f"{name} must be a numpy array or a torch tensor, got {type(a).__name__}")


def _same_device(a: Any, b: Any) -> bool:
    """Whether a and b live on one device; two torch tensors compare their devices without formatting names."""
    if _is_torch(a) and _is_torch(b):
        return a.device == b.device
    return _device(a) == _device(b)


def _device(a: Any) -> str:
    return str(a.device) if _is_torch(a) else "cpu"


def _is_cuda(a: Any) -> bool:
    return _is_torch(a) and a.is_cuda


def _float_dtype_name(a: Any, name: str) -> str:
    """'float32' / 'float16' / 'bfloat16' for a supported floating array, else TypeError."""
    if isinstance(a, np.ndarray):
        names = {np.dtype(np.float32): "float32", np.dtype(np.float16): "float16"}
        found = names.get(a.dtype)
        allowed = "numpy float32 or float16"
    else:
        found = _TORCH_FLOAT_NAMES.get(str(a.dtype))
        allowed = "torch float32, float16 or bfloat16"
    if found is None:
        raise TypeError(f"{name} must have dtype {allowed}, got {a.dtype}")
    return found


# By the dtype's name: a constant that needs no torch import, and torch.compile traces the lookup without the warning
# a functools.lru_cache draws (on every compiled NVFP4Linear).
_TORCH_FLOAT_NAMES = {"torch.float32": "float32", "torch.float16": "float16", "torch.bfloat16": "bfloat16"}


def _is_contiguous(a: Any) -> bool:
    return bool(a.flags["C_CONTIGUOUS"]) if isinstance(a, np.ndarray) else bool(a.is_contiguous())


def _require_contiguous(a: Any, name: str) -> None:
    if not _is_contiguous(a):
        fix = "np.ascontiguousarray(...)" if isinstance(a, np.ndarray) else ".contiguous()"
        raise ValueError(f"{name} must be C-contiguous (row-major); make an explicit copy with {fix}")


def _as_numpy(a: Any) -> np.ndarray:
    """A zero-copy numpy view of a CPU array; bfloat16 tensors are viewed as their uint16 bit patterns."""
    if isinstance(a, np.ndarray):
        return a
    torch = sys.modules["torch"]
    if a.dtype == torch.bfloat16:
        return a.detach().view(torch.int16).numpy().view(np.uint16)
    if a.dtype == getattr(torch, "float8_e4m3fn", None):
        return a.detach().view(torch.uint8).numpy()
    return a.detach().numpy()


def _empty_like_kind(like: Any, shape: Tuple[int, ...], dtype_name: str) -> Any:
    """An uninitialized array of the kind and device of ``like``."""
    if isinstance(like, np.ndarray):
        return np.empty(shape, dtype=np.dtype(dtype_name))
    torch = sys.modules["torch"]
    return torch.empty(shape, dtype=getattr(torch, dtype_name), device=like.device)


def _check_scale(value: Any, name: str) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        if _is_torch(value) and value.numel() == 1:
            value = float(value.item())
        else:
            raise TypeError(f"{name} must be a float (or None), got {type(value).__name__}")
    value = float(value)
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{name} must be finite and > 0 (a decode multiplier), got {value}")
    return value


def _check_float_matrix(a: Any, name: str, ndims: Tuple[int, ...] = (2,)) -> str:
    """Validates a float activation / weight array; returns its dtype name."""
    _kind(a, name)
    dtype_name = _float_dtype_name(a, name)
    if a.ndim not in ndims:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{name} must be {want}, got {a.ndim}-D with shape {tuple(a.shape)}")
    if 0 in a.shape:
        raise ValueError(f"{name} must be non-empty, got shape {tuple(a.shape)}")
    if int(a.shape[-1]) % BLOCK_SIZE != 0:
        raise ValueError(f"{name}: K (last dimension) must be a multiple of 16, got shape {tuple(a.shape)}")
    _require_contiguous(a, name)
    return dtype_name


def _first_nonfinite(a: Any) -> Optional[Tuple[Tuple[int, ...], str]]:
    """Index and text ('nan' / 'inf' / '-inf') of the first non-finite element of a torch tensor, or None."""
    torch = sys.modules["torch"]
    bad = ~torch.isfinite(a)
    if not bool(bad.any()):
        return None
    flat = int(torch.nonzero(bad.reshape(-1))[0, 0])
    index = tuple(int(i) for i in np.unravel_index(flat, tuple(a.shape)))
    value = float(a.reshape(-1)[flat].item())
    return index, ("nan" if math.isnan(value) else ("inf" if value > 0 else "-inf"))


def _check_finite_cuda(a: Any, what: str, name: str) -> None:
    found = _first_nonfinite(a)
    if found is not None:
        (row, col), text = found
        raise ValueError(f"{what}: {name}[{row}, {col}] is {text}; NVFP4 quantization needs finite input")


def _cuda_backend() -> Any:
    import reset_native

    try:
        from . import _nvfp4_cuda
    except ImportError as exc:  # pragma: no cover - depends on the CUDA build
        raise NotImplementedError(f"reset_native.nvfp4: the CUDA backend is not available ({exc})") from exc
    # Under torch.compile the device query (a native call, which dynamo cannot trace: a graph break in every
    # NVFP4Linear) is skipped: the trace holds a CUDA tensor, so torch has the device, and the kernels' presence is
    # _nvfp4_cuda.AVAILABLE, a plain bool.
    if not (reset_native.has_cuda() if _torch_launch.eager() else _nvfp4_cuda.AVAILABLE):
        raise NotImplementedError(
            "reset_native.nvfp4: a CUDA tensor was given but this build has no CUDA kernels or no usable "
            "CUDA device (reset_native.has_cuda() is False); move the data to the CPU")
    return _nvfp4_cuda


# ---------------------------------------------------------------------------------------------- the tensor


class NVFP4Tensor:
    """An NVFP4 matrix [N, K]: ``packed`` uint8 [N, K/2], ``block_scales`` uint8 [N, K/16] (E4M3 bit
    patterns, linear layout) and ``global_scale`` (float, decode multiplier). The two arrays are numpy arrays
    or torch tensors (CPU or CUDA) of the same kind on the same device; ``.device`` reports it.

    Read-only: the three parts are validated once, here, and the CUDA GEMV trusts them from then on (a part
    swapped afterwards could send a host pointer or a short scale array to a kernel). Build a new tensor instead;
    copies and pickles rebuild (and so revalidate) through the constructor."""

    __slots__ = ("packed", "block_scales", "global_scale")

    def __init__(self, packed: Any, block_scales: Any, global_scale: float):
        kind = _kind(packed, "packed")
        if _kind(block_scales, "block_scales") != kind:
            raise TypeError(f"packed and block_scales must both be numpy arrays or both torch tensors, got "
                            f"{type(packed).__name__} and {type(block_scales).__name__}")
        if kind == "torch":
            torch = sys.modules["torch"]
            fp8 = getattr(torch, "float8_e4m3fn", None)
            if fp8 is not None and block_scales.dtype == fp8:  # checkpoints store E4M3 as float8_e4m3fn
                block_scales = block_scales.view(torch.uint8)
        for name, a in (("packed", packed), ("block_scales", block_scales)):
            if str(a.dtype) not in ("uint8", "torch.uint8"):
                raise TypeError(f"{name} must have dtype uint8, got {a.dtype}")
            if a.ndim != 2:
                raise ValueError(f"{name} must be 2-D, got shape {tuple(a.shape)}")
            _require_contiguous(a, name)
        n, half_k = (int(s) for s in packed.shape)
        if n == 0 or half_k == 0:
            raise ValueError(f"packed must be non-empty, got shape {(n, half_k)}")
        if half_k % (BLOCK_SIZE // 2) != 0:
            raise ValueError(f"packed must have shape [N, K/2] with K a multiple of 16, got shape {(n, half_k)}")
        k = 2 * half_k
        if tuple(int(s) for s in block_scales.shape) != (n, k // BLOCK_SIZE):
            raise ValueError(f"block_scales must have shape [N, K/16] = {(n, k // BLOCK_SIZE)} for packed of "
                             f"shape {(n, half_k)}, got {tuple(block_scales.shape)}")
        if _device(packed) != _device(block_scales):
            raise ValueError(f"packed and block_scales must be on the same device, got {_device(packed)} and "
                             f"{_device(block_scales)}")
        gs = _check_scale(global_scale, "global_scale")
        if gs is None:
            raise TypeError("global_scale must be a float, got None")
        object.__setattr__(self, "packed", packed)
        object.__setattr__(self, "block_scales", block_scales)
        object.__setattr__(self, "global_scale", gs)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"NVFP4Tensor is read-only (validated once, at construction): build a new one instead "
                             f"of setting {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"NVFP4Tensor is read-only: cannot delete {name!r}")

    def __reduce__(self):
        return (type(self), (self.packed, self.block_scales, self.global_scale))

    @classmethod
    def from_parts(cls, packed: Any, block_scales: Any, global_scale: float) -> "NVFP4Tensor":
        """Builds a tensor from existing data (e.g. a ModelOpt checkpoint's weight / weight_scale /
        weight_scale_2), validating dtypes, shapes and devices. float8_e4m3fn scales are viewed as uint8.

        Scales held on the CPU are also checked for bytes no quantizer writes (a set sign bit, or the E4M3 NaN
        0x7F), which would otherwise turn whole rows of outputs into NaN or flip their sign. Scales already on
        a CUDA device are not scanned: that would need a host synchronisation (e.g. inside graph capture)."""
        t = cls(packed, block_scales, global_scale)
        if not _is_cuda(t.block_scales):
            scales = _as_numpy(t.block_scales)
            bad = np.flatnonzero(scales.reshape(-1) >= 0x7F)
            if bad.size:
                row, col = divmod(int(bad[0]), int(scales.shape[1]))
                raise ValueError(f"block_scales[{row}, {col}] = 0x{int(scales[row, col]):02X} is not a valid NVFP4 "
                                 f"block scale (E4M3 bytes 0x00..0x7E; the sign bit is never set, 0x7F is NaN)")
        return t

    @property
    def shape(self) -> Tuple[int, int]:
        return int(self.packed.shape[0]), 2 * int(self.packed.shape[1])

    @property
    def device(self) -> Any:
        """'cpu' for numpy arrays, the tensors' torch.device otherwise."""
        return self.packed.device if _is_torch(self.packed) else "cpu"

    @property
    def nbytes(self) -> int:
        """Bytes of packed data plus block scales (the global scale is 4 more)."""
        return int(self.packed.shape[0] * self.packed.shape[1] + self.block_scales.shape[0]
                   * self.block_scales.shape[1])

    def __repr__(self) -> str:
        kind = "torch" if _is_torch(self.packed) else "numpy"
        return (f"NVFP4Tensor(shape={self.shape}, global_scale={self.global_scale!r}, kind={kind}, "
                f"device={_device(self.packed)})")


def _check_tensor(t: Any) -> NVFP4Tensor:
    if not isinstance(t, NVFP4Tensor):
        raise TypeError(f"t must be an NVFP4Tensor, got {type(t).__name__}")
    return t


def _check_same_device(t: NVFP4Tensor, a: Any, name: str) -> None:
    if not _same_device(t.packed, a):
        raise ValueError(f"t is on {_device(t.packed)} but {name} is on {_device(a)}; move them to one device")


# ---------------------------------------------------------------------------------------------- operations


def quantize(w: Any, *, global_scale: Optional[float] = None) -> NVFP4Tensor:
    """Quantizes a 2-D array w [N, K] (K % 16 == 0) to NVFP4, bit-exactly as SPEC-nvfp4 section 2.

    ``global_scale=None`` computes the decode multiplier amax(|w|) / 2688 (1 for an all-zero w); a given value
    is used as is (e.g. a static activation scale). NaN / Inf in w raise ValueError naming the first index."""
    dtype_name = _check_float_matrix(w, "w")
    gs = _check_scale(global_scale, "global_scale")
    n, k = (int(s) for s in w.shape)
    if _is_cuda(w):
        backend = _cuda_backend()
        _check_finite_cuda(w, "quantize", "w")
        packed, scales, used = backend.quantize(w, gs)
        return NVFP4Tensor(packed, scales, float(used))
    packed = _empty_like_kind(w, (n, k // 2), "uint8")
    scales = _empty_like_kind(w, (n, k // BLOCK_SIZE), "uint8")
    used = _C.quantize(_as_numpy(w), dtype_name, _as_numpy(packed), _as_numpy(scales), gs)
    return NVFP4Tensor(packed, scales, float(used))


def _out_dtype_name(t: NVFP4Tensor, dtype: Any) -> str:
    kind = "torch" if _is_torch(t.packed) else "numpy"
    if isinstance(dtype, str):
        name = dtype
    elif kind == "torch" and _is_torch_dtype(dtype):
        name = str(dtype).replace("torch.", "")
    else:
        try:
            name = np.dtype(dtype).name
        except TypeError:
            name = str(dtype)
    allowed = ("float32", "float16", "bfloat16") if kind == "torch" else ("float32", "float16")
    if name not in allowed:
        raise TypeError(f"dtype must be one of {', '.join(allowed)} for a {kind} NVFP4Tensor, got {dtype}")
    return name


def _is_torch_dtype(d: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(d, torch.dtype)


def dequantize(t: NVFP4Tensor, dtype: Any = np.float32) -> Any:
    """The exact values ``e2m1 * e4m3 * global_scale`` as an [N, K] array of ``dtype`` (float32 by default;
    float16 / bfloat16 are rounded once, to nearest even, from the exact value). Same kind/device as t."""
    t = _check_tensor(t)
    name = _out_dtype_name(t, dtype)
    n, k = t.shape
    if _is_cuda(t.packed):
        torch = sys.modules["torch"]
        return _cuda_backend().dequantize(t.packed, t.block_scales, t.global_scale, getattr(torch, name))
    out = _empty_like_kind(t.packed, (n, k), name)
    _C.dequantize(_as_numpy(t.packed), _as_numpy(t.block_scales), t.global_scale, _as_numpy(out), name)
    return out


def gemv(t: NVFP4Tensor, x: Any, *, activation: str = "bf16", act_global_scale: Optional[float] = None,
         bias: Any = None) -> Any:
    """``y = x @ dequantize(t).T (+ bias)`` straight from the packed weights, fp32 accumulation.

    x is [M, K] or [K] (float32 / float16 / bfloat16); y is [M, N] (or [N]) in x's dtype, of x's kind and on
    its device. ``activation="bf16"`` (W4A16) uses x as given; ``activation="nvfp4"`` (W4A4) first quantizes
    x to NVFP4 with per-16 block scales per row and one global scale per call (amax(x)/2688 over the whole x,
    or ``act_global_scale`` when given); see the module docstring for the exact semantics. ``bias`` is an
    optional [N] array of x's dtype, kind and device. Any M works; on CUDA M <= 16 is the decode GEMV, and from 80
    tokens (32 for W4A16 with float32 x) the weights are expanded chunk by chunk for cuBLAS (docs/nvfp4_cuda.md,
    "Prefill"); on the CPU from 48 tokens they are expanded for BLAS (docs/nvfp4.md)."""
    t = _check_tensor(t)
    n, k = t.shape
    dtype_name = _check_float_matrix(x, "x", ndims=(1, 2))
    if int(x.shape[-1]) != k:
        raise ValueError(f"x has K = {int(x.shape[-1])} (shape {tuple(x.shape)}) but t has K = {k} "
                         f"(shape {t.shape})")
    _check_same_device(t, x, "x")
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be 'bf16' (W4A16) or 'nvfp4' (W4A4), got {activation!r}")
    act_gs = _check_scale(act_global_scale, "act_global_scale")
    if act_gs is not None and activation != "nvfp4":
        raise ValueError("act_global_scale is only used with activation='nvfp4' (W4A4)")
    if bias is not None:
        if _kind(bias, "bias") != _kind(x, "x"):
            raise TypeError(f"bias must be of the same kind as x ({type(x).__name__}), got {type(bias).__name__}")
        if _float_dtype_name(bias, "bias") != dtype_name:
            raise TypeError(f"bias must have x's dtype {x.dtype}, got {bias.dtype}")
        if tuple(bias.shape) != (n,):
            raise ValueError(f"bias must have shape ({n},) (N of t), got {tuple(bias.shape)}")
        if not _same_device(bias, x):
            raise ValueError(f"bias is on {_device(bias)} but x is on {_device(x)}")
        _require_contiguous(bias, "bias")
    x2 = x.reshape(1, k) if x.ndim == 1 else x
    if _is_cuda(x2):
        y = _gemv_cuda(t, x2, activation, act_gs, bias)
    elif _is_torch(x2) and not _torch_launch.eager():
        # A torch.compile trace: the native call is opaque to dynamo (a graph break in every NVFP4Linear), so the
        # CPU GEMV stands in the graph as a custom op whose body is _gemv_cpu (importing the module registers it).
        from . import _nvfp4_cpu_op

        y = _nvfp4_cpu_op.op()(t.packed, t.block_scales, t.global_scale, x2, activation, act_gs, bias)
    else:
        y = _gemv_cpu(t, x2, dtype_name, activation, act_gs, bias)
    return y.reshape(n) if x.ndim == 1 else y


def _gemv_cpu(t: NVFP4Tensor, x2: Any, dtype_name: str, activation: str, act_gs: Optional[float], bias: Any) -> Any:
    """The CPU GEMV of checked arguments (gemv's): [M, N] of x2's kind and dtype."""
    m, n = int(x2.shape[0]), t.shape[0]
    y = None
    if m > 1 and _nvfp4_prefill_cpu.use_route(m, activation):
        y = _gemv_cpu_prefill(t, x2, bias, dtype_name, activation, act_gs)
    if y is None:  # decode-sized M, or W4A4 with a NaN / Inf in x (the kernels raise the error)
        y = _empty_like_kind(x2, (m, n), dtype_name)
        _C.gemv(_as_numpy(t.packed), _as_numpy(t.block_scales), t.global_scale, _as_numpy(x2), dtype_name,
                _as_numpy(y), None if bias is None else _as_numpy(bias), activation, act_gs)
    return y


def _float32_same_kind(a: Any) -> Any:
    """A CPU array as float32 of its own kind (numpy, or a torch tensor detached from autograd)."""
    return a.astype(np.float32, copy=False) if isinstance(a, np.ndarray) else a.detach().float()


def _gemv_cpu_prefill(t: NVFP4Tensor, x2: Any, bias: Any, dtype_name: str, activation: str,
                      act_gs: Optional[float]) -> Any:
    """The CPU from _nvfp4_prefill_cpu.MIN_TOKENS tokens: dequantize + BLAS, rounded once to x's dtype; None for a
    W4A4 x with a NaN / Inf (the caller runs the kernels, which raise the error)."""
    operand, scale = _float32_same_kind(x2), t.global_scale
    if activation == "nvfp4":
        quantized = _nvfp4_prefill_cpu.w4a4_operand(_as_numpy(operand), act_gs)
        if quantized is None:
            return None
        operand, gx = quantized
        if not isinstance(x2, np.ndarray):
            operand = sys.modules["torch"].from_numpy(operand)
        scale = float(np.float64(t.global_scale) * gx)  # gw * gx, as the kernels' double product
    y32 = _nvfp4_prefill_cpu.gemm(_as_numpy(t.packed), _as_numpy(t.block_scales), scale, operand,
                                  None if bias is None else _as_numpy(_float32_same_kind(bias)))
    if isinstance(x2, np.ndarray):
        return y32.astype(np.dtype(dtype_name), copy=False)
    torch = sys.modules["torch"]
    return torch.from_numpy(y32).to(getattr(torch, dtype_name))


_CUDA_MAX_TOKENS = 16  # the CUDA GEMV kernels take up to 16 tokens per launch


def _gemv_cuda(t: NVFP4Tensor, x2: Any, activation: str, act_gs: Optional[float], bias: Any) -> Any:
    """CUDA GEMV. No host synchronisation for M <= 16 (the decode path, CUDA-graph capturable); in particular
    x is NOT scanned for NaN/Inf in W4A4 (non-finite x gives non-finite outputs). Larger M (prefill): W4A16 with
    16-bit x and W4A4 from _nvfp4_prefill.MIN_TOKENS tokens (W4A16 with float32 x from MIN_TOKENS_FP32) expand
    the weights chunk by chunk and multiply with cuBLAS, and 17.._nvfp4_prefill.MID_MAX_TOKENS tokens of 16-bit x
    (K % 128 == 0) run the medium-M GEMM kernel (_nvfp4_prefill.route); other calls run in 16-token slices.
    With a dynamic W4A4 scale the one per-call scale amax(x)/2688 is computed first (in float32 on the device, as
    the kernels do) so every slice uses the same scale, which costs one host read (and a NaN / Inf in x raises
    ValueError there)."""
    backend = _cuda_backend()
    m = int(x2.shape[0])
    if m <= _CUDA_MAX_TOKENS:  # the checks above cover the backend's (gemv_prechecked)
        return backend.gemv_prechecked(t.packed, t.block_scales, t.global_scale, x2, activation, act_gs, bias)
    from . import _nvfp4_prefill

    chosen = _nvfp4_prefill.route(m, t.shape[0], activation, x2, bias)
    if chosen == "mid":
        return _nvfp4_prefill.mid_gemm(t.packed, t.block_scales, t.global_scale, x2, activation, act_gs, bias)
    if chosen == "dequant":
        if activation == "nvfp4":
            return _nvfp4_prefill.w4a4_gemm(t.packed, t.block_scales, t.global_scale, x2, act_gs, bias)
        return _nvfp4_prefill.gemm(t.packed, t.block_scales, t.global_scale, x2, bias)
    torch = sys.modules["torch"]
    if activation == "nvfp4" and act_gs is None:
        act_gs = _nvfp4_prefill.act_global_scale(x2)  # one scale for every slice (raises for non-finite x)
    slices = [backend.gemv(t.packed, t.block_scales, t.global_scale, x2[i:i + _CUDA_MAX_TOKENS], activation,
                           act_gs, bias) for i in range(0, m, _CUDA_MAX_TOKENS)]
    return torch.cat(slices, dim=0)


# ---------------------------------------------------------------------------------------------- layouts


def _round_up(v: int, to: int) -> int:
    return (v + to - 1) // to * to


def _check_scale_array(a: Any, name: str) -> None:
    _kind(a, name)
    if str(a.dtype) not in ("uint8", "torch.uint8"):
        raise TypeError(f"{name} must have dtype uint8, got {a.dtype}")
    if 0 in a.shape:
        raise ValueError(f"{name} must be non-empty, got shape {tuple(a.shape)}")
    _require_contiguous(a, name)


def swizzle_block_scales(block_scales: Any) -> Any:
    """Linear [N, C] scales -> the 128x4 layout of cuBLAS/CUTLASS, shape [round_up(N, 128), round_up(C, 4)]
    (row-major bytes; padding is 0). Same kind and device as the input."""
    _check_scale_array(block_scales, "block_scales")
    if block_scales.ndim != 2:
        raise ValueError(f"block_scales must be 2-D [N, K/16], got shape {tuple(block_scales.shape)}")
    rows, cols = (int(s) for s in block_scales.shape)
    shape = (_round_up(rows, 128), _round_up(cols, 4))
    if _is_cuda(block_scales):
        torch = sys.modules["torch"]
        padded = torch.zeros(shape, dtype=torch.uint8, device=block_scales.device)
        padded[:rows, :cols] = block_scales
        # [R/128, 4 (r%128/32), 32 (r%32), C/4, 4 (c%4)] -> [R/128, C/4, r%32, r%128/32, c%4]
        tiles = padded.view(shape[0] // 128, 4, 32, shape[1] // 4, 4).permute(0, 3, 2, 1, 4)
        return tiles.contiguous().view(shape)
    out = _empty_like_kind(block_scales, shape, "uint8")
    _C.swizzle_block_scales(_as_numpy(block_scales), _as_numpy(out))
    return out


def unswizzle_block_scales(swizzled: Any, shape: Tuple[int, int]) -> Any:
    """Inverse of swizzle_block_scales: ``shape`` = (N, C) of the linear scales (C = K/16). The input may be
    2-D [round_up(N, 128), round_up(C, 4)] or flat."""
    _check_scale_array(swizzled, "swizzled")
    try:
        rows, cols = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise TypeError(f"shape must be a pair (N, K/16), got {shape!r}") from None
    if rows <= 0 or cols <= 0:
        raise ValueError(f"shape must be positive, got {(rows, cols)}")
    padded = (_round_up(rows, 128), _round_up(cols, 4))
    size = int(np.prod(tuple(int(s) for s in swizzled.shape)))
    if size != padded[0] * padded[1]:
        raise ValueError(f"swizzled must hold {padded[0]} x {padded[1]} = {padded[0] * padded[1]} bytes for "
                         f"shape {(rows, cols)}, got shape {tuple(swizzled.shape)}")
    if _is_cuda(swizzled):
        tiles = swizzled.reshape(padded[0] // 128, padded[1] // 4, 32, 4, 4).permute(0, 3, 2, 1, 4)
        return tiles.reshape(padded)[:rows, :cols].contiguous()
    out = _empty_like_kind(swizzled, (rows, cols), "uint8")
    _C.unswizzle_block_scales(_as_numpy(swizzled), _as_numpy(out))
    return out


def cpu_info() -> dict:
    """The CPU code path and threading the CPU kernels use in this process: ``kernel`` (what quantize / gemv
    run now: "avx512" when the CPU has AVX-512F, else "avx2" when it has AVX2, else "scalar"; the environment
    variable ``RESET_NATIVE_CPU_ISA`` = scalar | avx2 | avx512 forces one (avx512 = the AVX-512F GEMV with
    the AVX2 quantize), and naming one
    this CPU lacks makes this and every CPU call raise NotImplementedError),
    ``available`` (the kernels this CPU can run), ``threads`` (default thread count: the physical cores this
    process may run on, or OMP_NUM_THREADS when set), ``physical_cores`` and ``logical_cpus``."""
    available = ["scalar"] + (["avx2"] if _C.avx2_available() else []) + (["avx512"] if _C.avx512_available() else [])
    return {"kernel": _C.selected_kernel("auto"), "available": available, "threads": _C.default_threads(),
            "physical_cores": _C.physical_cores(),
            "logical_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()}
