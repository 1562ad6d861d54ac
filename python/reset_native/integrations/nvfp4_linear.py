"""NVFP4Linear: a torch.nn.Linear replacement that keeps its weight packed in NVFP4, and quantize_model.

The weight is stored exactly as a ModelOpt NVFP4 checkpoint stores it (buffer names included), so a state dict
of a quantized model *is* the checkpoint: ``weight`` uint8 [N, K/2] (element 2i in the low nibble),
``weight_scale`` E4M3 bytes [N, K/16] (kept as uint8 here, written as float8_e4m3fn), ``weight_scale_2`` fp32
scalar (decode multiplier), optional ``input_scale`` fp32 scalar (static activation scale for W4A4).
The forward pass is ``reset_native.nvfp4.gemv``: decode-sized calls never expand the packed weight; on CUDA a
prefill of >= 80 tokens (W4A16 with 16-bit inputs, or W4A4) expands it chunk by chunk (at most 256 MiB at once)
and runs cuBLAS on it (docs/nvfp4_cuda.md, "Prefill").
"""
from __future__ import annotations

import fnmatch
from typing import Dict, Iterable, Optional, Sequence

import torch
from torch import nn

from .. import nvfp4 as nvfp4_api

ACTIVATIONS = ("bf16", "nvfp4")
_FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def _check_activation(activation: str) -> str:
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS} (bf16 = W4A16, nvfp4 = W4A4), got {activation!r}")
    return activation


