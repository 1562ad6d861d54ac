"""Medians over runs of bench/probes/eager_host_time.py outputs, for two builds timed in turn (A/B).

Host time on a shared GPU host moves by 10-15 us between runs, so a comparison of two wheels alternates them (old,
new, old, new, ...) and reads the median of each column over the runs, and the median over the runs of public /
matmul (torch.matmul timed in the same run, the yardstick that shares each run's noise).

  python3 bench/probes/host_time_median.py --old host_old1.txt host_old2.txt ... --new host_new1.txt ...
"""
from __future__ import annotations

import argparse
import statistics


def read_rows(path):
    """{(row, act): (public, backend, matmul)} of one eager_host_time.py output."""
    rows = {}
    for line in open(path):
        f = line.split()
        if len(f) != 8 or line.startswith("#") or f[0] == "row":
            continue
        rows[(f[0], f[1])] = (float(f[2]), float(f[3]), float(f[7]))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", nargs="+", required=True)
    ap.add_argument("--new", nargs="+", required=True)
    args = ap.parse_args()
    runs = {side: [read_rows(p) for p in paths] for side, paths in (("old", args.old), ("new", args.new))}
    print(f"{'row':12s} {'act':5s} | {'public old':>10s} {'new':>5s} | {'backend old':>11s} {'new':>5s} | "
          f"{'matmul old':>10s} {'new':>4s} | public/matmul old  new")
    for key in runs["old"][0]:
        med = {side: [statistics.median(r[key][i] for r in runs[side]) for i in range(3)] for side in runs}
        ratio = {side: statistics.median(r[key][0] / r[key][2] for r in runs[side]) for side in runs}
        o, n = med["old"], med["new"]
        print(f"{key[0]:12s} {key[1]:5s} | {o[0]:10.1f} {n[0]:5.1f} | {o[1]:11.1f} {n[1]:5.1f} | {o[2]:10.1f} "
              f"{n[2]:4.1f} | {ratio['old']:19.2f} {ratio['new']:4.2f}")


if __name__ == "__main__":
    main()
