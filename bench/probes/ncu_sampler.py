"""Table of an ncu CSV log of `sampler_batch ncu` (bench/probes/sampler_batch.cu): per kernel of the second step of
each (B, grouping) case, its time, DRAM bytes read, L2 hit rate, achieved occupancy and SM throughput.
Usage: python3 bench/probes/ncu_sampler.py /tmp/ncu.csv [label [B:group]]   (ncu run with --csv --print-units base
--log-file); label replaces the group names in the table (e.g. MAIN for the baseline build), B:group prints only that
case (e.g. 64:def)."""
import csv
import re
import sys
from collections import OrderedDict

CASES = [(1, "mg"), (8, "mg"), (64, "mg"), (64, "def")]  # the order of run_ncu
METRICS = {"gpu__time_duration.sum": "us", "dram__bytes_read.sum": "MB", "lts__t_sector_hit_rate.pct": "L2hit%",
           "sm__warps_active.avg.pct_of_peak_sustained_active": "occ%",
           "sm__throughput.avg.pct_of_peak_sustained_elapsed": "sm%",
           "sm__inst_issued.avg.pct_of_peak_sustained_active": "issue%", "smsp__inst_executed.sum": "Minst"}


def number(text):
    return float(text.replace(",", "")) if text not in ("", "n/a") else float("nan")


def main(path, label=None, only=None):
    with open(path) as f:
        lines = [line for line in f if line.startswith('"')]
    kernels = OrderedDict()  # ID -> (name, grid, {metric: value})
    reader = csv.DictReader(lines)
    name_key = next((k for k in reader.fieldnames if k in ("Kernel Name", "Function Name", "Name")), None)
    if name_key is None or "ID" not in reader.fieldnames:
        print("ncu CSV columns not understood:", reader.fieldnames)
        return
    for row in reader:
        found = re.search(r"(stats_kernel|topp_bins_kernel|sample_kernel)", row[name_key])  # mangled or not
        entry = kernels.setdefault(row["ID"], (found.group(1) if found else row[name_key][:17],
                                               row.get("Grid Size", ""), {}))
        entry[2][row["Metric Name"]] = number(row["Metric Value"])
    ids = list(kernels)
    if only is None:
        print(f"ncu: {len(ids)} kernels profiled (--cache-control none --clock-control none); second step of each case")
        print(f"{'B':>3} {'group':5} {'kernel':17} {'grid':>10} " + " ".join(f"{v:>7}" for v in METRICS.values()))
    at = 0
    for b, g in CASES:
        step = []  # the kernels of one step: stats, [bins], sample
        for _ in range(2):
            names = []
            while at < len(ids):
                names.append(ids[at])
                at += 1
                if kernels[names[-1]][0].startswith("sample"):
                    break
            step = names
        if only is not None and only != f"{b}:{g}":
            continue
        g = label or g
        total = 0.0
        for i in step:
            name, grid, m = kernels[i]
            us = m.get("gpu__time_duration.sum", float("nan")) / 1e3
            total += us
            vals = ([us, m.get("dram__bytes_read.sum", float("nan")) / 1e6]
                    + [m.get(k, float("nan")) for k in list(METRICS)[2:-1]]
                    + [m.get("smsp__inst_executed.sum", float("nan")) / 1e6])
            print(f"{b:>3} {g:5} {name:17} {grid.replace(' ', ''):>10} " + " ".join(f"{v:7.2f}" for v in vals))
        print(f"{b:>3} {g:5} {'sum of kernels':17} {'':>10} {total:7.2f}")


if __name__ == "__main__":
    main(sys.argv[1], *sys.argv[2:4])