class NVFP4Linear(nn.Module):
    """y = x @ W^T + b with W in NVFP4 (W4A16 by default, W4A4 with ``activation="nvfp4"``).

    ``activation="bf16"`` keeps activations in the input's float dtype (any of float32/float16/bfloat16, despite
    the name, which follows the usual W4A16 wording). ``activation="nvfp4"`` quantizes each input row to NVFP4
    first; with ``input_scale`` set (calibration, or a ModelOpt checkpoint) its global scale is static.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = False, *, activation: str = "bf16",
                 dtype: torch.dtype = torch.bfloat16, device=None):
        super().__init__()
        if not isinstance(in_features, int) or in_features <= 0 or in_features % 16:
            raise ValueError(f"in_features must be a positive multiple of 16 (NVFP4 blocks of 16 along K), "
                             f"got {in_features!r}")
        if not isinstance(out_features, int) or out_features <= 0:
            raise ValueError(f"out_features must be a positive int, got {out_features!r}")
        if dtype not in _FLOAT_DTYPES:
            raise TypeError(f"dtype (of bias and outputs) must be float32/float16/bfloat16, got {dtype}")
        self.in_features, self.out_features = in_features, out_features
        self.activation = _check_activation(activation)
        self.register_buffer("weight", torch.zeros(out_features, in_features // 2, dtype=torch.uint8, device=device))
        self.register_buffer("weight_scale", torch.zeros(out_features, in_features // 16, dtype=torch.uint8,
                                                         device=device))
        self.register_buffer("weight_scale_2", torch.ones((), dtype=torch.float32, device=device))
        self.register_buffer("input_scale", None)
        self.register_buffer("bias", torch.zeros(out_features, dtype=dtype, device=device) if bias else None)
        # Python-side copies of the fp32 scalars: reading a CUDA tensor in forward would sync the host (and
        # break CUDA-graph capture). Refreshed whenever the buffers are (re)loaded.
        self._gs = 1.0
        self._in_gs: Optional[float] = None
        self._cache = None
        self._group = None  # a fused_projections.ProjectionGroup when fused with its siblings

    # ---- construction -------------------------------------------------------------------------------------
    @classmethod
    def from_linear(cls, linear: nn.Linear, *, activation: str = "bf16",
                    input_scale: Optional[float] = None) -> "NVFP4Linear":
        """Quantize an nn.Linear (on its own device) with reset_native.nvfp4.quantize."""
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"linear must be a torch.nn.Linear, got {type(linear).__name__}")
        w = linear.weight.detach()
        n, k = w.shape
        if k % 16:
            raise ValueError(f"in_features must be a multiple of 16 to quantize to NVFP4, got {k}")
        t = nvfp4_api.quantize(w.contiguous())
        return cls._from_quantized(linear, t.packed, t.block_scales, float(t.global_scale), activation, input_scale)

    @classmethod
    def _from_quantized(cls, linear: nn.Linear, packed, block_scales, global_scale: float, activation: str,
                        input_scale: Optional[float]) -> "NVFP4Linear":
        """The module for ``linear`` from its already quantized rows (quantize_model's fused groups)."""
        w = linear.weight
        n, k = w.shape
        dtype = w.dtype if w.dtype in _FLOAT_DTYPES else torch.float32
        mod = cls(k, n, bias=linear.bias is not None, activation=activation, dtype=dtype, device=w.device)
        mod.weight.copy_(packed)
        mod.weight_scale.copy_(block_scales)
        mod.weight_scale_2.fill_(global_scale)
        if linear.bias is not None:
            mod.bias.copy_(linear.bias.detach())
        if input_scale is not None:
            mod.set_input_scale(input_scale)
        mod._refresh_scalars()
        return mod

    def set_input_scale(self, input_scale: Optional[float]) -> None:
        """Static activation global scale (decode multiplier, amax/2688) for W4A4; None = per call."""
        if input_scale is None:
            self.input_scale = None
        else:
            value = float(input_scale)
            if not value > 0 or value != value or value == float("inf"):
                raise ValueError(f"input_scale must be a finite positive float, got {input_scale!r}")
            self.input_scale = torch.tensor(value, dtype=torch.float32, device=self.weight.device)
        self._refresh_scalars()

    def _refresh_scalars(self) -> None:
        self._gs = float(self.weight_scale_2)
        self._in_gs = None if self.input_scale is None else float(self.input_scale)
        self._cache = None

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "input_scale"
        if key in state_dict and self.input_scale is None:  # optional buffer: make room for it
            self.input_scale = torch.ones((), dtype=torch.float32, device=self.weight.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._refresh_scalars()
        if self._group is not None:
            self._group.invalidate()

    def _apply(self, fn, *args, **kwargs):
        # .to()/.cuda() replace the buffers; drop the cached NVFP4Tensor view of the old ones. The packed
        # weight and scales must stay uint8 (and the scalars fp32) whatever dtype the model is cast to.
        keep = {name: getattr(self, name) for name in ("weight", "weight_scale", "weight_scale_2", "input_scale")}
        super()._apply(fn, *args, **kwargs)
        for name, old in keep.items():
            new = getattr(self, name)
            if old is not None and new.dtype != old.dtype:  # a model-wide dtype cast: keep ours exact
                setattr(self, name, old.to(new.device))
        self._cache = None
        if self._group is not None:  # the fused tensor still lives where the buffers were
            self._group.invalidate()
        return self

    # ---- compute ------------------------------------------------------------------------------------------
    def nvfp4_weight(self):
        """The weight as a reset_native.nvfp4.NVFP4Tensor (a view of the buffers, cached)."""
        if self._cache is None or self._cache[0] is not self.weight:
            t = nvfp4_api.NVFP4Tensor.from_parts(self.weight, self.weight_scale, self._gs)
            self._cache = (self.weight, t)
        return self._cache[1]

    def dequantized_weight(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return nvfp4_api.dequantize(self.nvfp4_weight(), dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._group is not None:
            return self._group.member_forward(self, x)
        return self._forward_own(x)

    def _forward_own(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"x must have last dimension in_features={self.in_features}, got shape {tuple(x.shape)}")
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)
        if not x2.is_contiguous():
            x2 = x2.contiguous()
        bias = self.bias
        if bias is not None and bias.dtype != x2.dtype:  # gemv takes the bias in x's dtype
            bias = bias.to(x2.dtype)
        if self.activation == "nvfp4":
            y = nvfp4_api.gemv(self.nvfp4_weight(), x2, activation="nvfp4", act_global_scale=self._in_gs, bias=bias)
        else:
            y = nvfp4_api.gemv(self.nvfp4_weight(), x2, activation="bf16", bias=bias)
        return y.reshape(*lead, self.out_features)

    def forward_add(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """``residual + self(x)``; on CUDA with <= 16 tokens the add runs in the GEMV's epilogue (fp32, one
        rounding), which saves a kernel per decoder residual connection (integrations.fused_residual)."""
        n = self.out_features
        if (self._group is None and x.is_cuda and isinstance(residual, torch.Tensor) and residual.is_cuda
                and residual.device == x.device and residual.dtype == x.dtype and x.shape[-1] == self.in_features
                and residual.shape == (*x.shape[:-1], n) and 1 <= x.numel() // self.in_features <= 16
                and x.dtype in (torch.float16, torch.bfloat16, torch.float32)):
            from .. import _nvfp4_cuda

            x2 = x.reshape(-1, self.in_features).contiguous()
            bias = self.bias if self.bias is None or self.bias.dtype == x2.dtype else self.bias.to(x2.dtype)
            t = self.nvfp4_weight()
            act_gs = self._in_gs if self.activation == "nvfp4" else None
            y = _nvfp4_cuda.gemv(t.packed, t.block_scales, t.global_scale, x2, self.activation, act_gs, bias,
                                 residual.reshape(-1, n).contiguous())
            return y.view(residual.shape)
        return residual + self(x)

    def extra_repr(self) -> str:
        w4a = "W4A4" if self.activation == "nvfp4" else "W4A16"
        static = ", static input_scale" if self.input_scale is not None else ""
        fused = ", fused" if self._group is not None else ""
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, {w4a}{static}{fused}")


# ---- whole models -------------------------------------------------------------------------------------------
def model_nbytes(model: nn.Module) -> int:
    """Bytes held by the model's parameters and buffers, each storage counted once (tied weights, views)."""
    seen, total = set(), 0
    for tensor in list(model.parameters()) + list(model.buffers()):
        storage = tensor.untyped_storage()
        key = (tensor.device, storage.data_ptr())
        if key in seen:
            continue
        seen.add(key)
        total += storage.nbytes()  # views (tied weights, fused projection rows) share one storage
    return total


def _skipped(name: str, skip: Sequence[str]) -> bool:
    last = name.rsplit(".", 1)[-1]
    return any(name == pat or last == pat or fnmatch.fnmatchcase(name, pat) for pat in skip)


def quantize_model(model: nn.Module, *, skip: Iterable[str] = ("lm_head",), activation: str = "bf16",
                   input_scales: Optional[Dict[str, float]] = None, progress=None,
                   fuse_projections: bool = True) -> Dict[str, object]:
    """Replace every nn.Linear of ``model`` by an NVFP4Linear, in place, on whatever device it lives.

    ``skip``: module names left alone, matched against the full dotted name, its last component, or as a
    glob (``"*.mlp.*"``). Layers whose in_features is not a multiple of 16 are left alone and reported.
    ``input_scales``: {module name: static activation global scale} for W4A4 (see calibrate_input_scales).
    ``fuse_projections``: quantize each block's q/k/v and gate/up weights together (one global scale per
    group, so a ModelOpt loader can fuse them too) and run each group as one GEMV
    (integrations/fused_projections.py).
    Returns a report: bytes_before, bytes_after, quantized (names), skipped (names with reason), fused
    (groups of names).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(skip, str):
        raise TypeError("skip must be a sequence of names (e.g. ('lm_head',)), got a single string")
    skip = tuple(skip)
    _check_activation(activation)
    input_scales = dict(input_scales or {})
    before = model_nbytes(model)
    targets, skipped = [], {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and not isinstance(module, NVFP4Linear):
            if _skipped(name, skip):
                skipped[name] = "skip list"
            elif module.in_features % 16:
                skipped[name] = f"in_features {module.in_features} not a multiple of 16"
            else:
                targets.append(name)
    unknown = set(input_scales) - set(targets)
    if unknown:
        raise ValueError(f"input_scales names modules that are not quantized here: {sorted(unknown)[:5]}")
    groups = _joint_groups(model, targets, input_scales) if fuse_projections else []
    grouped = {name for group in groups for name in group}
    done = 0

    def replace(name: str, module: nn.Module) -> None:
        nonlocal done
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, module)
        done += 1
        if progress is not None:
            progress(done, len(targets), name)

    for name in targets:
        if name in grouped:
            continue
        linear = model.get_submodule(name)
        replace(name, NVFP4Linear.from_linear(linear, activation=activation, input_scale=input_scales.get(name)))
        del linear
    for group in groups:
        linears = [model.get_submodule(name) for name in group]
        t = nvfp4_api.quantize(torch.cat([lin.weight.detach() for lin in linears]).contiguous())
        members, row = [], 0
        for name, lin in zip(group, linears):
            rows = slice(row, row + lin.out_features)
            row += lin.out_features
            members.append(NVFP4Linear._from_quantized(lin, t.packed[rows], t.block_scales[rows],
                                                       float(t.global_scale), activation, input_scales.get(name)))
        del linears, t
        for name, member in zip(group, members):
            replace(name, member)
        from .fused_projections import ProjectionGroup
        ProjectionGroup(members)
    return {"bytes_before": before, "bytes_after": model_nbytes(model), "quantized": targets, "skipped": skipped,
            "fused": [list(g) for g in groups]}


def _joint_groups(model: nn.Module, targets: Sequence[str], input_scales: Dict[str, float]):
    """Groups of target linears that can share one global scale: same input size, device, dtype, bias
    presence and static input scale."""
    from .fused_projections import fusible_groups

    groups = []
    for _parent, names in fusible_groups(model, targets):
        linears = [model.get_submodule(n) for n in names]
        if not all(isinstance(lin, nn.Linear) and not isinstance(lin, NVFP4Linear) for lin in linears):
            continue
        first = linears[0]
        same = all(lin.in_features == first.in_features and lin.weight.device == first.weight.device
                   and lin.weight.dtype == first.weight.dtype and (lin.bias is None) == (first.bias is None)
                   for lin in linears)
        if same and len({input_scales.get(n) for n in names}) == 1:
            groups.append(tuple(names))
    return groups


@torch.no_grad()
def calibrate_input_scales(model: nn.Module, batches: Iterable[Dict[str, torch.Tensor]], *,
                           skip: Iterable[str] = ("lm_head",)) -> Dict[str, float]:
    """Run ``model(**batch)`` over calibration batches and return {linear name: amax(|input|) / 2688}.

    The result is what ModelOpt stores as ``input_scale`` and what quantize_model(input_scales=...) takes.
    """
    skip = tuple(skip)
    amax: Dict[str, float] = {}
    hooks = []

    def hook(name):
        def fn(_module, args):
            value = float(args[0].detach().abs().max())
            amax[name] = max(amax.get(name, 0.0), value)
        return fn

    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, NVFP4Linear)) and not _skipped(name, skip):
            hooks.append(module.register_forward_pre_hook(hook(name)))
    try:
        count = 0
        for batch in batches:
            model(**batch)
            count += 1
        if count == 0:
            raise ValueError("batches must hold at least one calibration batch, got none")
    finally:
        for h in hooks:
            h.remove()
    # fp32 arithmetic, as the spec computes every global scale (amax / 2688.0f)
    return {name: (float(torch.tensor(a, dtype=torch.float32) / 2688.0) if a > 0 else 1.0)
            for name, a in amax.items()}
