"""ReSET for vLLM: the per-row temperature as a batch-level logits processor, in both shapes.

* ``ReSETLogitsProcessorV1``: the legacy v1 model runner interface (``update_state(BatchUpdate)``,
  ``apply(logits)``, ``is_argmax_invariant()``); rows are persistent-batch indices that requests
  are added to, removed from and moved between.
* ``ReSETLogitsProcessorV2``: the Model Runner V2 shape (``add_request(slot, params)``,
  ``apply(logits, ctx)`` with ``ctx.idx_mapping`` row -> slot and ``ctx.input_ids`` the last sampled
  token per row); the state lives per slot and nothing is copied to or from the host.

Settings: ``vllm_config.additional_config["reset_native"]`` holds the ReSETConfig fields (t_low,
tau0, t_high, window, newline_ids, double_newline_ids) and an optional ``seed``. A request opts in
with ``SamplingParams(temperature=1.0, extra_args={"reset": True})`` (optionally ``"reset_seed"``);
other rows pass through untouched. The processor divides each opted-in row by its ReSET temperature
(temperature-0 rows keep only their argmax) and vLLM samples as usual (its top_p/top_k apply after).
Register the v1 class through the ``vllm.logits_processors`` entry point group or pass the class to
``LLM(logits_processors=[...])``.

Limits: one token per request per step (no speculative decoding: only the newest token is fed to
the state); partial-prefill rows are treated as generated positions (disable chunked prefill for
exact ReSET semantics).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from ..sampler import ReSETConfig, ReSETState, decode_step

__all__ = ["ReSETLogitsProcessorV1", "ReSETLogitsProcessorV2", "settings_from_vllm_config", "request_enabled"]

try:  # the real base classes when vLLM is installed; plain objects otherwise (tests use fakes)
    from vllm.v1.sample.logits_processor import LogitsProcessor as _V1Base
except ImportError:
    _V1Base = object
_V2Base = object
for _path in ("vllm.v1.worker.gpu.sample.logits_processor", "vllm.v1.worker.gpu.logits_processor"):
    try:
        _V2Base = __import__(_path, fromlist=["LogitsProcessor"]).LogitsProcessor
        break
    except (ImportError, AttributeError):
        continue

_CONFIG_KEY = "reset_native"
_CONFIG_FIELDS = ("t_low", "tau0", "t_high", "window", "newline_ids", "double_newline_ids")


def settings_from_vllm_config(vllm_config: Any):
    """(ReSETConfig, seed, max_num_seqs, vocab_size) from a VllmConfig (or an object with its fields)."""
    extra = getattr(vllm_config, "additional_config", None) or {}
    raw = extra.get(_CONFIG_KEY)
    if raw is None:
        raise ValueError(f"vllm_config.additional_config['{_CONFIG_KEY}'] must hold the ReSET settings, e.g. "
                         "{'t_low': 0.1, 'tau0': 0.55, 'newline_ids': [...], 'double_newline_ids': [...]}")
    if isinstance(raw, ReSETConfig):
        config, seed = raw, 0
    elif isinstance(raw, dict):
        unknown = set(raw) - set(_CONFIG_FIELDS) - {"seed"}
        if unknown:
            raise ValueError(f"unknown ReSET settings {sorted(unknown)}; allowed: {_CONFIG_FIELDS + ('seed',)}")
        config = ReSETConfig(**{k: v for k, v in raw.items() if k != "seed"})
        seed = raw.get("seed", 0)
    else:
        raise TypeError(f"additional_config['{_CONFIG_KEY}'] must be a dict or ReSETConfig, got {type(raw).__name__}")
    slots = int(vllm_config.scheduler_config.max_num_seqs)
    vocab = int(vllm_config.model_config.get_vocab_size())
    return config, seed, slots, vocab


def request_enabled(params: Any) -> bool:
    """True when SamplingParams.extra_args asks for ReSET; raises ValueError for malformed settings."""
    extra = getattr(params, "extra_args", None) or {}
    flag = extra.get("reset", False)
    if not isinstance(flag, bool):
        raise ValueError(f"SamplingParams.extra_args['reset'] must be True or False, got {flag!r}")
    seed = extra.get("reset_seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 64):
        raise ValueError(f"SamplingParams.extra_args['reset_seed'] must be an int in [0, 2**64), got {seed!r}")
    return flag


def _request_seed(params: Any) -> Optional[int]:
    return (getattr(params, "extra_args", None) or {}).get("reset_seed")


def _scale_rows(logits, rows, temperatures, tokens):
    """logits[rows] /= T in place; rows at temperature 0 keep only their (first) argmax."""
    import torch

    sub = logits[rows]
    temps = temperatures.to(device=logits.device, dtype=logits.dtype)
    greedy = temps <= 1e-6
    scaled = sub / torch.where(greedy, torch.ones_like(temps), temps)[:, None]
    one_hot = torch.full_like(sub, float("-inf"))
    one_hot.scatter_(1, tokens.to(logits.device).view(-1, 1), 0.0)
    logits[rows] = torch.where(greedy[:, None], one_hot, scaled)
    return logits


def _state_device(device: Any) -> str:
    text = str(device)
    return "cpu" if text == "cpu" else (text if ":" in text else text + ":0")


class _Request:
    __slots__ = ("slot", "output_ids", "fed")

    def __init__(self, slot: int, output_ids: List[int]) -> None:
        self.slot, self.output_ids, self.fed = slot, output_ids, len(output_ids)


class ReSETLogitsProcessorV1(_V1Base):
    """vLLM v1 (legacy model runner) batch-level logits processor."""

    @classmethod
    def validate_params(cls, params: Any) -> None:
        request_enabled(params)

    def __init__(self, vllm_config: Any, device: Any, is_pin_memory: bool = False) -> None:
        self.config, seed, slots, vocab = settings_from_vllm_config(vllm_config)
        self.device = device
        self.is_pin_memory = is_pin_memory
        self.state = ReSETState(self.config, slots, vocab, device=_state_device(device), seed=seed)
        self._rows: Dict[int, _Request] = {}
        self._free = list(range(slots - 1, -1, -1))

    def is_argmax_invariant(self) -> bool:
        # Scaling by T > 0 keeps the argmax, but the state must see every step, greedy or not.
        return False

    def _release(self, index: int) -> None:
        request = self._rows.pop(index, None)
        if request is not None:
            self._free.append(request.slot)

    def update_state(self, batch_update: Any) -> None:
        """Applies removed, then added, then moved (the order vLLM documents)."""
        if batch_update is None:
            return
        for index in batch_update.removed:
            self._release(index)
        for added in batch_update.added:
            if isinstance(added[0], list):  # older vLLM: (prompt_ids, index, params, output_ids)
                _, index, params, output_ids = added
            else:
                index, params, _, output_ids = added
            self._release(index)
            if not request_enabled(params):
                continue
            if not self._free:
                raise ValueError("more ReSET requests than max_num_seqs slots")
            slot = self._free.pop()
            self.state.reset(slot, seed=_request_seed(params))
            self._rows[index] = _Request(slot, output_ids)
        for a, b, direction in batch_update.moved:
            if getattr(direction, "name", str(direction)).upper().endswith("SWAP"):
                ra, rb = self._rows.pop(a, None), self._rows.pop(b, None)
                if ra is not None:
                    self._rows[b] = ra
                if rb is not None:
                    self._rows[a] = rb
            else:  # one-way a -> b: b's previous occupant (if any) is gone
                self._release(b)
                moved = self._rows.pop(a, None)
                if moved is not None:
                    self._rows[b] = moved

    def apply(self, logits):
        import torch

        if not self._rows:
            return logits
        indices = sorted(self._rows)
        slots, last = [], []
        for index in indices:
            request = self._rows[index]
            grown = len(request.output_ids) > request.fed
            last.append(request.output_ids[-1] if grown else -1)
            request.fed = len(request.output_ids)
            slots.append(request.slot)
        target = logits.device
        rows = torch.tensor(indices, dtype=torch.int64, pin_memory=self.is_pin_memory).to(target, non_blocking=True)
        slot_ids = torch.tensor(slots, dtype=torch.int64, pin_memory=self.is_pin_memory).to(target, non_blocking=True)
        last_ids = torch.tensor(last, dtype=torch.int64, pin_memory=self.is_pin_memory).to(target, non_blocking=True)
        out = decode_step(self.state, logits[rows].contiguous(), last_ids, slots=slot_ids)
        return _scale_rows(logits, rows, out.temperatures, out.tokens)


class ReSETLogitsProcessorV2(_V2Base):
    """vLLM Model Runner V2 logits processor: state per slot, rows mapped by ctx.idx_mapping."""

    def __init__(self, vllm_config: Any, device: Any, is_pin_memory: bool = False) -> None:
        import torch

        self.config, seed, slots, vocab = settings_from_vllm_config(vllm_config)
        self.state = ReSETState(self.config, slots, vocab, device=_state_device(device), seed=seed)
        self._enabled = torch.zeros(slots, dtype=torch.bool, device=device)
        self._started = torch.zeros(slots, dtype=torch.bool, device=device)

    def add_request(self, slot: int, params: Any) -> None:
        enabled = request_enabled(params)
        self.state.reset(slot, seed=_request_seed(params))
        self._enabled[slot] = enabled
        self._started[slot] = False

    def remove_request(self, slot: int) -> None:
        self._enabled[slot] = False

    def apply(self, logits, ctx):
        import torch

        slots = ctx.idx_mapping.to(torch.int64)
        # The first step after add_request samples the first generated token: nothing to feed yet.
        last = torch.where(self._started[slots], ctx.input_ids.to(torch.int64), torch.full_like(slots, -1))
        out = decode_step(self.state, logits, last.contiguous(), slots=slots.contiguous())
        self._started[slots] = True
        enabled = self._enabled[slots]
        temps = torch.where(enabled, out.temperatures.to(logits.device), torch.ones_like(out.temperatures,
                                                                                          device=logits.device))
        rows = torch.arange(logits.shape[0], device=logits.device)
        return _scale_rows(logits, rows, temps, out.tokens.to(logits.device))
