"""Routing modules' forward through a replacement and restoring it: the mechanics the fused_* integrations share.

The original bound forward is kept in the module's instance dict under a key of the fusion's own, so fusions
stack (a decoder layer, its attention and its norms can each be routed) and each one undoes only itself.
"""
from __future__ import annotations

import types
from typing import Callable

import torch


def route_forward(model, eligible: Callable[[torch.nn.Module], bool], key: str, forward) -> int:
    """Binds ``forward`` as the forward of every module of ``model`` that ``eligible`` accepts (idempotent: a
    routed module is counted, not wrapped twice); returns how many modules are routed."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    count = 0
    for module in model.modules():
        if not eligible(module):
            continue
        if key not in module.__dict__:
            setattr(module, key, module.forward)
            module.forward = types.MethodType(forward, module)
        count += 1
    return count


def restore_forward(model, key: str) -> int:
    """Restores the own forward of every module routed under ``key``; returns how many were restored."""
    count = 0
    for module in model.modules():
        if module.__dict__.pop(key, None) is not None:
            del module.forward
            count += 1
    return count
