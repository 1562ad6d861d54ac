#!/usr/bin/env python3
"""Where the 16-bit NVFP4 GEMV's warps wait, per SASS instruction (session 18, helper gemv22).

Reads the source page of an Nsight Compute report collected with `--section SourceCounters` (`ncu --import r.ncu-rep
--page source --csv --print-source sass`): the warp-stall samples of each instruction (a sample is charged to the
instruction the warp waits to issue). Prints the samples by phase (before the main loop, the loop, after it; the loop
is the outermost backward branch around the HMMAs), the loop's samples by the opcode of the waiting instruction, and
the loop's top instructions with their share (and any per-reason sample columns the export holds).

  python3 bench/probes/gemv16_stall_where.py src_sass.csv [--top 25]
(bench/probes/gemv16_stall_where.sh collects the report on a GPU machine.)
"""
from __future__ import annotations

import argparse
import csv
import re
from collections import Counter


def rows_of(path):
    with open(path, newline="") as f:
        lines = [ln for ln in f if ln.strip()]
    start = next(i for i, ln in enumerate(lines) if "Source" in ln and ("Address" in ln or "Sampl" in ln))
    reader = csv.DictReader(lines[start:])
    return list(reader), reader.fieldnames


def num(v):
    try:
        return float(str(v).replace(",", ""))
    except ValueError:
        return 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    rows, names = rows_of(args.csv)
    sample_cols = [c for c in names if "Sampl" in c]
    all_col = next((c for c in sample_cols if "All" in c), sample_cols[0] if sample_cols else None)
    reason_cols = [c for c in names if c not in sample_cols and re.search(r"stall|Stall", c)]
    exec_col = next((c for c in names if "Executed" in c and "Instructions" in c), None)
    addr_col = next((c for c in names if "Address" in c), None)
    print("# sample columns:", sample_cols, "| reason columns:", reason_cols[:12])
    ins = []
    for r in rows:
        text = (r.get("Source") or "").strip()
        addr = r.get(addr_col, "") if addr_col else ""
        a = int(addr, 16) if re.fullmatch(r"(0x)?[0-9a-fA-F]+", addr or "") else len(ins) * 16
        ins.append((a, text, num(r.get(all_col, 0)) if all_col else 0.0,
                    num(r.get(exec_col, 0)) if exec_col else 0.0, {c: num(r.get(c, 0)) for c in reason_cols}))
    ins.sort(key=lambda x: x[0])
    by_addr = {x[0]: i for i, x in enumerate(ins)}
    head, end = None, None
    for i, (a, text, *_rest) in enumerate(ins):
        m = re.search(r"\bBRA\b.*?(0x[0-9a-f]+)", text)
        if m and "@" in text.split("BRA")[0]:
            tgt = int(m.group(1), 16)
            if tgt < a and tgt in by_addr and any("HMMA" in y[1] for y in ins[by_addr[tgt]:i]):
                if head is None or by_addr[tgt] < head:
                    head, end = by_addr[tgt], i
                elif by_addr[tgt] == head:
                    end = max(end, i)
    total = sum(x[2] for x in ins) or 1.0
    if head is None:
        print("# no main loop found")
        return
    phases = {"before loop": ins[:head], "loop": ins[head:end + 1], "after loop": ins[end + 1:]}
    print(f"# stall samples {total:.0f}; loop {ins[head][0]:#x}..{ins[end][0]:#x}")
    for k, v in phases.items():
        s = sum(x[2] for x in v)
        print(f"{k:12s} {s / total * 100:5.1f}% of samples, {sum(x[3] for x in v):.0f} warp instructions executed")
    loop = phases["loop"]
    ls = sum(x[2] for x in loop) or 1.0
    hmma = max((x[3] for x in loop if "HMMA" in x[1]), default=0.0)
    hot = [x for x in loop if x[3] >= 0.4 * hmma]
    print(f"loop hot path (run >= 0.4x as often as an HMMA: the steps) {sum(x[2] for x in hot) / ls * 100:.1f}% of loop "
          f"samples; the rest (tile epilogue, cursor moves) {100 - sum(x[2] for x in hot) / ls * 100:.1f}%")
    ops = Counter()
    for x in loop:
        op = x[1].split()[1] if x[1].startswith("@") and len(x[1].split()) > 1 else (x[1].split() or ["?"])[0]
        ops[op.split(".")[0]] += x[2]
    print("loop samples by waiting opcode: " + ", ".join(f"{k} {v / ls * 100:.1f}%" for k, v in ops.most_common(14)))
    if reason_cols:
        rs = Counter()
        for x in loop:
            for c, v in x[4].items():
                rs[c] += v
        print("loop samples by reason: " + ", ".join(f"{k} {v / ls * 100:.1f}%" for k, v in rs.most_common(12)))
    print(f"top {args.top} loop instructions by samples (% of loop samples, executed, text):")
    for x in sorted(loop, key=lambda x: -x[2])[:args.top]:
        extra = ", ".join(f"{c.split('_')[-1]} {v:.0f}" for c, v in sorted(x[4].items(), key=lambda kv: -kv[1])[:3] if v)
        print(f"  {x[0]:#07x} {x[2] / ls * 100:5.1f}% {x[3]:9.0f}  {x[1][:70]}" + (f"  [{extra}]" if extra else ""))


if __name__ == "__main__":
    main()
