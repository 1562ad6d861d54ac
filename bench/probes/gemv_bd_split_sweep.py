"""Split K for the block-diagonal GEMV (cuda/nvfp4/gemv_bd_split.cuh, session 13), timed per Qwen3 layer at M = 1, 2:
"off" = RESET_NATIVE_GEMV_BD_SPLIT=0 (the package before the split: the unsplit block-diagonal kernel, or the 16-bit
kernel at K >= 16384 / 12288), "auto" = the package's rule (the slice count it picked in brackets), then forced slice
counts. us per call (CUDA-graph replay, weights rotated past the L2, PDL on, bf16 x) and % of the floor (packed
weights + scales + x + out over the measured read bandwidth).

  python3 bench/probes/gemv_bd_split_sweep.py [--slices 2,4,8] [--ms 1,2] [--reps 5] [--layers 32b_o,32b_down]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_nvfp4_gpu import LAYERS, graph_time_us, read_bandwidth, rotated_nvfp4  # noqa: E402

from reset_native import _nvfp4_cuda as nc  # noqa: E402

SWITCH = "RESET_NATIVE_GEMV_BD_SPLIT"


def under(value, fn):
    """fn() with the split switch set to value (None: unset), restored afterwards."""
    old = os.environ.pop(SWITCH, None)
    if value is not None:
        os.environ[SWITCH] = value
    try:
        return fn()
    finally:
        os.environ.pop(SWITCH, None)
        if old is not None:
            os.environ[SWITCH] = old


def slices_of(p, s, x):
    n, k, m = p.shape[0], p.shape[1] * 2, x.shape[0]
    b = nc._native.cuda_gemv_workspace_bytes(p.data_ptr(), s.data_ptr(), n, k, x.data_ptr(), 2, m, False)
    return max(1, b // (m * n * 4))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--slices", default="2,3,4,5,8")
    ap.add_argument("--ms", default="1,2")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--layers", default="8b_qkv,8b_o,8b_down,32b_qkv,32b_o,32b_down")
    args = ap.parse_args()
    shapes = {f"{model}_{name}": (n, k) for model, rows in LAYERS.items() for name, n, k in rows}
    props = torch.cuda.get_device_properties(0)
    bw = read_bandwidth(args.reps)
    print(f"# {props.name}, {props.multi_processor_count} SMs, read bandwidth {bw / 1e12:.3f} TB/s, bf16 x; us per "
          f"call (% of floor)", flush=True)
    cols = ["off", "auto"] + [c for c in args.slices.split(",") if c]
    print(f"{'layer':11s} {'M':>2s} " + " ".join(f"{c:>14s}" for c in cols), flush=True)
    gen = torch.Generator(device="cuda").manual_seed(0)
    for name in args.layers.split(","):
        n, k = shapes[name]
        nbytes = n * k * 9 // 16
        wq, gs = rotated_nvfp4(n, k, gen, props.L2_cache_size)
        p0, s0 = wq[0]
        for m in (int(v) for v in args.ms.split(",")):
            x = torch.randn((m, k), device="cuda", generator=gen, dtype=torch.bfloat16)
            fns = [lambda p=p, s=s: nc.gemv(p, s, gs, x, "bf16") for p, s in wq]
            floor_us = (nbytes + m * k * 2 + m * n * 2) / bw * 1e6
            cells = []
            for col in cols:
                value = {"off": "0", "auto": None}.get(col, col)
                t, ks = under(value, lambda: (graph_time_us(fns, args.reps), slices_of(p0, s0, x)))
                tag = f"[{ks}]" if col == "auto" else ""
                cells.append(f"{t:6.2f}({floor_us / t * 100:3.0f}%){tag}")
            print(f"{name:11s} {m:2d} " + " ".join(f"{c:>14s}" for c in cells), flush=True)
        del wq
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
