"""The premise test of the GPU tests' NaN poisoning (tests/test_nvfp4_gpu_poison.py) run with the helper before
session 38 (one fp32-NaN block of nbytes + 1 MiB, allocated and freed) and with the current one, case by case.
Session 38 (bench/RESULTS.md, calls G-H): the old helper failed every case. On the GPU machine, repo root:

  python3 bench/probes/poison_premise.py
"""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
import nvfp4_gpu_reference as ref  # noqa: E402
import test_nvfp4_gpu_poison as premise  # noqa: E402


def old_helper(nbytes):
    torch.full(((nbytes + (1 << 20)) // 4,), float("nan"), device="cuda")


def main():
    for name, helper in (("before session 38", old_helper), ("current", ref.poison_next_block)):
        premise.ref.poison_next_block = helper
        res = []
        for nbytes in premise.SIZES:
            for dt in (torch.bfloat16, torch.float32):
                try:
                    premise.test_the_next_allocation_starts_as_nan(nbytes, dt)
                    res.append(f"{nbytes} B {str(dt)[6:]}: ok")
                except AssertionError as e:
                    res.append(f"{nbytes} B {str(dt)[6:]}: FAIL ({str(e).splitlines()[0]})")
        print(f"{name}: " + "; ".join(res))
    premise.ref.poison_next_block = ref.poison_next_block


if __name__ == "__main__":
    main()
