#!/usr/bin/env python3
"""Where the 16-bit NVFP4 GEMV kernel's executed instructions go, by phase (session 14, helper gemv17).

Reads the per-SASS-instruction CSV of Nsight Compute's source page (`ncu --import r.ncu-rep --page source --csv
--print-source sass`, a report collected with `--section SourceCounters`) and sums the executed warp instructions
(column "Instructions Executed", or the first whose name contains "Executed") by phase, in program order:
  prologue  everything before PREEXIT (zero rows, the first kDepth weight loads, griddepcontrol.wait);
  staging   PREEXIT up to the first CTA barrier (BAR.SYNC 0x0) that follows it (x staged into shared memory);
  setup     from there to the main loop's head;
  loop      the main loop (the outermost backward branch around the HMMAs): its HMMA, LDS, LDG, HMUL2 and the
            rest, and the tile epilogue inside it (STS / BAR / shared loads after the last HMMA of a step are
            not told apart: see 'epilogue-like' below);
  after     what follows the loop (the tail).
Then the loop's hot instructions (run at least 0.4x as often as an HMMA: the steps' own work) by full opcode per HMMA.
Also per KiB of FP4 when --kib is given (the call's packed weight bytes / 1024).

  python3 bench/probes/gemv16_phases.py source.csv [--kib 49152]
  python3 bench/probes/gemv16_phases.py --metrics m_form1.csv [m_form2.csv ...]   (ncu --csv --metrics logs:
      the second launch of each shape of bench/ncu_nvfp4_gemv.py, one row per file and launch)
(bench/probes/gemv16_phase_ncu.sh collects both.)
"""
from __future__ import annotations

import argparse
import csv
import re
import sys
from collections import Counter


def rows_of(path):
    with open(path, newline="") as f:
        lines = [ln for ln in f if ln.strip()]
    start = next(i for i, ln in enumerate(lines) if "Source" in ln and ("Address" in ln or "Executed" in ln))
    reader = csv.DictReader(lines[start:])
    return list(reader), reader.fieldnames


def column(names, *keys):
    for k in keys:
        for n in names:
            if n.strip().lower() == k.lower():
                return n
    for k in keys:
        for n in names:
            if k.lower() in n.lower():
                return n
    raise SystemExit(f"no column like {keys} in {names}")


def number(s):
    s = (s or "").replace(",", "").strip()
    try:
        return float(s)
    except ValueError:
        return 0.0


SHORT = {"gpu__time_duration.sum": "us", "smsp__inst_executed.sum": "warp instr"}


