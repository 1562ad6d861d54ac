"""Host time of `reset_native.nvfp4.gemv`'s argument checks alone, on the CPU (no GPU needed).

The checks are the same for CPU and CUDA tensors; only what runs after them differs. This probe sends torch CPU
tensors down gemv's CUDA route with the backend replaced by a no-op (in this process only), so it times the checks
and nothing else: x [M, K] bf16, optional bias, W4A16 and W4A4 with a static scale; median of `--reps` loops of
`--calls` calls and the fastest loop (shared VMs jitter), us per call. Compare two trees by running it in each.

  python3 bench/probes/nvfp4_front_host_time.py [--calls 20000] [--reps 5]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from reset_native import nvfp4


def loop_us(fn, calls, reps, sync=lambda: None):
    """Microseconds per call in each of `reps` loops of `calls` calls of fn, after one warm-up call; sync() runs after
    the warm-up and after each loop, outside the timed span (eager_host_time.py passes torch.cuda.synchronize)."""
    fn()
    sync()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - t0) / calls * 1e6)
        sync()
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    gen = torch.Generator().manual_seed(0)
    t = nvfp4.quantize(torch.randn((64, 4096), generator=gen))
    x = torch.randn((4, 4096), generator=gen).to(torch.bfloat16)
    bias = torch.randn(64, generator=gen).to(torch.bfloat16)
    nvfp4._is_cuda = lambda a: True  # this process only: the CUDA route ...
    nvfp4._gemv_cuda = lambda *a: None  # ... up to the backend call
    rows = [("W4A16", lambda: nvfp4.gemv(t, x)),
            ("W4A16 + bias", lambda: nvfp4.gemv(t, x, bias=bias)),
            ("W4A4 static scale", lambda: nvfp4.gemv(t, x, activation="nvfp4", act_global_scale=0.01))]
    print(f"# nvfp4.gemv's checks (CUDA route, backend stubbed), us per call over {args.reps} loops of {args.calls}")
    print(f"{'call':20s} {'median':>6s} {'min':>6s}")
    for name, fn in rows:
        times = loop_us(fn, args.calls, args.reps)
        med, low = statistics.median(times), min(times)
        print(f"{name:20s} {med:6.2f} {low:6.2f}", flush=True)


if __name__ == "__main__":
    main()
