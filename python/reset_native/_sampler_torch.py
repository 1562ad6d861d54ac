"""The CUDA decode step as a torch custom op (mutating the state buffers), so it composes with
torch.compile and CUDA graphs. Eager calls (sampler.decode_step outside a torch.compile trace) run the op's
body, :func:`decode_step_impl`, directly: the custom-op dispatcher alone costs ~10 us of host time per call
(reset_native._torch_launch). Imported only when a CUDA ReSETState is created."""
from __future__ import annotations

from typing import Optional, Tuple

import torch

from . import _core
from . import _torch_launch as _launch
from ._sampler_arrays import DTYPE_CODES, describe, row_stride

_S = _core.sampler
_STATE_BUFFERS = ("window_entropies", "sums", "ints", "error_flag", "slot_busy", "workspace")
# DTYPE_CODES keyed by torch dtype: no str(dtype) per call.
_CODES = {getattr(torch, name): code for name, code in DTYPE_CODES.items()}
_LOGITS_DTYPES = (torch.float32, torch.bfloat16, torch.float16)  # in the order the error messages name them
_INDEX_DTYPES = (torch.int64,)
_ENTROPY_DTYPES = (torch.float32,)
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
# The CUDA state's checks. CUDA inputs are used in place (no copies, no host sync), so dtype, device and layout must
# fit. Each check is a few comparisons of torch objects; the messages are formatted only when one fails.
def _dtype_names(dtypes) -> str:
    return " or ".join(str(d).replace("torch.", "") for d in dtypes)


def check_cuda_tensor(x, name: str, device, dtypes, ndim: int) -> None:
    """x is a torch tensor on `device` (a torch.device), of one of `dtypes` (torch dtypes), `ndim`-D, with unit stride
    along its last dimension (and rows that do not overlap)."""
    if not isinstance(x, _Tensor):
        raise TypeError(f"{name} must be a torch tensor on {device} for a CUDA state, got {describe(x)}")
    if x.device != device:
        raise ValueError(f"{name} must be on {device} like the state, got {describe(x)}")
    if x.dtype not in dtypes:
        raise TypeError(f"{name} must be {_dtype_names(dtypes)}, got {describe(x)}")
    if x.dim() != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got {describe(x)}")
    if x.stride(-1) != 1 or (ndim == 2 and x.shape[0] > 1 and x.stride(0) < x.shape[1]):
        raise ValueError(f"{name} must have unit stride along its last dimension, got strides {tuple(x.stride())}")


def check_rows(device, batch: int, rows: int, last_tokens, slots) -> None:
    """rows fits the state's batch; last_tokens (and slots, unless None) are int64 [rows] on `device`."""
    if not 1 <= rows <= batch:
        raise ValueError(f"batch of {rows} rows does not fit the state's batch_size {batch}")
    for name, t in (("last_tokens", last_tokens), ("slots", slots)):
        if name == "slots" and t is None:  # slots are optional (row i = slot i)
            continue
        check_cuda_tensor(t, name, device, _INDEX_DTYPES, 1)
        if t.shape[0] != rows:
            raise ValueError(f"{name} must have shape ({rows},), got {tuple(t.shape)}")


def check_step_inputs(device, vocab: int, batch: int, logits, last_tokens, slots) -> None:
    """decode_step's inputs: logits [1..batch, vocab] float32/bfloat16/float16, then check_rows."""
    check_cuda_tensor(logits, "logits", device, _LOGITS_DTYPES, 2)
    if logits.shape[1] != vocab:
        raise ValueError(f"logits must have {vocab} columns (vocab_size), got {describe(logits)}")
    check_rows(device, batch, logits.shape[0], last_tokens, slots)


def check_update_inputs(device, batch: int, entropies, last_tokens, slots) -> None:
    """ReSETState.update's inputs: entropies float32 [1..batch], then check_rows."""
    check_cuda_tensor(entropies, "entropies", device, _ENTROPY_DTYPES, 1)
    check_rows(device, batch, entropies.shape[0], last_tokens, slots)
