"""The CUDA decode step as a torch custom op (mutating the state buffers), so it composes with
torch.compile and CUDA graphs. Imported only when a CUDA ReSETState is created."""
from __future__ import annotations

from typing import Optional, Tuple

import torch

from . import _core
from ._sampler_arrays import DTYPE_CODES, row_stride

_S = _core.sampler
_STATE_BUFFERS = ("window_entropies", "sums", "ints", "error_flag", "slot_busy", "workspace")


@torch.library.custom_op("reset_native::sampler_decode_step", mutates_args=_STATE_BUFFERS, device_types="cuda")
def sampler_decode_step(logits: torch.Tensor, last_tokens: torch.Tensor, slots: Optional[torch.Tensor],
                        classes: torch.Tensor, window_entropies: torch.Tensor, sums: torch.Tensor, ints: torch.Tensor,
                        error_flag: torch.Tensor, slot_busy: torch.Tensor, workspace: torch.Tensor, t_low: float,
                        tau0: float, t_high: float, window: int, top_p: float,
                        top_k: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    rows = logits.shape[0]
    tokens = torch.empty(rows, dtype=torch.int64, device=logits.device)
    temperatures = torch.empty(rows, dtype=torch.float32, device=logits.device)
    entropies = torch.empty(rows, dtype=torch.float32, device=logits.device)
    config = _S.Config(t_low, tau0, t_high, window, top_p, top_k)
    with torch.cuda.device(logits.device):
        stream = torch.cuda.current_stream(logits.device).cuda_stream
        _S.decode_step_cuda(config, classes.data_ptr(), classes.numel(), ints.shape[0], window,
                            window_entropies.data_ptr(), sums.data_ptr(), ints.data_ptr(), rows,
                            last_tokens.data_ptr(), 0 if slots is None else slots.data_ptr(), logits.data_ptr(),
                            DTYPE_CODES[str(logits.dtype).replace("torch.", "")],
                            row_stride(logits.shape, logits.stride(0)),
                            tokens.data_ptr(), temperatures.data_ptr(), entropies.data_ptr(), error_flag.data_ptr(),
                            slot_busy.data_ptr(), workspace.data_ptr(), workspace.numel(), stream)
    return tokens, temperatures, entropies


@sampler_decode_step.register_fake
def _(logits, last_tokens, slots, classes, window_entropies, sums, ints, error_flag, slot_busy, workspace, t_low, tau0,
      t_high, window, top_p, top_k):
    rows = logits.shape[0]
    return (logits.new_empty(rows, dtype=torch.int64), logits.new_empty(rows, dtype=torch.float32),
            logits.new_empty(rows, dtype=torch.float32))


def update(config, classes, state_buffers, last_tokens, slots, entropies, error_flag, slot_busy) -> torch.Tensor:
    """The state machine alone on the GPU (direct launch on the current stream; capturable)."""
    window_entropies, sums, ints = state_buffers
    rows = entropies.shape[0]
    temperatures = torch.empty(rows, dtype=torch.float32, device=entropies.device)
    with torch.cuda.device(entropies.device):
        _S.update_cuda(config, classes.data_ptr(), classes.numel(), ints.shape[0], config.window,
                       window_entropies.data_ptr(), sums.data_ptr(), ints.data_ptr(), rows, last_tokens.data_ptr(),
                       0 if slots is None else slots.data_ptr(), entropies.data_ptr(), temperatures.data_ptr(),
                       error_flag.data_ptr(), slot_busy.data_ptr(),
                       torch.cuda.current_stream(entropies.device).cuda_stream)
    return temperatures
