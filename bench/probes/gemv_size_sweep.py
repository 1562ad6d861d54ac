"""How the NVFP4 GEMV's time splits into a fixed cost per call and a streaming rate (issue 4's small layers).

For K fixed and N swept, CUDA-graph time per call (weights rotated past the L2, PDL on, bf16 x) against the bytes
read; a least-squares line t = a + bytes / bw over the sweep gives the fixed cost a (launch gap, ramp-up, x
staging, tail) and the streaming bandwidth bw, next to the measured read bandwidth of the same run. Also the
graph time of a one-element torch op (the per-kernel floor of a graph replay without PDL).

  python3 bench/probes/gemv_size_sweep.py [--k 4096] [--ns 512,1024,...] [--ms 1,16] [--reps 5]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_nvfp4_gpu import graph_time_us, read_bandwidth, rotated_nvfp4  # noqa: E402
from nvfp4_gpu_targets import call_bytes  # noqa: E402

from reset_native import _nvfp4_cuda as nc  # noqa: E402


def fit_line(xs, ys):
    """Least-squares (intercept, slope) of ys against xs."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return my - slope * mx, slope


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", type=int, default=4096)
    ap.add_argument("--ns", default="512,1024,2048,4096,6144,8192,12288,16384,24576")
    ap.add_argument("--ms", default="1,16")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    ns = [int(v) for v in args.ns.split(",")]
    ms = [int(v) for v in args.ms.split(",")]
    props = torch.cuda.get_device_properties(0)
    l2 = getattr(props, "L2_cache_size", 50 * 1024**2)
    bw = read_bandwidth(args.reps)
    tiny = torch.zeros(1, device="cuda")
    t_tiny = graph_time_us([lambda: tiny.add_(1.0) for _ in range(64)], args.reps)
    print(f"# {props.name}: read bandwidth {bw / 1e12:.3f} TB/s; graph time of a one-element op {t_tiny:.2f} us")
    gen = torch.Generator(device="cuda").manual_seed(0)
    k = args.k
    table = {m: [] for m in ms}
    for n in ns:
        wq, gs = rotated_nvfp4(n, k, gen, l2)
        for m in ms:
            x = torch.randn((m, k), device="cuda", generator=gen, dtype=torch.bfloat16)
            t = graph_time_us([lambda p=p, s=s: nc.gemv(p, s, gs, x, "bf16") for p, s in wq], args.reps)
            table[m].append((n, call_bytes(n, k, m), t))
        del wq
        torch.cuda.empty_cache()
    print(f"{'M':>3} {'N':>6} {'MB':>7} {'us':>7} {'floor':>6} {'%floor':>6}")
    for m in ms:
        for n, b, t in table[m]:
            fl = b / bw * 1e6
            print(f"{m:>3} {n:>6} {b / 1e6:>7.2f} {t:>7.2f} {fl:>6.2f} {fl / t:>6.0%}")
        a, s = fit_line([b for _, b, _ in table[m]], [t for _, _, t in table[m]])
        print(f"# M={m} K={k}: fixed cost {a:.2f} us, streaming rate {1e6 / s / 1e12:.3f} TB/s "
              f"({1e6 / s / bw:.0%} of the read bandwidth)")


if __name__ == "__main__":
    main()
