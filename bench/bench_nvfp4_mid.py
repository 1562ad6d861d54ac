"""Medium token counts (17..~256: batched decode, short prompts) of the CUDA nvfp4.gemv: the medium-M GEMM ('mid')
against the 16-token GEMV slices, dequantize + cuBLAS, and cuBLAS BF16 on unquantized weights.

One command, one table:  python bench/bench_nvfp4_mid.py [--layers 8b|32b|all] [--ms 16,24,...] [--reps 5]
                                                         [--activation bf16|nvfp4]
For the Qwen3 decode layers of bench_nvfp4_gpu.py, bfloat16 x, CUDA-graph replays (median of --reps, weight copies
rotated past the L2 as in bench_nvfp4_gpu.py) of each route forced by RESET_NATIVE_GEMV_PREFILL (M = 16 is the GEMV
itself), cuBLAS BF16 (torch.matmul), the floor (NVFP4 weight bytes + x + y over the HBM read bandwidth measured in the
same run) and mid's fraction of it, mid's speedup over the best other NVFP4 route and over BF16, and the largest
relative difference between mid and dequantize + cuBLAS (the same math, other fp32 sum order). W4A4 (--activation
nvfp4) uses a static activation scale so that every route is graph-capturable.
JSON goes to $OUT/bench_nvfp4_mid.json when $OUT is set, else bench/out/.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_nvfp4_gpu import (LAYERS, copies_for, forced_route, graph_time_us,  # noqa: E402
                             layer_bench_setup, rotated_nvfp4)

from reset_native import _nvfp4_prefill as prefill  # noqa: E402
from reset_native import nvfp4  # noqa: E402

ROUTES = ("mid", "slices", "dequant")


def layer_rows(name, n, k, ms, reps, l2, gen, act, bw):
    copies, gs = rotated_nvfp4(n, k, gen, l2)
    tensors = [nvfp4.NVFP4Tensor.from_parts(p, s, gs) for p, s in copies]
    dense = [torch.randn((n, k), device="cuda", generator=gen, dtype=torch.bfloat16)
             for _ in range(copies_for(n * k * 2, l2))]
    rows = []
    for m in ms:
        x = torch.randn((m, k), device="cuda", generator=gen, dtype=torch.bfloat16)
        gx = prefill.act_global_scale(x) if act == "nvfp4" else None
        row = {"layer": name, "n": n, "k": k, "m": m, "activation": act,
               "bf16_us": graph_time_us([lambda w=w: torch.matmul(x, w.t()) for w in dense], reps),
               "floor_us": (n * k * (0.5 + 1 / 16) + 2 * m * (k + n)) / bw * 1e6}
        for route in (ROUTES if m > 16 else ("slices",)):
            row[f"{route}_us"] = graph_time_us([forced_route(route, t, x, act, gx) for t in tensors], reps)
        if m > 16:
            y_mid = forced_route("mid", tensors[0], x, act, gx)().float()
            y_deq = forced_route("dequant", tensors[0], x, act, gx)().float()
            row["max_rel_diff"] = float(((y_mid - y_deq).abs().max() / y_deq.abs().max()).item())
        rows.append(row)
    del copies, tensors, dense
    torch.cuda.empty_cache()
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", default="all", choices=["8b", "32b", "all"])
    ap.add_argument("--ms", default="16,24,32,48,64,96,128,192,256")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--activation", default="bf16", choices=["bf16", "nvfp4"])
    args = ap.parse_args()
    ms, props, l2, gen, bw, models = layer_bench_setup("bench_nvfp4_mid", args)
    rows = []
    for model in models:
        for lname, n, k in LAYERS[model]:
            rows += layer_rows(f"{model} {lname}", n, k, ms, args.reps, l2, gen, args.activation, bw)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"# {props.name}, {stamp}, HBM read {bw / 1e12:.3f} TB/s, {'W4A4' if args.activation == 'nvfp4' else 'W4A16'}"
          f", bf16 x, mid up to M = {prefill.MID_MAX_TOKENS}, torch {torch.__version__}")
    print("| layer | M | mid us | slices us | deq us | bf16 cuBLAS us | floor us | mid % floor | best other / mid | "
          "bf16 / mid | max rel diff |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        if r["m"] <= 16:
            print(f"| {r['layer']} | {r['m']} | - | {r['slices_us']:.1f} | - | {r['bf16_us']:.1f} | "
                  f"{r['floor_us']:.1f} | {r['floor_us'] / r['slices_us']:.0%} (GEMV) | - | "
                  f"{r['bf16_us'] / r['slices_us']:.2f} (GEMV) | - |")
            continue
        other = min(r["slices_us"], r["dequant_us"])
        print(f"| {r['layer']} | {r['m']} | {r['mid_us']:.1f} | {r['slices_us']:.1f} | {r['dequant_us']:.1f} | "
              f"{r['bf16_us']:.1f} | {r['floor_us']:.1f} | {r['floor_us'] / r['mid_us']:.0%} | "
              f"{other / r['mid_us']:.2f} | {r['bf16_us'] / r['mid_us']:.2f} | {r['max_rel_diff']:.1e} |")
    out_dir = Path(os.environ.get("OUT") or Path(__file__).resolve().parent / "out")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench_nvfp4_mid.json").write_text(json.dumps(
        {"device": props.name, "time": stamp, "hbm_read_bytes_per_s": bw, "mid_max_tokens": prefill.MID_MAX_TOKENS,
         "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
