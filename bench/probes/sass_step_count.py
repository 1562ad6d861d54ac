#!/usr/bin/env python3
"""Static instruction count of one weight step of the block-diagonal NVFP4 GEMV (gemv_bd_kernel).

Reads `cuobjdump -sass` text, finds each kernel's main loops (backward branches around HMMA), walks their common
path (the weight refill is taken, the row-pointer recompute and the tile epilogue are skipped) and prints
the instructions per step (the loop body holds kDepth unrolled steps) by opcode and by issue pipe, plus the
size of the skipped row-pointer recompute (run once every nchunks steps).

Heuristic per forward conditional branch over the fall-through region [pc+16, target): a region with HMMA or
a streaming weight load (LDG.E.NA) is the common path; anything else (the tile epilogue, the weight cursor's
move to the next tile) is skipped: those run once every nchunks steps.
"""
import re
import sys
from collections import Counter

LINE = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;")


def parse(text):
    funcs, cur = {}, None
    for ln in text.splitlines():
        m = re.search(r"Function : (\S+)", ln)
        if m:
            cur = funcs.setdefault(m.group(1), [])
            continue
        m = LINE.search(ln)
        if m and cur is not None:
            addr = int(m.group(1), 16)
            body = m.group(2).strip()
            pred = None
            if body.startswith("@"):
                pred, body = body.split(None, 1)
            op = body.split()[0]
            cur.append((addr, pred, op, body))
    return funcs


def pipe(op):
    base = op.split(".")[0]
    if base in ("HMMA",):
        return "tensor"
    if base in ("LDS", "LDG", "STS", "STG", "LDSM", "SHFL", "LD", "ST", "ATOMS", "RED"):
        return "mem"
    if base in ("IMAD", "FFMA", "FMUL", "FADD", "HFMA2", "HMUL2", "HADD2", "FMNMX", "IDP", "IMUL"):
        return "fma"
    if base.startswith("U") or base in ("S2UR", "R2UR", "PLOP3", "ULDC"):
        return "uniform/pred"
    if base in ("BRA", "BSSY", "BSYNC", "EXIT", "NOP", "BAR", "WARPSYNC"):
        return "control"
    if base in ("F2FP", "I2F", "F2F", "F2I", "MUFU"):
        return "conv"
    return "alu"


def fallthrough_region(ins, idx, target):
    out = []
    j = idx + 1
    while j < len(ins) and ins[j][0] < target:
        out.append(ins[j])
        j += 1
    return out


def classify(region):
    ops = [r[2] for r in region]
    if any(o.startswith("HMMA") for o in ops) or any(o.startswith("LDG.E.NA") for o in ops):
        return "follow"
    return "skip"


def loops(ins):
    """(head, end) index pairs of the loops whose body holds HMMA: the main loop(s), outermost per head."""
    by_addr = {a[0]: i for i, a in enumerate(ins)}
    found = {}
    for i, x in enumerate(ins):
        if x[2] == "BRA" and x[1] and int(x[3].split()[-1], 16) < x[0]:
            head = by_addr[int(x[3].split()[-1], 16)]
            if any(y[2].startswith("HMMA") for y in ins[head:i]):
                found[head] = max(found.get(head, i), i)
    # drop loops nested inside another HMMA loop (keep the outermost)
    spans = sorted(found.items())
    return [(h, e) for h, e in spans if not any(h2 < h and e <= e2 for h2, e2 in spans)]


def walk(ins, head, loop_end):
    by_addr = {a[0]: i for i, a in enumerate(ins)}
    path, skipped, notes = [], [], []
    i = head
    while i != loop_end:
        a, pred, op, body = ins[i]
        path.append(ins[i])
        if op == "BRA":
            tgt = int(body.split()[-1], 16)
            if pred is None:
                i = by_addr[tgt]
                continue
            if tgt > a:
                region = fallthrough_region(ins, i, tgt)
                how = classify(region)
                if how == "skip":
                    skipped.append(region)
                    i = by_addr[tgt]
                    continue
                if how == "follow?":
                    notes.append(f"followed ambiguous branch at {a:#x} ({len(region)} instructions)")
        i += 1
    path.append(ins[loop_end])
    return path, skipped, notes


def main():
    text = open(sys.argv[1]).read()
    pattern = sys.argv[2] if len(sys.argv) > 2 else "gemv_bd_kernel"
    for name, ins in parse(text).items():
        if pattern not in name:
            continue
        print(name)
        for n_loop, (head, end) in enumerate(loops(ins)):
            path, skipped, notes = walk(ins, head, end)
            depth = max(sum(1 for x in path if x[2].startswith("HMMA")) // 8, 1)  # TOK <= 2: 8 HMMA per step
            by_pipe = Counter(pipe(x[2]) for x in path)
            by_op = Counter(x[2] if x[2].startswith(("IMAD", "LDS", "LDG")) else x[2].split(".")[0] for x in path)
            rows = [r for r in skipped if not any(x[2].startswith(("SHFL", "BAR")) for x in r)]
            print(f"  loop {n_loop} at {ins[head][0]:#x}: {depth} steps per body; per step {len(path) / depth:.1f} "
                  f"instructions ({', '.join(f'{k} {v / depth:.1f}' for k, v in sorted(by_pipe.items()))})")
            print("    by opcode per step: " + ", ".join(f"{k} {v / depth:.2f}" for k, v in by_op.most_common()))
            if rows:
                print(f"    skipped besides the tile epilogue (tile change of the weight cursor, every nchunks steps): "
                      f"{sorted(set(len(r) for r in rows))} instructions")
            for n in notes:
                print("    note: " + n)


if __name__ == "__main__":
    main()
