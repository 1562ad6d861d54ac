#!/usr/bin/env python3
"""Where each block-diagonal GEMV instance waits for its weight loads (session 12).

Reads `cuobjdump -sass` text (the encodings included), decodes each instruction's control bits (sm_70+ layout: bits
105-108 stall, 109 yield, 110-112 write barrier, 113-115 read barrier, 116-121 wait mask, 122-125 reuse) and, for
each kernel with HMMA, finds the main loop (backward branches around HMMA) and the scoreboard(s) its streaming
weight loads (LDG.E.NA / LDG.E.EF) set. A wait on that scoreboard waits for every load it counts; the instructions
in the loop that wait on it are listed ("CALL" slow paths left out). One wait per loop: at the head of the kDepth
unrolled steps (every step's slot in flight until then); kDepth waits: before each step's first use of its words,
which also waits for the refills the steps before have just issued. cp.async stages (LDGSTS) are counted as weight
loads and their waits listed as DEPBAR.LE (wait until at most N groups are in flight).

  cuobjdump -sass file.cubin > file.sass && python3 bench/probes/sass_sb_waits.py file.sass [name-regex]
(bash bench/probes/sass_sb_waits.sh compiles the instances of bench/probes/sass_bd_instances.cu and runs it.)
"""
import re
import sys

INS = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;\s*/\* (0x[0-9a-f]{16}) \*/")
HI = re.compile(r"^\s*/\* (0x[0-9a-f]{16}) \*/")


def parse(text):
    """{kernel: [(address, text, control dict)]}"""
    funcs, cur, pend = {}, None, None
    for line in text.splitlines():
        m = re.search(r"Function : (\S+)", line)
        if m:
            cur = funcs.setdefault(m.group(1), [])
            continue
        m = INS.search(line)
        if m:
            pend = (int(m.group(1), 16), m.group(2))
            continue
        m = HI.match(line)
        if m and pend is not None and cur is not None:
            c = int(m.group(1), 16) >> 41
            cur.append((pend[0], pend[1], dict(stall=c & 15, yld=(c >> 4) & 1, wb=(c >> 5) & 7, rb=(c >> 8) & 7,
                                               wait=(c >> 11) & 63, reuse=(c >> 17) & 15)))
            pend = None
    return funcs


def opcode(text):
    parts = text.split()
    return parts[1] if parts[0].startswith("@") else parts[0]


def main_loop_waits(ins):
    hmma = [a for a, t, _ in ins if "HMMA" in t]
    if not hmma:
        return None
    sbs = {d["wb"] for _, t, d in ins if "LDG.E.NA" in t or "LDG.E.EF" in t}
    loops = []
    for a, t, _ in ins:
        m = re.search(r"BRA (0x[0-9a-f]+)", t)
        if m and int(m.group(1), 16) < a and any(int(m.group(1), 16) <= h < a for h in hmma):
            loops.append((int(m.group(1), 16), a))
    if not loops:
        return None
    lo, hi = min(lp[0] for lp in loops), max(lp[1] for lp in loops)
    loads = sum(1 for a, t, _ in ins if lo <= a <= hi and ("LDG.E.NA" in t or "LDGSTS" in t))
    waits = [(a, opcode(t)) for a, t, d in ins
             if lo <= a <= hi and any((d["wait"] >> s) & 1 for s in sbs) and "CALL" not in t]
    waits += [(a, t.replace(" ", "")) for a, t, _ in ins if lo <= a <= hi and "DEPBAR.LE" in t]  # cp.async waits
    return sorted(sbs), lo, hi, loads, waits


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    pattern = sys.argv[2] if len(sys.argv) > 2 else "gemv_bd_kernel"
    funcs = parse(open(sys.argv[1]).read())
    for name, ins in funcs.items():
        if not re.search(pattern, name):
            continue
        r = main_loop_waits(ins)
        if r is None:
            continue
        sbs, lo, hi, loads, waits = r
        short = re.sub(r"^_ZN12reset_native10nvfp4_cuda6detail\d+", "", name).split("EEvNS1_")[0]
        print(f"{short}: loop {lo:x}-{hi:x}, {loads} weight loads, {len(waits)} wait(s) on SB{sbs}: "
              + " ".join(f"{a:x}:{op}" for a, op in waits))


if __name__ == "__main__":
    main()
