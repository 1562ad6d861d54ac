"""A decode loop for transformers causal LMs that samples every token with reset_native's decode_step.

One code path on CPU and CUDA: a transformers StaticCache (fixed addresses, its write position kept on the
device) and an explicit additive 4-D attention mask of the cache's full length, so a decode step has fixed
shapes and no host synchronisation. On CUDA that step (forward + decode_step + bookkeeping) is captured once
in a CUDA graph and replayed for every token; CPU runs the same step eagerly.
"""
from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Union

import torch

from .. import sampler as sampler_api

Prompt = Union[str, Sequence[str], torch.Tensor, Sequence[Sequence[int]]]
_GRAPH_WARMUP_STEPS = 2


@dataclass
class GenerationResult:
    """What generate() returns. Per-row lists are cut at the first EOS (EOS itself excluded)."""

    texts: List[str]
    token_ids: List[List[int]]
    temperatures: List[List[float]]
    entropies: List[List[float]]
    argmax_ids: List[List[int]]     # the most likely token at each step (to see where sampling left it)
    prompt_length: int              # padded prompt length (tokens)
    steps: int                      # decode positions run (incl. the one sampled from the prefill)
    prefill_s: float
    decode_s: float                 # all decode steps after the prefill, graph warm-up and capture included
    tokens_per_s: float             # steady state: batch * steps / time of the decode loop after any capture
    cuda_graph: bool
    notes: List[str] = field(default_factory=list)


def fixed_config(temperature: float, *, top_p: float = 1.0, top_k: int = 0):
    """A ReSETConfig that always picks ``temperature``: t_low == t_high, so ReSET's choice is moot."""
    return sampler_api.ReSETConfig.fixed(temperature, top_p=top_p, top_k=top_k)


def _encode(tokenizer, prompts: Prompt, device, pad_id: int):
    if isinstance(prompts, torch.Tensor):
        if prompts.ndim != 2 or prompts.dtype not in (torch.int32, torch.int64) or prompts.numel() == 0:
            raise ValueError(f"prompts as a tensor must be int token ids [B, P], got {prompts.dtype} "
                             f"{tuple(prompts.shape)}")
        ids = prompts.to(device=device, dtype=torch.long)
        return ids, torch.ones_like(ids, dtype=torch.bool)
    if isinstance(prompts, str):
        prompts = [prompts]
    prompts = list(prompts)
    if not prompts:
        raise ValueError("prompts must hold at least one prompt, got an empty list")
    if all(isinstance(p, str) for p in prompts):
        if tokenizer is None:
            raise ValueError("text prompts need a tokenizer (pass token ids to run without one)")
        rows = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    elif all(isinstance(p, (list, tuple)) and all(isinstance(i, int) for i in p) for p in prompts):
        rows = [list(p) for p in prompts]
    else:
        raise TypeError("prompts must be a str, a list of str, a list of token-id lists, or an int tensor [B, P]")
    if any(len(r) == 0 for r in rows):
        raise ValueError("every prompt must have at least one token, got an empty prompt")
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    valid = torch.zeros((len(rows), width), dtype=torch.bool)
    for b, r in enumerate(rows):  # left padding: every row's last prompt token sits in the last column
        ids[b, width - len(r):] = torch.tensor(r, dtype=torch.long)
        valid[b, width - len(r):] = True
    return ids.to(device), valid.to(device)


def _model_device_dtype(model):
    for p in model.parameters():
        if p.is_floating_point():
            return p.device, p.dtype
    for b in model.buffers():
        if b.is_floating_point():
            return b.device, b.dtype
    raise ValueError("model has no floating-point parameters")


