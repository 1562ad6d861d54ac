"""Where the post-attention RMSNorm goes when the gate/up GEMV applies SiLU * up (session 11): inside the same kernel
("both": RMSNorm prologue + SiLU epilogue, RESET_NATIVE_FUSED_NORM_SILU=1 in the model path) or as the rms_norm op
before the SiLU-only kernel ("split": the model path's default in session 11; since session 12
RESET_NATIVE_FUSED_NORM_SILU=0, and bench/probes/fused_head_wait.py times the same rows), against the three separate
ops.
us per pair of calls (CUDA-graph replay, weight copies rotated past 3x the L2, PDL on, bf16 x, ring off); "same":
all three give the same bits.

  python3 bench/probes/fused_norm_split.py [--ms 1,2] [--reps 10]
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_fused_gemv import probe_args, separate_ops, weight_copies  # noqa: E402
from bench_nvfp4_gpu import graph_time_us  # noqa: E402
from fused_small_sweep import under  # noqa: E402

from reset_native import _nvfp4_fused as nf  # noqa: E402
from reset_native.integrations import fused_norm  # noqa: E402

LAYERS = [("8b gate_up", 24576, 4096), ("32b gate_up", 51200, 5120)]


def main():
    args, props, l2 = probe_args(__doc__)
    torch.manual_seed(0)
    dt, eps = torch.bfloat16, 1e-6
    r0 = {"RESET_NATIVE_GEMV_RING": "0"}
    print(f"# {props.name}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, bf16 x, ring off, reps {args.reps}; "
          f"us per call (CUDA-graph replay, weights past L2)")
    print(f"{'layer':12s} {'M':>2s} {'separate':>9s} {'both':>8s} {'split':>8s} {'both/split':>11s}  same")
    for name, n, k in LAYERS:
        ws = weight_copies(n, k, l2)
        nw = (1 + 0.1 * torch.randn(k, device="cuda")).to(dt)
        for m in [int(v) for v in args.ms.split(",")]:
            x = torch.randn(m, k, device="cuda").to(dt)

            def split(p, s):
                return nf.gemv_fused(p, s, 0.01, fused_norm.rms_norm(x, nw, eps), None, eps, silu_mul=True)

            fns = {"separate": [lambda p=p, s=s: separate_ops(p, s, x, nw, True, eps=eps) for p, s in ws],
                   "both": [lambda p=p, s=s: nf.gemv_fused(p, s, 0.01, x, nw, eps, silu_mul=True) for p, s in ws],
                   "split": [lambda p=p, s=s: split(p, s) for p, s in ws]}
            t = {key: under(r0, lambda f=f: min(graph_time_us(f, args.reps), graph_time_us(f, args.reps)))
                 for key, f in fns.items()}
            ys = [under(r0, f[0]) for f in fns.values()]
            same = all(torch.equal(ys[0], y) for y in ys[1:])
            print(f"{name:12s} {m:2d} {t['separate']:9.2f} {t['both']:8.2f} {t['split']:8.2f} "
                  f"{t['both'] / t['split']:10.3f}x  {'yes' if same else 'NO'}", flush=True)
        del ws
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
