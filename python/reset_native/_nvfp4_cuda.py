"""CUDA backend of ``reset_native.nvfp4`` for torch CUDA tensors (Hopper kernels, see docs/nvfp4_cuda.md).

The public front (``reset_native.nvfp4``) validates its inputs and calls :func:`quantize`, :func:`dequantize` and
:func:`gemv` here with contiguous tensors on one CUDA device. ``dequantize``, ``gemv`` and the medium-M GEMM
(:func:`gemm_mid`, 17..128 tokens of 16-bit x, reached through ``reset_native.nvfp4.gemv``) are torch custom ops
(``torch.ops.reset_native.nvfp4_dequantize`` / ``nvfp4_gemv`` / ``nvfp4_gemm_mid``): they enqueue on the current
stream, never synchronise with the host and allocate nothing but their output (and the medium-M GEMM's workspace),
so they work inside CUDA graphs and under ``torch.compile``. ``quantize`` is an offline step: it reads max|w| back to
the host.

Importing this module imports torch when it is installed and registers the ops (a torch.compile trace cannot
register them itself); nothing else imports it before a CUDA tensor is in hand, so numpy-only use stays torch-free.
"""
# No "from __future__ import annotations": torch.library infers the op schemas from real annotations.
import functools
import importlib.util
import math

from . import _core
from . import _torch_launch as _launch

_native = _core.nvfp4

#: True when this build contains the CUDA kernels.
AVAILABLE = bool(getattr(_native, "cuda_kernels", False))
#: Most tokens (rows of x) one GEMV call accepts.
MAX_TOKENS = 16
_AMAX_TO_GLOBAL = 2688.0  # 6 * 448
_ACTIVATIONS = ("bf16", "nvfp4")


def _torch():
    import torch

    return torch


def _require_kernels() -> None:
    if not AVAILABLE:
        raise NotImplementedError(
            "reset_native was built without CUDA kernels (RESET_NATIVE_CUDA=OFF or no nvcc at build time); "
            "rebuild with RESET_NATIVE_CUDA=ON to use NVFP4 on CUDA tensors"
        )


@functools.lru_cache(maxsize=None)
def _dtype_codes() -> dict:
    torch = _torch()
    return {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}


def _dtype_code(dtype, name: str) -> int:
    code = _dtype_codes().get(dtype)
    if code is None:
        raise TypeError(f"{name} must be float32, float16 or bfloat16, got {dtype}")
    return code