class _Decoder:
    """State of one batched generation: static cache, masks, per-step outputs, all preallocated."""

    def __init__(self, model, ids, valid, max_new_tokens, state):
        from transformers import StaticCache

        self.model, self.state = model, state
        params = inspect.signature(model.forward).parameters
        self.cache_kw = "cache" if "cache" in params else "past_key_values"
        self.keep_kw = "logits_to_keep" in params
        device, dtype = _model_device_dtype(model)
        b, p = ids.shape
        self.batch, self.prompt_len = b, p
        self.max_len = p + max_new_tokens
        self.cache = StaticCache(config=model.config, max_cache_len=self.max_len)
        neg = torch.finfo(dtype).min
        self.ids, self.valid = ids, valid
        # prefill mask [B, 1, P, L]: key j visible to query i iff j <= i and j is a real token; a pad query
        # also sees itself, so no softmax row is empty (an empty row gives NaN that would reach the cache).
        i = torch.arange(p, device=device)[:, None]
        j = torch.arange(self.max_len, device=device)[None, :]
        allowed = ((j <= i) & torch.nn.functional.pad(valid, (0, max_new_tokens))[:, None, :]) | (j == i)
        self.prefill_mask = torch.zeros(allowed.shape, dtype=dtype, device=device).masked_fill_(~allowed, neg)
        self.prefill_mask = self.prefill_mask[:, None]
        self.prefill_pos = (valid.long().cumsum(1) - 1).clamp_min(0)
        # decode-time static inputs
        self.step_mask = self.prefill_mask[:, :, -1:, :].clone()
        self.step_mask[..., p:] = neg
        self.cur_ids = torch.zeros((b, 1), dtype=torch.long, device=device)
        self.cur_pos = self.prefill_pos[:, -1:].clone()
        self.write_pos = torch.tensor([p], dtype=torch.long, device=device)
        self.last_tok = torch.full((b,), -1, dtype=torch.long, device=device)
        self.step_idx = torch.zeros((1,), dtype=torch.long, device=device)
        self.out_tokens = torch.zeros((b, max_new_tokens), dtype=torch.long, device=device)
        self.out_temps = torch.zeros((b, max_new_tokens), dtype=torch.float32, device=device)
        self.out_ents = torch.zeros((b, max_new_tokens), dtype=torch.float32, device=device)
        self.out_argmax = torch.zeros((b, max_new_tokens), dtype=torch.long, device=device)

    def _forward(self, **kw):
        kw[self.cache_kw] = self.cache
        if self.keep_kw:
            kw["logits_to_keep"] = 1
        return self.model(use_cache=True, **kw).logits[:, -1, :]

    def _sample(self, logits):
        o = sampler_api.decode_step(self.state, logits, self.last_tok)
        tokens = o.tokens.reshape(self.batch).to(torch.long)
        self.out_tokens.index_copy_(1, self.step_idx, tokens[:, None])
        self.out_temps.index_copy_(1, self.step_idx, o.temperatures.reshape(self.batch, 1).to(torch.float32))
        self.out_ents.index_copy_(1, self.step_idx, o.entropies.reshape(self.batch, 1).to(torch.float32))
        self.out_argmax.index_copy_(1, self.step_idx, logits.argmax(-1, keepdim=True))
        self.cur_ids.copy_(tokens[:, None])
        self.last_tok.copy_(tokens)
        self.step_idx.add_(1)

    def prefill(self):
        logits = self._forward(input_ids=self.ids, position_ids=self.prefill_pos, attention_mask=self.prefill_mask)
        self._sample(logits)

    def step(self):
        """One decode position: feed the last token, sample the next. Fixed shapes, no host sync."""
        self.step_mask.index_fill_(3, self.write_pos, 0.0)
        self.cur_pos.add_(1)
        logits = self._forward(input_ids=self.cur_ids, position_ids=self.cur_pos, attention_mask=self.step_mask)
        self.write_pos.add_(1)
        self._sample(logits)


