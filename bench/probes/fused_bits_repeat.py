"""Repeat the fused RMSNorm / SiLU GEMV against the separate ops many times and count calls whose bits differ.

A fused call must give the separate ops' bits every time (tests/test_fused_gemv.py); this probe looks for
intermittent differences (a race) per variant and weight path: how many calls differed, by how many elements at
most, and how many of the separate ops' results differed from their first. For each (norm, silu) x
RESET_NATIVE_GEMV_RING in (unset, 0, 1):

  python3 bench/probes/fused_bits_repeat.py [--n 8448] [--k 4096] [--m 1] [--reps 200]
"""
from __future__ import annotations

import argparse
import os

import torch

from reset_native import _nvfp4_cuda, _nvfp4_fused, nvfp4
from reset_native.integrations import fused_mlp, fused_norm


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=8448)
    ap.add_argument("--k", type=int, default=4096)
    ap.add_argument("--m", type=int, default=1)
    ap.add_argument("--reps", type=int, default=200)
    args = ap.parse_args()
    n, k, m = args.n, args.k, args.m
    gen = torch.Generator().manual_seed(5)
    t = nvfp4.quantize((torch.randn(n, k, generator=gen) * 0.05).cuda())
    x = (torch.randn(m, k, generator=gen) * 3).to(torch.bfloat16).cuda()
    nw_t = (1 + 0.3 * torch.randn(k, generator=gen)).to(torch.bfloat16).cuda()
    print(f"# {torch.cuda.get_device_name()}: n {n} k {k} m {m}, {args.reps} fused calls per row")
    print(f"{'norm':>5} {'silu':>5} {'ring':>5} {'uses ring':>9} {'calls differing':>15} {'max elements':>12} {'sep. differ':>13}")
    for norm, silu in ((True, False), (False, True), (True, True)):
        nw = nw_t if norm else None
        for ring in ("unset", "0", "1"):
            if ring == "unset":
                os.environ.pop("RESET_NATIVE_GEMV_RING", None)
            else:
                os.environ["RESET_NATIVE_GEMV_RING"] = ring

            def separate():
                xin = fused_norm.rms_norm(x, nw, 1e-6) if norm else x
                y = _nvfp4_cuda.gemv(t.packed, t.block_scales, t.global_scale, xin, "bf16", None, None)
                return fused_mlp.silu_mul(y[:, :n // 2], y[:, n // 2:]) if silu else y

            want0 = separate()
            uses = _nvfp4_fused._native.cuda_gemv_uses_weight_ring(
                t.packed.data_ptr(), t.block_scales.data_ptr(), n, k, x.data_ptr(), _nvfp4_fused._dtype_code(x.dtype),
                m, False, _nvfp4_fused._RMS_NORM if norm else 0, nw.data_ptr() if norm else 0,
                _nvfp4_fused._SILU_MUL if silu else 0)
            bad, worst, sep_bad = 0, 0, 0
            for _ in range(args.reps):  # as the test does: the separate ops, then the fused call right after
                want = separate()
                got = _nvfp4_fused.gemv_fused(t.packed, t.block_scales, t.global_scale, x, nw, 1e-6, silu_mul=silu)
                diff = int((got != want).sum())
                bad += diff > 0
                worst = max(worst, diff)
                sep_bad += bool((want != want0).any())
            print(f"{norm!s:>5} {silu!s:>5} {ring:>5} {bool(uses)!s:>9} {bad:>15} {worst:>12} {sep_bad:>13}",
                  flush=True)
    os.environ.pop("RESET_NATIVE_GEMV_RING", None)


if __name__ == "__main__":
    main()
