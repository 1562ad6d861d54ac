"""Small-shape correctness sweep of the NVFP4 CUDA kernels, meant to run under compute-sanitizer:

  compute-sanitizer --tool memcheck --error-exitcode 1 python bench/check_nvfp4_gpu.py
  compute-sanitizer --tool racecheck --error-exitcode 1 python bench/check_nvfp4_gpu.py --gemv-kernels

Covers quantize (bit-exact vs the independent reference), dequantize, and the GEMV in every x dtype,
both activations, fast (K % 1024 == 0) and general (K % 16 == 0) paths, 1..16 tokens, N not a multiple of
the row tile, with fresh random data and allocator poisoning (see tests/test_nvfp4_cuda.py). --gemv-kernels runs only one
GEMV case per kernel family on the fast path (block-diagonal, 16-bit with one team and with two, split K; the 16-bit
ones in each of their forms; the block-diagonal lean form), which keeps racecheck (shared-memory hazards between the barriers) within a minute.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import torch  # noqa: E402

import test_nvfp4_cuda as t  # noqa: E402


# (n, k, m) on the fast path, one per kernel family: block-diagonal (m <= 2), 16-bit whole x with one team
# (m = 4), at two CTAs per SM with many tiles (m = 12: 530 row tiles, so on 132 SMs some CTAs run two tiles, the
# second reusing the reduction buffers) and with two teams (m = 16 at K = 4096: x fits one CTA per SM), split K
# (m = 8 and 16 at K = 8192). n = 40: three row tiles.
FAMILIES = [(40, 1024, 1), (40, 1024, 2), (40, 4096, 4), (8472, 1024, 12), (40, 4096, 16), (40, 8192, 8),
            (40, 8192, 16)]
# Since session 19 two teams run wherever x fits two CTAs per SM at 2..16 tokens (A16 up to 12 row tiles per SM,
# W4A4 always), so m = 12 at K = 1024 runs two teams by default; RESET_NATIVE_GEMV_TEAMS=measured (the session-10
# rule) keeps the two-CTA walk under the sanitizer too.
TEAMS_VALUES = {(8472, 1024, 12): (None, "measured")}
# W4A4 split K runs in clusters by default from 8 tokens (since session 21 helper w4a4splitdef43, the rule's form
# only); RESET_NATIVE_GEMV_W4A4_SPLIT_CLUSTER=1 keeps the plain split kernel under the sanitizer too.
SPLIT_CLUSTER_VALUES = {(40, 8192, 8): (None, "1"), (40, 8192, 16): (None, "1")}


# The 16-bit kernel's forms (RESET_NATIVE_GEMV_16_FORM, read at every call): the rule's (unset), session 12's loop
# (0), session 13's rule (13) and sessions 14-15's rule (15, before the scale word), so that the sanitizer sees every form's loop, not only the default one. (The form
# tests assert which kernel ran through the torch profiler, which records nothing under compute-sanitizer: they skip.)
FORMS16 = (None, "0", "13", "15")
# The block-diagonal kernel's lean step form (RESET_NATIVE_GEMV_BD_LEAN=1: tiles of 4 chunks, or 5 at one token) on
# layers whose CTAs walk two or three tiles (530 row tiles), so the sanitizer sees its tile-stride walk; M = 1, 2.
LEAN_FAMILIES = [(8472, 4096, 1), (8472, 5120, 1), (8472, 4096, 2)]
# The split K kernel's lean form (on by default at one token where every slice is 4 or 5 chunks of 1024): (n, k,
# slices) forced through RESET_NATIVE_GEMV_BD_SPLIT: 130 row tiles x 5 slices, so CTAs walk 2-3 slice tiles, at 4
# chunks per slice and at 5 (Qwen3-32B down's K). Small n: the numpy reference quantizer takes seconds per 10^7 weights.
LEAN_SPLIT_FAMILIES = [(2072, 20480, 5), (2072, 25600, 5)]


def gemv_kernels(dtypes):
    cases = 0
    for dtype in dtypes:
        for n, k, m in FAMILIES:
            for form in FORMS16 if m >= 3 else (None,):
                for teams in TEAMS_VALUES.get((n, k, m), (None,)):
                    with _env("RESET_NATIVE_GEMV_16_FORM", form), _env("RESET_NATIVE_GEMV_TEAMS", teams):
                        for act in ("bf16", "nvfp4"):
                            clusters = SPLIT_CLUSTER_VALUES.get((n, k, m), (None,)) if act == "nvfp4" else (None,)
                            for cluster in clusters if form is None else (None,):
                                with _env("RESET_NATIVE_GEMV_W4A4_SPLIT_CLUSTER", cluster):
                                    t._gemv_case(n, k, m, dtype, act, with_bias=True,
                                                 seed=int(time.time() * 1e3) % 2**31)
                                cases += 1
    for dtype in dtypes:
        for n, k, m in LEAN_FAMILIES:
            with _env("RESET_NATIVE_GEMV_BD_LEAN", "1"):
                t._gemv_case(n, k, m, dtype, "bf16", with_bias=True, seed=int(time.time() * 1e3) % 2**31)
                cases += 1
        for n, k, slices in LEAN_SPLIT_FAMILIES:
            with _env("RESET_NATIVE_GEMV_BD_SPLIT", str(slices)), _env("RESET_NATIVE_GEMV_BD_LEAN_SPLIT", "1"):
                t._gemv_case(n, k, 1, dtype, "bf16", with_bias=True, seed=int(time.time() * 1e3) % 2**31)
                cases += 1
    return cases


@contextlib.contextmanager
def _env(name, value):
    """os.environ[name] = value (None: unset) inside the block, restored after it."""
    old = os.environ.get(name)
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gemv-kernels", action="store_true", help="only one GEMV case per kernel family")
    args = ap.parse_args()
    start = time.time()
    if args.gemv_kernels:
        cases = gemv_kernels([torch.bfloat16])
        torch.cuda.synchronize()
        print(f"check_nvfp4_gpu --gemv-kernels: {cases} cases passed in {time.time() - start:.1f} s")
        return
    cases = gemv_kernels(t.DTYPES)
    for dtype in t.DTYPES:
        for kind in ("normal", "wide"):
            t.test_quantize_bit_exact(dtype, kind)
            cases += 1
        t.test_dequantize_matches_reference(dtype)
        for n, k in [(40, 1024), (19, 80), (70, 2048 + 32), (24, 8192 + 16)]:
            for m in (1, 3, 8, 9, 16):
                for act in ("bf16", "nvfp4"):
                    t._gemv_case(n, k, m, dtype, act, with_bias=m == 3, seed=int(time.time() * 1e3) % 2**31)
                    cases += 1
    t.test_quantize_ties_and_given_scale()
    t.test_gemv_unaligned_views()
    torch.cuda.synchronize()
    print(f"check_nvfp4_gpu: {cases} cases passed in {time.time() - start:.1f} s")


if __name__ == "__main__":
    main()
