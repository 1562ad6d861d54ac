"""One environment switch of the NVFP4 GEMV, timed per value on the Qwen3 decode layers (and checked bit for bit).

For the layers of bench/bench_nvfp4_gpu.py: CUDA-graph time (median, weights rotated past the L2, PDL on) of the GEMV
with bf16 x for each value of one RESET_NATIVE_GEMV_* variable (read by the library at every call), the % of the
floor (packed weights + scales over the measured read bandwidth), and whether every output equals the first
value's bit for bit (switches that only move bytes, e.g. the weight ring, must not change a bit; "False" is
expected where the summation order changes, e.g. split K).

  python3 bench/probes/gemv_env_sweep.py --env RESET_NATIVE_GEMV_RING --values 0,1,3 [--ms 1,2] [--reps 5]
      [--act bf16|nvfp4] [--layers 8b,32b]
  python3 bench/probes/gemv_env_sweep.py --env RESET_NATIVE_GEMV_TEAMS --values unset,2 --rows 8b:qkv:9,32b:o:3
      (--rows: only these layer:M rows, in this order; --ms and --layers are then ignored)
  python3 bench/probes/gemv_env_sweep.py --act nvfp4 --act-gs 0.0013 ...
      (--act-gs: W4A4 with this static activation scale instead of the dynamic one: no amax at all)
  python3 bench/probes/gemv_env_sweep.py --env RESET_NATIVE_GEMV_BD --values unset,0 --shapes 4096:8192,8448:4096
      (--shapes: these N:K shapes (random weights, rows "syn NxK") at --ms instead of the Qwen3 layers)
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_nvfp4_gpu import LAYERS, graph_time_us, read_bandwidth, rotated_nvfp4  # noqa: E402
from gemv_ksplit_sweep import with_env  # noqa: E402

from reset_native import _nvfp4_cuda as nc  # noqa: E402


def with_value(name, value, fn):
    """fn() with os.environ[name] = value ('unset': without the variable), restored afterwards."""
    if value != "unset":
        return with_env(name, value, fn)
    old = os.environ.pop(name, None)
    try:
        return fn()
    finally:
        if old is not None:
            os.environ[name] = old


def with_values(envs, fn):
    """fn() with every variable of the dict envs set as with_value sets one, all restored afterwards."""
    items = list(envs.items())
    if not items:
        return fn()
    (name, value), rest = items[0], dict(items[1:])
    return with_value(name, value, lambda: with_values(rest, fn))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ms", default="1,2,16")
    ap.add_argument("--env", required=True, help="the variable, e.g. RESET_NATIVE_GEMV_RING")
    ap.add_argument("--values", required=True, help="comma-separated values; 'unset' leaves it unset")
    ap.add_argument("--layers", default="8b,32b")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--act", default="bf16", help="bf16 (W4A16) or nvfp4 (W4A4, dynamic scale)")
    ap.add_argument("--rows", default="", help="only these rows, in this order: model:layer:M,... (e.g. 8b:qkv:9)")
    ap.add_argument("--act-gs", type=float, default=None, help="W4A4: a static activation scale (default: dynamic)")
    ap.add_argument("--shapes", default="", help="N:K,... instead of the layers (rows 'syn NxK', at --ms)")
    args = ap.parse_args()
    props = torch.cuda.get_device_properties(0)
    bw = read_bandwidth(args.reps)
    values = [a for a in args.values.split(",") if a]
    act = args.act + ("" if args.act_gs is None else f" (static activation scale {args.act_gs})")
    print(f"# {props.name}, read bandwidth {bw / 1e12:.3f} TB/s, act {act}, {args.env}; us per call (% of floor)",
          flush=True)
    print(f"{'layer':12s} {'M':>2s} " + " ".join(f"{a:>13s}" for a in values) + "  same bits", flush=True)
    gen = torch.Generator(device="cuda").manual_seed(0)
    sums = [0.0] * len(values)  # per column: a value may repeat (e.g. 0,1,0,1)
    ms = [int(v) for v in args.ms.split(",")]
    weights = {}  # (model, layer) -> rotated copies, built on first use (--rows may return to a layer)

    def time_row(model, name, n, k, m):
        if (model, name) not in weights:
            weights.clear()  # one layer's copies at a time
            weights[(model, name)] = rotated_nvfp4(n, k, gen, props.L2_cache_size)
        wq, gs = weights[(model, name)]
        floor_us = n * k * 9 // 16 / bw * 1e6
        x = torch.randn((m, k), device="cuda", generator=gen, dtype=torch.bfloat16)
        if args.act_gs is None:
            fns = [lambda p=p, s=s: nc.gemv(p, s, gs, x, args.act) for p, s in wq]
        else:
            fns = [lambda p=p, s=s: nc.gemv(p, s, gs, x, args.act, args.act_gs) for p, s in wq]
        cells, outs = [], []
        for col, a in enumerate(values):
            t, y = with_value(args.env, a, lambda: (graph_time_us(fns, args.reps), [f() for f in fns[:2]]))
            cells.append(f"{t:6.1f} ({floor_us / t * 100:3.0f}%)")
            outs.append(y)
            if model == "8b" and m == 1:
                sums[col] += t
        same = all(torch.equal(o[i], outs[0][i]) for o in outs for i in range(len(o)))
        print(f"{model + ' ' + name:12s} {m:2d} " + " ".join(f"{c:>13s}" for c in cells) + f"  {same}", flush=True)

    if args.rows:
        shapes = {(model, name): (n, k) for model, layers in LAYERS.items() for name, n, k in layers}
        for row in args.rows.split(","):
            model, name, m = row.split(":")
            time_row(model, name, *shapes[(model, name)], int(m))
        return
    if args.shapes:
        for shape in args.shapes.split(","):
            n, k = (int(v) for v in shape.split(":"))
            for m in ms:
                time_row("syn", f"{n}x{k}", n, k, m)
        return
    for model in args.layers.split(","):
        for name, n, k in LAYERS[model]:
            for m in ms:
                time_row(model, name, n, k, m)
    if "8b" in args.layers.split(",") and 1 in ms:
        print("# Qwen3-8B layer sum M=1: " + ", ".join(f"{a}: {t:.1f} us" for a, t in zip(values, sums)))


if __name__ == "__main__":
    main()
