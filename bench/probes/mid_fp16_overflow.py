"""Why the medium-M GEMM's float16 test failed once under memcheck (session 27, call 5): for many seeds of that test's
old case (640 x 4096 weights, 100 tokens, rows of x and W scaled by e^N(0,1)), does the GEMM give non-finite outputs
exactly where the fp64 result rounds past float16's max (|ref| >= 65520)? Prints one line of counts. GPU only.

    python3 bench/probes/mid_fp16_overflow.py [--seeds 300]
"""
import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
import nvfp4_gpu_reference as ref  # noqa: E402

from reset_native import nvfp4  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=300)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("mid_fp16_overflow needs a CUDA GPU")
    os.environ["RESET_NATIVE_GEMV_PREFILL"] = "mid"
    bad = over = exact = 0
    for seed in range(args.seeds):
        t, x, _ = ref.random_nvfp4_case(640, 4096, 100, torch.float16, seed)
        y = nvfp4.gemv(t, x).cpu()
        r = x.double().cpu() @ torch.from_numpy(ref.dequantized64(t)).T
        nonfinite = ~torch.isfinite(y)
        bad += int(nonfinite.any())
        over += int((r.abs() > 65504).any())
        exact += int(torch.equal(nonfinite, r.abs() >= 65520))
    print(f"seeds {args.seeds}: with non-finite outputs {bad}, with |ref| > 65504 {over}, "
          f"non-finite exactly where |ref| rounds past max {exact}")


if __name__ == "__main__":
    main()