def generate(model, tokenizer, prompts: Prompt, *, sampler="fixed", max_new_tokens: int = 128,
             temperature: float = 0.6, top_p: float = 1.0, top_k: int = 0, seed: int = 0,
             stream: Optional[Callable[[int, str], None]] = None, eos_token_id: Optional[int] = None,
             stop_at_eos: bool = True, cuda_graph: Union[bool, str] = "auto") -> GenerationResult:
    """Generate from one or more prompts, sampling every token with reset_native's decode_step.

    sampler: a ``reset_native.sampler.ReSETConfig`` (ReSET), or ``"fixed"`` (``temperature``, ``top_p``,
      ``top_k``; temperature 0 = greedy). prompts: a str, a list of str (tokenized as given, left-padded: apply
      a chat template beforehand), token-id lists, or an int tensor [B, P]. stream(row, text): called with each
      row's new text as tokens arrive (this costs a host sync per token on CUDA). seed: sampling seed (the same
      seed, prompts and model give the same tokens). cuda_graph: "auto" captures the decode step on CUDA
      (falls back to eager with a note if capture fails), True requires it, False runs eagerly.
    """
    if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be an int >= 1, got {max_new_tokens!r}")
    if cuda_graph not in (True, False, "auto"):
        raise ValueError(f"cuda_graph must be True, False or 'auto', got {cuda_graph!r}")
    if stream is not None and not callable(stream):
        raise TypeError(f"stream must be a callable(row, text), got {type(stream).__name__}")
    if isinstance(sampler, str):
        if sampler != "fixed":
            raise ValueError(f"sampler must be a ReSETConfig or 'fixed', got {sampler!r}")
        if not (isinstance(temperature, (int, float)) and temperature >= 0):
            raise ValueError(f"temperature must be a float >= 0 (0 = greedy), got {temperature!r}")
        config = fixed_config(float(temperature), top_p=top_p, top_k=top_k)
    elif isinstance(sampler, sampler_api.ReSETConfig):
        config = sampler
    else:
        raise TypeError(f"sampler must be a ReSETConfig or 'fixed', got {type(sampler).__name__}")
    if eos_token_id is None and tokenizer is not None:
        eos_token_id = tokenizer.eos_token_id
    pad_id = getattr(tokenizer, "pad_token_id", None) if tokenizer is not None else None
    if pad_id is None:
        pad_id = eos_token_id if eos_token_id is not None else 0

    device, _ = _model_device_dtype(model)
    ids, valid = _encode(tokenizer, prompts, device, pad_id)
    notes: List[str] = []
    use_graph = device.type == "cuda" and cuda_graph in (True, "auto")
    if cuda_graph is True and device.type != "cuda":
        raise ValueError(f"cuda_graph=True needs a model on CUDA, the model is on {device}")

    with torch.inference_mode():
        t0 = time.perf_counter()
        probe_vocab = model.get_output_embeddings().weight.shape[0] if model.get_output_embeddings() is not None \
            else model.config.vocab_size
        state = sampler_api.ReSETState(config, ids.shape[0], probe_vocab, device=device.type, seed=seed)
        dec = _Decoder(model, ids, valid, max_new_tokens, state)
        dec.prefill()
        _sync(device)
        t1 = time.perf_counter()
        remaining = max_new_tokens - 1
        streamer = None
        if stream is not None:
            streamer = _Streamer(tokenizer, ids.shape[0], stream, eos_token_id if stop_at_eos else None)
            streamer.push(dec.out_tokens[:, :1])
        done_steps = 1
        graph = None
        if use_graph and remaining > _GRAPH_WARMUP_STEPS:
            try:
                graph = _capture(dec)  # runs _GRAPH_WARMUP_STEPS real steps first
                if streamer is not None:
                    streamer.push(dec.out_tokens[:, done_steps:done_steps + _GRAPH_WARMUP_STEPS])
                done_steps += _GRAPH_WARMUP_STEPS
                remaining -= _GRAPH_WARMUP_STEPS
            except Exception as exc:  # noqa: BLE001 - any capture failure: say so and decode eagerly
                if cuda_graph is True:
                    raise
                notes.append(f"CUDA graph capture failed ({type(exc).__name__}: {exc}); decoded eagerly")
                graph = None
                torch.cuda.synchronize()
                done_steps = int(dec.step_idx.item())
                remaining = max_new_tokens - done_steps
        check_every = 1 if device.type == "cpu" else 16
        _sync(device)
        t_loop = time.perf_counter()
        loop_steps = 0
        for k in range(remaining):
            if graph is not None:
                graph.replay()
            else:
                dec.step()
            done_steps += 1
            loop_steps += 1
            if streamer is not None:
                streamer.push(dec.out_tokens[:, done_steps - 1:done_steps])
            if stop_at_eos and eos_token_id is not None and (k + 1) % check_every == 0:
                if bool((dec.out_tokens[:, :done_steps] == eos_token_id).any(1).all()):
                    break
        _sync(device)
        t2 = time.perf_counter()

    tokens = dec.out_tokens[:, :done_steps].tolist()
    temps = dec.out_temps[:, :done_steps].tolist()
    ents = dec.out_ents[:, :done_steps].tolist()
    argmax = dec.out_argmax[:, :done_steps].tolist()
    for b in range(len(tokens)):
        if stop_at_eos and eos_token_id is not None and eos_token_id in tokens[b]:
            cut = tokens[b].index(eos_token_id)
            tokens[b], temps[b], ents[b], argmax[b] = tokens[b][:cut], temps[b][:cut], ents[b][:cut], argmax[b][:cut]
    texts = [tokenizer.decode(t, skip_special_tokens=True) for t in tokens] if tokenizer is not None \
        else ["" for _ in tokens]
    decode_s, loop_s = t2 - t1, t2 - t_loop
    return GenerationResult(texts=texts, token_ids=tokens, temperatures=temps, entropies=ents, argmax_ids=argmax,
                            prompt_length=ids.shape[1], steps=done_steps, prefill_s=t1 - t0, decode_s=decode_s,
                            tokens_per_s=(ids.shape[0] * loop_steps / loop_s) if loop_steps and loop_s > 0
                            else 0.0, cuda_graph=graph is not None, notes=notes)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _capture(dec: _Decoder):
    """Warm up with real steps on a side stream, then capture one decode step in a CUDA graph."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(_GRAPH_WARMUP_STEPS):
            dec.step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        dec.step()
    return graph


class _Streamer:
    """Turns per-step token ids into text deltas per row (decoding the whole row keeps multi-byte text whole)."""

    def __init__(self, tokenizer, batch, callback, eos_token_id):
        if tokenizer is None:
            raise ValueError("stream needs a tokenizer to turn tokens into text")
        self.tok, self.cb, self.eos = tokenizer, callback, eos_token_id
        self.ids = [[] for _ in range(batch)]
        self.text = ["" for _ in range(batch)]
        self.done = [False] * batch

    def push(self, new_tokens: torch.Tensor):
        eos = self.eos
        for b, row in enumerate(new_tokens.tolist()):
            for t in row:
                if self.done[b]:
                    break
                if eos is not None and t == eos:
                    self.done[b] = True
                    break
                self.ids[b].append(t)
                text = self.tok.decode(self.ids[b], skip_special_tokens=True)
                if text.endswith("\ufffd"):  # an incomplete multi-byte character: wait for the rest
                    continue
                if len(text) > len(self.text[b]):
                    self.cb(b, text[len(self.text[b]):])
                self.text[b] = text
