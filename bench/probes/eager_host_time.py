"""Host time per eager NVFP4 GEMV call (no CUDA graph): what a caller pays on the CPU to launch one GEMV.

For a few Qwen3 rows and M, times a loop of `--calls` eager calls with the CPU clock, before synchronising (the
launch queue holds them, so the loop measures submission, not the GPU), median of `--reps` loops. Columns: the
public API (`reset_native.nvfp4.gemv`), the custom op (`_nvfp4_cuda.gemv`), the custom op with one environment
switch set (`--env NAME=VALUE`, e.g. RESET_NATIVE_GEMV_W4A4_CLUSTER=1 to skip the cluster occupancy query), and
torch.matmul on bf16 weights of the same shape as a yardstick. W4A4 rows use the dynamic activation scale.

  python3 bench/probes/eager_host_time.py [--rows 8b:o:1,8b:o:16] [--calls 200] [--reps 7]
      [--env RESET_NATIVE_GEMV_W4A4_CLUSTER=1]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_nvfp4_gpu import LAYERS  # noqa: E402
from gemv_env_sweep import with_value  # noqa: E402

from reset_native import _nvfp4_cuda as nc  # noqa: E402
from reset_native import nvfp4  # noqa: E402


def host_us(fn, calls, reps):
    """Median over reps of the CPU time of `calls` calls of fn (not synchronised inside the loop), per call."""
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - t0) / calls * 1e6)
        torch.cuda.synchronize()
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="8b:o:1,8b:o:8,8b:o:16,8b:down:8,8b:down:16,32b:qkv:16")
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--env", default="RESET_NATIVE_GEMV_W4A4_CLUSTER=1")
    args = ap.parse_args()
    env_name, env_value = args.env.split("=", 1)
    shapes = {(model, name): (n, k) for model, layers in LAYERS.items() for name, n, k in layers}
    gen = torch.Generator(device="cuda").manual_seed(0)
    print(f"# {torch.cuda.get_device_name(0)}; host us per eager call, median of {args.reps} loops of "
          f"{args.calls} calls; env column: {args.env}", flush=True)
    print(f"{'row':14s} {'act':5s} {'public':>7s} {'op':>7s} {'op+env':>7s} {'matmul':>7s}", flush=True)
    for row in args.rows.split(","):
        model, name, m = row.split(":")
        n, k = shapes[(model, name)]
        w = torch.randn((n, k), device="cuda", generator=gen, dtype=torch.bfloat16)
        t = nvfp4.quantize(w)
        x = torch.randn((int(m), k), device="cuda", generator=gen, dtype=torch.bfloat16)
        mm = host_us(lambda: torch.matmul(x, w.T), args.calls, args.reps)
        for act in ("bf16", "nvfp4"):
            pub = host_us(lambda: nvfp4.gemv(t, x, activation=act), args.calls, args.reps)
            op = host_us(lambda: nc.gemv(t.packed, t.block_scales, t.global_scale, x, act), args.calls, args.reps)
            env = with_value(env_name, env_value, lambda: host_us(
                lambda: nc.gemv(t.packed, t.block_scales, t.global_scale, x, act), args.calls, args.reps))
            print(f"{row:14s} {act:5s} {pub:7.1f} {op:7.1f} {env:7.1f} {mm:7.1f}", flush=True)
        del w, t


if __name__ == "__main__":
    main()
