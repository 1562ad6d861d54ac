"""The integer identities behind the CUDA decode step's lean weights and bins (RESET_NATIVE_SAMPLER_LEAN,
cuda/sampler/decode_step_row.cuh: floor_below_2_23, weight_at, bin_at), checked in numpy with an exact model of
the round-down add: floor(g) of a float32 g is the bits of RD(g + 2^23) minus 0x4B000000 for 0 <= g < 2^23, and
the bits of g minus 0x4A800000 for g in [2^23, 2^24]; a bin's truncation clamped at 1023 agrees with the
saturating conversion for every x >= 0. (The GPU tests compare the kernels' outputs with and without the switch;
this checks the arithmetic on every float32 of the ranges that matter most.)"""
import numpy as np

TWO23 = np.float32(8388608.0)


def rd_add_two23(g):
    """float32 RD(g + 2^23): the exact sum (float64 holds it) rounded down to float32."""
    s = g.astype(np.float64) + 8388608.0
    r = s.astype(np.float32)
    over = r.astype(np.float64) > s
    r[over] = np.nextafter(r[over], np.float32(-np.inf))
    return r


def lean_floor(g):
    out = np.empty(g.shape, np.int64)
    small = g < TWO23
    out[small] = rd_add_two23(g[small]).view(np.uint32).astype(np.int64) - 0x4B000000
    out[~small] = g[~small].view(np.uint32).astype(np.int64) - 0x4A800000
    return out


def floats_between(lo, hi):
    first, last = np.float32(lo).view(np.uint32), np.float32(hi).view(np.uint32)
    return np.arange(first, last + 1, dtype=np.uint32).view(np.float32)


def test_lean_floor_is_floor_on_every_float_from_2_22_to_2_24():
    """Every float32 in [2^22, 2^24] (17 M values): the binades next to both switch points, 2^23 and 2^24."""
    g = floats_between(2.0 ** 22, 2.0 ** 24)
    np.testing.assert_array_equal(lean_floor(g), np.floor(g.astype(np.float64)).astype(np.int64))


def test_lean_floor_on_weights_below_2_22():
    """Every g = RN(RN(e * 2^24) + 0.5) the kernels form for e = exp(m) over a dense grid of m in [-18, -0.7], and
    every float32 in [0.5, 8] (the smallest weights: 0 and 1 and their neighbours), plus random floats below 2^21."""
    rng = np.random.default_rng(0)
    m = np.linspace(-18.0, -0.7, 2_000_001, dtype=np.float32)
    p = (np.exp(m.astype(np.float64)).astype(np.float32) * np.float32(2.0 ** 24)).astype(np.float32)
    g = np.concatenate([(p + np.float32(0.5)).astype(np.float32), floats_between(0.5, 8.0),
                        (rng.random(2_000_000) * 2.0 ** 22).astype(np.float32)])
    np.testing.assert_array_equal(lean_floor(g), np.floor(g.astype(np.float64)).astype(np.int64))


def test_lean_bin_matches_the_saturating_truncation():
    """bin = min(bits(RD(x + 2^23)) - 0x4B000000, 1023) against min(trunc(x), 1023) for x = -m * 59 >= 0: the
    zeros, every float32 in [1000, 1100] (around the clamp) and the smallest subnormals, random floats up to 2^24, large
    values and +inf (m = -inf, a -inf logit)."""
    rng = np.random.default_rng(1)
    x = np.concatenate([np.array([0.0, -0.0, 2.0 ** 23, 2.0 ** 24, 3e38, np.inf], np.float32),
                        floats_between(1000.0, 1100.0), floats_between(0.0, 1e-42),
                        (rng.random(1_000_000) * 2.0 ** rng.integers(-20, 25, 1_000_000)).astype(np.float32)])
    got = np.minimum(rd_add_two23(x).view(np.uint32).astype(np.int64) - 0x4B000000, 1023)
    want = np.minimum(np.floor(np.minimum(x.astype(np.float64), 2.0 ** 31)), 1023).astype(np.int64)
    np.testing.assert_array_equal(got, want)
