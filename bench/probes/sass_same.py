#!/usr/bin/env python3
"""Per-kernel comparison of two builds of one translation unit (bench/probes/sass_same.sh): each side is a prefix P with
P.sass (cuobjdump -sass) and P.ptxas.txt (ptxas -v). Prints the kernels whose SASS (addresses, encodings and comments
stripped) or registers / spills differ, with their instruction counts, then the totals.

  python3 bench/probes/sass_same.py BASE_PREFIX TREE_PREFIX
"""
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sass_gemv16_head_waits import ptxas_registers  # noqa: E402  {kernel: (registers, spill stores, spill loads)}


def sass_by_kernel(path):
    """{kernel: [instruction text]} of a cuobjdump -sass dump."""
    out, name = {}, None
    for line in open(path):
        m = re.match(r"\s*Function : (\S+)", line)
        if m:
            name = m.group(1)
            out[name] = []
        elif name is not None:
            text = re.sub(r"/\*.*?\*/", "", line).strip()
            if text and not text.startswith("."):
                out[name].append(text)
    return out


def main(base, tree):
    a, b = sass_by_kernel(base + ".sass"), sass_by_kernel(tree + ".sass")
    ra, rb = ptxas_registers(base + ".ptxas.txt"), ptxas_registers(tree + ".ptxas.txt")
    for k in sorted(set(a) ^ set(b)):
        print(f"only in {'base' if k in a else 'tree'}: {k}")
    same = 0
    for k in sorted(set(a) & set(b)):
        if a[k] == b[k] and ra.get(k) == rb.get(k):
            same += 1
        else:
            print(f"differs: {k}: {len(a[k])} -> {len(b[k])} instructions, {ra.get(k)} -> {rb.get(k)}")
    spills = sum(1 for _, stores, loads in rb.values() if stores or loads)
    print(f"{same} of {len(a)} kernels identical; tree: {spills} functions with spills")


if __name__ == "__main__":
    main(*sys.argv[1:3])
