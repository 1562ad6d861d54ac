"""ReSET as a Hugging Face transformers LogitsProcessor (transformers 4.45+ and 5.x).

    proc = ReSETLogitsProcessor(ReSETConfig(t_low=0.1, tau0=0.55, newline_ids=nl, double_newline_ids=dnl))
    model.generate(ids, do_sample=True, temperature=1.0, top_k=0, top_p=0.95, logits_processor=[proc])

Custom processors run before generate()'s own temperature/top-k/top-p warpers, so the processor
divides each row by its own ReSET temperature (rows at temperature 0 keep only their argmax) and
generate() does the rest: keep generate's temperature at 1. With mode="sample" the processor instead
draws the token itself (reset_native's seeded stream, the config's top_k/top_p) and leaves only that
token possible, so the output is reproducible from `seed` alone.
"""
from __future__ import annotations

from typing import List, Optional

from ..sampler import DecodeOutput, ReSETConfig, ReSETState, decode_step

try:  # subclass the real base when transformers is present (isinstance checks in generate())
    from transformers import LogitsProcessor as _Base
except ImportError:  # pragma: no cover - the module stays importable without transformers
    _Base = object


class ReSETLogitsProcessor(_Base):
    """Per-row ReSET state for one generate() call at a time.

    The prompt length is recorded on the first call; each later call feeds the token generated at
    the previous step (input_ids[:, -1]) into the state machine. A call whose input is not the
    previous one plus one token starts a new generation (fresh state). Beam search reorders rows and
    scores log-probabilities: both are detected and refused with a ValueError.
    `record=True` keeps every step's DecodeOutput in `.history` (entropies, temperatures, tokens).
    """

    supports_continuous_batching = False

    def __init__(self, config: ReSETConfig, seed: int = 0, mode: str = "temperature", record: bool = False) -> None:
        if not isinstance(config, ReSETConfig):
            raise TypeError(f"config must be a ReSETConfig, got {type(config).__name__}")
        if mode not in ("temperature", "sample"):
            raise ValueError(f"mode must be 'temperature' or 'sample', got {mode!r}")
        self.config = config
        self.seed = seed
        self.mode = mode
        self.record = record
        self.history: List[DecodeOutput] = []
        self.state: Optional[ReSETState] = None
        self.prompt_length: Optional[int] = None
        self._previous = None  # input_ids of the last call, to detect reordered rows

    def reset(self) -> None:
        """Forget the current generation (the next call starts a new one)."""
        self.state = None
        self.prompt_length = None
        self._previous = None
        self.history = []

    def _start(self, input_ids, scores) -> None:
        import torch

        lse = torch.logsumexp(scores.float(), dim=-1)
        if bool(torch.all(lse.abs() < 1e-4)):  # one host sync, first step only
            raise ValueError("ReSETLogitsProcessor got log-probabilities (beam search?). ReSET needs raw logits and "
                             "one row per sequence: use do_sample=True with num_beams=1")
        self.reset()
        self.state = ReSETState(self.config, batch_size=scores.shape[0], vocab_size=scores.shape[1],
                                device=str(scores.device), seed=self.seed)
        self.prompt_length = input_ids.shape[1]

    def __call__(self, input_ids, scores):
        import torch

        rows, length = input_ids.shape
        fresh = (self.state is None or self._previous is None or rows != self._previous.shape[0]
                 or length != self._previous.shape[1] + 1)
        if fresh:
            self._start(input_ids, scores)
            last = torch.full((rows,), -1, dtype=torch.int64, device=scores.device)
        else:
            if not torch.equal(input_ids[:, :-1], self._previous):
                raise ValueError("ReSETLogitsProcessor: rows were reordered between steps (beam search?); ReSET "
                                 "keeps one state per row: use do_sample=True with num_beams=1")
            last = input_ids[:, -1].to(torch.int64).contiguous()
        if scores.shape[1] != self.state.vocab_size:
            raise ValueError(f"scores must have {self.state.vocab_size} columns, got {tuple(scores.shape)}")
        self._previous = input_ids.clone()

        out = decode_step(self.state, scores, last)
        if self.record:
            self.history.append(out)
        if self.mode == "sample":
            return self._only(scores, out.tokens)
        temps = out.temperatures.to(scores.device).to(scores.dtype)
        greedy = temps <= 1e-6  # decode_step's token is the first argmax on those rows
        scaled = scores / torch.where(greedy, torch.ones_like(temps), temps)[:, None]
        return torch.where(greedy[:, None], self._only(scores, out.tokens), scaled)

    @staticmethod
    def _only(scores, tokens):
        """Scores that leave exactly one token per row possible."""
        import torch

        out = torch.full_like(scores, float("-inf"))
        out.scatter_(1, tokens.to(scores.device).view(-1, 1).to(torch.int64), 0.0)
        return out
