"""One NVFP4 GEMV for projections that read the same input: q/k/v and gate/up of Llama/Qwen-style blocks.

At batch 1 a decode step of a Qwen3-8B-shaped model runs 252 GEMVs, 7 per layer, and the 1024-row k/v and
the 4096-row q projections are latency-bound launches at ~40-60% of their bandwidth floor. Fusing q/k/v
(one [q+k+v, K] GEMV) and gate/up (one [2I, K] GEMV) leaves 4 launches per layer.

How: the member NVFP4Linear modules stay in the model (so names, state dicts and ModelOpt checkpoints are
unchanged), but their ``weight``/``weight_scale`` buffers become row views of one concatenated tensor, which
needs one shared global scale (``weight_scale_2``): :func:`quantize_model` quantizes the concatenated
weights of a group together, and :func:`fuse_projections` fuses already-quantized members whose global
scales are equal (as ModelOpt writes them for layers meant to be fused). The first member the block calls
(``q_proj``, ``gate_proj``) runs the fused GEMV and keeps its output; the others return their slice of it
when called on the very same input tensor (same object, unmodified), and otherwise compute their own rows.
Moving the model (``.to``) or loading a state dict re-concatenates at the next call.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn

from .. import nvfp4 as nvfp4_api

#: Member names fused together, in the order the transformers blocks call them (leader first).
FUSIBLE: Tuple[Tuple[str, ...], ...] = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))


class ProjectionGroup:
    """The shared state of fused NVFP4Linear members (not a module: it owns no parameters of its own)."""

    def __init__(self, members: Sequence[nn.Module]):
        self.members: List[nn.Module] = list(members)
        self.rows: List[Tuple[int, int]] = []
        start = 0
        for m in self.members:
            self.rows.append((start, start + m.out_features))
            start += m.out_features
        self._tensor = None
        self._bias: Optional[torch.Tensor] = None
        self._valid = False
        self._clear()
        for m in self.members:
            m._group = self
        if not self.rebuild():
            raise ValueError("cannot fuse: " + self._incompatible())

    # ---- state --------------------------------------------------------------------------------------------
    def _clear(self) -> None:
        self._x = None
        self._version = -1
        self._y = None

    def invalidate(self) -> None:
        """Buffers moved or reloaded: re-concatenate (or give up fusing) at the next call."""
        self._valid = False
        self._tensor = None
        self._clear()

    def _incompatible(self) -> str:
        first = self.members[0]
        for m in self.members[1:]:
            if m.in_features != first.in_features:
                return f"in_features differ ({first.in_features} vs {m.in_features})"
            if m.activation != first.activation:
                return "activations differ"
            if m._gs != first._gs:
                return f"global scales differ ({first._gs} vs {m._gs}); quantize the group together"
            if m._in_gs != first._in_gs:
                return "static input scales differ"
            if (m.bias is None) != (first.bias is None):
                return "some members have a bias and some do not"
            if m.weight.device != first.weight.device:
                return "members live on different devices"
            if m.bias is not None and m.bias.dtype != first.bias.dtype:
                return "bias dtypes differ"
        return ""

    def rebuild(self) -> bool:
        """Concatenate the members' buffers into one tensor and make theirs row views of it (copies once).
        Returns False (and unfuses the members) when they are no longer compatible."""
        if self._incompatible():
            self.dissolve()
            return False
        with torch.no_grad():
            w = torch.cat([m.weight for m in self.members]).contiguous()
            s = torch.cat([m.weight_scale for m in self.members]).contiguous()
            for m, (r0, r1) in zip(self.members, self.rows):
                m.weight = w[r0:r1]
                m.weight_scale = s[r0:r1]
                m._cache = None
            self._bias = (torch.cat([m.bias for m in self.members]) if self.members[0].bias is not None else None)
        self._tensor = nvfp4_api.NVFP4Tensor.from_parts(w, s, self.members[0]._gs)
        self._valid = True
        self._clear()
        return True

    def dissolve(self) -> None:
        for m in self.members:
            m._group = None
            m._cache = None
        self._tensor = None
        self._clear()

    # ---- compute ------------------------------------------------------------------------------------------
    def member_forward(self, member: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if not self._valid and not self.rebuild():
            return member._forward_own(x)
        index = self.members.index(member)
        if index == 0:
            y = self._fused(member, x)
            self._x, self._version, self._y = x, _version_of(x), y
        elif self._x is x and self._version == _version_of(x) and self._y is not None:
            y = self._y
        else:  # called alone or on another input: this member's own rows
            return member._forward_own(x)
        r0, r1 = self.rows[index]
        return y[..., r0:r1]

    def fused_forward(self, x: torch.Tensor, norm_weight: Optional[torch.Tensor] = None, eps: float = 0.0,
                      silu_mul: bool = False) -> Optional[torch.Tensor]:
        """The group's GEMV with decoder ops inside it (integrations.fused_gemv): x normalised by
        ``rms_norm(x, norm_weight, eps)`` first when norm_weight is given; with silu_mul (a [gate, up] group) the
        result is silu(gate) * up instead of both. None when no fused kernel takes the call (the caller runs the
        separate ops then)."""
        if not self._valid and not self.rebuild():
            return None
        if silu_mul and (len(self.members) != 2 or self.rows[0][1] * 2 != self.rows[1][1]):
            return None
        from .fused_gemv import fused_gemv

        return fused_gemv(self._tensor, self.members[0].activation, self._bias, x, norm_weight, eps, silu_mul)

    def _fused(self, leader: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != leader.in_features:
            raise ValueError(f"x must have last dimension in_features={leader.in_features}, got shape "
                             f"{tuple(x.shape)}")
        lead = x.shape[:-1]
        x2 = x.reshape(-1, leader.in_features)
        if not x2.is_contiguous():
            x2 = x2.contiguous()
        bias = self._bias
        if bias is not None and bias.dtype != x2.dtype:
            bias = bias.to(x2.dtype)
        if leader.activation == "nvfp4":
            y = nvfp4_api.gemv(self._tensor, x2, activation="nvfp4", act_global_scale=leader._in_gs, bias=bias)
        else:
            y = nvfp4_api.gemv(self._tensor, x2, activation="bf16", bias=bias)
        return y.reshape(*lead, self.rows[-1][1])


def _version_of(x: torch.Tensor):
    """In-place modification counter; inference-mode tensors have none (identity is all we can check)."""
    try:
        return x._version
    except RuntimeError:
        return None


def fusible_groups(model: nn.Module, names: Optional[Sequence[str]] = None):
    """(parent name, member names) of every FUSIBLE set present in ``model`` (restricted to ``names``)."""
    wanted = None if names is None else set(names)
    found = []
    for parent_name, parent in model.named_modules():
        for group in FUSIBLE:
            full = [f"{parent_name}.{n}" if parent_name else n for n in group]
            if all(hasattr(parent, n) for n in group) and (wanted is None or all(f in wanted for f in full)):
                found.append((parent_name, full))
    return found


def fuse_projections(model: nn.Module) -> int:
    """Fuse the q/k/v and gate/up NVFP4Linear members of every block whose members are compatible (same
    input size, activation, global and input scales, bias presence, device). Idempotent; returns the number
    of groups fused now or before. Quantize with ``quantize_model(..., fuse_projections=True)`` to give a
    group one global scale."""
    from .nvfp4_linear import NVFP4Linear

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    count = 0
    for _parent, full in fusible_groups(model):
        members = [model.get_submodule(f) for f in full]
        if not all(isinstance(m, NVFP4Linear) for m in members):
            continue
        if members[0]._group is not None and members[0]._group.members == members:
            count += 1
            continue
        try:
            ProjectionGroup(members)
            count += 1
        except ValueError:
            continue
    return count


def unfuse_projections(model: nn.Module) -> int:
    """Undo fuse_projections (the members keep their row views, which stay correct); returns the count."""
    groups = {id(m._group): m._group for m in model.modules() if getattr(m, "_group", None) is not None}
    for g in groups.values():
        g.dissolve()
    return len(groups)
