"""Same-process A/B of the block-diagonal GEMV's lean step forms (RESET_NATIVE_GEMV_BD_LEAN, gemv_bd_kernel.cuh) on the
Qwen3 decode layers: CUDA-graph time per call (median of --reps replays, weights rotated past the L2, PDL on, bf16 x)
for each value in turn, the values repeated --rounds times (interleaved, so drift hits every column alike), the best
round per value, its ratio to the first value and the % of the bandwidth floor; "same" = every output equals the first
value's bit for bit.

  python3 bench/probes/gemv_lean_ab.py [--values 0,1,2] [--ms 1,2] [--rounds 2] [--reps 5] [--layers 8b,32b]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_nvfp4_gpu import LAYERS, graph_time_us, read_bandwidth, rotated_nvfp4  # noqa: E402
from gemv_env_sweep import with_value  # noqa: E402

from reset_native import _nvfp4_cuda as nc  # noqa: E402

ENV = "RESET_NATIVE_GEMV_BD_LEAN"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--values", default="0,1,2")
    ap.add_argument("--ms", default="1,2")
    ap.add_argument("--layers", default="8b,32b")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    props = torch.cuda.get_device_properties(0)
    bw = read_bandwidth(args.reps)
    values = [v for v in args.values.split(",") if v]
    print(f"# {props.name}, read bandwidth {bw / 1e12:.3f} TB/s, bf16 x, {ENV}; best of {args.rounds} interleaved "
          f"rounds, us per call (ratio to {values[0]}, % of floor)", flush=True)
    print(f"{'layer':12s} {'M':>2s} " + " ".join(f"{v:>22s}" for v in values) + "  same", flush=True)
    gen = torch.Generator(device="cuda").manual_seed(0)
    for model in args.layers.split(","):
        for name, n, k in LAYERS[model]:
            nv_bytes = n * k * 9 // 16
            floor_us = nv_bytes / bw * 1e6
            wq, gs = rotated_nvfp4(n, k, gen, props.L2_cache_size)
            for m in [int(v) for v in args.ms.split(",")]:
                x = torch.randn((m, k), device="cuda", generator=gen, dtype=torch.bfloat16)
                fns = [lambda p=p, s=s: nc.gemv(p, s, gs, x, "bf16") for p, s in wq]
                best = {v: float("inf") for v in values}
                outs = {}
                for _ in range(args.rounds):
                    for v in values:
                        t, y = with_value(ENV, v, lambda: (graph_time_us(fns, args.reps), [f() for f in fns[:2]]))
                        best[v] = min(best[v], t)
                        outs.setdefault(v, y)
                same = all(torch.equal(outs[v][i], outs[values[0]][i]) for v in values for i in range(2))
                cells = [f"{best[v]:6.2f} ({best[v] / best[values[0]]:5.3f}, {floor_us / best[v] * 100:3.0f}%)"
                         for v in values]
                print(f"{model + ' ' + name:12s} {m:2d} " + " ".join(f"{c:>22s}" for c in cells) + f"  {same}",
                      flush=True)
            del wq


if __name__ == "__main__":
    main()
