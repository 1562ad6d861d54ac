"""Which byte layouts of NVFP4 weights would make the FP4 -> fp16 / bf16 pair decode shorter (session 33)?

fp4_word (cuda/nvfp4/fp4_fragments.cuh) turns a 32-bit word of 8 E2M1 codes into 4 16-bit pairs (nibbles j, j + 4)
in 11 instructions: each pair wants its sign 6 (fp16) or 9 (bf16) bits above its 3 magnitude bits, the canonical
nibble has it 1 above. A weight layout permuted once at load time could place the bits better. This searches every
permutation of the 8 bits of a byte (the same for every byte, so pairs (j, j + 4) keep their shift) and programs of
the form "at most one select of two shifted copies of w (the first shifted by -8..8 bits, the second by up to 16),
then one shift (or none) and one mask per pair", and prints the cheapest instruction count per format. Session 33's
result: fp16 9 (layout: low nibble's magnitude in bits 0-2, high nibble's in 3-5, signs in bits 6 and 7), bf16 no
program of this form at all. bench/RESULTS.md "Session 33" times what the 9-instruction fp16 decode would buy.

  python3 bench/probes/fp4_decode_layout_search.py [--layout 0,1,2,6,3,4,5,7]   (all 8! layouts: ~20 min on 2 cores)
"""
from __future__ import annotations

import argparse
import itertools
import multiprocessing

FIELDS = ("m0", "m1", "m2", "s")
TARGET = {"fp16": {"m0": 9, "m1": 10, "m2": 11, "s": 15}, "bf16": {"m0": 6, "m1": 7, "m2": 8, "s": 15}}


def word_labels(layout):
    """Which (nibble, field) each bit of a word holds; layout[b] = new bit of canonical byte bit b."""
    lab = [None] * 32
    for byte in range(4):
        for b in range(8):
            lab[8 * byte + layout[b]] = (2 * byte + b // 4, FIELDS[b % 4])
    return lab


def shifted(lab, k):
    """Labels of (w << k) (k < 0: w >> -k), zero fill."""
    return [lab[p - k] if 0 <= p - k < 32 else None for p in range(32)]


def pair_needs(fmt, j):
    need = {}
    for f, p in TARGET[fmt].items():
        need[p], need[p + 16] = (j, f), (j + 4, f)
    return need


def cheapest(layout, fmt):
    """Fewest instructions for the 4 pairs over the program forms above, or None."""
    lab = word_labels(layout)
    needs = [pair_needs(fmt, j) for j in range(4)]
    direct = {}
    for j in range(4):
        for k in range(-31, 32):
            s = shifted(lab, k)
            if all(s[p] == v for p, v in needs[j].items()):
                direct[j] = min(direct.get(j, 9), 1 if k == 0 else 2)
    best = sum(direct.values()) if len(direct) == 4 else None
    for a in range(-8, 9):
        for b in range(a + 1, 17):
            wa, wb = shifted(lab, a), shifted(lab, b)
            ucost = (a != 0) + (b != 0) + 1  # the shifts and the select
            options = {}  # pair -> [(cost, {bit of u: which copy it must come from ('a', 'b' or '*': either)})]
            for j in range(4):
                for k in range(-31, 32):
                    choice = {}
                    for p, v in needs[j].items():
                        q = p - k
                        if not 0 <= q < 32 or (wa[q] != v and wb[q] != v):
                            break
                        choice[q] = "*" if wa[q] == wb[q] == v else ("a" if wa[q] == v else "b")
                    else:
                        options.setdefault(j, []).append((1 if k == 0 else 2, choice))
            if not options:
                continue

            def search(j, cost, fixed):
                nonlocal best
                if best is not None and cost >= best:
                    return
                if j == 4:
                    best = cost
                    return
                if j in direct:
                    search(j + 1, cost + direct[j], fixed)
                for c, choice in options.get(j, []):
                    if any(v != "*" and fixed.get(q, "*") not in ("*", v) for q, v in choice.items()):
                        continue
                    merged = dict(fixed)
                    for q, v in choice.items():
                        if v != "*" or q not in merged:
                            merged[q] = v
                    search(j + 1, cost + c, merged)

            search(0, ucost, {})
    return best


def both(layout):
    return layout, cheapest(layout, "fp16"), cheapest(layout, "bf16")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layout", help="one layout (8 comma-separated new bit positions) instead of all 8!")
    args = ap.parse_args()
    if args.layout:
        layout = tuple(int(v) for v in args.layout.split(","))
        if sorted(layout) != list(range(8)):
            ap.error(f"--layout must be a permutation of 0..7, got {args.layout}")
        print(both(layout))
        return
    best = {"fp16": None, "bf16": None}
    with multiprocessing.Pool() as pool:
        for layout, f16, b16 in pool.imap_unordered(both, itertools.permutations(range(8)), chunksize=256):
            for fmt, c in (("fp16", f16), ("bf16", b16)):
                if c is not None and (best[fmt] is None or c < best[fmt][0]):
                    best[fmt] = (c, layout)
    for fmt, found in best.items():
        print(f"{fmt}: " + (f"{found[0]} instructions, layout {found[1]}" if found else "no program of this form"))


if __name__ == "__main__":
    main()
