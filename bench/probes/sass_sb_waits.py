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

Any kernel's loops (session 13, the sampler's passes): `--loads REGEX` (the loads to follow, e.g. 'LDG.*CONSTANT' for
__ldg streams) lists every loop (backward branch) holding such loads, and for each wait in it on their scoreboard how
many of the loop's loads on that scoreboard were issued earlier in the same iteration (program order from the loop's
head) and how many instructions after the last of them (static, program order): "w@addr:OP<-n+gap" (the waits
with n = 0 only counted). A small gap at the first use of a chunk means the use also waits for the n loads just
issued (for a later chunk): no real depth; a wait a whole chunk's work after the loads (a large gap) is the phased
form. `--straight` lists the same for the whole kernel in program order (n = loads on the
scoreboard since its previous wait), for kernels without loops over their loads.
  python3 bench/probes/sass_sb_waits.py file.sass 'sample_kernelILi0' --loads 'LDG.*CONSTANT' [--straight]
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


def waits_on(d, sbs):
    return sorted(s for s in sbs if (d["wait"] >> s) & 1)


def loop_waits(ins, loads):
    """[(lo, hi, loads, sbs, [(addr, opcode, loads of a waited scoreboard issued before it in the iteration)])]"""
    is_load = [bool(re.search(loads, t)) and d["wb"] != 7 for _, t, d in ins]
    out = []
    for a, t, _ in ins:
        m = re.search(r"BRA (?:[^,]*, )?(0x[0-9a-f]+)", t)
        if not m or int(m.group(1), 16) >= a:
            continue
        lo, hi = int(m.group(1), 16), a
        body = [(k, x) for k, x in enumerate(ins) if lo <= x[0] <= hi]
        sbs = {x[2]["wb"] for k, x in body if is_load[k]}
        if not sbs:
            continue
        issued, last, sites = {}, {}, []
        for k, (addr, text, d) in body:
            hit = waits_on(d, sbs)
            if hit and "CALL" not in text:
                n = sum(issued.get(s, 0) for s in hit)
                sites.append((addr, opcode(text), n, (addr - max(last[s] for s in hit if s in last)) // 16 if n else 0))
            if is_load[k]:
                issued[d["wb"]] = issued.get(d["wb"], 0) + 1
                last[d["wb"]] = addr
        out.append((lo, hi, sum(1 for k, _ in body if is_load[k]), sorted(sbs), sites))
    return out


def straight_waits(ins, loads):
    """[(addr, opcode, loads on the waited scoreboards since their previous wait)] in program order."""
    pending, sites = {}, []
    for addr, text, d in ins:
        hit = waits_on(d, pending)
        if hit and "CALL" not in text:
            sites.append((addr, opcode(text), sum(pending[s] for s in hit)))
            for s in hit:
                pending[s] = 0
        if re.search(loads, text) and d["wb"] != 7:
            pending[d["wb"]] = pending.get(d["wb"], 0) + 1
    return [s for s in sites if s[2] > 0]


def short_name(name):
    m = re.match(r"_ZN12reset_native\d+\w+?\d+cuda_detail\d+(\w+?)I(.*?)EEvNS1_", name)
    return f"{m.group(1)}<{m.group(2)}>" if m else name


def main_loads(argv):
    path, pattern = argv[0], argv[1] if len(argv) > 1 and not argv[1].startswith("--") else "."
    loads = argv[argv.index("--loads") + 1]
    funcs = parse(open(path).read())
    for name, ins in funcs.items():
        if not re.search(pattern, name):
            continue
        if "--straight" in argv:
            sites = straight_waits(ins, loads)
            print(f"{short_name(name)}: " + " ".join(f"w@{a:x}:{op}<-{n}" for a, op, n in sites))
            continue
        for lo, hi, n, sbs, sites in loop_waits(ins, loads):
            after = [x for x in sites if x[2] > 0]
            print(f"{short_name(name)}: loop {lo:x}-{hi:x}, {n} loads on SB{sbs}, {len(sites)} wait(s), "
                  f"{len(after)} after loads of the iteration: "
                  + " ".join(f"w@{a:x}:{op}<-{k}+{g}" for a, op, k, g in after))


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    if "--loads" in sys.argv:
        main_loads(sys.argv[1:])
        return
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
