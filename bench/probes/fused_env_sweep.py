"""One environment switch of the NVFP4 GEMV, timed per value on the fused block-diagonal GEMVs (gemv_env_sweep.py's
counterpart for the fused kernels; session 15 timed the early decode's switch with it, since removed:
bench/probes/trials/gemv_bd_early_decode.patch).

Rows: the fused GEMVs of bench/probes/fused_small_sweep.py (Qwen3-8B / 32B input RMSNorm -> q/k/v, gate/up -> SiLU *
up without and with the post-attention RMSNorm), bf16 x, ring off. us per call: CUDA-graph replay (median of --reps),
weight copies rotated past 3x the L2, PDL on. "same bits" = every value's output equals the first value's and the
separate ops' (rms_norm, plain GEMV, silu_mul under the first value) bit for bit.

  python3 bench/probes/fused_env_sweep.py --env RESET_NATIVE_GEMV_BD_SMALL_FUSED --values unset,legacy [--ms 1,2]
      [--reps 10]
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
from fused_small_sweep import FUSED  # noqa: E402
from gemv_env_sweep import with_value  # noqa: E402
from gemv_ksplit_sweep import with_env  # noqa: E402

from reset_native import _nvfp4_fused as nf  # noqa: E402


def main():
    args, props, l2 = probe_args(__doc__, [("--env", None), ("--values", "0,1")])
    if not args.env:
        raise SystemExit("--env is required")
    ms = [int(v) for v in args.ms.split(",")]
    values = [a for a in args.values.split(",") if a]
    torch.manual_seed(0)
    dt = torch.bfloat16
    print(f"# {props.name}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, bf16 x, ring off, {args.env}; "
          f"us per call (CUDA-graph replay, weights past L2)", flush=True)
    print(f"{'case':26s} {'M':>2s} " + " ".join(f"{a:>8s}" for a in values) + "  same bits", flush=True)
    for name, n, k, norm, silu in FUSED:
        ws = weight_copies(n, k, l2)
        p0, s0 = ws[0]
        nw = (1 + 0.1 * torch.randn(k, device="cuda")).to(dt) if norm else None
        for m in ms:
            x = torch.randn(m, k, device="cuda").to(dt)
            fns = [lambda p=p, s=s: nf.gemv_fused(p, s, 0.01, x, nw, 1e-6, silu_mul=silu) for p, s in ws]
            cells, outs = [], []
            for a in values:
                t, y = with_env("RESET_NATIVE_GEMV_RING", "0",
                                lambda: with_value(args.env, a, lambda: (graph_time_us(fns, args.reps), fns[0]())))
                cells.append(f"{t:8.2f}")
                outs.append(y)
            y_sep = with_env("RESET_NATIVE_GEMV_RING", "0",
                             lambda: with_value(args.env, values[0], lambda: separate_ops(p0, s0, x, nw, silu)))
            same = all(torch.equal(o, outs[0]) for o in outs) and torch.equal(y_sep, outs[0])
            print(f"{name:26s} {m:2d} " + " ".join(cells) + f"  {same}", flush=True)
        ws = fns = p0 = s0 = None  # free the copies before the next case
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
