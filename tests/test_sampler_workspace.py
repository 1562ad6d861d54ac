"""Size of the CUDA decode step's device workspace (plain arithmetic, available in every build)."""
import pytest

from reset_native import _core

S = _core.sampler


def test_workspace_bytes_cover_the_per_row_buffers():
    for slots, vocab in [(1, 1), (1, 2048), (1, 2049), (8, 151936), (64, 151936)]:
        chunks = -(-vocab // 2048)
        # counters (4 B), row plans, per-chunk entropy parts (40 B) and masses (8 B), 2048-bin histogram
        # (8 B), top-p candidate count (4 B) and 2048 candidates (16 B), a pass flag (4 B); two grid
        # counters; the resident step's step counter (4 B) and tagged words (8 B): per chunk 4 (entropy
        # part) + 3 (kept mass, count) + 2 * 32 (boundary-bin logits), and per row 7 (prepared slot) +
        # 4 (the lead block's plan); the sampling pass's 16 cell masses per chunk (4 B each)
        tagged = 8 * (chunks * (4 + 3 + 2 * 32) + 7 + 4)
        floor = slots * (4 + 40 * chunks + 8 * chunks + 2048 * 8 + 4 + 2048 * 16 + 4 + 4 + tagged + 64 * chunks) + 8
        got = S.device_workspace_bytes(slots, vocab)
        assert floor < got < floor + slots * 128 + 12 * 256
    assert S.device_workspace_bytes(8, 4097) > S.device_workspace_bytes(8, 4096)
    assert S.device_workspace_bytes(9, 4096) > S.device_workspace_bytes(8, 4096)


@pytest.mark.parametrize("slots,vocab,name", [(0, 100, "slots"), (4, 0, "vocab"), (-1, 5, "slots")])
def test_workspace_bytes_reject_bad_sizes(slots, vocab, name):
    with pytest.raises(ValueError, match=name):
        S.device_workspace_bytes(slots, vocab)
