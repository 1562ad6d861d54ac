"""What the size-sweep fits (bench/probes/gemv_size_sweep.py: time = fixed cost + bytes / streaming rate) predict
for the issue's Qwen3 layers on a card of another HBM read bandwidth: a model, not a measurement.

Each fit is K:M:fixed_us:rate_TBps. A layer of that K at that M is projected as
    t = fixed + bytes / min(rate, bw)
(the kernel cannot stream faster than the card, nor faster than it did where the fit was made; the fixed cost is
kept as measured), with bytes = call_bytes(N, K, M), the benchmark floor's numerator. Session 34's H100 projection
(bench/RESULTS.md "Session 34"; fits from the H200, bandwidth as the issue's H100):
    python bench/probes/fit_projection.py --bw 3.06 --fit 4096:1:2.97:4.537 --fit 4096:16:4.99:3.146 \\
        --fit 5120:1:3.33:4.368 --fit 5120:16:7.13:2.821
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nvfp4_gpu_targets import LAYERS, call_bytes  # noqa: E402


def parse_fit(text):
    """'K:M:fixed_us:rate_TBps' -> ((K, M), (fixed_us, rate in bytes/s))."""
    parts = text.split(":")
    if len(parts) != 4:
        raise ValueError(f"a fit is K:M:fixed_us:rate_TBps, got {text!r}")
    try:
        k, m, fixed, rate = int(parts[0]), int(parts[1]), float(parts[2]), float(parts[3])
    except ValueError:
        msg = f"a fit is K:M:fixed_us:rate_TBps (integers K, M; numbers fixed, rate), got {text!r}"
        raise ValueError(msg) from None
    if k <= 0 or m <= 0 or fixed < 0 or rate <= 0:
        raise ValueError(f"a fit needs K, M, rate > 0 and fixed >= 0, got {text!r}")
    return (k, m), (fixed, rate * 1e12)


def project(n, k, m, fixed_us, rate_Bps, bw_Bps):
    """(projected us, floor us) of one call."""
    b = call_bytes(n, k, m)
    return fixed_us + b / min(rate_Bps, bw_Bps) * 1e6, b / bw_Bps * 1e6


def projection_rows(fits, bw_Bps):
    """Per layer with a fit at M = 1: (model, layer, M = 1 us, its fraction of the floor, M = 16 us or None, M16/M1
    or None)."""
    rows = []
    for model, layers in LAYERS.items():
        for name, n, k in layers:
            if (k, 1) not in fits:
                continue
            t1, f1 = project(n, k, 1, *fits[(k, 1)], bw_Bps)
            t16 = project(n, k, 16, *fits[(k, 16)], bw_Bps)[0] if (k, 16) in fits else None
            rows.append((model, name, t1, f1 / t1, t16, None if t16 is None else t16 / t1))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bw", type=float, required=True, help="the card's HBM read bandwidth, TB/s")
    ap.add_argument("--fit", action="append", required=True, help="K:M:fixed_us:rate_TBps (repeat)")
    args = ap.parse_args(argv)
    if args.bw <= 0:
        ap.error(f"--bw must be > 0, got {args.bw}")
    try:
        fits = dict(parse_fit(f) for f in args.fit)
    except ValueError as e:
        ap.error(str(e))
    print(f"# projection at {args.bw:.2f} TB/s (a model: fixed cost + bytes / min(fitted rate, bandwidth))")
    print(f"{'layer':<12} {'M=1 us':>7} {'%floor':>6} {'M=16 us':>8} {'M16/M1':>6}")
    for model, name, t1, frac, t16, ratio in projection_rows(fits, args.bw * 1e12):
        m16 = f"{t16:>8.1f} {ratio:>6.2f}" if t16 is not None else f"{'-':>8} {'-':>6}"
        print(f"{model + ' ' + name:<12} {t1:>7.1f} {frac:>6.0%} {m16}")


if __name__ == "__main__":
    main()
