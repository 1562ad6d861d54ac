"""The CUDA backend's remembered split-K workspace sizes stay bounded (CPU: no kernels are called)."""
from __future__ import annotations

import pytest

pytest.importorskip("torch")
from reset_native import _nvfp4_cuda as nc  # noqa: E402


def test_remembered_sizes_start_over_at_the_bound(monkeypatch):
    monkeypatch.setattr(nc, "_split_bytes_wanted", {})
    monkeypatch.setattr(nc, "_SPLIT_BYTES_KEYS", 3)
    for i in range(3):
        nc._remember_split_bytes(("shape", i), 64 * i)
    assert nc._split_bytes_wanted == {("shape", 0): 0, ("shape", 1): 64, ("shape", 2): 128}
    nc._remember_split_bytes(("shape", 1), 256)  # a known shape: updated in place
    assert nc._split_bytes_wanted == {("shape", 0): 0, ("shape", 1): 256, ("shape", 2): 128}
    nc._remember_split_bytes(("shape", 3), 8)  # a new one when full: starts over with it alone
    assert nc._split_bytes_wanted == {("shape", 3): 8}
