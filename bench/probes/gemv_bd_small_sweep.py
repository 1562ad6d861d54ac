"""The block-diagonal GEMV's register-path variants (RESET_NATIVE_GEMV_BD_SMALL: legacy, c, b, 3 and combinations; the
default since session 10 is cb), timed per layer in the same process, each row under the environment that routes it
to the block-diagonal register kernel (RING=0, and BD=1 where K >= 8192 would go to the 16-bit kernel or take the
ring).

Columns: "pkg" = the package's default choice for the call (no switch set: the ring or the 16-bit kernel where its
rules say so), "legacy" = the block-diagonal register kernel before session 10, "base" = its default now (cb), then
one per --values entry, and "ring" = the row's environment with the weight ring forced on; us per call (CUDA-graph
replay, weights rotated past the L2, PDL on, bf16 x) and % of the floor (packed weights + scales + x + out over the
measured read bandwidth); "same" = every column's output but pkg's equal to base's bit for bit (pkg may run another
kernel: the 16-bit one at K >= 8192).

  python3 bench/probes/gemv_bd_small_sweep.py [--values 3,cb3] [--ms 1,2] [--reps 5] [--rows 8b_qkv,...]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_nvfp4_gpu import graph_time_us, read_bandwidth, rotated_nvfp4  # noqa: E402

from reset_native import _nvfp4_cuda as nc  # noqa: E402

R0 = {"RESET_NATIVE_GEMV_RING": "0"}
ROWS = {  # name: (n, k, environment that routes the call to the block-diagonal register kernel)
    "8b_qkv": (6144, 4096, R0),
    "8b_o": (4096, 4096, R0),
    "k4096_n2048": (2048, 4096, R0),
    "32b_qkv": (10240, 5120, R0),
    "k4096_n12288": (12288, 4096, R0),
    "8b_gate_up": (24576, 4096, R0),
    "32b_gate_up": (51200, 5120, R0),
    "32b_o": (5120, 8192, dict(R0, RESET_NATIVE_GEMV_BD="1")),
    "8b_down": (4096, 12288, dict(R0, RESET_NATIVE_GEMV_BD="1")),
    "32b_down": (5120, 25600, dict(R0, RESET_NATIVE_GEMV_BD="1")),  # M = 1 only: x of 2 tokens does not fit 2 CTAs
}
SWITCHES = ("RESET_NATIVE_GEMV_RING", "RESET_NATIVE_GEMV_BD", "RESET_NATIVE_GEMV_BD_SMALL")


def under(env, fn, switches=SWITCHES):
    """fn() with exactly env set among switches (the others unset), restored afterwards."""
    old = {k: os.environ.pop(k, None) for k in switches}
    os.environ.update(env)
    try:
        return fn()
    finally:
        for k in switches:
            os.environ.pop(k, None)
            if old[k] is not None:
                os.environ[k] = old[k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--values", default="c,b,3,cb3", help="comma-separated; \"\" for none")
    ap.add_argument("--ms", default="1,2")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--rows", default=",".join(r for r in ROWS if r != "32b_down"))
    args = ap.parse_args()
    values = [v for v in args.values.split(",") if v]
    props = torch.cuda.get_device_properties(0)
    bw = read_bandwidth(args.reps)
    print(f"# {props.name}, read bandwidth {bw / 1e12:.3f} TB/s, bf16 x, RESET_NATIVE_GEMV_BD_SMALL; us per call "
          f"(% of floor)", flush=True)
    cols = ["pkg", "legacy", "base"] + values + ["ring"]
    print(f"{'row':13s} {'M':>2s} " + " ".join(f"{c:>11s}" for c in cols) + "  same", flush=True)
    gen = torch.Generator(device="cuda").manual_seed(0)
    for name in args.rows.split(","):
        n, k, env = ROWS[name]
        nbytes = n * k * 9 // 16
        wq, gs = rotated_nvfp4(n, k, gen, props.L2_cache_size)
        for m in (int(v) for v in args.ms.split(",")):
            x = torch.randn((m, k), device="cuda", generator=gen, dtype=torch.bfloat16)
            fns = [lambda p=p, s=s: nc.gemv(p, s, gs, x, "bf16") for p, s in wq]
            cells, outs = [], []
            for col in cols:
                if col == "pkg":
                    e = {}
                elif col == "base":
                    e = dict(env)
                elif col == "ring":
                    e = dict(env, RESET_NATIVE_GEMV_RING="1")
                else:
                    e = dict(env, RESET_NATIVE_GEMV_BD_SMALL=col)
                t, y = under(e, lambda: (graph_time_us(fns, args.reps), fns[0]()))
                floor_us = (nbytes + m * k * 2 + m * n * 2) / bw * 1e6
                cells.append(f"{t:5.2f}({floor_us / t * 100:3.0f}%)")
                outs.append(y)
            same = all(torch.equal(o, outs[2]) for o in outs[1:])
            print(f"{name:13s} {m:2d} " + " ".join(f"{c:>11s}" for c in cells) + f"  {same}", flush=True)
        del wq
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
