"""The premise of the GPU tests that poison outputs: after nvfp4_gpu_reference.poison_next_block(nbytes), a tensor of
up to nbytes that the next call allocates starts as NaN, so an output element a kernel leaves unwritten fails their
comparisons. Each case first leaves zero-filled free blocks of many sizes in both pools of the CUDA caching allocator
(the state a test is in after earlier calls), so a helper that poisoned the wrong block would fail here: the helper
before session 38 (one fp32-NaN block of nbytes + 1 MiB) failed every case (bench/probes/poison_premise.py). GPU tests
skip without a device."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nvfp4_gpu_reference as ref  # noqa: E402

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.gpu

KIB = 1 << 10
# output bytes: 16 tokens x 4096 rows of bf16 (small pool), one row tile, 1 MiB exactly, Qwen3-32B gate_up at 16 tokens
# in fp32 (large pool), and a large odd size
SIZES = (2 * 16 * 4096, 2 * 16, 1 << 20, 4 * 16 * 51200, 5 * (1 << 20) + 3 * 512)


def _zero_holes(seed):
    """Allocates zeroed tensors of random sizes (both pools) and frees every other one: free blocks full of zeros
    between live ones. Returns the live ones (keep them alive)."""
    g = torch.Generator().manual_seed(seed)
    sizes = [int(s) for s in torch.randint(1, 8 * KIB, (24,), generator=g)] + [
        int(s) for s in torch.randint(300 * KIB, 2 * 1024 * KIB, (12,), generator=g)]
    ts = [torch.zeros(s, dtype=torch.float32, device="cuda") for s in sizes]
    return ts[1::2]


@pytest.mark.parametrize("nbytes", SIZES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_the_next_allocation_starts_as_nan(nbytes, dtype):
    live = _zero_holes(nbytes)
    ref.poison_next_block(nbytes)
    y = torch.empty(nbytes // (torch.finfo(dtype).bits // 8), dtype=dtype, device="cuda")
    assert bool(torch.isnan(y).all()), f"{int((~torch.isnan(y)).sum())} of {y.numel()} elements not NaN"
    del live


def test_a_smaller_allocation_and_one_after_a_temporary_start_as_nan():
    """Callers pass an upper bound of the output's bytes, and a call may allocate a small temporary before its
    output."""
    live = _zero_holes(7)
    ref.poison_next_block(4 * 16 * 6144)
    tmp = torch.empty(64, dtype=torch.float32, device="cuda")
    y = torch.empty(16 * 6144, dtype=torch.bfloat16, device="cuda")
    assert bool(torch.isnan(y).all())
    del live, tmp
