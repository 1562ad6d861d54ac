"""Determinism of the NVFP4 GEMV with and without the opt-in TMA weight ring (RESET_NATIVE_GEMV_RING), and their
bit equality, on Qwen3 layer shapes (GPU). One line per shape; exit status 1 if any check fails.

    python bench/check_gemv_ring.py [--calls 20]
"""
import argparse
import os
import sys

import torch

from reset_native import _nvfp4_cuda as nc

SHAPES = [(4096, 12288, 1), (512, 12288, 1), (4096, 12288, 2), (6144, 4096, 1), (4096, 12288, 4), (5120, 25600, 1)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=20, help="calls per path and shape")
    args = ap.parse_args()
    torch.manual_seed(0)
    ok = True
    try:
        for n, k, m in SHAPES:
            w = torch.randn((n, k), device="cuda", dtype=torch.bfloat16)
            p, s, gs = nc.quantize(w)
            x = torch.randn((m, k), device="cuda", dtype=torch.bfloat16)
            runs = {}
            for ring in ("1", "0"):
                os.environ["RESET_NATIVE_GEMV_RING"] = ring
                runs[ring] = [nc.gemv(p, s, gs, x, "bf16") for _ in range(args.calls)]
            same = {r: all(torch.equal(ys[0], y) for y in ys) for r, ys in runs.items()}
            a, b = runs["1"][0], runs["0"][0]
            mismatches = int((a != b).sum())
            ok = ok and same["1"] and same["0"] and mismatches == 0
            print(f"{n}x{k} m={m}: ring self-same {same['1']}, register self-same {same['0']}, cross mismatches "
                  f"{mismatches}, max diff {float((a.float() - b.float()).abs().max()):.3g}", flush=True)
    finally:
        os.environ.pop("RESET_NATIVE_GEMV_RING", None)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
