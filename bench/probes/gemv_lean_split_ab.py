"""Same-process A/B of the block-diagonal GEMV's lean split K form (RESET_NATIVE_GEMV_BD_LEAN_SPLIT,
cuda/nvfp4/gemv_bd_split.cuh; session 17 helper gemv21) at M = 1 (bf16 x): per layer the unsplit kernel
(RESET_NATIVE_GEMV_BD_SPLIT=0), the split kernel in its cb form and in the lean form, at the slice count given per
layer (32B down: 5 = the rule's own; 8B down: 3 and 32B o: 2, forced, so that every slice is 4 chunks). CUDA-graph time
per call (median of --reps replays, weights rotated past the L2, PDL on), the columns repeated --rounds times
interleaved, the best round each; the ratio to the cb split and the % of the bandwidth floor; "same" = the lean
split's outputs equal the cb split's bit for bit.

  python3 bench/probes/gemv_lean_split_ab.py [--rounds 3] [--reps 5] [--rows "32b down:5,8b down:3,32b o:2"]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_nvfp4_gpu import LAYERS, copies_for, graph_time_us, read_bandwidth  # noqa: E402
from gemv_env_sweep import with_values  # noqa: E402

from reset_native import _nvfp4_cuda as nc  # noqa: E402

SPLIT, LEAN = "RESET_NATIVE_GEMV_BD_SPLIT", "RESET_NATIVE_GEMV_BD_LEAN_SPLIT"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", default="32b down:5,8b down:3,32b o:2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    props = torch.cuda.get_device_properties(0)
    bw = read_bandwidth(args.reps)
    shapes = {f"{model} {name}": (n, k) for model, rows in LAYERS.items() for name, n, k in rows}
    print(f"# {props.name}, read bandwidth {bw / 1e12:.3f} TB/s, bf16 x, M = 1; best of {args.rounds} interleaved rounds,"
          f" us per call (ratio to cb split, % of floor)", flush=True)
    cols = ("unsplit", "cb split", "lean split")
    print(f"{'layer':12s} {'S':>2s} " + " ".join(f"{c:>22s}" for c in cols) + "  same", flush=True)
    gen = torch.Generator(device="cuda").manual_seed(0)
    for row in args.rows.split(","):
        label, slices = row.rsplit(":", 1)
        n, k = shapes[label]
        nv_bytes = n * k * 9 // 16
        floor_us = nv_bytes / bw * 1e6
        w = torch.randn((n, k), device="cuda", generator=gen, dtype=torch.bfloat16)
        p0, s0, gs = nc.quantize(w)
        wq = [(p0, s0)] + [(p0.clone(), s0.clone()) for _ in range(copies_for(nv_bytes, props.L2_cache_size) - 1)]
        del w
        x = torch.randn((1, k), device="cuda", generator=gen, dtype=torch.bfloat16)
        fns = [lambda p=p, s=s: nc.gemv(p, s, gs, x, "bf16") for p, s in wq]
        envs = {"unsplit": {SPLIT: "0", LEAN: "0"}, "cb split": {SPLIT: slices, LEAN: "0"},
                "lean split": {SPLIT: slices, LEAN: "1"}}
        best = {c: float("inf") for c in cols}
        outs = {}
        for _ in range(args.rounds):
            for c in cols:
                t, y = with_values(envs[c], lambda: (graph_time_us(fns, args.reps), [f() for f in fns[:2]]))
                best[c] = min(best[c], t)
                outs.setdefault(c, y)
        same = all(torch.equal(outs["lean split"][i], outs["cb split"][i]) for i in range(2))
        cells = [f"{best[c]:6.2f} ({best[c] / best['cb split']:5.3f}, {floor_us / best[c] * 100:3.0f}%)" for c in cols]
        print(f"{label:12s} {slices:>2s} " + " ".join(f"{c:>22s}" for c in cells) + f"  {same}", flush=True)
        del wq


if __name__ == "__main__":
    main()