def metrics_table(paths):
    """One row per profiled launch (every second one: bench/ncu_nvfp4_gemv.py warms each shape up first)."""
    for path in paths:
        with open(path, newline="") as f:
            lines = [ln for ln in f if ln.startswith('"')]
        by_launch = {}
        for r in csv.DictReader(lines):
            key = (r["ID"], r["Kernel Name"][:40], r.get("Grid Size", ""))
            by_launch.setdefault(key, {})[r["Metric Name"]] = number(r["Metric Value"])
        launches = list(by_launch.items())[1::2]
        for (lid, kname, grid), m in launches:
            cells = []
            for name, v in m.items():
                short = SHORT.get(name) or re.sub(r"smsp__average_warps_issue_stalled_(\w+)_per_issue_active.ratio",
                                                 r"\1", name)
                v = v / 1e3 if name == "gpu__time_duration.sum" else v
                cells.append(f"{short} {v:,.2f}" if v < 1e5 else f"{short} {v:,.0f}")
            print(f"{path.split('/')[-1]:18s} launch {lid:>3s} grid {grid:>6s}: " + ", ".join(cells))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv", nargs="+")
    ap.add_argument("--kib", type=float, default=0.0)
    ap.add_argument("--metrics", action="store_true")
    args = ap.parse_args()
    if args.metrics:
        return metrics_table(args.csv)
    rows, names = rows_of(args.csv[0])
    src = column(names, "Source")
    exe = column(names, "Instructions Executed", "Executed")
    addr_col = next((n for n in names if n.strip().lower() in ("address", "addr")), None)
    ins = []
    for i, r in enumerate(rows):
        text = (r[src] or "").strip()
        if not text:
            continue
        addr = int(r[addr_col], 16) if addr_col and r[addr_col].strip().startswith("0x") else i * 16
        body = re.sub(r"^@!?U?P\w+\s+", "", text)
        op = body.split()[0] if body else ""
        ins.append((addr, op, body, number(r[exe])))
    total = sum(x[3] for x in ins)
    idx = {a: i for i, (a, *_rest) in enumerate(ins)}
    pre = next((i for i, x in enumerate(ins) if x[1] == "PREEXIT"), 0)
    bar = next((i for i, x in enumerate(ins) if i > pre and x[1].startswith("BAR") and "0x0" in x[2]), pre)
    head, end = None, None
    for i, (a, op, body, _) in enumerate(ins):
        if op == "BRA":
            m = re.search(r"(0x[0-9a-f]+)", body)
            if m and int(m.group(1), 16) < a and int(m.group(1), 16) in idx:
                h = idx[int(m.group(1), 16)]
                if any(x[1].startswith("HMMA") for x in ins[h:i]) and (head is None or h <= head):
                    head, end = h, max(end or i, i)
    if head is None:
        head = end = bar
    phases = [("prologue", 0, pre), ("staging", pre, bar + 1), ("setup", bar + 1, head), ("loop", head, end + 1),
              ("after", end + 1, len(ins))]
    per = f" / KiB of FP4 ({args.kib:.0f} KiB)" if args.kib else ""
    print(f"executed warp instructions: {total:,.0f}{per}: {total / args.kib:.1f}" if args.kib else
          f"executed warp instructions: {total:,.0f}")
    for name, a, b in phases:
        s = sum(x[3] for x in ins[a:b])
        extra = f"  ({s / args.kib:.1f} per KiB)" if args.kib else ""
        print(f"  {name:9s} {s:14,.0f}  {100 * s / max(total, 1):5.1f}%  static {b - a:5d}{extra}")
    loop = ins[head:end + 1]
    by_op = Counter()
    for _, op, _, n in loop:
        by_op[op.split(".")[0] if not op.startswith(("LDS", "LDG", "STS", "IMAD")) else op.split(".")[0] + (
            "." + op.split(".")[1] if op.startswith("IMAD") and "." in op else "")] += n
    hmma = by_op.get("HMMA", 0)
    print("  loop by opcode" + (" (per HMMA)" if hmma else "") + ": " + ", ".join(
        f"{k} {v / hmma:.2f}" if hmma else f"{k} {v:,.0f}" for k, v in by_op.most_common(24)))
    # the loop's instructions executed less often than its HMMAs' (epilogue, tile change): their share
    hm = max((x[3] for x in loop if x[1].startswith("HMMA")), default=0)
    rare = sum(x[3] for x in loop if x[3] < 0.5 * hm)
    print(f"  loop instructions run < half as often as an HMMA (tile epilogue, cursor moves): {rare:,.0f} "
          f"({100 * rare / max(total, 1):.1f}% of all)")
    # The steps' own instructions: those run at least 0.4x as often as the busiest HMMA, by full opcode, per HMMA.
    hot = [x for x in loop if x[3] >= 0.4 * hm]
    hot_ops = Counter()
    for _, op, _, n in hot:
        hot_ops[op] += n
    if hmma:
        print(f"  hot loop instructions (run >= 0.4x as often as an HMMA): {sum(hot_ops.values()) / hmma:.2f} "
              "per HMMA: " + ", ".join(f"{k} {v / hmma:.3f}" for k, v in hot_ops.most_common(32)))


if __name__ == "__main__":
    sys.exit(main())
