"""Drive the NVFP4 GEMV (M <= 16) or the medium-M GEMM (M > 16: kernel gemm_ws_kernel in sm_90a builds on Hopper,
else gemm_mid_kernel; RESET_NATIVE_GEMM_MID picks another) once per shape for a profiler (Nsight Compute), one
warm-up call each.

    ncu --kernel-name regex:gemv_kernel --launch-skip-before-match 0 --section SpeedOfLight \
        --section Occupancy --section WarpStateStats python bench/ncu_nvfp4_gemv.py 6144x4096x1 24576x4096x16

Each argument is NxKxM (weights [N, K], M tokens, bf16 x, W4A16; GEMV_ACT=nvfp4: W4A4 with the dynamic activation
scale). Every call is launched twice (warm-up, then the one to read: profile with --launch-skip 1 per shape, or read
the second of each pair).
"""
import os
import sys

import torch

from reset_native import _nvfp4_cuda as nc


def main(argv):
    shapes = [tuple(int(v) for v in a.split("x")) for a in (argv or ["6144x4096x1"])]
    for n, k, m in shapes:
        w = torch.randn((n, k), device="cuda", dtype=torch.bfloat16)
        p, s, gs = nc.quantize(w)
        x = torch.randn((m, k), device="cuda", dtype=torch.bfloat16)
        for _ in range(2):
            if m > 16:
                supported, ws = nc.gemm_mid_plan(n, k, x)
                if not supported:
                    raise SystemExit(f"gemm_mid does not take {n}x{k} m={m}")
                nc.gemm_mid(p, s, gs, x, None, ws)
            else:
                nc.gemv(p, s, gs, x, os.environ.get("GEMV_ACT", "bf16"))
        torch.cuda.synchronize()
        print(f"ran {n}x{k} m={m}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
