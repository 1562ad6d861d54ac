"""The CUDA decode step as a torch custom op (mutating the state buffers), so it composes with
torch.compile and CUDA graphs. Eager calls (sampler.decode_step outside a torch.compile trace) run the op's
body, :func:`decode_step_impl`, directly: the custom-op dispatcher alone costs ~10 us of host time per call
(reset_native._torch_launch). Imported only when a CUDA ReSETState is created."""
from __future__ import annotations

from typing import Optional, Tuple

import torch

from . import _core
from . import _torch_launch as _launch
from ._sampler_arrays import DTYPE_CODES, row_stride

_S = _core.sampler
_STATE_BUFFERS = ("window_entropies", "sums", "ints", "error_flag", "slot_busy", "workspace")
# DTYPE_CODES keyed by torch dtype: no str(dtype) per call.
_CODES = {getattr(torch, name): code for name, code in DTYPE_CODES.items()}
_LOGITS_DTYPES = tuple(_CODES)
_Tensor = torch.Tensor


def decode_step_impl(logits, last_tokens, slots, classes, window_entropies, sums, ints, error_flag, slot_busy,
                     workspace, t_low, tau0, t_high, window, top_p, top_k, config=None):
    """The op's body. config: the native Config of (t_low, ..., top_k) when the caller holds one (the state's),
    else built here."""
    rows = logits.shape[0]
    device = logits.device
    tokens = torch.empty(rows, dtype=torch.int64, device=device)
    temperatures = torch.empty(rows, dtype=torch.float32, device=device)
    entropies = torch.empty(rows, dtype=torch.float32, device=device)
    if config is None:
        config = _S.Config(t_low, tau0, t_high, window, top_p, top_k)
    index = device.index
    with _launch.on_device(index):
        _S.decode_step_cuda(config, classes.data_ptr(), classes.numel(), ints.shape[0], window,
                            window_entropies.data_ptr(), sums.data_ptr(), ints.data_ptr(), rows,
                            last_tokens.data_ptr(), 0 if slots is None else slots.data_ptr(), logits.data_ptr(),
                            _CODES[logits.dtype], row_stride(logits.shape, logits.stride(0)),
                            tokens.data_ptr(), temperatures.data_ptr(), entropies.data_ptr(), error_flag.data_ptr(),
                            slot_busy.data_ptr(), workspace.data_ptr(), workspace.numel(), _launch.raw_stream(index))
    return tokens, temperatures, entropies


@torch.library.custom_op("reset_native::sampler_decode_step", mutates_args=_STATE_BUFFERS, device_types="cuda")
def sampler_decode_step(logits: torch.Tensor, last_tokens: torch.Tensor, slots: Optional[torch.Tensor],
                        classes: torch.Tensor, window_entropies: torch.Tensor, sums: torch.Tensor, ints: torch.Tensor,
                        error_flag: torch.Tensor, slot_busy: torch.Tensor, workspace: torch.Tensor, t_low: float,
                        tau0: float, t_high: float, window: int, top_p: float,
                        top_k: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return decode_step_impl(logits, last_tokens, slots, classes, window_entropies, sums, ints, error_flag, slot_busy,
                            workspace, t_low, tau0, t_high, window, top_p, top_k)


@sampler_decode_step.register_fake
def _(logits, last_tokens, slots, classes, window_entropies, sums, ints, error_flag, slot_busy, workspace, t_low, tau0,
      t_high, window, top_p, top_k):
    rows = logits.shape[0]
    return (logits.new_empty(rows, dtype=torch.int64), logits.new_empty(rows, dtype=torch.float32),
            logits.new_empty(rows, dtype=torch.float32))


def step_op():
    """torch.ops.reset_native.sampler_decode_step, the op a torch.compile trace of decode_step records."""
    return torch.ops.reset_native.sampler_decode_step


def update(config, classes, state_buffers, last_tokens, slots, entropies, error_flag, slot_busy) -> torch.Tensor:
    """The state machine alone on the GPU (direct launch on the current stream; capturable)."""
    window_entropies, sums, ints = state_buffers
    rows = entropies.shape[0]
    temperatures = torch.empty(rows, dtype=torch.float32, device=entropies.device)
    index = entropies.device.index
    with _launch.on_device(index):
        _S.update_cuda(config, classes.data_ptr(), classes.numel(), ints.shape[0], config.window,
                       window_entropies.data_ptr(), sums.data_ptr(), ints.data_ptr(), rows, last_tokens.data_ptr(),
                       0 if slots is None else slots.data_ptr(), entropies.data_ptr(), temperatures.data_ptr(),
                       error_flag.data_ptr(), slot_busy.data_ptr(), _launch.raw_stream(index))
    return temperatures


# ------------------------------------------------------------------------------------------------ input checks
# What sampler.py's CUDA checks accept, in a few comparisons of torch objects (its check_cuda_tensor formats strings
# per call). False sends the caller to those checks, which raise the error (or accept a tensor subclass).
def _rows_ok(t, device, rows: int, dtype) -> bool:
    return (type(t) is _Tensor and t.device == device and t.dtype == dtype and t.dim() == 1 and t.shape[0] == rows
            and t.stride(0) == 1)


def step_inputs_ok(device, vocab: int, batch: int, logits, last_tokens, slots) -> bool:
    """decode_step's inputs pass every CUDA check: logits [1..batch, vocab] float32/bfloat16/float16 with unit
    stride along a row, last_tokens (and slots) int64 [rows] with unit stride, all on `device`."""
    if type(logits) is not _Tensor or logits.device != device or logits.dtype not in _LOGITS_DTYPES \
            or logits.dim() != 2:
        return False
    rows, width = logits.shape
    if width != vocab or not 1 <= rows <= batch or logits.stride(1) != 1 or (rows > 1 and logits.stride(0) < width):
        return False
    return _rows_ok(last_tokens, device, rows, torch.int64) and (slots is None or
                                                                 _rows_ok(slots, device, rows, torch.int64))


def update_inputs_ok(device, batch: int, entropies, last_tokens, slots) -> bool:
    """ReSETState.update's inputs pass every CUDA check (entropies float32 [1..batch], then as step_inputs_ok)."""
    if type(entropies) is not _Tensor or entropies.dim() != 1:
        return False
    rows = entropies.shape[0]
    return (1 <= rows <= batch and _rows_ok(entropies, device, rows, torch.float32)
            and _rows_ok(last_tokens, device, rows, torch.int64)
            and (slots is None or _rows_ok(slots, device, rows, torch.int64)))
