#!/usr/bin/env python3
"""Where the 16-bit NVFP4 GEMV's warps wait, per SASS instruction (session 18, helper gemv22).

Reads the source page of an Nsight Compute report collected with `--section SourceCounters` (`ncu --import r.ncu-rep
--page source --csv --print-source sass`): each instruction's warp-stall samples by reason (a sample is charged to
the instruction the warp waits to issue; "selected" = it issued). Splits the kernel into phases: before the main loop
(prologue, x staging), the loop's steps (instructions run at least 0.4x as often as an HMMA) and the rest of the loop
(the tile epilogue: partial sums through shared memory, the team barrier, the outputs; the cursor moves), and prints
per phase its share of the samples, its executed instructions per HMMA, samples per executed instruction (how slowly
its instructions go) and its stall reasons; then each loop phase by the opcode of the waiting instruction, and the
loop's top instructions.

  python3 bench/probes/gemv16_stall_where.py src_sass.csv [--top 12] [--blocks 0,2]
(bench/probes/gemv16_stall_where.sh collects the report on a GPU machine.)
"""
from __future__ import annotations

import argparse
import csv
import re
from collections import Counter, defaultdict


def kernel_blocks(path):
    """[(kernel name, rows, field names)] of the export, one block per profiled launch (a '"Kernel Name"' line
    before each)."""
    with open(path, newline="") as f:
        lines = [ln for ln in f if ln.strip()]
    starts = [i for i, ln in enumerate(lines) if ln.startswith('"Kernel Name"')] or [0]
    out = []
    for b, s in enumerate(starts):
        block = lines[s:starts[b + 1] if b + 1 < len(starts) else len(lines)]
        fields = next(csv.reader([block[0]])) if block[0].startswith('"Kernel Name"') else []
        name = next((f for f in fields[1:] if f), "?")
        head = next((i for i, ln in enumerate(block) if "Source" in ln and ("Address" in ln or "Sampl" in ln)), None)
        if head is None:
            continue
        reader = csv.DictReader(block[head:])
        out.append((name, list(reader), reader.fieldnames))
    return out


def num(v):
    try:
        return float(str(v).replace(",", ""))
    except ValueError:
        return 0.0


def opcode(text):
    parts = text.split()
    if not parts:
        return "?"
    return (parts[1] if parts[0].startswith("@") and len(parts) > 1 else parts[0]).split(".")[0]


def main_loop(ins):
    """(head, end) indices of the outermost backward branch around HMMAs."""
    by_addr = {x["addr"]: i for i, x in enumerate(ins)}
    head = end = None
    for i, x in enumerate(ins):
        m = re.search(r"\bBRA\b.*?(0x[0-9a-f]+)", x["text"])
        if not (m and "@" in x["text"].split("BRA")[0]):
            continue
        tgt = int(m.group(1), 16)
        if tgt < x["addr"] and tgt in by_addr and any("HMMA" in y["text"] for y in ins[by_addr[tgt]:i]):
            if head is None or by_addr[tgt] < head:
                head, end = by_addr[tgt], i
            elif by_addr[tgt] == head:
                end = max(end, i)
    return head, end


def reasons_line(xs, n=6):
    c = Counter()
    for x in xs:
        c.update(x["why"])
    t = sum(c.values()) or 1.0
    return ", ".join(f"{k} {v / t * 100:.0f}" for k, v in c.most_common(n))


def by_opcode(xs, n=8):
    c, why = Counter(), defaultdict(Counter)
    for x in xs:
        c[opcode(x["text"])] += x["s"]
        why[opcode(x["text"])].update(x["why"])
    t = sum(c.values()) or 1.0
    out = []
    for op, v in c.most_common(n):
        top = ", ".join(f"{k} {w / v * 100:.0f}" for k, w in why[op].most_common(2)) if v else ""
        out.append(f"{op} {v / t * 100:.0f}% ({top})")
    return "; ".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--blocks", default="all", help="which profiled launches: 'all' or indices, e.g. 0,2")
    args = ap.parse_args()
    blocks = kernel_blocks(args.csv)
    pick = range(len(blocks)) if args.blocks == "all" else [int(v) for v in args.blocks.split(",")]
    for b in pick:
        name, rows, names = blocks[b]
        m = re.search(r"gemv_kernel<([^>]*)>", name)
        print(f"== launch {b}: {'gemv_kernel<' + m.group(1) + '>' if m else name[:100]}")
        report(rows, names, args.top)


def report(rows, names, top_n):
    reason_cols = [c for c in names if c.startswith("stall_") and "Not Issued" not in c]
    all_col = next((c for c in names if "Sampl" in c and "All" in c), None)
    exec_col = next((c for c in names if c.strip() == "Instructions Executed"), None) or next(
        (c for c in names if "Executed" in c), None)
    addr_col = next((c for c in names if "Address" in c), None)
    ins = []
    for r in rows:
        addr = (r.get(addr_col) or "").strip() if addr_col else ""
        if not re.fullmatch(r"(0x)?[0-9a-fA-F]+", addr):
            continue
        why = {c[len("stall_"):]: num(r.get(c)) for c in reason_cols}
        s = sum(why.values()) if reason_cols else num(r.get(all_col))
        ins.append(dict(addr=int(addr, 16), text=(r.get("Source") or "").strip(), s=s, why=why,
                        ex=num(r.get(exec_col)) if exec_col else 0.0))
    ins.sort(key=lambda x: x["addr"])
    head, end = main_loop(ins)
    if head is None:
        print("# no main loop found")
        return
    loop = ins[head:end + 1]
    hmma_max = max((x["ex"] for x in loop if "HMMA" in x["text"]), default=0.0)
    n_hmma = sum(x["ex"] for x in loop if "HMMA" in x["text"]) or 1.0
    phases = [("before loop", ins[:head]), ("loop steps", [x for x in loop if x["ex"] >= 0.4 * hmma_max]),
              ("tile epilogue", [x for x in loop if x["ex"] < 0.4 * hmma_max]), ("after loop", ins[end + 1:])]
    total = sum(x["s"] for x in ins) or 1.0
    print(f"# {len(ins)} instructions, {total:.0f} stall samples, loop {ins[head]['addr']:#x}..{ins[end]['addr']:#x}; "
          f"reasons in % of the phase's samples ('selected' = issued)")
    print(f"top {top_n} loop instructions by samples (% of all samples, executed, text):")
    for x in sorted(loop, key=lambda x: -x["s"])[:top_n]:
        print(f"  {x['s'] / total * 100:4.1f}% {x['ex']:9.0f}  {x['text'][:60]:60s} [{reasons_line([x], 2)}]")
    for name, xs in phases[1:3]:
        print(f"{name} by waiting opcode: {by_opcode(xs)}")
    print(f"{'phase':14s} {'samples':>8s} {'instr/HMMA':>10s} {'samp/kinstr':>11s}  reasons")
    for name, xs in phases:
        s = sum(x["s"] for x in xs)
        e = sum(x["ex"] for x in xs)
        print(f"{name:14s} {s / total * 100:7.1f}% {e / n_hmma:10.2f} {s / max(e, 1.0) * 1000:11.2f}  {reasons_line(xs)}")


if __name__ == "__main__":
    main()
