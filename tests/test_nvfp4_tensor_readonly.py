"""NVFP4Tensor is read-only after its validating constructor (the CUDA GEMV trusts its parts); copies and pickles
rebuild through the constructor, so they are validated too."""
from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

from reset_native import nvfp4


def _tensor():
    w = np.random.default_rng(3).standard_normal((32, 64)).astype(np.float32)
    return nvfp4.quantize(w)


@pytest.mark.parametrize("name", ["packed", "block_scales", "global_scale", "other"])
def test_parts_cannot_be_set_or_deleted(name):
    t = _tensor()
    before = (t.packed.copy(), t.block_scales.copy(), t.global_scale)
    with pytest.raises(AttributeError, match=f"read-only.*'{name}'"):
        setattr(t, name, np.zeros((32, 8), np.uint8))
    with pytest.raises(AttributeError, match=f"read-only.*'{name}'"):
        delattr(t, name)
    assert np.array_equal(t.packed, before[0]) and np.array_equal(t.block_scales, before[1])
    assert t.global_scale == before[2]


@pytest.mark.parametrize("clone", [copy.copy, copy.deepcopy, lambda t: pickle.loads(pickle.dumps(t))])
def test_copies_and_pickles_rebuild_the_same_tensor(clone):
    t = _tensor()
    c = clone(t)
    assert isinstance(c, nvfp4.NVFP4Tensor) and c is not t
    assert np.array_equal(c.packed, t.packed) and np.array_equal(c.block_scales, t.block_scales)
    assert c.global_scale == t.global_scale
    assert np.array_equal(nvfp4.dequantize(c), nvfp4.dequantize(t))


def test_a_rebuild_validates_like_the_constructor():
    t = _tensor()
    ctor, args = t.__reduce__()
    with pytest.raises(ValueError, match="block_scales must have shape"):
        ctor(args[0], args[1][:, :2].copy(), args[2])
