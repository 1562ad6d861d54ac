#!/usr/bin/env python3
"""Where the 16-bit GEMV kernels' main loop waits for its weight loads (session 19 helper gemv28, for
kForm16HeadRefill). For each gemv_kernel in `cuobjdump -sass` text: the main loop (the backward branch spanning the
most HMMAs), its instructions, HMMAs and weight loads (LDG.E.NA... words and LDG.E.U16.CONSTANT scales, one
scoreboard), the waits on that scoreboard inside it and, for each, how many instructions back (program order, wrapping
around the loop once) the youngest weight load it waits for was issued: the static age of the loads the wait covers
and how many HMMAs lie in between (HMMAs per step = loop HMMAs / kDepth: the loads' age in steps; the instruction
count includes the tile epilogue's code, run once per tile, the HMMA count does not).
"refills after the first wait" = the instructions from the loop's first wait to its first / last weight load.

  cuobjdump -sass file.cubin > file.sass && python3 bench/probes/sass_gemv16_head_waits.py file.sass [name-regex]
      [--ptxas file.ptxas]   (nvcc -Xptxas -v output of the same compile: registers and spill bytes per kernel)
"""
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sass_sb_waits import opcode, parse  # noqa: E402


def is_weight_load(text, d):
    return ("LDG.E.NA" in text or "LDG.E.U16.CONSTANT" in text) and d["wb"] != 7


def main_loop(ins):
    hmma = [a for a, t, _ in ins if "HMMA" in t]
    best = None
    for a, t, _ in ins:
        m = re.search(r"BRA (?:[^,]*, )?(0x[0-9a-f]+)", t)
        if not m or int(m.group(1), 16) >= a:
            continue
        lo = int(m.group(1), 16)
        n = sum(1 for h in hmma if lo <= h <= a)
        if n and (best is None or n > best[2]):
            best = (lo, a, n)
    return best


def analyse(ins):
    loop = main_loop(ins)
    if loop is None:
        return None
    lo, hi, nh = loop
    body = [x for x in ins if lo <= x[0] <= hi]
    sbs = {d["wb"] for _, t, d in body if is_weight_load(t, d)}
    loads = [k for k, (_, t, d) in enumerate(body) if is_weight_load(t, d)]
    waits = []
    for k, (a, t, d) in enumerate(body):
        hit = [s for s in sbs if (d["wait"] >> s) & 1]
        if not hit or "CALL" in t:
            continue
        age, age_hmma = None, 0
        for back in range(1, len(body) + 1):  # the youngest weight load before it, around the loop once
            j = (k - back) % len(body)
            if is_weight_load(body[j][1], body[j][2]) and body[j][2]["wb"] in hit:
                age = back
                break
            age_hmma += "HMMA" in body[j][1]
        waits.append((a, opcode(t), age, age_hmma))
    first = [k for k, (a, _, _) in enumerate(body) if waits and a == waits[0][0]]
    refill = (loads[0] - first[0], loads[-1] - first[0]) if first and loads and loads[0] > first[0] else None
    return dict(lo=lo, hi=hi, ins=len(body), hmma=nh, loads=len(loads), sbs=sorted(sbs), waits=waits, refill=refill)


def ptxas_registers(path):
    """{mangled kernel: (registers, spill store bytes, spill load bytes)} from `-Xptxas -v` output."""
    out, cur, spill = {}, None, (0, 0)
    for line in open(path):
        m = re.search(r"(?:Compiling entry function|Function properties for) '?(\w+)", line)
        if m:
            cur = m.group(1)
        m = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if m:
            spill = (int(m.group(1)), int(m.group(2)))
        m = re.search(r"Used (\d+) registers", line)
        if m and cur:
            out[cur] = (int(m.group(1)), *spill)
            spill = (0, 0)
    return out


def demangle(names):
    out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True).stdout.splitlines()
    return [re.sub(r".*gemv_kernel<(.*?)>\(.*", r"\1", d) for d in out]


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    argv = sys.argv[1:]
    regs = {}
    if "--ptxas" in argv:
        i = argv.index("--ptxas")
        regs = ptxas_registers(argv[i + 1])
        del argv[i:i + 2]
    pattern = argv[1] if len(argv) > 1 else "gemv_kernel"
    funcs = {n: i for n, i in parse(open(argv[0]).read()).items() if re.search(pattern, n)}
    print("template args (XDT, W4A4, NT, FAST, WHOLE, MINB, RING, SPLIT, TEAMS, FORM) | registers (spill st/ld) | "
          "loop ins / HMMA / weight loads | waits: addr op age(ins, HMMAs) | refills after the first wait (ins)")
    for name, args in zip(funcs, demangle(list(funcs))):
        r = analyse(funcs[name])
        if r is None:
            continue
        reg = regs.get(name)
        reg = f"{reg[0]} ({reg[1]}/{reg[2]})" if reg else "-"
        w = " ".join(f"{a:x}:{op}:{age},{ah}" for a, op, age, ah in r["waits"])
        print(f"{args} | {reg} | {r['ins']} / {r['hmma']} / {r['loads']} | {len(r['waits'])} wait(s): {w} | "
              f"{r['refill']}")


if __name__ == "__main__":
    main()
