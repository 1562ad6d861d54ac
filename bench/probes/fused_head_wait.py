"""The fused block-diagonal GEMVs (session 12: their weight-load wait at the head of the step loop) against the
separate ops they replace, and norm + SiLU in one kernel against the norm op followed by the SiLU-only kernel (the
model path's choice, RESET_NATIVE_FUSED_NORM_SILU), timed in the same process.

Why the head wait: in the RMSNorm-prologue instances ptxas had put the one wait for every weight load in flight (one
scoreboard holds all of them) before each of the kDepth unrolled steps, i.e. also for the refill the previous step
had just issued; the plain and SiLU-only instances wait once, at the head of the kDepth steps
(bench/probes/sass_sb_waits.py lists it per instance). The two GPU rounds of session 12 also timed the form before
(cb), a cp.async-stage form and a batched prologue against it: bench/RESULTS.md, session 12 gemv15.

Rows: Qwen3-8B / 32B q/k/v (+ input RMSNorm) and gate/up (+ SiLU * up, + post-attention RMSNorm + SiLU * up,
+ RMSNorm alone) at M = 1, 2, bf16 x. "plain" is the unfused GEMV, "sep" the separate ops a fused call replaces (norm
op, plain GEMV, silu_mul op), "fused" the fused call. us per call: CUDA-graph replay (median of --reps, the better of
two), weight copies rotated past 3x the L2, PDL on, ring off. "same": fused and separate ops give the same bits. For
norm + SiLU rows a line "(norm op + SiLU GEMV)" follows: the norm op, then the SiLU-only fused GEMV.

  python3 bench/probes/fused_head_wait.py [--ms 1,2] [--reps 10]
JSON to $OUT/fused_head_wait.json when $OUT is set, else bench/out/.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_fused_gemv import probe_args, separate_ops, weight_copies, write_rows  # noqa: E402
from bench_nvfp4_gpu import graph_time_us  # noqa: E402
from fused_small_sweep import under  # noqa: E402

from reset_native import _nvfp4_cuda as nc  # noqa: E402
from reset_native import _nvfp4_fused as nf  # noqa: E402
from reset_native.integrations import fused_norm  # noqa: E402

SHAPES = [  # name, n, k, fused forms (norm, silu)
    ("8b qkv", 6144, 4096, [(True, False)]),
    ("8b gate_up", 24576, 4096, [(False, True), (True, True), (True, False)]),
    ("32b qkv", 10240, 5120, [(True, False)]),
    ("32b gate_up", 51200, 5120, [(False, True), (True, True), (True, False)]),
]


def main():
    args, props, l2 = probe_args(__doc__)
    ms = [int(v) for v in args.ms.split(",")]
    torch.manual_seed(0)
    dt = torch.bfloat16
    r0 = {"RESET_NATIVE_GEMV_RING": "0"}
    rows = []
    for shape, n, k, fused in SHAPES:
        ws = weight_copies(n, k, l2)
        nw = (1 + 0.1 * torch.randn(k, device="cuda")).to(dt)
        for m in ms:
            x = torch.randn(m, k, device="cuda").to(dt)
            plain = [lambda p=p, s=s: nc.gemv(p, s, 0.01, x, "bf16") for p, s in ws]
            t_plain = under(r0, lambda: graph_time_us(plain, args.reps))
            for norm, silu in fused:
                w = nw if norm else None
                sep = [lambda p=p, s=s, w=w, silu=silu: separate_ops(p, s, x, w, silu) for p, s in ws]
                fns = [lambda p=p, s=s, w=w, silu=silu: nf.gemv_fused(p, s, 0.01, x, w, 1e-6, silu_mul=silu)
                       for p, s in ws]
                t_sep, y_sep = under(r0, lambda: (graph_time_us(sep, args.reps), sep[0]()))
                t_two = None
                if norm and silu:  # the model path without RESET_NATIVE_FUSED_NORM_SILU: norm op, SiLU-only GEMV
                    two = [lambda p=p, s=s: nf.gemv_fused(p, s, 0.01, fused_norm.rms_norm(x, nw, 1e-6), None, 1e-6,
                                                          silu_mul=True) for p, s in ws]
                    t_two, y_two = under(r0, lambda: (graph_time_us(two, args.reps), two[0]()))
                    assert torch.equal(y_two, y_sep)
                t_fused, y_fused = under(r0, lambda: (graph_time_us(fns, args.reps), fns[0]()))
                t_fused = min(t_fused, under(r0, lambda: graph_time_us(fns, args.reps)))
                same = torch.equal(y_fused, y_sep)
                label = shape + (" + norm" if norm else "") + (" + silu" if silu else "")
                rows.append(dict(case=label, m=m, n=n, k=k, plain_us=t_plain, separate_us=t_sep, fused_us=t_fused,
                                 norm_op_silu_us=t_two, same=same))
        del ws
        torch.cuda.empty_cache()
    print(f"# {props.name}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, torch {torch.__version__}, bf16 x, "
          f"ring off, reps {args.reps}; us per call (CUDA-graph replay, weights past L2)")
    print(f"{'case':28s} {'M':>2s} {'plain':>7s} {'sep':>7s} {'fused':>7s} {'sep/fused':>9s} same")
    for r in rows:
        print(f"{r['case']:28s} {r['m']:2d} {r['plain_us']:7.2f} {r['separate_us']:7.2f} {r['fused_us']:7.2f} "
              f"{r['separate_us'] / r['fused_us']:8.3f}x {'yes' if r['same'] else 'NO'}")
        if r["norm_op_silu_us"] is not None:
            print(f"{'  (norm op + SiLU GEMV)':28s} {r['m']:2d} {r['norm_op_silu_us']:7.2f}  <- vs fused: "
                  f"{r['norm_op_silu_us'] / r['fused_us']:.3f}x")
    write_rows("fused_head_wait", props.name, rows)


if __name__ == "__main__":
    main()
