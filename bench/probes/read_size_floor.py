"""What a plain read reaches at the sizes of the Qwen3 decode layers: torch.sum over as many bytes as a layer's
NVFP4 weights + scales, the same CUDA-graph replay and weight rotation as bench/bench_nvfp4_gpu.py, against the
2 GiB reduction that the benchmark calls the read bandwidth. Also a size sweep with a line fit t = a + bytes / rate,
so a layer's gap to the floor splits into what any reading kernel pays at that size (fixed cost, rate) and what is
the GEMV's own.

  python3 bench/probes/read_size_floor.py [--reps 10]
"""
from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from bench_nvfp4_gpu import LAYERS, copies_for, graph_time_us, read_bandwidth  # noqa: E402


def sum_time_us(nbytes, l2, reps):
    n = nbytes // 4
    bufs = [torch.ones(n, dtype=torch.float32, device="cuda") for _ in range(copies_for(nbytes, l2))]
    out = torch.empty((), dtype=torch.float32, device="cuda")
    t = graph_time_us([lambda b=b: torch.sum(b, dim=0, out=out) for b in bufs], reps)
    del bufs
    torch.cuda.empty_cache()
    return t


def fit(points):
    """Least-squares line t = a + b * bytes; returns (a us, rate B/s)."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    b = sum((x - mx) * (y - my) for x, y in points) / sxx
    return my - b * mx, 1e6 / b


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=10)
    args = ap.parse_args()
    props = torch.cuda.get_device_properties(0)
    l2 = getattr(props, "L2_cache_size", 50 * 1024**2)
    bw = read_bandwidth(args.reps)
    print(f"# {props.name}: 2 GiB torch.sum read bandwidth {bw / 1e12:.3f} TB/s; torch.sum over rotated buffers, "
          f"CUDA-graph replay, us per call")
    print(f"{'layer':<12}{'MB':>8}{'sum us':>9}{'floor us':>9}{'sum/floor':>10}{'TB/s':>7}")
    for model, layers in LAYERS.items():
        for name, n, k in layers:
            nbytes = n * k * 9 // 16
            t = sum_time_us(nbytes, l2, args.reps)
            floor = nbytes / bw * 1e6
            print(f"{model + ' ' + name:<12}{nbytes / 1e6:>8.1f}{t:>9.2f}{floor:>9.2f}{floor / t:>10.0%}"
                  f"{nbytes / t / 1e6:>7.2f}")
    pts = []
    for mb in (4, 8, 16, 32, 64, 128, 256):
        nbytes = mb * 2**20
        pts.append((nbytes, sum_time_us(nbytes, l2, args.reps)))
    print("size sweep (MiB: us): " + ", ".join(f"{x // 2**20}: {y:.2f}" for x, y in pts))
    a, rate = fit(pts)
    print(f"line fit: fixed {a:.2f} us, rate {rate / 1e12:.3f} TB/s ({rate / bw:.0%} of the 2 GiB read)")


if __name__ == "__main__":
    main()
