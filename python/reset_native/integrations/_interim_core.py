"""TEMPORARY stand-in for reset_native.nvfp4 / reset_native.sampler while they are written in parallel.

Pure torch, slow, same names as the real modules. Deleted as soon as the real modules land on main.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

_E2M1 = torch.tensor([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6], dtype=torch.float32)


def _e4m3_decode(b):
    return b.view(torch.float8_e4m3fn).to(torch.float32)


class NVFP4Tensor:
    def __init__(self, packed, block_scales, global_scale):
        self.packed, self.block_scales, self.global_scale = packed, block_scales, float(global_scale)
        self.shape = (packed.shape[0], packed.shape[1] * 2)
        self.device = packed.device

    @classmethod
    def from_parts(cls, packed, block_scales, global_scale):
        return cls(packed, block_scales, global_scale)


def quantize(w, *, global_scale=None):
    x = w.detach().to(torch.float32)
    n, k = x.shape
    amax = x.abs().max()
    gs = float(amax / 2688.0) if global_scale is None else float(global_scale)
    if gs == 0:
        gs = 1.0
    blocks = x.reshape(n, k // 16, 16)
    bs = (blocks.abs().amax(-1) / (6.0 * gs)).clamp(2.0 ** -9, 448.0)
    sbyte = bs.to(torch.float8_e4m3fn).view(torch.uint8)
    s = _e4m3_decode(sbyte) * gs
    y = blocks / s[..., None]
    mags = _E2M1[:8].to(x.device)
    code = (y.abs()[..., None] - mags).abs().argmin(-1)  # nearest (ties not RNE: stand-in only)
    code = code | ((torch.signbit(y)).to(torch.long) << 3)
    code = code.reshape(n, k).to(torch.uint8)
    packed = code[:, 0::2] | (code[:, 1::2] << 4)
    return NVFP4Tensor(packed.contiguous(), sbyte.contiguous(), gs)


def dequantize(t, dtype=torch.float32):
    lo = (t.packed & 0xF).long()
    hi = (t.packed >> 4).long()
    codes = torch.stack([lo, hi], -1).reshape(t.shape[0], -1)
    vals = _E2M1.to(t.packed.device)[codes].reshape(t.shape[0], -1, 16)
    out = vals * _e4m3_decode(t.block_scales)[..., None] * t.global_scale
    return out.reshape(t.shape).to(dtype)


def gemv(t, x, *, activation="bf16", act_global_scale=None, bias=None):
    w = dequantize(t, torch.float32)
    xf = x.to(torch.float32)
    if activation == "nvfp4":
        xf = dequantize(quantize(xf.reshape(-1, xf.shape[-1]), global_scale=act_global_scale)).reshape(xf.shape)
    y = xf @ w.T
    if bias is not None:
        y = y + bias.to(torch.float32)
    return y.to(x.dtype)


@dataclass(frozen=True)
class ReSETConfig:
    t_low: float
    tau0: float
    t_high: float = 1.0
    window: int = 32
    newline_ids: tuple = ()
    double_newline_ids: tuple = ()
    top_p: float = 1.0
    top_k: int = 0


@dataclass
class DecodeOutput:
    tokens: torch.Tensor
    temperatures: torch.Tensor
    entropies: torch.Tensor


def newline_token_ids(tokenizer):
    nl, dnl = [], []
    for i in range(len(tokenizer)):
        s = tokenizer.decode([i])
        if s == "\n":
            nl.append(i)
        if "\n\n" in s:
            dnl.append(i)
    return tuple(nl), tuple(dnl)


def calibrate_tau0(entropies, percentile=80):
    import numpy as np
    return float(np.percentile(np.asarray(entropies, dtype=np.float64), percentile))


class ReSETState:
    def __init__(self, config, batch_size, vocab_size, device="cpu", seed=0):
        self.config, self.batch_size, self.vocab_size = config, batch_size, vocab_size
        self.gen = torch.Generator(device=device).manual_seed(seed)
        self.win = [[] for _ in range(batch_size)]
        self.step = [[] for _ in range(batch_size)]
        self.g = [[0.0, 0] for _ in range(batch_size)]
        self.last2 = [[-1, -1] for _ in range(batch_size)]

    def update(self, entropies, last_tokens):
        c = self.config
        temps = []
        for b in range(self.batch_size):
            tok = int(last_tokens[b])
            if tok >= 0:
                self.last2[b] = [self.last2[b][1], tok]
            a, t = self.last2[b]
            if t in c.double_newline_ids or (a in c.newline_ids and t in c.newline_ids):
                self.step[b] = []
            h = float(entropies[b])
            win, step = self.win[b], self.step[b]
            hs = (sum(win) / len(win) if win else h) if len(step) < c.window else sum(step) / len(step)
            gsum, gn = self.g[b]
            hbar = gsum / gn if gn else hs
            tau = hs if hs > hbar else c.tau0
            temps.append(c.t_high if h >= tau else c.t_low)
            win.append(h)
            del win[:-c.window]
            step.append(h)
            self.g[b] = [gsum + h, gn + 1]
        return temps


def decode_step(state, logits, last_tokens):
    z = logits.to(torch.float32)
    logp = torch.log_softmax(z, -1)
    ent = -(logp.exp() * logp).nan_to_num().sum(-1)
    temps = torch.tensor(state.update(ent.tolist(), last_tokens.tolist()), dtype=torch.float32, device=z.device)
    greedy = temps <= 1e-6
    scaled = z / temps.clamp_min(1e-6)[:, None]
    cfg = state.config
    if cfg.top_k > 0:
        kth = scaled.topk(cfg.top_k, -1).values[:, -1:]
        scaled = scaled.masked_fill(scaled < kth, -math.inf)
    if cfg.top_p < 1.0:
        srt, idx = scaled.sort(-1, descending=True)
        cp = srt.softmax(-1).cumsum(-1)
        drop = (cp - srt.softmax(-1)) >= cfg.top_p
        scaled = scaled.scatter(-1, idx, srt.masked_fill(drop, -math.inf))
    probs = scaled.softmax(-1)
    sampled = torch.multinomial(probs, 1, generator=state.gen)[:, 0]
    tokens = torch.where(greedy, z.argmax(-1), sampled)
    return DecodeOutput(tokens, temps, ent)
