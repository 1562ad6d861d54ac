"""CPU prefill of nvfp4.gemv (M > 1 tokens, W4A16, float32 x): the GEMV kernels vs the dequantize + BLAS route.

One command, one table:  python bench/bench_nvfp4_cpu_prefill.py [--ms 16,32,...] [--reps 7]
For SmolLM2-135M's layers (the embedded demo model) and Qwen3-8B's o projection, and each M, the median time of
  kernels   nvfp4.gemv on the C++ GEMV kernels (RESET_NATIVE_GEMV_PREFILL=slices),
  route     _nvfp4_prefill_cpu.gemm, the route's GEMM itself (expand rows to float32 in chunks, numpy matmul),
  matmul    numpy float32 matmul on weights expanded beforehand (the route without its expansion),
and kernels / route (the route is faster where it exceeds 1). Weights stay in cache between calls for the small
layers: this compares the two computations, not memory streams. JSON goes to bench/out/nvfp4_cpu_prefill.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_nvfp4_cpu import _time  # noqa: E402

from reset_native import _nvfp4_prefill_cpu as prefill  # noqa: E402
from reset_native import nvfp4  # noqa: E402

LAYERS = [("smollm2 q/o", 576, 576), ("smollm2 k/v", 192, 576), ("smollm2 gate/up", 1536, 576),
          ("smollm2 down", 576, 1536), ("qwen3-8b o", 4096, 4096)]


def median_ms(fn, reps):
    return 1e3 * _time(fn, reps)["median"]


def kernels(t, x):
    os.environ["RESET_NATIVE_GEMV_PREFILL"] = "slices"
    try:
        return nvfp4.gemv(t, x)
    finally:
        os.environ.pop("RESET_NATIVE_GEMV_PREFILL", None)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ms", default="16,32,48,64,96,128,256")
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args()
    ms = [int(v) for v in args.ms.split(",")]
    rng = np.random.default_rng(0)
    os.environ.pop("RESET_NATIVE_GEMV_PREFILL", None)
    rows = []
    for name, n, k in LAYERS:
        t = nvfp4.quantize(rng.standard_normal((n, k)).astype(np.float32))
        w = nvfp4.dequantize(t)
        for m in ms:
            x = rng.standard_normal((m, k)).astype(np.float32)
            row = {"layer": name, "n": n, "k": k, "m": m,
                   "kernels_ms": median_ms(lambda: kernels(t, x), args.reps),
                   "route_ms": median_ms(lambda: prefill.gemm(np.asarray(t.packed), np.asarray(t.block_scales),
                                                              t.global_scale, x, None), args.reps),
                   "matmul_ms": median_ms(lambda: x @ w.T, args.reps)}
            rows.append(row)
    info = nvfp4.cpu_info()
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"# {platform.processor() or platform.machine()}, {info['logical_cpus']} logical CPUs, kernel "
          f"{info['kernel']}, {info['threads']} threads, numpy {np.__version__}, {stamp}; route from M = "
          f"{prefill.MIN_TOKENS}")
    print("| layer [N x K] | M | kernels ms | route ms | matmul ms | kernels / route |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['layer']} [{r['n']} x {r['k']}] | {r['m']} | {r['kernels_ms']:.2f} | {r['route_ms']:.2f} | "
              f"{r['matmul_ms']:.2f} | {r['kernels_ms'] / r['route_ms']:.2f} |")
    out = Path(__file__).resolve().parent / "out" / "nvfp4_cpu_prefill.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"time": stamp, "cpu_info": info, "min_tokens": prefill.MIN_TOKENS, "rows": rows},
                              indent=1))


if __name__ == "__main__":
    main()
