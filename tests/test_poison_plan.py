"""The request plan behind the GPU tests' NaN poisoning (tests/nvfp4_gpu_reference.py poison_plan), on hand-written
allocator snapshots: which free blocks get a request of their own size, where a new segment is asked for, and what is
left out. Runs on the CPU (the GPU side is tests/test_nvfp4_gpu_poison.py)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nvfp4_gpu_reference import poison_plan  # noqa: E402

MIB = 1 << 20


def _seg(kind, blocks, stream=0, pool=(0, 0), device=0):
    return {"device": device, "stream": stream, "segment_pool_id": pool, "segment_type": kind,
            "blocks": [{"size": size, "state": state} for size, state in blocks]}


def test_an_empty_cache_asks_for_new_segments():
    assert poison_plan([], 0, 0, 1000) == ([MIB], MIB)  # small output: one new small segment, 1 MiB poisoned
    assert poison_plan([], 0, 0, 3 * MIB) == ([3 * MIB, MIB], 3 * MIB)  # and a new large one of the output's size


def test_every_free_block_is_requested_at_its_size_small_ones_in_pieces():
    segs = [_seg("small", [(512, "inactive"), (4096, "active_allocated"), (MIB + MIB // 2, "inactive")]),
            _seg("large", [(20 * MIB, "inactive"), (8 * MIB, "active_allocated"), (2 * MIB, "inactive")])]
    # 1.5 MiB small block -> 1 MiB + 0.5 MiB; the 20 MiB large block takes a 3 MiB output: no new segment
    assert poison_plan(segs, 0, 0, 3 * MIB) == ([20 * MIB, 2 * MIB, MIB, MIB // 2, 512], 3 * MIB)


def test_a_new_segment_only_where_no_free_block_fits():
    segs = [_seg("small", [(2 * MIB, "inactive")]), _seg("large", [(2 * MIB, "inactive")])]
    assert poison_plan(segs, 0, 0, 3 * MIB) == ([3 * MIB, 2 * MIB, MIB, MIB], 3 * MIB)
    assert poison_plan(segs, 0, 0, 2 * MIB) == ([2 * MIB, MIB, MIB], 2 * MIB)
    small_only_pieces = [_seg("small", [(64 * 1024, "inactive")])]
    assert poison_plan(small_only_pieces, 0, 0, 100) == ([MIB, 64 * 1024], MIB)


def test_other_streams_devices_pools_and_busy_blocks_are_left_out():
    segs = [_seg("large", [(4 * MIB, "inactive")], pool=(1, 2)),  # a CUDA graph's private pool
            _seg("large", [(6 * MIB, "inactive")], stream=12345),
            _seg("large", [(8 * MIB, "inactive")], device=1),
            _seg("large", [(10 * MIB, "active_awaiting_free")]),
            _seg("small", [(MIB, "inactive")])]
    assert poison_plan(segs, 0, 0, 3 * MIB) == ([3 * MIB, MIB], 3 * MIB)
    assert poison_plan(segs, 0, 12345, 3 * MIB) == ([6 * MIB, MIB], 3 * MIB)
