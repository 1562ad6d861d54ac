"""Benchmark of the DDR4 model (reset_native.dram).

1. Simulation speed: simulated cycles per second of wall time (and of process CPU time) on a random and a
   sequential read/write trace of N requests (default 10 million), saturated (all arrive at cycle 0), plus
   a paced random trace (Poisson arrivals at 40% of peak, below the ~55% a random stream can sustain). Target: >= 20 M simulated cycles/s on one core.
2. Bandwidth vs read/write mix (random and sequential addresses) -> bench/out/dram_bandwidth_vs_mix.png
3. Read latency vs offered load (random addresses, 30% writes)    -> bench/out/dram_latency_vs_load.png
Everything goes to bench/out/bench_dram.json as well.

    python bench/bench_dram.py [--requests 10000000] [--curve-requests 200000] [--preset DDR4_2400R_8Gb_x8]
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from reset_native.dram import DDR4Spec, MemorySystem, simulate

OUT = Path(__file__).resolve().parent / "out"


def trace(kind: str, n: int, system: MemorySystem, rng, write_fraction=0.3, load=None):
    bursts = system.capacity_bytes // 64
    if kind == "sequential":
        address = (np.arange(n, dtype=np.uint64) % np.uint64(bursts)) * np.uint64(64)
    else:
        address = rng.integers(0, bursts, n, dtype=np.uint64) * np.uint64(64)
    is_write = rng.random(n) < write_fraction
    if load is None:
        arrival = np.zeros(n, np.int64)
    else:  # Poisson arrivals: `load` = offered bytes / peak bytes per clock (one burst per BL/2 clocks)
        mean_gap = (system.spec.BL // 2) / (system.channels * load)
        arrival = np.cumsum(rng.exponential(mean_gap, n)).astype(np.int64)
    return arrival, is_write, address


def timed(system, requests):
    c0, w0 = time.process_time(), time.perf_counter()
    r = simulate(system, requests)
    return r, time.perf_counter() - w0, time.process_time() - c0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=10_000_000)
    ap.add_argument("--curve-requests", type=int, default=200_000)
    ap.add_argument("--preset", default="DDR4_2400R_8Gb_x8")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    spec = DDR4Spec.preset(args.preset)
    system = MemorySystem(spec)
    rng = np.random.default_rng(0)
    report = {"preset": args.preset, "machine": platform.processor() or platform.machine(),
              "python": platform.python_version(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}

    # ---------------------------------------------------------------- 1. speed
    speed = []
    print(f"{'trace':28s} {'requests':>10s} {'sim cycles':>12s} {'wall s':>8s} {'cpu s':>8s} "
          f"{'Mcyc/s wall':>11s} {'Mcyc/s cpu':>10s} {'BW % peak':>9s}")
    for name, kind, load in [("random, saturated", "random", None), ("sequential, saturated", "sequential", None),
                             ("random, 40% load (Poisson)", "random", 0.4)]:
        req = trace(kind, args.requests, system, rng, load=load)
        r, wall, cpu = timed(system, req)
        row = dict(trace=name, requests=args.requests, cycles=r.cycles, wall_s=wall, cpu_s=cpu,
                   mcycles_per_s_wall=r.cycles / wall / 1e6, mcycles_per_s_cpu=r.cycles / cpu / 1e6,
                   requests_per_s_wall=args.requests / wall, bandwidth_fraction=r.bandwidth_fraction,
                   commands=r.commands)
        speed.append(row)
        print(f"{name:28s} {args.requests:10d} {r.cycles:12d} {wall:8.2f} {cpu:8.2f} "
              f"{row['mcycles_per_s_wall']:11.2f} {row['mcycles_per_s_cpu']:10.2f} {100 * r.bandwidth_fraction:9.1f}")
        del req
    report["speed"] = speed

    # ---------------------------------------------------------------- 2. bandwidth vs mix
    mixes = np.linspace(0, 1, 11)
    bw = {}
    for kind in ("random", "sequential"):
        bw[kind] = []
        for wf in mixes:
            r = simulate(system, trace(kind, args.curve_requests, system, rng, write_fraction=wf))
            bw[kind].append(r.bandwidth_GBps)
    report["bandwidth_vs_write_fraction"] = {"write_fraction": mixes.tolist(), **bw,
                                             "peak_GBps": system.peak_bandwidth_GBps}
    print("\nwrite fraction   " + " ".join(f"{w:6.1f}" for w in mixes))
    for kind in bw:
        print(f"{kind:16s} " + " ".join(f"{b:6.2f}" for b in bw[kind]) + "  GB/s")

    # ---------------------------------------------------------------- 3. latency vs load
    loads = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    lat = []
    for load in loads:
        r = simulate(system, trace("random", args.curve_requests, system, rng, load=load))
        lat.append(dict(offered=load, achieved_GBps=r.bandwidth_GBps, avg=r.read_latency_avg,
                        p50=r.read_latency_p50, p99=r.read_latency_p99))
    report["latency_vs_load"] = lat
    print("\noffered load  achieved GB/s  avg lat  p99 lat (cycles)")
    for row in lat:
        print(f"{row['offered']:12.2f} {row['achieved_GBps']:14.2f} {row['avg']:8.1f} {row['p99']:8.0f}")

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        for kind in bw:
            ax.plot(mixes, bw[kind], marker="o", label=f"{kind} addresses")
        ax.axhline(system.peak_bandwidth_GBps, color="gray", ls="--", label="peak")
        ax.set_xlabel("write fraction")
        ax.set_ylabel("achieved bandwidth (GB/s)")
        ax.set_title(f"{args.preset}, 1 channel, FR-FCFS open page")
        ax.legend()
        fig.tight_layout()
        fig.savefig(OUT / "dram_bandwidth_vs_mix.png", dpi=120)
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot([r["achieved_GBps"] for r in lat], [r["avg"] * spec.tCK_ns for r in lat], marker="o", label="average")
        ax.plot([r["achieved_GBps"] for r in lat], [r["p99"] * spec.tCK_ns for r in lat], marker="s", label="p99")
        ax.set_xlabel("achieved bandwidth (GB/s), random addresses, 30% writes")
        ax.set_ylabel("read latency (ns)")
        ax.set_yscale("log")
        ax.set_title(f"{args.preset}: latency vs load")
        ax.legend()
        fig.tight_layout()
        fig.savefig(OUT / "dram_latency_vs_load.png", dpi=120)
    except ImportError:
        print("matplotlib not installed: no plots")
    (OUT / "bench_dram.json").write_text(json.dumps(report, indent=2))
    print(f"\nwrote {OUT / 'bench_dram.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
