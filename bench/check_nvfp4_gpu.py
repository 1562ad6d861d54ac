"""Small-shape correctness sweep of the NVFP4 CUDA kernels, meant to run under compute-sanitizer:

  compute-sanitizer --tool memcheck --error-exitcode 1 python bench/check_nvfp4_gpu.py

Covers quantize (bit-exact vs the independent reference), dequantize, and the GEMV in every x dtype,
both activations, fast (K % 1024 == 0) and general (K % 16 == 0) paths, 1..16 tokens, N not a multiple of
the row tile, with fresh random data and allocator poisoning (see tests/test_nvfp4_cuda.py).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import torch  # noqa: E402

import test_nvfp4_cuda as t  # noqa: E402


def main():
    start = time.time()
    cases = 0
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
