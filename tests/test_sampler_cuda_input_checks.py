"""The CUDA state's input checks (reset_native._sampler_torch.check_step_inputs / check_update_inputs) on the CPU: they
compare torch objects only, so a CPU device stands in for the state's CUDA device. Every accepted input passes
silently, every bad one raises the error naming the argument and the expectation (the GPU tests check the same
messages through decode_step and ReSETState.update)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
st = pytest.importorskip("reset_native._sampler_torch")

DEV = torch.device("cpu")
VOCAB, BATCH = 40, 4


def _step(logits, last=None, slots=None, batch=BATCH):
    rows = logits.shape[0] if hasattr(logits, "shape") and len(logits.shape) else 1
    last = torch.zeros(rows, dtype=torch.int64) if last is None else last
    st.check_step_inputs(DEV, VOCAB, batch, logits, last, slots)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("rows", [1, 3, BATCH])
def test_good_step_inputs_pass(dtype, rows):
    logits = torch.zeros((rows, VOCAB), dtype=dtype)
    _step(logits)
    _step(logits, slots=torch.arange(rows, dtype=torch.int64))
    _step(torch.zeros((rows, VOCAB + 8), dtype=dtype)[:, :VOCAB])  # padded rows: unit stride, rows apart


def test_good_update_inputs_pass():
    st.check_update_inputs(DEV, BATCH, torch.zeros(2), torch.full((2,), -1, dtype=torch.int64), None)
    st.check_update_inputs(DEV, BATCH, torch.zeros(2), torch.zeros(2, dtype=torch.int64),
                           torch.tensor([3, 1], dtype=torch.int64))


def _raises(exc, match, fn, *args):
    with pytest.raises(exc, match=match):
        fn(*args)


def test_bad_logits():
    good = torch.zeros((2, VOCAB))
    _raises(TypeError, r"logits must be a torch tensor on cpu for a CUDA state, got numpy array", _step,
            np.zeros((2, VOCAB), dtype=np.float32))
    _raises(ValueError, r"logits must be on cpu like the state, got torch tensor \(2, 40\) float32 on meta", _step,
            good.to("meta"))
    _raises(TypeError, r"logits must be float32 or bfloat16 or float16, got torch tensor \(2, 40\) float64", _step,
            good.double())
    _raises(ValueError, r"logits must be 2-D, got torch tensor \(40,\)", _step, good[0])
    _raises(ValueError, r"logits must have unit stride along its last dimension, got strides \(1, 2\)", _step,
            torch.zeros((VOCAB, 2)).t())
    _raises(ValueError, r"logits must have unit stride .* strides \(0, 1\)", _step, good[:1].expand(2, VOCAB))
    _raises(ValueError, r"logits must have 40 columns \(vocab_size\), got torch tensor \(2, 41\)", _step,
            torch.zeros((2, VOCAB + 1)))
    _raises(ValueError, r"batch of 5 rows does not fit the state's batch_size 4", _step, torch.zeros((5, VOCAB)))
    _raises(ValueError, r"batch of 0 rows does not fit", _step, torch.zeros((0, VOCAB)),
            torch.zeros(0, dtype=torch.int64))


def test_bad_last_tokens_and_slots():
    logits = torch.zeros((2, VOCAB))
    _raises(TypeError, r"last_tokens must be a torch tensor on cpu", _step, logits, [0, 0])
    _raises(TypeError, r"last_tokens must be int64, got torch tensor \(2,\) int32", _step, logits,
            torch.zeros(2, dtype=torch.int32))
    _raises(ValueError, r"last_tokens must have shape \(2,\), got \(3,\)", _step, logits,
            torch.zeros(3, dtype=torch.int64))
    _raises(ValueError, r"last_tokens must be 1-D", _step, logits, torch.zeros((2, 1), dtype=torch.int64))
    _raises(ValueError, r"last_tokens must have unit stride", _step, logits, torch.zeros(4, dtype=torch.int64)[::2])
    last = torch.zeros(2, dtype=torch.int64)
    _raises(TypeError, r"slots must be int64", _step, logits, last, torch.zeros(2))
    _raises(ValueError, r"slots must have shape \(2,\), got \(1,\)", _step, logits, last,
            torch.zeros(1, dtype=torch.int64))
    _raises(ValueError, r"slots must be on cpu like the state", _step, logits, last,
            torch.zeros(2, dtype=torch.int64, device="meta"))


def test_bad_update_inputs():
    last = torch.zeros(2, dtype=torch.int64)
    check = st.check_update_inputs
    _raises(TypeError, r"entropies must be float32, got torch tensor \(2,\) float64", check, DEV, BATCH,
            torch.zeros(2, dtype=torch.float64), last, None)
    _raises(ValueError, r"entropies must be 1-D", check, DEV, BATCH, torch.zeros((2, 1)), last, None)
    _raises(ValueError, r"batch of 5 rows does not fit the state's batch_size 4", check, DEV, BATCH, torch.zeros(5),
            torch.zeros(5, dtype=torch.int64), None)
    _raises(ValueError, r"last_tokens must have shape \(2,\), got \(3,\)", check, DEV, BATCH, torch.zeros(2),
            torch.zeros(3, dtype=torch.int64), None)
