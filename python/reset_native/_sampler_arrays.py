"""Input checks and conversions shared by the sampler API: numpy arrays or torch tensors in, raw
pointers out for the native core. Torch is imported only when a tensor is actually passed."""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

DTYPE_CODES = {"float32": 0, "bfloat16": 1, "float16": 2}


def is_tensor(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "torch" and hasattr(x, "data_ptr")


def describe(x: Any) -> str:
    if is_tensor(x):
        return f"torch tensor {tuple(x.shape)} {str(x.dtype).replace('torch.', '')} on {x.device}"
    if isinstance(x, np.ndarray):
        return f"numpy array {x.shape} {x.dtype}"
    return type(x).__name__


def tensor_device(x: Any) -> str:
    """'cpu' or 'cuda:N' for a tensor, 'cpu' for anything else."""
    if is_tensor(x) and x.device.type == "cuda":
        return f"cuda:{x.device.index if x.device.index is not None else 0}"
    return "cpu"


def logits_cpu(logits: Any, name: str = "logits") -> Tuple[Any, int, int, int, int]:
    """(keepalive, pointer, dtype code, rows, row stride) of a CPU [B, V] logits array or tensor."""
    if is_tensor(logits):
        dtype = str(logits.dtype).replace("torch.", "")
        if dtype not in DTYPE_CODES:
            raise TypeError(f"{name} must be float32, bfloat16 or float16, got {describe(logits)}")
        if logits.dim() != 2:
            raise ValueError(f"{name} must be 2-D [batch, vocab], got {describe(logits)}")
        if logits.stride(1) != 1 or (logits.shape[0] > 1 and logits.stride(0) < logits.shape[1]):
            logits = logits.contiguous()
        return logits, logits.data_ptr(), DTYPE_CODES[dtype], logits.shape[0], row_stride(logits.shape,
                                                                                         logits.stride(0))
    arr = np.asarray(logits)
    if arr.dtype not in (np.float32, np.float16):
        raise TypeError(f"{name} must be float32 or float16 (bfloat16 as a torch tensor), got {describe(arr)}; "
                        "cast it explicitly")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D [batch, vocab], got {describe(arr)}")
    if arr.strides[1] != arr.itemsize or (arr.shape[0] > 1 and (arr.strides[0] < arr.shape[1] * arr.itemsize or
                                                                 arr.strides[0] % arr.itemsize)):
        arr = np.ascontiguousarray(arr)
    return arr, arr.ctypes.data, DTYPE_CODES[str(arr.dtype)], arr.shape[0], row_stride(arr.shape,
                                                                                       arr.strides[0] // arr.itemsize)


def row_stride(shape, stride: int) -> int:
    """Elements between rows; a single row's stride is meaningless (0 for x[None]), use its width."""
    return shape[1] if shape[0] == 1 else stride


def int_rows_cpu(values: Any, rows: int, name: str) -> np.ndarray:
    """A CPU int64 [rows] copy-if-needed of an integer array, tensor or list."""
    if is_tensor(values):
        if values.device.type != "cpu":
            raise ValueError(f"{name} must be on the CPU like the state, got {describe(values)}")
        values = values.numpy()
    arr = np.asarray(values)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers, got {describe(arr)}")
    if arr.shape != (rows,):
        raise ValueError(f"{name} must have shape ({rows},) (one per row), got {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def float_rows_cpu(values: Any, rows: Optional[int], name: str) -> np.ndarray:
    if is_tensor(values):
        if values.device.type != "cpu":
            raise ValueError(f"{name} must be on the CPU like the state, got {describe(values)}")
        values = values.detach().float().numpy()
    arr = np.asarray(values)
    if arr.dtype.kind != "f":
        raise TypeError(f"{name} must hold floats, got {describe(arr)}")
    if arr.ndim != 1 or (rows is not None and arr.shape[0] != rows):
        raise ValueError(f"{name} must have shape ({rows if rows is not None else 'batch'},), got {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float32)
