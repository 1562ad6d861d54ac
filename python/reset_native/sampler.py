"""ReSET sampling (docs/sampler.md): per-token temperature from the token's entropy and an online
estimate of the current reasoning step's entropy, batched over slots, on CPU and CUDA.

    config = ReSETConfig(t_low=0.1, tau0=0.5505, newline_ids=nl, double_newline_ids=dnl, top_p=0.95)
    state = ReSETState(config, batch_size=8, vocab_size=151936, device="cuda", seed=0)
    out = decode_step(state, logits, last_tokens)     # tokens, temperatures, entropies

``ReSETConfig.fixed(0.6, top_p=0.95)`` is the plain fixed-temperature baseline through the same path.
Torch is optional: numpy in -> numpy out; torch in -> torch out on the same device.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Iterable, NamedTuple, Optional, Tuple

import numpy as np

from . import _core
from . import _torch_launch as _launch
from ._sampler_arrays import describe, float_rows_cpu, int_rows_cpu, is_tensor, logits_cpu, tensor_device

_S = _core.sampler

__all__ = ["ReSETConfig", "ReSETState", "DecodeOutput", "decode_step", "calibrate_tau0", "newline_token_ids",
           "GREEDY_TEMPERATURE"]

#: A temperature at or below this is greedy decoding (argmax).
GREEDY_TEMPERATURE: float = float(_S.GREEDY_TEMPERATURE)
_SLOT_INTS = int(_S.SLOT_INTS)
_SEED_FIELD = 6  # kSeed in reset_native/sampler.hpp


def _real(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    return float(value)


def _integer(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    return int(value)


def _ids(values: Any, name: str) -> Tuple[int, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"{name} must be an iterable of token ids, got {type(values).__name__}")
    ids = tuple(sorted({_integer(v, f"{name} entry") for v in values}))
    if ids and ids[0] < 0:
        raise ValueError(f"{name} must hold token ids >= 0, got {ids[0]}")
    return ids


@dataclass(frozen=True)
class ReSETConfig:
    """ReSET hyperparameters (SPEC-reset.md section 2), validated on construction.

    t_low / t_high: temperatures of confident / uncertain tokens (0 = greedy); tau0: entropy threshold
    in nats outside uncertain steps; window: entropies in the step estimator's window; newline_ids /
    double_newline_ids: token ids whose text is exactly "\\n" / contains "\\n\\n" (newline_token_ids());
    top_p in (0, 1] and top_k >= 0 (0 = off) restrict sampling after the temperature is applied.
    """

    t_low: float
    tau0: float
    t_high: float = 1.0
    window: int = 32
    newline_ids: Tuple[int, ...] = field(default=())
    double_newline_ids: Tuple[int, ...] = field(default=())
    top_p: float = 1.0
    top_k: int = 0

    def __post_init__(self) -> None:
        for name in ("t_low", "tau0", "t_high", "top_p"):
            object.__setattr__(self, name, _real(getattr(self, name), name))
        for name in ("window", "top_k"):
            object.__setattr__(self, name, _integer(getattr(self, name), name))
        for name in ("newline_ids", "double_newline_ids"):
            object.__setattr__(self, name, _ids(getattr(self, name), name))
        for name in ("t_low", "t_high"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"{name} must be a finite temperature > 0, or exactly 0 for greedy; got {value}")
        if not (math.isfinite(self.tau0) and self.tau0 >= 0.0):
            raise ValueError(f"tau0 must be a finite entropy >= 0 (nats), got {self.tau0}")
        if not 1 <= self.window <= int(_S.MAX_WINDOW):
            raise ValueError(f"window must be in [1, {int(_S.MAX_WINDOW)}], got {self.window}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 disables), got {self.top_k}")
        both = set(self.newline_ids) & set(self.double_newline_ids)
        if both:
            raise ValueError(f"newline_ids and double_newline_ids must be disjoint, both hold {sorted(both)[:5]}")

    @classmethod
    def fixed(cls, temperature: float, *, top_p: float = 1.0, top_k: int = 0) -> "ReSETConfig":
        """The fixed-temperature baseline: t_low == t_high == temperature, so every token gets it.
        Runs through the same decode_step (entropies are still reported)."""
        temperature = _real(temperature, "temperature")
        return cls(t_low=temperature, tau0=0.0, t_high=temperature, top_p=top_p, top_k=top_k)

    @property
    def is_fixed(self) -> bool:
        """True when the temperature does not depend on entropy (t_low == t_high)."""
        return self.t_low == self.t_high

    def _native(self):
        return _S.Config(self.t_low, self.tau0, self.t_high, self.window, self.top_p, self.top_k)


def newline_token_ids(tokenizer: Any) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
    """(newline_ids, double_newline_ids) from one scan of a Hugging Face tokenizer's vocabulary:
    ids whose decoded text is exactly "\\n", and ids whose decoded text contains "\\n\\n"."""
    try:
        size = len(tokenizer)
    except TypeError:
        raise TypeError(f"tokenizer must support len() (a Hugging Face tokenizer), got {type(tokenizer).__name__}")
    ids = [[i] for i in range(size)]
    if hasattr(tokenizer, "batch_decode"):
        texts = tokenizer.batch_decode(ids, skip_special_tokens=False)
    elif hasattr(tokenizer, "decode"):
        texts = [tokenizer.decode(i) for i in ids]
    else:
        raise TypeError(f"tokenizer must have batch_decode or decode, got {type(tokenizer).__name__}")
    newline = tuple(i for i, text in enumerate(texts) if text == "\n")
    double = tuple(i for i, text in enumerate(texts) if "\n\n" in text)
    return newline, double


class DecodeOutput(NamedTuple):
    """One decode step: tokens int64 [B], temperatures float32 [B], entropies float32 [B] (nats)."""

    tokens: Any
    temperatures: Any
    entropies: Any


def _device_name(device: Any) -> str:
    text = str(device)
    if text == "cpu":
        return "cpu"
    if text == "cuda":
        return "cuda:0"
    if text.startswith("cuda:") and text[5:].isdigit():
        return text
    raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {device!r}")


def _seed(value: Any, name: str) -> int:
    value = _integer(value, name)
    if not 0 <= value < 2 ** 64:
        raise ValueError(f"{name} must be in [0, 2**64), got {value}")
    return value


class ReSETState:
    """All slots' ReSET state (window, step and global sums, last two tokens, random-stream key)
    for a batch of `batch_size` sequences over a `vocab_size` vocabulary, on `device`.

    Row i of update()/decode_step() is slot i unless `slots` maps rows to slots. Each slot's random
    stream is keyed by its seed (default: derived from `seed` and the slot index; see reset()) and
    advanced by its own position, so a sequence samples the same tokens whatever batch it is in.
    On CUDA nothing synchronises; bad input sets a device error flag that check_errors() (and any
    method that already synchronises: slot_seed, snapshot, reset) turns into a ValueError.
    """

    def __init__(self, config: ReSETConfig, batch_size: int, vocab_size: int, device: Any = "cpu",
                 seed: int = 0) -> None:
        if not isinstance(config, ReSETConfig):
            raise TypeError(f"config must be a ReSETConfig, got {type(config).__name__}")
        batch_size = _integer(batch_size, "batch_size")
        vocab_size = _integer(vocab_size, "vocab_size")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if vocab_size < 1:
            raise ValueError(f"vocab_size must be >= 1, got {vocab_size}")
        for name in ("newline_ids", "double_newline_ids"):
            ids = getattr(config, name)
            if ids and ids[-1] >= vocab_size:
                raise ValueError(f"config.{name} holds id {ids[-1]} outside the vocabulary [0, {vocab_size})")
        self._config = config
        self._native = config._native()
        self._batch_size = batch_size
        self._vocab_size = vocab_size
        self._seed = _seed(seed, "seed")
        self._device = _device_name(device)

        classes = np.zeros(vocab_size, dtype=np.uint8)
        classes[list(config.newline_ids)] = 1
        classes[list(config.double_newline_ids)] = 2
        window = np.zeros((batch_size, config.window), dtype=np.float32)
        sums = np.zeros((batch_size, int(_S.SLOT_SUMS)), dtype=np.float64)
        ints = np.zeros((batch_size, _SLOT_INTS), dtype=np.int64)
        for slot in range(batch_size):
            _S.reset_slot(batch_size, config.window, window.ctypes.data, sums.ctypes.data, ints.ctypes.data, slot,
                          _S.default_slot_seed(self._seed, slot))
        if self._device == "cpu":
            self._classes, self._window, self._sums, self._ints = classes, window, sums, ints
            return
        from . import has_cuda

        import torch

        if not has_cuda() or not torch.cuda.is_available():
            raise NotImplementedError("device='cuda' needs a CUDA build of reset_native and a visible CUDA device "
                                      f"(reset_native.has_cuda() = {has_cuda()})")
        from . import _sampler_torch  # registers the custom op

        self._torch_ops = _sampler_torch
        dev = torch.device(self._device)
        self._torch_device = dev  # compared with the inputs' devices per call (no str() of a device)
        self._classes = torch.from_numpy(classes).to(dev)
        self._window = torch.from_numpy(window).to(dev)
        self._sums = torch.from_numpy(sums).to(dev)
        self._ints = torch.from_numpy(ints).to(dev)
        self._error_flag = torch.zeros(1, dtype=torch.int32, device=dev)
        self._slot_busy = torch.zeros(batch_size, dtype=torch.int32, device=dev)
        # Per-row partials and histograms of decode_step's kernels; they leave it zeroed again.
        self._workspace = torch.zeros(int(_S.device_workspace_bytes(batch_size, vocab_size)), dtype=torch.uint8,
                                      device=dev)

    # ------------------------------------------------------------------ properties
    config = property(lambda self: self._config)
    batch_size = property(lambda self: self._batch_size)
    vocab_size = property(lambda self: self._vocab_size)
    device = property(lambda self: self._device)
    seed = property(lambda self: self._seed)

    @property
    def is_cuda(self) -> bool:
        return self._device != "cpu"

    def cuda_path(self, rows: int, dtype: str = "float32") -> str:
        """The kernels a CUDA decode_step of `rows` rows of `dtype` logits runs now (docs/sampler.md):
        "resident" (one launch, the row's blocks all resident), "kernels" (stats, top-k, top-p bins,
        sample) or "one-kernel" (RESET_NATIVE_SAMPLER_FUSED=1). The choice follows the shape, the
        config, the device and the environment at the time of the call."""
        if not self.is_cuda:
            raise ValueError("cuda_path needs a CUDA state")
        codes = {"float32": 0, "bfloat16": 1, "float16": 2}
        if dtype not in codes:
            raise ValueError(f"dtype must be one of {sorted(codes)}, got {dtype!r}")
        rows = _integer(rows, "rows")
        if not 1 <= rows <= self._batch_size:
            raise ValueError(f"rows must be in [1, {self._batch_size}], got {rows}")
        return _S.decode_step_cuda_path(self._config._native(), rows, self._vocab_size, codes[dtype])

    def _check_slot(self, slot: Any) -> int:
        slot = _integer(slot, "slot")
        if not 0 <= slot < self._batch_size:
            raise ValueError(f"slot must be in [0, {self._batch_size}), got {slot}")
        return slot

    # ------------------------------------------------------------------ slots
    def reset(self, slot: int, seed: Optional[int] = None) -> None:
        """Empties `slot` for a new sequence (prompt tokens never enter the state). Its random stream
        restarts at position 0 with key `seed`, by default the slot's default key for the state's seed."""
        slot = self._check_slot(slot)
        key = _S.default_slot_seed(self._seed, slot) if seed is None else _seed(seed, "seed")
        if not self.is_cuda:
            _S.reset_slot(self._batch_size, self._config.window, self._window.ctypes.data, self._sums.ctypes.data,
                          self._ints.ctypes.data, slot, key)
            return
        import torch

        signed = key - 2 ** 64 if key >= 2 ** 63 else key
        self._window[slot].zero_()
        self._sums[slot].zero_()
        self._ints[slot] = torch.tensor([0, 0, 0, 0, -1, -1, signed], dtype=torch.int64)

    def slot_seed(self, slot: int) -> int:
        """The random-stream key of `slot` (synchronises on CUDA)."""
        slot = self._check_slot(slot)
        self.check_errors()
        value = int(self._ints[slot, _SEED_FIELD])
        return value + 2 ** 64 if value < 0 else value

    def snapshot(self) -> dict:
        """Copies of the raw state as numpy arrays: window [B, w] float32, sums [B, 2] float64 (step,
        global), ints [B, 7] int64 (step count, global count, window length, window head, last token,
        previous token, seed). Synchronises on CUDA."""
        self.check_errors()
        if not self.is_cuda:
            return {"window": self._window.copy(), "sums": self._sums.copy(), "ints": self._ints.copy()}
        return {"window": self._window.cpu().numpy(), "sums": self._sums.cpu().numpy(),
                "ints": self._ints.cpu().numpy()}

    def check_errors(self) -> None:
        """Raises ValueError if a CUDA call since the last check met bad input (clears the flag).
        Synchronises with the device; a no-op on CPU, where bad input raises immediately."""
        if not self.is_cuda:
            return
        flag = int(self._error_flag.item())
        if flag == 0:
            return
        self._error_flag.zero_()
        self._slot_busy.zero_()
        if flag & int(_S.ERROR_FLAGS["stalled"]):  # late blocks may have left partial sums behind
            self._workspace.zero_()
        names = {"nan": "a logits row held NaN or +inf", "all_neg_inf": "a logits row was all -inf",
                 "token_range": f"a last_tokens id was outside [-1, {self._vocab_size})",
                 "slot_range": f"a slot index was outside [0, {self._batch_size})",
                 "slot_twice": "two rows named the same slot", "entropy": "an entropy was NaN, infinite or < 0",
                 "stalled": "the resident step stalled (its blocks were not all resident: another kernel held "
                            "the SMs); that call's outputs and state update are invalid; "
                            "RESET_NATIVE_SAMPLER_RESIDENT=0 avoids it"}
        found = [text for key, text in names.items() if flag & int(_S.ERROR_FLAGS[key])]
        raise ValueError("ReSET CUDA step rejected rows (token -1, temperature NaN, slot unchanged): " +
                         "; ".join(found))

    # ------------------------------------------------------------------ the state machine
    def _rows_and_slots(self, rows: int, slots: Any):
        if not 1 <= rows <= self._batch_size:
            raise ValueError(f"batch of {rows} rows does not fit the state's batch_size {self._batch_size}")
        return None if slots is None else int_rows_cpu(slots, rows, "slots")

    def update(self, entropies: Any, last_tokens: Any, slots: Any = None) -> Any:
        """Advances the state machine by one token per row: `entropies` float [B] (nats), `last_tokens`
        int [B] (the token generated at the previous step, -1 at the first generated position),
        optional `slots` int [B] (distinct; default row i = slot i). Returns temperatures float32 [B]."""
        if self.is_cuda:
            self._torch_ops.check_update_inputs(self._torch_device, self._batch_size, entropies, last_tokens, slots)
            return self._torch_ops.update(self._native, self._classes, (self._window, self._sums, self._ints),
                                          last_tokens, slots, entropies, self._error_flag, self._slot_busy)
        h = float_rows_cpu(entropies, None, "entropies")
        rows = h.shape[0]
        slot_ids = self._rows_and_slots(rows, slots)
        last = int_rows_cpu(last_tokens, rows, "last_tokens")
        temps = np.empty(rows, dtype=np.float32)
        _S.update(self._native, self._classes.ctypes.data, self._vocab_size, self._batch_size, self._config.window,
                  self._window.ctypes.data, self._sums.ctypes.data, self._ints.ctypes.data, rows, last.ctypes.data,
                  0 if slot_ids is None else slot_ids.ctypes.data, h.ctypes.data, temps.ctypes.data)
        if is_tensor(entropies):
            import torch

            return torch.from_numpy(temps)
        return temps

    def __repr__(self) -> str:
        return (f"ReSETState(batch_size={self._batch_size}, vocab_size={self._vocab_size}, device='{self._device}', "
                f"seed={self._seed}, config={self._config})")


def decode_step(state: ReSETState, logits: Any, last_tokens: Any, slots: Any = None) -> DecodeOutput:
    """Entropy per row -> ReSET state update -> temperature -> top-k then top-p -> one sampled token.

    logits: [B, V] float32/bfloat16/float16, numpy or torch, on the state's device (B <= batch_size,
    V = vocab_size); last_tokens: int [B], -1 at a sequence's first generated position; slots:
    optional int [B] of distinct slots (default row i = slot i). On CUDA the work is one launch (the
    resident step) or 2-8 short kernels on the current stream (docs/sampler.md, `ReSETState.cuda_path`):
    no host synchronisation, outputs stay on the device,
    capturable in a CUDA graph; bad input is reported by state.check_errors()."""
    if not isinstance(state, ReSETState):
        raise TypeError(f"state must be a ReSETState, got {type(state).__name__}")
    if state.is_cuda:
        ops = state._torch_ops
        ops.check_step_inputs(state._torch_device, state._vocab_size, state._batch_size, logits, last_tokens, slots)
        c = state._config
        args = (logits, last_tokens, slots, state._classes, state._window, state._sums, state._ints, state._error_flag,
                state._slot_busy, state._workspace, c.t_low, c.tau0, c.t_high, c.window, c.top_p, c.top_k)
        if _launch.eager_without_grad(logits):  # the op's body without the dispatcher (~10 us less host time)
            return DecodeOutput(*ops.decode_step_impl(*args, config=state._native))
        return DecodeOutput(*ops.step_op()(*args))

    if is_tensor(logits) and tensor_device(logits) != "cpu":
        raise ValueError(f"logits must be on the CPU like the state, got {describe(logits)}")
    keep, pointer, dtype, rows, stride = logits_cpu(logits)
    width = keep.shape[1]
    if width != state.vocab_size:
        raise ValueError(f"logits must have {state.vocab_size} columns (vocab_size), got {describe(logits)}")
    slot_ids = state._rows_and_slots(rows, slots)
    last = int_rows_cpu(last_tokens, rows, "last_tokens")
    tokens = np.empty(rows, dtype=np.int64)
    temps = np.empty(rows, dtype=np.float32)
    ents = np.empty(rows, dtype=np.float32)
    _S.decode_step(state._native, state._classes.ctypes.data, state.vocab_size, state.batch_size, state.config.window,
                   state._window.ctypes.data, state._sums.ctypes.data, state._ints.ctypes.data, rows, last.ctypes.data,
                   0 if slot_ids is None else slot_ids.ctypes.data, pointer, dtype, stride, tokens.ctypes.data,
                   temps.ctypes.data, ents.ctypes.data)
    if is_tensor(logits):
        import torch

        return DecodeOutput(torch.from_numpy(tokens), torch.from_numpy(temps), torch.from_numpy(ents))
    return DecodeOutput(tokens, temps, ents)


def calibrate_tau0(entropies: Any, percentile: float = 80.0) -> float:
    """tau0 = the `percentile`-th percentile (linear interpolation) of per-token entropies (nats)
    gathered from the quantized model on a small calibration set. Accepts an array, a tensor, or a
    list of per-sequence arrays/lists."""
    percentile = _real(percentile, "percentile")
    if not 0.0 <= percentile <= 100.0:
        raise ValueError(f"percentile must be in [0, 100], got {percentile}")
    if is_tensor(entropies):
        entropies = entropies.detach().cpu().double().numpy()
    if isinstance(entropies, (list, tuple)) and any(isinstance(e, (list, tuple, np.ndarray)) or is_tensor(e)
                                                   for e in entropies):
        parts = [np.ravel(e.detach().cpu().double().numpy() if is_tensor(e) else np.asarray(e, dtype=np.float64))
                 for e in entropies]
        values = np.concatenate(parts) if parts else np.empty(0)
    else:
        try:
            values = np.ravel(np.asarray(entropies, dtype=np.float64))
        except (TypeError, ValueError):
            raise TypeError(f"entropies must be numbers or sequences of numbers, got {type(entropies).__name__}")
    if values.size == 0:
        raise ValueError("entropies is empty: calibration needs at least one token entropy")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError("entropies must be finite and >= 0 (nats)")
    return float(np.percentile(values, percentile))


# ---------------------------------------------------------------------- CLI
def _read_entropy_jsonl(path: str, key: str) -> list:
    import json

    values: list = []
    with open(path, "r", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.strip()
            if not line:
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not JSON ({exc.msg})") from None
            if isinstance(item, dict):
                if key not in item:
                    raise ValueError(f"{path}:{number}: object has no '{key}' field (see --key)")
                item = item[key]
            items = item if isinstance(item, list) else [item]
            for v in items:
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise ValueError(f"{path}:{number}: entropies must be numbers, got {v!r}")
                values.append(float(v))
    return values


def _cmd_calibrate(args) -> int:
    import json

    values = _read_entropy_jsonl(args.path, args.key)
    tau0 = calibrate_tau0(values, args.percentile)
    if args.json:
        print(json.dumps({"tau0": tau0, "percentile": args.percentile, "tokens": len(values)}))
    else:
        print(f"tau0 = {tau0:.6f} nats  ({args.percentile:g}th percentile of {len(values)} token entropies)")
    return 0


def register_cli(subparsers) -> None:
    """Adds `reset-native calibrate`."""
    p = subparsers.add_parser(
        "calibrate", help="tau0 from a JSONL of per-token entropies",
        description="Each line is a number, a list of numbers, or an object whose --key field is either.")
    p.add_argument("path", help="JSONL file of per-token entropies (nats)")
    p.add_argument("--percentile", type=float, default=80.0, help="percentile of the entropies (default 80)")
    p.add_argument("--key", default="entropies", help="field to read from JSON objects (default 'entropies')")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_calibrate)
