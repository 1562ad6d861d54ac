#!/usr/bin/env python3
"""Static SASS counts of the W4A4 16-bit GEMV instances (bench/probes/sass_w4a4_instances.cu), per kernel: the x-staging
loop (the loop with the most MUFU: the quantization; its static size covers two units, both paths of every branch, so
read it with NOTES-w4a4x29.md's per-unit walk), the in-kernel amax loop (LDG and FMNMX per trip), and the main loop's
common path per HMMA (bench/probes/sass_step_count.py's walk).

  python3 bench/probes/sass_w4a4_count.py kernels.sass
"""
import re
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sass_step_count import loops, parse, walk  # noqa: E402

ARGS = re.compile(r"gemv_kernelILi(\d)ELb(\d)ELi(\d)ELb(\d)ELb(\d)ELi(\d)ELb(\d)ELb(\d)ELi(\d)ELi(\d+)E")


def backward_loops(ins):
    """(head index, end index) of every backward branch."""
    by_addr = {a[0]: i for i, a in enumerate(ins)}
    for i, x in enumerate(ins):
        if x[2] == "BRA" and not x[3].endswith("`"):
            try:
                tgt = int(x[3].split()[-1], 16)
            except ValueError:
                continue
            if tgt < x[0] and tgt in by_addr:
                yield by_addr[tgt], i


def main():
    for name, ins in parse(open(sys.argv[1]).read()).items():
        m = ARGS.search(name)
        if not m:
            continue
        nt, minb, split, teams, form = m.group(3), m.group(6), m.group(8), m.group(9), m.group(10)
        spans = [(h, e, Counter(x[2].split(".")[0] for x in ins[h:e + 1])) for h, e in backward_loops(ins)]
        stage = max(spans, key=lambda s: s[2]["MUFU"])
        amax = [s for s in spans if s[2]["LDG"] >= 1 and s[2]["FMNMX"] >= 8 and s[2]["MUFU"] == 0]
        line = (f"NT{nt} MINB{minb} SPLIT{split} TEAMS{teams} FORM{form}: {len(ins)} instructions; staging loop "
                f"{stage[1] - stage[0] + 1} (MUFU {stage[2]['MUFU']}, FCHK {stage[2]['FCHK']}, "
                f"FSETP {stage[2]['FSETP']})")
        if amax:
            a = amax[0]
            line += f"; amax loop {a[1] - a[0] + 1} per trip, {a[2]['LDG']} LDG"
        for head, end in loops(ins):
            path, _, _ = walk(ins, head, end)
            h = sum(1 for x in path if x[2].startswith("HMMA"))
            if h:
                line += f"; main loop {len(path) / h:.2f} per HMMA"
        print(line)


if __name__ == "__main__":
    main()
