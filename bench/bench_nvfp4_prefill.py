"""Prefill-sized NVFP4 calls (M > 16 tokens) on the GPU: 16-token GEMV slices vs dequantize + cuBLAS.

One command, one table:  python bench/bench_nvfp4_prefill.py [--layers 8b|32b|all] [--ms 16,32,...] [--reps 5]
                                                             [--activation bf16|nvfp4|both] [--x-dtype ...]
W4A16 (activation bf16, the default) and / or W4A4 (nvfp4: x quantized with a static activation scale, amax(x)/2688
fixed before timing, so the call is graph-capturable; a dynamic scale adds one amax pass and a host read). x is
bfloat16 unless --x-dtype says float16 or float32 (the bf16 cuBLAS column always multiplies bfloat16 x).
For the Qwen3 decode layers of bench_nvfp4_gpu.py and each M, times (CUDA-graph replay, median of --reps, weight
copies rotated past the L2 as in bench_nvfp4_gpu.py) of
  slices    nvfp4.gemv as 16-token GEMV launches (RESET_NATIVE_GEMV_PREFILL=slices),
  deq       the dequantize + cuBLAS route with --chunk-mib chunks (default: the route's own, _nvfp4_prefill.CHUNK_BYTES;
            --chunk-mib 32 gives session 25's smaller-chunk comparison),
  deq-all   the same with the whole layer expanded at once (one chunk),
  bf16      cuBLAS BF16 (torch.matmul) on unquantized weights: the GEMM the route runs, without the expansion,
and slices / deq (the route is faster where it exceeds 1). Per layer it also prints the dequantize kernel alone:
bytes moved (packed + scales read, bf16 written) over its time, against the HBM read bandwidth measured in the same
run and against torch's copy of the bf16 layer (the same mix of reads and writes).
JSON goes to $OUT/bench_nvfp4_prefill.json when $OUT is set, else bench/out/.
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

from reset_native import _nvfp4_cuda as nc  # noqa: E402
from reset_native import _nvfp4_prefill as prefill  # noqa: E402
from reset_native import nvfp4  # noqa: E402


def route_fn(t, x, act, gx, chunk_bytes):
    if act == "nvfp4":
        return lambda: prefill.w4a4_gemm(t.packed, t.block_scales, t.global_scale, x, gx, None, chunk_bytes=chunk_bytes)
    return lambda: prefill.gemm(t.packed, t.block_scales, t.global_scale, x, None, chunk_bytes=chunk_bytes)


def layer_rows(name, n, k, ms, reps, l2, gen, chunk_bytes, acts, x_dtype):
    copies, gs = rotated_nvfp4(n, k, gen, l2)
    tensors = [nvfp4.NVFP4Tensor.from_parts(p, s, gs) for p, s in copies]
    dense = [torch.randn((n, k), device="cuda", generator=gen, dtype=torch.bfloat16)
             for _ in range(copies_for(n * k * 2, l2))]
    deq_us = graph_time_us([lambda p=p, s=s: nc.dequantize(p, s, 1.0, torch.bfloat16) for p, s in copies], reps)
    deq_bytes = n * k * (0.5 + 1 / 16 + 2)
    dst = torch.empty_like(dense[0])
    copy_us = graph_time_us([lambda w=w, d=dst: d.copy_(w) for w in dense], reps)  # read + write of 2-byte values
    del dst
    rows = []
    for m in ms:
        x16 = torch.randn((m, k), device="cuda", generator=gen, dtype=torch.bfloat16)
        bf16_us = graph_time_us([lambda w=w: torch.matmul(x16, w.t()) for w in dense], reps)
        x = x16.to(x_dtype)
        for act in acts:
            gx = prefill.act_global_scale(x) if act == "nvfp4" else None
            row = {"layer": name, "n": n, "k": k, "m": m, "activation": act, "x_dtype": str(x_dtype),
                   "bf16_us": bf16_us}
            row["slices_us"] = graph_time_us([forced_route("slices", t, x, act, gx) for t in tensors], reps)
            if m > 16:
                row["deq_us"] = graph_time_us([route_fn(t, x, act, gx, chunk_bytes) for t in tensors], reps)
                row["deq_all_us"] = graph_time_us([route_fn(t, x, act, gx, n * k * 2) for t in tensors], reps)
                y_s = forced_route("slices", tensors[0], x, act, gx)()
                y_d = route_fn(tensors[0], x, act, gx, chunk_bytes)()
                row["max_rel_diff"] = float(((y_d.float() - y_s.float()).abs().max() / y_s.float().abs().max())
                                            .item())
            rows.append(row)
    del copies, tensors, dense
    torch.cuda.empty_cache()
    return rows, deq_us, deq_bytes, n * k * 4 / (copy_us * 1e-6)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", default="all", choices=["8b", "32b", "all"])
    ap.add_argument("--ms", default="16,32,48,64,96,128,256,512,2048")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--activation", default="bf16", choices=["bf16", "nvfp4", "both"],
                    help="bf16: W4A16, nvfp4: W4A4 with a static activation scale, both: one row each")
    ap.add_argument("--x-dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    ap.add_argument("--chunk-mib", type=int, default=prefill.CHUNK_BYTES >> 20,
                    help="chunk of expanded weights for the deq column (the deq-all column always expands whole)")
    args = ap.parse_args()
    ms, props, l2, gen, bw, models = layer_bench_setup("bench_nvfp4_prefill", args)
    acts = ["bf16", "nvfp4"] if args.activation == "both" else [args.activation]
    rows, kernels = [], []
    for model in models:
        for lname, n, k in LAYERS[model]:
            r, deq_us, deq_bytes, copy_rate = layer_rows(f"{model} {lname}", n, k, ms, args.reps, l2, gen,
                                                        args.chunk_mib << 20, acts, getattr(torch, args.x_dtype))
            rows += r
            kernels.append({"layer": f"{model} {lname}", "dequantize_us": deq_us,
                            "dequantize_tb_s": deq_bytes / (deq_us * 1e-6) / 1e12, "copy_tb_s": copy_rate / 1e12})
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"# {props.name}, {stamp}, HBM read {bw / 1e12:.3f} TB/s, deq chunk {args.chunk_mib} MiB, "
          f"route from M = {prefill.MIN_TOKENS}, x {args.x_dtype}, torch {torch.__version__}")
    print("| layer | dequantize us | its bytes / time | of HBM read | bf16 copy of the layer (read + write) |")
    print("| --- | --- | --- | --- | --- |")
    for kr in kernels:
        print(f"| {kr['layer']} | {kr['dequantize_us']:.1f} | {kr['dequantize_tb_s']:.2f} TB/s | "
              f"{kr['dequantize_tb_s'] * 1e12 / bw:.0%} | {kr['copy_tb_s']:.2f} TB/s |")
    print("| layer | act | M | slices us | deq us | deq-all us | bf16 cuBLAS us | slices / deq | deq / bf16 | "
          "max rel diff |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        head = f"| {r['layer']} | {'W4A4' if r['activation'] == 'nvfp4' else 'W4A16'} | {r['m']} | {r['slices_us']:.1f}"
        if "deq_us" in r:
            best = r["deq_us"]
            print(f"{head} | {r['deq_us']:.1f} | {r['deq_all_us']:.1f} | {r['bf16_us']:.1f} | "
                  f"{r['slices_us'] / best:.2f} | {best / r['bf16_us']:.2f} | {r['max_rel_diff']:.1e} |")
        else:
            print(f"{head} | - | - | {r['bf16_us']:.1f} | - | - | - |")
    out_dir = Path(os.environ.get("OUT") or Path(__file__).resolve().parent / "out")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench_nvfp4_prefill.json").write_text(json.dumps(
        {"device": props.name, "time": stamp, "hbm_read_bytes_per_s": bw, "chunk_bytes": args.chunk_mib << 20,
         "min_tokens": prefill.MIN_TOKENS, "dequantize": kernels, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
