"""The CPU NVFP4 GEMV as the torch custom op ``reset_native::nvfp4_gemv_cpu``, for torch.compile traces only.

``reset_native.nvfp4.gemv`` on CPU tensors calls the native kernels directly (no op dispatch on the eager path); a
native call is opaque to dynamo, so inside a trace the same computation stands in the graph as this op and the compiled
model stays one graph. The op's body is nvfp4's own CPU path on the arguments gemv has already checked, so a compiled
call gives the eager call's bits. Importing this module imports torch and registers the op (nvfp4 imports it on the
first traced CPU call; a trace cannot register ops itself, but dynamo runs an import as plain Python).
"""
# No "from __future__ import annotations": torch.library infers the op schema from real annotations.
from typing import Optional

import torch

from . import nvfp4


@torch.library.custom_op("reset_native::nvfp4_gemv_cpu", mutates_args=(), device_types="cpu")
def nvfp4_gemv_cpu(packed: torch.Tensor, block_scales: torch.Tensor, global_scale: float, x: torch.Tensor,
                   activation: str, act_global_scale: Optional[float], bias: Optional[torch.Tensor]) -> torch.Tensor:
    t = nvfp4.NVFP4Tensor(packed, block_scales, global_scale)  # validated when gemv checked its NVFP4Tensor
    x = x.contiguous()
    return nvfp4._gemv_cpu(t, x, nvfp4._float_dtype_name(x, "x"), activation, act_global_scale,
                           None if bias is None else bias.contiguous())


@nvfp4_gemv_cpu.register_fake
def _(packed, block_scales, global_scale, x, activation, act_global_scale, bias):
    return x.new_empty((x.shape[0], packed.shape[0]))


def op():
    """torch.ops.reset_native.nvfp4_gemv_cpu (registered by importing this module)."""
    return torch.ops.reset_native.nvfp4_gemv_cpu