def _check_cuda(t, name: str, device=None) -> None:
    if not isinstance(t, _torch().Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    dev = t.device  # a new torch.device per read: read once (this runs on every eager call)
    if dev.type != "cuda":
        raise ValueError(f"{name} must be a CUDA tensor, got device {dev}")
    if device is not None and dev != device:
        raise ValueError(f"{name} is on {dev} but the weights are on {device}: all tensors must share one device")
    if not t.is_contiguous():
        raise ValueError(f"{name} must be contiguous")


def _check_weights(packed, block_scales):
    torch = _torch()
    _check_cuda(packed, "packed")
    _check_cuda(block_scales, "block_scales", packed.device)
    if packed.dtype != torch.uint8 or block_scales.dtype != torch.uint8:
        raise TypeError(f"packed and block_scales must be uint8, got {packed.dtype} and {block_scales.dtype}")
    if packed.dim() != 2 or block_scales.dim() != 2:
        raise ValueError(f"packed and block_scales must be 2-D, got shapes {tuple(packed.shape)} and "
                         f"{tuple(block_scales.shape)}")
    n, half_k = packed.shape
    k = 2 * half_k
    if k == 0 or k % 16 != 0 or tuple(block_scales.shape) != (n, k // 16):
        raise ValueError(f"packed [N, K/2] = {tuple(packed.shape)} needs K % 16 == 0 and block_scales of shape "
                         f"[N, K/16] = {(n, k // 16)}, got {tuple(block_scales.shape)}")
    return n, k


def _check_bias(bias, n: int, dtype, device) -> None:
    """None, or a contiguous [n] CUDA tensor of dtype on device."""
    if bias is not None:
        _check_cuda(bias, "bias", device)
        if bias.dtype != dtype or tuple(bias.shape) != (n,):
            raise ValueError(f"bias must be [{n}] of dtype {dtype}, got {tuple(bias.shape)} {bias.dtype}")


def _check_scale(value, name: str) -> float:
    v = float(value)
    if not math.isfinite(v) or v <= 0.0:
        raise ValueError(f"{name} must be a finite float > 0, got {value!r}")
    return v


def _aligned(t, nbytes: int):
    """t itself when its data pointer is nbytes-aligned, else an aligned copy (only odd views pay this)."""
    return t if t.data_ptr() % nbytes == 0 else t.clone()


# ------------------------------------------------------------------------------------------------ quantize
def global_scale_of_amax(amax: float) -> float:
    """The spec's decode global scale amax / 2688 in IEEE float32 division; 1.0 for amax == 0 (an all-zero array)."""
    import numpy as np

    a = np.float32(amax)
    return float(a / np.float32(_AMAX_TO_GLOBAL)) if a > 0 else 1.0


def quantize(w, global_scale=None):
    """NVFP4-quantize w [N, K] (float32/float16/bfloat16, CUDA) exactly like the CPU reference (SPEC section 2).

    Returns (packed uint8 [N, K/2], block_scales uint8 [N, K/16], global_scale float). With global_scale None it
    is amax(|w|)/2688 (1.0 for an all-zero w), computed on the GPU and read back (this call synchronises).
    """
    _require_kernels()
    torch = _torch()
    _check_cuda(w, "w")
    code = _dtype_code(w.dtype, "w")
    if w.dim() != 2 or w.shape[1] % 16 != 0 or w.numel() == 0:
        raise ValueError(f"w must be a non-empty 2-D tensor [N, K] with K % 16 == 0, got shape {tuple(w.shape)}")
    n, k = w.shape
    with torch.cuda.device(w.device):
        stream = _launch.raw_stream(w.device.index)
        amax = torch.zeros(1, dtype=torch.float32, device=w.device)
        first_bad = torch.full((1,), -1, dtype=torch.int64, device=w.device)  # UINT64_MAX for atomicMin
        _native.cuda_amax(w.data_ptr(), code, w.numel(), amax.data_ptr(), first_bad.data_ptr(), stream)
        bad = int(first_bad.item())
        if bad != -1:
            value = float(w.reshape(-1)[bad].item())
            raise ValueError(f"w must be finite: w[{bad // k}, {bad % k}] = {value}")
        if global_scale is None:
            gs = global_scale_of_amax(amax.item())
        else:
            gs = float(_torch().tensor(_check_scale(global_scale, "global_scale"), dtype=torch.float32).item())
        packed = torch.empty((n, k // 2), dtype=torch.uint8, device=w.device)
        scales = torch.empty((n, k // 16), dtype=torch.uint8, device=w.device)
        _native.cuda_quantize(w.data_ptr(), code, n, k, gs, packed.data_ptr(), scales.data_ptr(), stream)
    return packed, scales, gs


def quantize_values(x, global_scale: float, out_dtype):
    """[N, K] tensor of out_dtype (float16 / bfloat16): the values NVFP4 quantization of x [N, K] with the given fp32
    global_scale gives, *without* the global scale (e2m1 * e4m3, exact in 16 bits): quantize + dequantize(gs = 1) in
    one launch, enqueued on the current stream with no host read. A NaN / Inf in x becomes NaN (no error). The
    prefill W4A4 route's activation operand; the caller has checked x (contiguous 2-D float CUDA, K % 16 == 0)."""
    torch = _torch()
    n, k = x.shape
    out = torch.empty((n, k), dtype=out_dtype, device=x.device)
    index = x.device.index
    with _launch.on_device(index):
        _native.cuda_quantize_values(x.data_ptr(), _dtype_code(x.dtype, "x"), n, k, float(global_scale),
                                     out.data_ptr(), _dtype_code(out_dtype, "out_dtype"), _launch.raw_stream(index))
    return out


def gemm_mid_plan(n: int, k: int, x):
    """(supported, workspace bytes) of gemm_mid for x [M, K] against [n, k] weights on x's device (host only, no
    launch): the kernel takes float16 / bfloat16 x with K % 128 == 0 and M <= cuda_gemm_mid_max_tokens (gemm_mid
    makes its operands aligned)."""
    with _launch.on_device(x.device.index):
        return _native.cuda_gemm_mid_plan(0, 0, n, k, 0, _dtype_code(x.dtype, "x"), x.shape[0])


def gemm_mid_launch_plan(n: int, k: int, x):
    """(shape, K splits, stream-K CTAs) gemm_mid takes for x [M, K] against [n, k] weights on x's device (1 split:
    none; 0 CTAs: a grid of blocks; ('', 0, 0): not supported; host only). The workspace holds more than the splits'
    sums (the warp-specialised kernels' permuted x, stream-K's pieces), so its size does not tell."""
    with _launch.on_device(x.device.index):
        return _native.cuda_gemm_mid_launch_plan(n, k, _dtype_code(x.dtype, "x"), x.shape[0])


def gemm_mid(packed, block_scales, global_scale: float, x, bias, workspace_bytes: int):
    """y [M, N] = global_scale * (x @ W_local^T) + bias in x's dtype: the medium-M GEMM, every weight byte read once
    per 32, 64 or 128 tokens (docs/nvfp4_cuda.md "Medium M"). The caller has checked x ([M, K] contiguous float16 /
    bfloat16 on the weights' device), bias ([N] of x's dtype or None) and the shape (gemm_mid_plan, which gave
    workspace_bytes). Enqueued on the current stream with no host read; allocates the output and the workspace only
    (x permuted into the wgmma B layout for the warp-specialised kernels, and the K split's fp32 partial sums). (The
    workspace is its own allocation, freed after the launch: in the output's, as the GEMV does with its few sums, it
    would live as long as the output, up to 16x its size.)"""
    torch = _torch()
    n, half_k = packed.shape
    m = x.shape[0]
    packed, block_scales, x = _aligned(packed, 16), _aligned(block_scales, 8), _aligned(x, 16)
    out = torch.empty((m, n), dtype=x.dtype, device=x.device)
    ws = torch.empty(workspace_bytes // 4, dtype=torch.float32, device=x.device) if workspace_bytes else None
    index = x.device.index
    with _launch.on_device(index):
        _native.cuda_gemm_mid(packed.data_ptr(), block_scales.data_ptr(), float(global_scale), n, 2 * half_k,
                              x.data_ptr(), _dtype_code(x.dtype, "x"), m, 0 if bias is None else bias.data_ptr(),
                              out.data_ptr(), 0 if ws is None else ws.data_ptr(), workspace_bytes,
                              _launch.raw_stream(index))
    return out


def _gemm_mid_impl(packed, block_scales, global_scale: float, x, bias):
    """The body of the op reset_native::nvfp4_gemm_mid: gemm_mid with every check of a direct op call (the eager
    route, _nvfp4_prefill.mid_gemm, has made them already and calls gemm_mid itself)."""
    torch = _torch()
    n, k = _check_weights(packed, block_scales)
    dev = packed.device
    _check_cuda(x, "x", dev)
    if x.dtype not in (torch.float16, torch.bfloat16):
        raise TypeError(f"x must be float16 or bfloat16 for the medium-M GEMM, got {x.dtype}")
    if x.dim() != 2 or x.shape[1] != k:
        raise ValueError(f"x must be [M, K] with K = {k}, got {tuple(x.shape)}")
    _check_bias(bias, n, x.dtype, dev)
    supported, workspace = gemm_mid_plan(n, k, x)
    if not supported:
        raise ValueError(f"the medium-M GEMM needs K % 128 == 0, 1 <= M <= {_native.cuda_gemm_mid_max_tokens}, "
                         f"N <= {_native.cuda_gemm_mid_max_rows} and M * N <= {_native.cuda_gemm_mid_max_outputs}; "
                         f"got x {tuple(x.shape)} against N = {n}")
    return gemm_mid(packed, block_scales, _check_scale(global_scale, "global_scale"), x, bias, workspace)


# ------------------------------------------------------------------------------------------------ implementations
# The bodies of the custom ops below. Eager calls run them directly (_torch_launch.eager: the op dispatcher alone
# costs ~10 us of host time per call); under torch.compile the ops stand in the graph and run the same bodies.
def _dequantize_impl(packed, block_scales, global_scale: float, out_dtype):
    torch = _torch()
    n, k = _check_weights(packed, block_scales)
    code = _dtype_code(out_dtype, "out_dtype")
    out = torch.empty((n, k), dtype=out_dtype, device=packed.device)
    index = packed.device.index
    with _launch.on_device(index):
        _native.cuda_dequantize(packed.data_ptr(), block_scales.data_ptr(), global_scale, n, k, out.data_ptr(), code,
                                _launch.raw_stream(index))
    return out


def _gemv_buffers(torch, x, m: int, n: int, amax_bytes: int, split_bytes: int):
    """The output [m, n] in x's dtype and, in the same allocation when either is needed, the 4-byte activation amax
    (16-byte aligned, after the output) and the split-K partial sums: (out, amax pointer or 0, split pointer or 0)."""
    if not (amax_bytes or split_bytes):
        return torch.empty((m, n), dtype=x.dtype, device=x.device), 0, 0
    eb = x.element_size()
    offset = -(-m * n * eb // 16) * 16
    buf = torch.empty(-(-(offset + amax_bytes + split_bytes) // eb), dtype=x.dtype, device=x.device)
    out = buf.as_strided((m, n), (n, 1))  # the first m * n elements (cheaper than slice + view)
    base = buf.data_ptr() + offset
    return out, (base if amax_bytes else 0), (base + amax_bytes if split_bytes else 0)


# Split-K workspace bytes the launcher last wanted, per call shape (see _gemv_impl). Only a hint: the launcher checks
# every call and asks again when the hint is short, so a stale entry costs one extra native call, never a result.
_split_bytes_wanted: dict = {}
_SPLIT_BYTES_KEYS = 4096  # bound: a model has a few dozen shapes; past this the hints start over


def _remember_split_bytes(key, wanted: int) -> None:
    if key not in _split_bytes_wanted and len(_split_bytes_wanted) >= _SPLIT_BYTES_KEYS:
        _split_bytes_wanted.clear()
    _split_bytes_wanted[key] = wanted


def _gemv_impl(packed, block_scales, global_scale: float, x, activation: str, act_global_scale, bias,
               residual=None):
    n, k = _check_weights(packed, block_scales)
    dev = packed.device
    _check_cuda(x, "x", dev)
    code = _dtype_code(x.dtype, "x")
    if x.dim() != 2 or x.shape[1] != k or not 1 <= x.shape[0] <= MAX_TOKENS:
        raise ValueError(f"x must be [M, K] with K = {k} and 1 <= M <= {MAX_TOKENS}, got {tuple(x.shape)}")
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {_ACTIVATIONS}, got {activation!r}")
    _check_bias(bias, n, x.dtype, dev)
    m = x.shape[0]
    if residual is not None:
        _check_cuda(residual, "residual", dev)
        if residual.dtype != x.dtype or tuple(residual.shape) != (m, n) or not residual.is_contiguous():
            raise ValueError(f"residual must be a contiguous [{m}, {n}] tensor of dtype {x.dtype}, got "
                             f"{tuple(residual.shape)} {residual.dtype}")
    w4a4 = activation == "nvfp4"
    if w4a4 and act_global_scale is not None:
        act_global_scale = _check_scale(act_global_scale, "act_global_scale")
    return _gemv_launch(packed, block_scales, global_scale, x, w4a4, act_global_scale, bias, residual, n, k, m, code,
                        dev.index)


def _gemv_launch(packed, block_scales, global_scale: float, x, w4a4: bool, act_global_scale, bias, residual, n: int,
                 k: int, m: int, code: int, index: int):
    """The launch of a validated call (_gemv_impl's checks, or reset_native.nvfp4.gemv's: gemv_prechecked)."""
    # An aligned copy must outlive the launch: freed earlier, its memory could become this call's output.
    packed, block_scales = _aligned(packed, 16), _aligned(block_scales, 2)
    pk, sc = packed.data_ptr(), block_scales.data_ptr()
    xp = x.data_ptr()
    act_gs = 1.0 if act_global_scale is None else act_global_scale
    amax_bytes = 16 if (w4a4 and act_global_scale is None) else 0
    bias_p = 0 if bias is None else bias.data_ptr()
    res_p = 0 if residual is None else residual.data_ptr()
    # Split K (long K x many tokens) needs fp32 partial sums. The launch plans the call once and says how many bytes
    # it wants: given fewer (defer_short_workspace), it launches nothing, and this allocates and calls again. The
    # bytes last wanted per call shape are remembered, so a repeated call launches at the first try.
    key = (n, k, m, code, w4a4, index, xp % 16 == 0)
    split_bytes = _split_bytes_wanted.get(key, 0)
    torch = _torch()
    with _launch.on_device(index):
        stream = _launch.raw_stream(index)
        out, amax_ws, split_ws = _gemv_buffers(torch, x, m, n, amax_bytes, split_bytes)
        wanted = _native.cuda_gemv(pk, sc, global_scale, n, k, xp, code, m, w4a4, act_gs, amax_ws, bias_p,
                                   out.data_ptr(), stream, res_p, 0, 0, 0.0, 0, split_ws, split_bytes, True)
        if wanted != split_bytes:
            _remember_split_bytes(key, wanted)
        if wanted > split_bytes:  # nothing was launched. (The two launches are spelled out: a shared helper or a
            # closure added host time per call on the development VM, on the path this exists to make cheap.)
            out, amax_ws, split_ws = _gemv_buffers(torch, x, m, n, amax_bytes, wanted)
            _native.cuda_gemv(pk, sc, global_scale, n, k, xp, code, m, w4a4, act_gs, amax_ws, bias_p, out.data_ptr(),
                              stream, res_p, 0, 0, 0.0, 0, split_ws, wanted, False)
    return out


# ------------------------------------------------------------------------------------------------ custom ops
@functools.lru_cache(maxsize=None)
def _ops():
    """Registers the torch custom ops once; returns torch.ops.reset_native.

    torch.compile cannot trace this registration (dynamo skips torch.library's schema inference), so a traced call
    uses torch.ops.reset_native directly, and the ops are registered when this module is imported (the end of
    this file)."""
    torch = _torch()
    from typing import Optional

    @torch.library.custom_op("reset_native::nvfp4_dequantize", mutates_args=())
    def nvfp4_dequantize(packed: torch.Tensor, block_scales: torch.Tensor, global_scale: float,
                         out_dtype: torch.dtype) -> torch.Tensor:
        return _dequantize_impl(packed, block_scales, global_scale, out_dtype)

    @nvfp4_dequantize.register_fake
    def _(packed, block_scales, global_scale, out_dtype):
        return packed.new_empty((packed.shape[0], packed.shape[1] * 2), dtype=out_dtype)

    @torch.library.custom_op("reset_native::nvfp4_gemv", mutates_args=())
    def nvfp4_gemv(packed: torch.Tensor, block_scales: torch.Tensor, global_scale: float, x: torch.Tensor,
                   activation: str, act_global_scale: Optional[float], bias: Optional[torch.Tensor],
                   residual: Optional[torch.Tensor] = None) -> torch.Tensor:
        return _gemv_impl(packed, block_scales, global_scale, x, activation, act_global_scale, bias, residual)

    @nvfp4_gemv.register_fake
    def _(packed, block_scales, global_scale, x, activation, act_global_scale, bias, residual=None):
        return x.new_empty((x.shape[0], packed.shape[0]))

    @torch.library.custom_op("reset_native::nvfp4_gemm_mid", mutates_args=())
    def nvfp4_gemm_mid(packed: torch.Tensor, block_scales: torch.Tensor, global_scale: float, x: torch.Tensor,
                       bias: Optional[torch.Tensor]) -> torch.Tensor:
        return _gemm_mid_impl(packed, block_scales, global_scale, x, bias)

    @nvfp4_gemm_mid.register_fake
    def _(packed, block_scales, global_scale, x, bias):
        return x.new_empty((x.shape[0], packed.shape[0]))

    return torch.ops.reset_native


def dequantize(packed, block_scales, global_scale: float, out_dtype):
    """[N, K] tensor of out_dtype: e2m1 * e4m3 * global_scale (custom op, graph-safe)."""
    _require_kernels()
    gs = _check_scale(global_scale, "global_scale")
    if _launch.eager():
        return _dequantize_impl(packed, block_scales, gs, out_dtype)
    return _torch().ops.reset_native.nvfp4_dequantize(packed, block_scales, gs, out_dtype)


def gemv(packed, block_scales, global_scale: float, x, activation: str = "bf16", act_global_scale=None, bias=None,
         residual=None):
    """y [M, N] = x @ dequantize(w).T (+ bias) (+ residual [M, N]) in x.dtype, fp32 accumulation, one rounding,
    M <= 16 (custom op, graph-safe).

    activation "bf16" multiplies x as given (W4A16; float16/bfloat16/float32 x); "nvfp4" quantizes each row of x
    to NVFP4 inside the kernel (W4A4) with act_global_scale, or amax(|x|)/2688 computed on the device when None.
    """
    _require_kernels()
    gs = _check_scale(global_scale, "global_scale")
    if _launch.eager_without_grad(x, bias, residual):
        return _gemv_impl(packed, block_scales, gs, x, activation, act_global_scale, bias, residual)
    return _torch().ops.reset_native.nvfp4_gemv(packed, block_scales, gs, x, activation, act_global_scale, bias,
                                                residual)


def gemv_prechecked(packed, block_scales, global_scale: float, x, activation: str, act_global_scale, bias):
    """gemv for reset_native.nvfp4.gemv, whose checks cover gemv's: packed / block_scales / global_scale from an
    NVFP4Tensor (validated at construction, read-only), x [M <= 16, K] contiguous of a float dtype on their device,
    activation, act_global_scale (None or a finite float > 0) and bias checked against them. An eager call skips the
    repeat of those checks (a few us of host time per call); other calls take the checked op."""
    if _launch.eager_without_grad(x, bias):
        n, half_k = packed.shape
        code = _dtype_codes()[x.dtype]
        return _gemv_launch(packed, block_scales, global_scale, x, activation == "nvfp4", act_global_scale, bias, None,
                            n, 2 * half_k, x.shape[0], code, x.device.index)
    return gemv(packed, block_scales, global_scale, x, activation, act_global_scale, bias)


if AVAILABLE and importlib.util.find_spec("torch") is not None:
    _ops()  # see _ops: torch.compile cannot trace the registration (only the CUDA paths import this module)
