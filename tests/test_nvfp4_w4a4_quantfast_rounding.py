"""The E2M1 rounding of kForm16QuantFast (cuda/nvfp4/gemv_w4a4_quant.cuh quantize_activation_block_fast), emulated in
numpy float32 (IEEE round-to-nearest-even adds, like the device's __fadd_rn / __fsub_rn): fminf(q' + c - c, 6) with
q' = fmaxf(q, 0) and c = 2^22 / 2^23 / 2^24 below 2 / below 4 / above, against the quantizer's
e2m1_magnitude_value(e2m1_round_magnitude(q)) (nvfp4_device.cuh: seven > / >= thresholds), for every float32 q in
[2^-3, 2^4) (every decision point, its neighbours and the saturation), a stride of the rest, and the special values.
CPU only (the division half of the form is __fdiv_rn's own instruction sequence: the GPU tests compare outputs)."""
from __future__ import annotations

import numpy as np

F32 = np.float32
E2M1_VALUES = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0], dtype=F32)


def _reference(q):
    code = ((q > F32(0.25)).astype(np.int32) + (q >= F32(0.75)) + (q > F32(1.25)) + (q >= F32(1.75)) + (q > F32(2.5))
            + (q >= F32(3.5)) + (q > F32(5.0)))
    return E2M1_VALUES[code]


def _fast(q):
    qq = np.fmax(q, F32(0.0))  # fmaxf: NaN -> 0
    c = np.where(qq < F32(2.0), F32(2.0 ** 22), np.where(qq < F32(4.0), F32(2.0 ** 23), F32(2.0 ** 24))).astype(F32)
    return np.fmin((qq + c).astype(F32) - c, F32(6.0)).astype(F32)


def _check(q):
    q = np.asarray(q, dtype=F32)
    with np.errstate(invalid="ignore", over="ignore"):
        want, got = _reference(q), _fast(q)
    bad = np.flatnonzero(want.view(np.uint32) != got.view(np.uint32))
    assert bad.size == 0, [(float(q[i]), float(want[i]), float(got[i])) for i in bad[:5]]


def test_every_float_around_the_decision_points():
    lo, hi = np.array([0.125, 16.0], dtype=F32).view(np.uint32)
    for start in range(int(lo), int(hi), 1 << 22):
        _check(np.arange(start, min(start + (1 << 22), int(hi)), dtype=np.uint32).view(F32))


def test_a_stride_of_all_other_nonnegative_floats_and_the_special_values():
    bits = np.arange(0, 0x7F800000, 997, dtype=np.uint32)
    _check(bits.view(F32))
    _check(np.array([0.0, 1e-45, 1e-41, 1.1754942e-38, 3.4028235e38, np.inf, np.nan, 2.0 ** 22, 2.0 ** 24, 7.0,
                     7.000001, 6.999999, 5.0, 5.0000005, 4.9999995], dtype=F32))
