"""Host time per eager call of the sampler step and the fused decoder ops (no CUDA graph): what a caller pays on the
CPU to launch one call, through the package's eager route and through the custom op (torch.ops.reset_native.X with
the same arguments, i.e. the dispatcher), with a plain-torch yardstick where one is natural.

Times a loop of `--calls` calls with the CPU clock, before synchronising (the launch queue holds them, so the loop
measures submission, not the GPU), median of `--reps` loops, like bench/probes/eager_host_time.py. Shapes: the
ReSET step at B = 1, 8, 64 and V = 151936 (ReSET with top_p 0.95, and fixed T = 0.6), float32 logits; the fused ops
at Qwen3-8B decode shapes, one token, bf16 (hidden 4096, 32 q / 8 kv heads of 128, intermediate 12288, a 2048-slot
static cache with an additive mask; the NVFP4 GEMVs are the q/k/v projection with the RMSNorm prologue and the
gate/up projection with the RMSNorm and SiLU * up).

  python3 bench/probes/eager_host_time_ops.py [--calls 50] [--reps 7]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eager_host_time import host_us  # noqa: E402

from reset_native import _nvfp4_fused, nvfp4
from reset_native.integrations import decode_attention as da
from reset_native.integrations import fused_attention, fused_mlp, fused_norm
from reset_native.sampler import ReSETConfig, ReSETState, decode_step

OPS = torch.ops.reset_native
F = torch.nn.functional


def sampler_rows(gen):
    vocab = 151936
    configs = {"reset": ReSETConfig(t_low=0.3, tau0=4.5, newline_ids=(198,), double_newline_ids=(271,), top_p=0.95),
               "fixed": ReSETConfig.fixed(0.6)}
    for batch in (1, 8, 64):
        logits = torch.randn((batch, vocab), device="cuda", generator=gen) * 3
        last = torch.full((batch,), -1, device="cuda")
        for name, c in configs.items():
            eager, other = (ReSETState(c, batch, vocab, device="cuda", seed=1) for _ in range(2))
            args = (logits, last, None, other._classes, other._window, other._sums, other._ints, other._error_flag,
                    other._slot_busy, other._workspace, c.t_low, c.tau0, c.t_high, c.window, c.top_p, c.top_k)
            yield (f"decode_step {name} B={batch}", lambda s=eager, z=logits, y=last: decode_step(s, z, y),
                   lambda a=args: OPS.sampler_decode_step(*a),
                   lambda t=c.t_high, z=logits: torch.multinomial(torch.softmax(z / t, dim=-1), 1))


def op_rows(gen):
    bf16 = torch.bfloat16

    def randn(*shape, scale=1.0):
        return (torch.randn(shape, device="cuda", generator=gen) * scale).to(bf16)

    x, w = randn(1, 4096, scale=3), 1 + randn(4096, scale=0.3)
    yield ("rms_norm 1x4096", lambda: fused_norm.rms_norm(x, w, 1e-6), lambda: OPS.rms_norm(x, w, 1e-6),
           lambda: F.rms_norm(x, (4096,), w, 1e-6))
    gu = randn(1, 2 * 12288, scale=3)
    g, u = gu[:, :12288], gu[:, 12288:]
    yield ("silu_mul 1x12288", lambda: fused_mlp.silu_mul(g, u), lambda: OPS.silu_mul(g, u), lambda: F.silu(g) * u)
    qkv = randn(1, 1, (32 + 16) * 128, scale=3)
    q, k = qkv[..., :4096].view(1, 1, 32, 128), qkv[..., 4096:5120].view(1, 1, 8, 128)
    ang = torch.rand((1, 1, 128), device="cuda", generator=gen) * 6.28
    cos, sin = ang.cos().to(bf16), ang.sin().to(bf16)
    qw, kw = 1 + randn(128, scale=0.3), 1 + randn(128, scale=0.3)
    yield ("qk_norm_rope 32+8x128", lambda: fused_attention.qk_norm_rope(q, k, qw, kw, cos, sin, 1e-6),
           lambda: OPS.qk_norm_rope(q, k, qw, kw, cos, sin, 1e-6),
           lambda: fused_attention.reference(q, k, qw, kw, cos, sin, 1e-6))
    qa = randn(1, 1, 32, 128)
    kc, vc = randn(1, 8, 2048, 128), randn(1, 8, 2048, 128)
    mask = torch.zeros((1, 1, 1, 2048), device="cuda", dtype=bf16)
    mask[..., 1500:] = torch.finfo(bf16).min
    s = 128 ** -0.5
    yield ("decode_attention L=2048", lambda: da.decode_attention(qa, kc, vc, mask, s),
           lambda: OPS.decode_attention(qa, kc, vc, mask, s, None),
           lambda: F.scaled_dot_product_attention(qa.transpose(1, 2), kc, vc, attn_mask=mask, scale=s,
                                                  enable_gqa=True))
    for name, n, silu in (("gemv_fused qkv+norm", 6144, False), ("gemv_fused gate/up+norm+silu", 24576, True)):
        wf = randn(n, 4096, scale=0.05)
        t = nvfp4.quantize(wf)
        xg, nw = randn(1, 4096, scale=3), 1 + randn(4096, scale=0.3)
        if not _nvfp4_fused.supported(t.packed, t.block_scales, xg, nw, silu_mul=silu):
            print(f"# {name}: no fused kernel for this shape here, skipped", flush=True)
            continue
        yield (name, lambda t=t, xg=xg, nw=nw, silu=silu: _nvfp4_fused.gemv_fused(
                   t.packed, t.block_scales, t.global_scale, xg, nw, 1e-6, silu),
               lambda t=t, xg=xg, nw=nw, silu=silu: OPS.nvfp4_gemv_fused(
                   t.packed, t.block_scales, t.global_scale, xg, nw, 1e-6, silu, None),
               lambda wf=wf, xg=xg: torch.matmul(xg, wf.T))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args()
    gen = torch.Generator(device="cuda").manual_seed(0)
    rows = []
    for producer in (sampler_rows, op_rows):
        for name, eager, op, yard in producer(gen):  # measured as produced: each row's tensors only
            rows.append((name, host_us(eager, args.calls, args.reps), host_us(op, args.calls, args.reps),
                         host_us(yard, args.calls, args.reps)))
    print(f"# {torch.cuda.get_device_name(0)}, torch {torch.__version__}; host us per eager call, median of "
          f"{args.reps} loops of {args.calls} calls. torch: softmax + multinomial (sampler), F.rms_norm, "
          "F.silu * up, the op's reference (qk_norm_rope), SDPA with GQA, torch.matmul on bf16 weights (GEMVs)")
    print(f"{'row':30s} {'eager route':>11s} {'op':>7s} {'torch':>7s} {'op - eager':>10s}")
    for name, e, o, y in rows:
        print(f"{name:30s} {e:11.1f} {o:7.1f} {y:7.1f} {o - e:10.1f}")


if __name__ == "__main__":
    main()
