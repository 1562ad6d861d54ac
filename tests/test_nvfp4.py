"""NVFP4 CPU core: format decoding, bit-exact quantization against an independent numpy reference, exact
dequantization, GEMV (W4A16 and W4A4) against fp64 references, layouts, and numpy/torch interop."""
import math
import os

import numpy as np
import pytest

import _nvfp4_reference as ref
from reset_native import _core, nvfp4

C = _core.nvfp4
# Every CPU code path this machine can run (the AVX-512 tests skip on CPUs without it: they are absent here).
KERNELS = ["scalar"] + (["avx2"] if C.avx2_available() else []) + (["avx512"] if C.avx512_available() else [])
ALL_ISAS = ["scalar", "avx2", "avx512"]


def _rng(seed=0):
    return np.random.default_rng(seed)


def _quantize_raw(w, kernel, global_scale=None, dtype="float32"):
    n, k = w.shape
    packed = np.empty((n, k // 2), np.uint8)
    scales = np.empty((n, k // 16), np.uint8)
    gs = C.quantize(w, dtype, packed, scales, global_scale, kernel)
    return packed, scales, gs


def _gemv_raw(packed, scales, gs, x, kernel, activation="bf16", act_gs=None, dtype="float32", bias=None):
    y = np.empty((x.shape[0], packed.shape[0]), dtype=x.dtype)
    C.gemv(packed, scales, gs, x, dtype, y, bias, activation, act_gs, kernel)
    return y


# ------------------------------------------------------------------------------------------ format decoding


def test_every_e2m1_code_decodes_exactly():
    for code in range(16):
        expected = ref.e2m1_value(code)
        got = C.e2m1_decode(code)
        assert got == expected and math.copysign(1, got) == math.copysign(1, expected), code
    # The same values come out of dequantize when the block scale is 1 (0x38) and the global scale is 1.
    codes = np.arange(16, dtype=np.uint8)
    packed = (codes[0::2] | (codes[1::2] << 4)).reshape(1, 8)
    t = nvfp4.NVFP4Tensor.from_parts(packed, np.array([[0x38]], np.uint8), 1.0)
    out = nvfp4.dequantize(t)
    np.testing.assert_array_equal(out[0], ref.E2M1_TABLE.astype(np.float32))
    assert np.signbit(out[0, 8])  # code 8 is -0


def test_every_e4m3_byte_decodes_exactly():
    for byte in range(256):
        expected = ref.e4m3_value(byte)
        got = C.e4m3_decode(byte)
        if math.isnan(expected):
            assert math.isnan(got), byte
        else:
            assert got == expected and math.copysign(1, got) == math.copysign(1, expected), byte
    # Through dequantize: code 2 (= 1.0) under every non-negative finite scale byte gives the scale itself.
    scales = np.arange(0x7F, dtype=np.uint8).reshape(-1, 1)
    packed = np.full((0x7F, 8), 0x22, np.uint8)
    out = nvfp4.dequantize(nvfp4.NVFP4Tensor.from_parts(packed, scales, 1.0))
    np.testing.assert_array_equal(out, np.repeat(ref.E4M3_TABLE[:0x7F, None], 16, axis=1).astype(np.float32))


def test_e4m3_encode_rounds_to_nearest_even_and_saturates():
    values = ref.E4M3_TABLE[:0x7F]
    mids = (values[:-1] + values[1:]) / 2  # exact ties in fp64, and representable in fp32 here
    probes = np.concatenate([values, mids, np.nextafter(mids.astype(np.float32), np.float32(0)),
                             np.nextafter(mids.astype(np.float32), np.float32(1000)),
                             _rng(1).uniform(0, 448, 2000)]).astype(np.float32)
    expected = ref.e4m3_encode_rne(probes.astype(np.float64))
    got = np.array([C.e4m3_encode(float(v)) for v in probes], np.uint8)
    np.testing.assert_array_equal(got, expected)
    for big in (448.0, 449.0, 464.0, 1e30, float("inf")):
        assert C.e4m3_encode(big) == 0x7E and C.e4m3_encode(-big) == 0xFE
    assert C.e4m3_encode(float("nan")) == 0x7F
    assert C.e4m3_encode(2.0 ** -10) == 0x00 and C.e4m3_encode(2.0 ** -10 * 1.001) == 0x01  # tie -> even


@pytest.mark.parametrize("magnitude, code", [(0.25, 0), (0.75, 2), (1.25, 2), (1.75, 4), (2.5, 4), (3.5, 6),
                                             (5.0, 6), (0.2500001, 1), (0.7499999, 1), (5.0000005, 7),
                                             (6.0, 7), (100.0, 7), (float("inf"), 7)])
def test_e2m1_encode_decision_points(magnitude, code):
    assert C.e2m1_encode(magnitude) == code
    assert C.e2m1_encode(-magnitude) == code | 8


# ------------------------------------------------------------------------------------------ quantize semantics

TIES = [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0]
TIE_CODES = [0, 2, 2, 4, 4, 6, 6]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("block_scale", [1.0, 0.5, 2.0 ** -9, 448.0, 1.125, 2.0 ** -7 * 3])
def test_rne_ties_times_the_block_scale(kernel, block_scale):
    # global_scale 1 and block amax 6 * s make the stored block scale exactly s (s is an E4M3 value).
    ties = np.array(TIES + [-t for t in TIES] + [6.0, 0.0], np.float64)
    block = (ties * block_scale).astype(np.float32).reshape(1, 16)
    assert np.all(block.astype(np.float64) == ties * block_scale)  # the ties are exact in fp32
    packed, scales, gs = _quantize_raw(block, kernel, global_scale=1.0)
    assert gs == 1.0
    assert ref.E4M3_TABLE[scales[0, 0]] == block_scale
    codes = ref.unpack_codes(packed)[0]
    np.testing.assert_array_equal(codes[:7], TIE_CODES)
    np.testing.assert_array_equal(codes[7:14], [c | 8 for c in TIE_CODES])
    assert codes[14] == 7 and codes[15] == 0


@pytest.mark.parametrize("kernel", KERNELS)
def test_saturation_and_scale_clamp_at_448(kernel):
    # A tiny static global scale forces bs = amax_b / (6 gs) far above 448: it clamps to 448 and every
    # element beyond 6 * 448 * gs saturates to code 7 with its sign.
    w = np.array([[1e3, -2e3, 1.0, -0.5] + [0.0] * 12], np.float32)
    packed, scales, _ = _quantize_raw(w, kernel, global_scale=1e-3)
    assert scales[0, 0] == 0x7E  # 448
    codes = ref.unpack_codes(packed)[0]
    assert codes[0] == 7 and codes[1] == 15  # 1e3 / 0.448 and -2e3 / 0.448 saturate at +-6
    np.testing.assert_array_equal(codes[2:4], ref.unpack_codes(ref.quantize(w, 1e-3)[0])[0][2:4])


@pytest.mark.parametrize("kernel", KERNELS)
def test_all_zero_blocks_and_all_zero_matrix(kernel):
    w = np.zeros((3, 48), np.float32)
    w[1, 16:32] = np.linspace(-1, 1, 16)
    w[2, 5] = -0.0
    packed, scales, gs = _quantize_raw(w, kernel)
    assert gs == np.float32(1.0) / np.float32(2688.0)
    zero_blocks = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2)]
    for r, b in zero_blocks:
        assert scales[r, b] == 0x01  # the clamped scale 2^-9
    codes = ref.unpack_codes(packed)
    assert codes[2, 5] == 8  # -0.0 keeps its sign
    assert np.all(codes[0] == 0) and np.all(codes[1, :16] == 0)
    p0, s0, g0 = _quantize_raw(np.zeros((2, 32), np.float32), kernel)
    assert g0 == 1.0 and np.all(s0 == 1) and np.all(p0 == 0)


@pytest.mark.parametrize("kernel", KERNELS)
def test_scale_clamps_at_two_to_minus_nine(kernel):
    # Block 1 is 1e-7 of the amax: its scale would be far below 2^-9 and clamps there; values that are tiny
    # against 2^-9 * gs round to (signed) zero codes.
    w = np.zeros((1, 32), np.float32)
    w[0, :16] = np.linspace(-2688, 2688, 16)
    w[0, 16:] = np.linspace(-2.688e-4, 2.688e-4, 16)
    packed, scales, gs = _quantize_raw(w, kernel)
    assert gs == 1.0 and scales[0, 0] == 0x7E and scales[0, 1] == 0x01
    codes = ref.unpack_codes(packed)[0, 16:]
    np.testing.assert_array_equal(codes & 7, 0)
    np.testing.assert_array_equal(codes >> 3, (w[0, 16:] < 0) | np.signbit(w[0, 16:]))


@pytest.mark.parametrize("kernel", KERNELS)
def test_huge_dynamic_range_across_blocks(kernel):
    rng = _rng(2)
    w = rng.standard_normal((8, 256)).astype(np.float32)
    exps = rng.integers(-60, 60, size=(8, 16))
    w *= np.repeat(np.exp2(exps.astype(np.float64)), 16, axis=1).astype(np.float32)
    packed, scales, gs = _quantize_raw(w, kernel)
    rp, rs, rgs = ref.quantize(w)
    assert gs == rgs
    np.testing.assert_array_equal(scales, rs)
    np.testing.assert_array_equal(packed, rp)


def _random_matrices():
    rng = _rng(3)
    yield "normal", rng.standard_normal((33, 512)).astype(np.float32)
    yield "heavy", (rng.standard_t(2, (17, 1024)) * 1e-3).astype(np.float32)
    yield "uniform", rng.uniform(-1e4, 1e4, (9, 256)).astype(np.float32)
    # Elements sitting exactly on decision points of their blocks (scale 1 blocks, gs 1 given below).
    yield "ties", (rng.choice(TIES + [-t for t in TIES] + [0.0, 6.0], (16, 256))).astype(np.float32)
    sparse = rng.standard_normal((12, 256)).astype(np.float32)
    sparse[rng.random(sparse.shape) < 0.7] = 0
    sparse[3] = 0
    yield "sparse", sparse


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("case", [c for c, _ in _random_matrices()])
def test_quantize_is_bit_exact_against_the_reference(kernel, case):
    w = dict(_random_matrices())[case]
    for gs_in in (None, 1.0, 0.37):
        packed, scales, gs = _quantize_raw(w, kernel, global_scale=gs_in)
        rp, rs, rgs = ref.quantize(w, gs_in)
        assert gs == rgs
        np.testing.assert_array_equal(scales, rs)
        np.testing.assert_array_equal(packed, rp)


@pytest.mark.parametrize("kernel", KERNELS)
def test_float16_input_is_bit_exact(kernel):
    rng = _rng(4)
    w = (rng.standard_normal((20, 512)) * 30).astype(np.float16)
    w[0, :16] = np.float16(6e-8)  # fp16 subnormals widen exactly too
    packed, scales, gs = _quantize_raw(w, kernel, dtype="float16")
    rp, rs, rgs = ref.quantize(w.astype(np.float32))
    assert gs == rgs
    np.testing.assert_array_equal(scales, rs)
    np.testing.assert_array_equal(packed, rp)
    t = nvfp4.quantize(w)  # the public API agrees
    np.testing.assert_array_equal(t.packed, rp)


def test_bfloat16_torch_input_is_bit_exact():
    torch = pytest.importorskip("torch")
    g = torch.Generator().manual_seed(5)
    w = (torch.randn(24, 256, generator=g) * 1e5).to(torch.bfloat16)
    t = nvfp4.quantize(w)
    rp, rs, rgs = ref.quantize(w.float().numpy())
    assert isinstance(t.packed, torch.Tensor) and t.packed.dtype == torch.uint8
    assert t.global_scale == rgs
    np.testing.assert_array_equal(t.block_scales.numpy(), rs)
    np.testing.assert_array_equal(t.packed.numpy(), rp)
    for kernel in KERNELS:
        packed, scales, _ = _quantize_raw(w.view(torch.int16).numpy().view(np.uint16), kernel, dtype="bfloat16")
        np.testing.assert_array_equal(packed, rp)


@pytest.mark.parametrize("kernel", KERNELS)
def test_quantize_dequantize_error_bounds(kernel):
    rng = _rng(6)
    w = rng.standard_normal((64, 1024)).astype(np.float32) * np.float32(3.0)
    packed, scales, gs = _quantize_raw(w, kernel)
    dq = ref.dequantize64(packed, scales, gs)
    s = np.repeat(ref.E4M3_TABLE[scales] * gs, 16, axis=1)
    err = np.abs(w - dq)
    # Within a block the E2M1 grid spacing is at most 2 * s; rounding to nearest keeps |x - q| <= s, and the
    # saturation loss (the E4M3 scale rounds down by at most 1/16) is at most 0.375 * s.
    assert np.all(err <= s * (1 + 1e-6))
    # Finer: where |x| / s < 2 the grid step is 0.5 s, so the error is at most s / 4.
    small = np.abs(w) / s < 2
    assert np.all(err[small] <= s[small] * 0.25 * (1 + 1e-6))
    rel = np.linalg.norm(w - dq) / np.linalg.norm(w)
    assert 0.02 < rel < 0.15  # ~4-bit quantization of Gaussian data: about 10 % relative RMS error


@pytest.mark.parametrize("kernel", KERNELS)
def test_degenerate_tiny_global_scale_does_not_crash(kernel):
    # amax so small that amax / 2688 underflows to 0: scales clamp and codes saturate or stay zero, no crash.
    w = np.zeros((1, 16), np.float32)
    w[0, 0] = np.float32(1e-44)
    w[0, 1] = np.float32(-1e-44)
    packed, scales, gs = _quantize_raw(w, kernel)
    rp, rs, rgs = ref.quantize(w)
    assert gs == rgs == 0.0
    np.testing.assert_array_equal(packed, rp)
    np.testing.assert_array_equal(scales, rs)


# ------------------------------------------------------------------------------------------ dequantize


def _bf16_round(values64):
    """Correctly rounded fp64 -> bf16 (as float64), by hand: 8 significant bits, ties to even."""
    out = np.empty_like(values64)
    for i, v in enumerate(values64.ravel()):
        if v == 0 or not math.isfinite(v):
            out.ravel()[i] = v
            continue
        m, e = math.frexp(v)
        out.ravel()[i] = math.ldexp(round(m * 256), e - 8)
    return out


def test_dequantize_is_exact_in_every_dtype():
    rng = _rng(7)
    w = (rng.standard_normal((16, 256)) * np.exp2(rng.integers(-20, 12, (16, 1)))).astype(np.float32)
    t = nvfp4.quantize(w)
    exact = ref.dequantize64(t.packed, t.block_scales, t.global_scale)
    np.testing.assert_array_equal(nvfp4.dequantize(t), exact.astype(np.float32))
    np.testing.assert_array_equal(nvfp4.dequantize(t, np.float16), exact.astype(np.float16))
    torch = pytest.importorskip("torch")
    tt = nvfp4.quantize(torch.from_numpy(w))
    bf = nvfp4.dequantize(tt, torch.bfloat16)
    assert bf.dtype == torch.bfloat16
    np.testing.assert_array_equal(bf.double().numpy(), _bf16_round(exact))
    np.testing.assert_array_equal(nvfp4.dequantize(tt, torch.float16).numpy(), exact.astype(np.float16))


# ------------------------------------------------------------------------------------------ gemv


def _relerr(y, y_ref):
    return float(np.max(np.abs(y.astype(np.float64) - y_ref)) / np.max(np.abs(y_ref)))


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("m", [1, 2, 5, 8, 16, 19])
def test_gemv_matches_fp64_reference(kernel, m):
    rng = _rng(10 + m)
    w = rng.standard_normal((75, 1040)).astype(np.float32)  # odd N (a lone last row), odd number of blocks
    x = rng.standard_normal((m, 1040)).astype(np.float32)
    packed, scales, gs = _quantize_raw(w, kernel)
    y = _gemv_raw(packed, scales, gs, x, kernel)
    y_ref = x.astype(np.float64) @ ref.dequantize64(packed, scales, gs).T
    assert _relerr(y, y_ref) <= 1e-5
    bound = np.abs(x.astype(np.float64)) @ np.abs(ref.dequantize64(packed, scales, gs)).T
    assert np.all(np.abs(y - y_ref) <= 1e-5 * bound + 1e-30)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("k", [16, 32, 48, 64, 80, 96, 112, 4096 + 48])
@pytest.mark.parametrize("m", [1, 2, 3, 4, 5, 8])
def test_gemv_every_block_count_remainder(kernel, k, m):
    # The AVX2 M=1 kernel steps 4 blocks at a time, then 2, then 1; M=2..4 take 2 weight rows at a time; M>4
    # decodes chunks of 32 blocks (2 at a time, then 1) and runs tiles of up to 4 activation rows over them.
    # Block counts 1-7 and 259 hit every remainder; 7 rows leave a lone last row.
    rng = _rng(1000 + k + m)
    w = (rng.standard_normal((7, k)) * rng.uniform(0.01, 100, (7, 1)).repeat(k, 1)).astype(np.float32)
    x = rng.standard_normal((m, k)).astype(np.float32)
    packed, scales, gs = _quantize_raw(w, kernel)
    wq = ref.dequantize64(packed, scales, gs)
    y = _gemv_raw(packed, scales, gs, x, kernel)
    y_ref = x.astype(np.float64) @ wq.T
    bound = np.abs(x.astype(np.float64)) @ np.abs(wq).T
    assert np.all(np.abs(y - y_ref) <= 1e-5 * bound + 1e-30)
    # Each output depends only on its own weight row and activation row (no cross-talk between the rows a
    # tile shares): a single row alone gives the same value.
    for i in range(m):
        yi = _gemv_raw(packed[3:4], scales[3:4], gs, x[i:i + 1], kernel)
        np.testing.assert_allclose(yi[0, 0], y[i, 3], rtol=1e-5, atol=1e-5 * bound[i, 3])


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("m", [1, 3])
def test_gemv_thread_counts_give_the_same_rows(threads, m):
    # 1537 x 4096 is ~6.3M weights: enough that up to 3 threads really split the rows (the driver uses a
    # thread per ~1M weights); 1537 rows leave uneven chunks and a lone last row.
    rng = _rng(2000 + m)
    n, k = 1537, 4096
    w = rng.standard_normal((n, k)).astype(np.float32)
    x = rng.standard_normal((m, k)).astype(np.float32)
    packed, scales, gs = _quantize_raw(w, "auto")
    y = np.empty((m, n), np.float32)
    C.gemv(packed, scales, gs, x, "float32", y, None, "bf16", None, "auto", threads)
    y1 = np.empty((m, n), np.float32)
    C.gemv(packed, scales, gs, x, "float32", y1, None, "bf16", None, "auto", 1)
    np.testing.assert_array_equal(y, y1)  # each row is computed by one thread, in the same order
    wq = ref.dequantize64(packed, scales, gs)
    assert _relerr(y, x.astype(np.float64) @ wq.T) <= 1e-5


def test_gemv_many_threads_give_the_same_bytes_as_one():
    # 4096 x 4096 (16.8M weights) lets the driver use up to 16 threads (a thread per ~1M weights): the
    # calling thread plus 15 pool helpers woken in a tree, each computing whole rows in chunks, with the
    # scale / bias / narrowing done in the chunks. Every output must be bit-identical to the one-thread call
    # for every M path (1; 2..4 register tiles; > 4 scratch path; > 16 tiles), with bias, float16 output and
    # W4A4; thread counts that do not divide the rows evenly included.
    rng = _rng(2050)
    n, k = 4096 + 8 * 3 + 5, 4096
    w = rng.standard_normal((n, k)).astype(np.float32)
    packed, scales, gs = _quantize_raw(w, "auto")
    kernels = [kn for kn in KERNELS if kn != "scalar"] or ["scalar"]
    cases = [(m, dt, b, act) for m in (1, 3, 17) for dt in ("float32", "float16") for b in (False, True)
             for act in ("bf16",)] + [(1, "float32", False, "nvfp4"), (5, "float16", True, "nvfp4")]
    for kernel in kernels:
        for m, dt, with_bias, act in cases:
            x = rng.standard_normal((m, k)).astype(dt)
            bias = rng.standard_normal(n).astype(dt) if with_bias else None
            ys = []
            for threads in (1, 16, 7, 2):
                y = np.empty((m, n), dt)
                C.gemv(packed, scales, gs, x, dt, y, bias, act, None, kernel, threads)
                ys.append(y)
            for y in ys[1:]:
                np.testing.assert_array_equal(y, ys[0], err_msg=f"{kernel} m={m} {dt} bias={with_bias} {act}")
            if act == "bf16" and dt == "float32" and not with_bias:
                wq = ref.dequantize64(packed, scales, gs)
                assert _relerr(ys[0], x.astype(np.float64) @ wq.T) <= 1e-5


def test_gemv_pool_survives_idle_gaps_and_concurrent_wakes():
    # Calls separated by pauses longer than the helpers' polling time (so they sleep and must be woken
    # through the tree), alternating thread counts, and several callers waking the pool at once: every call
    # returns (no lost job hangs a caller) and gives the one-thread result.
    import concurrent.futures
    import time

    rng = _rng(2060)
    n, k = 2048, 4096 * 2  # 16.8M weights: up to 16 threads
    packed, scales, gs = _quantize_raw(rng.standard_normal((n, k)).astype(np.float32), "auto")
    x = rng.standard_normal((1, k)).astype(np.float32)
    y1 = np.empty((1, n), np.float32)
    C.gemv(packed, scales, gs, x, "float32", y1, None, "bf16", None, "auto", 1)

    def run(threads, pause):
        time.sleep(pause)
        y = np.empty((1, n), np.float32)
        C.gemv(packed, scales, gs, x, "float32", y, None, "bf16", None, "auto", threads)
        return y

    for threads in (16, 4, 16, 9, 16):
        np.testing.assert_array_equal(run(threads, 0.005), y1)
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        futures = [ex.submit(run, (3, 16, 8, 16)[i % 4], 0.003 * (i % 3)) for i in range(24)]
        for f in futures:
            np.testing.assert_array_equal(f.result(timeout=120), y1)


def test_gemv_concurrent_callers_and_fork_share_the_worker_pool():
    # The helper threads are kept between calls and shared by every caller: several Python threads (the GIL
    # is released in the kernels) calling at once, with different thread counts, must each get their own,
    # correct rows; a forked child gets a fresh pool and still computes correctly.
    import concurrent.futures

    rng = _rng(2100)
    n, k = 1100, 4096
    packed, scales, gs = _quantize_raw(rng.standard_normal((n, k)).astype(np.float32), "auto")
    xs = [rng.standard_normal((m, k)).astype(np.float32) for m in (1, 2, 1, 5, 1, 3)]

    def run(i):
        y = np.empty((xs[i].shape[0], n), np.float32)
        C.gemv(packed, scales, gs, xs[i], "float32", y, None, "bf16", None, "auto", 1 + i % 3)
        return y

    expected = []
    for i in range(len(xs)):
        y1 = np.empty((xs[i].shape[0], n), np.float32)
        C.gemv(packed, scales, gs, xs[i], "float32", y1, None, "bf16", None, "auto", 1)
        expected.append(y1)
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        for _ in range(5):
            for i, y in enumerate(ex.map(run, range(len(xs)))):
                np.testing.assert_array_equal(y, expected[i])
    if hasattr(os, "fork"):
        # Forked in a fresh interpreter, not this one: forking pytest's process (torch and OpenMP thread pools
        # loaded) is unsafe for reasons that have nothing to do with this library.
        code = """
import os, signal, numpy as np
from reset_native import _core
C = _core.nvfp4
rng = np.random.default_rng(0)
w = rng.standard_normal((1100, 4096)).astype(np.float32)
p = np.empty((1100, 2048), np.uint8); s = np.empty((1100, 256), np.uint8)
gs = C.quantize(w, "float32", p, s, None)
x = rng.standard_normal((2, 4096)).astype(np.float32)
def run(threads):
    y = np.empty((2, 1100), np.float32)
    C.gemv(p, s, gs, x, "float32", y, None, "bf16", None, "auto", threads)
    return y
y1 = run(1); run(3)  # the parent's pool is started before the fork
pid = os.fork()
if pid == 0:
    signal.alarm(60)
    os._exit(0 if np.array_equal(run(3), y1) else 1)
_, status = os.waitpid(pid, 0)
raise SystemExit(0 if status == 0 and np.array_equal(run(3), y1) else 1)
"""
        import subprocess
        import sys
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr


def test_gemv_public_api_dtypes_bias_and_vector_input():
    rng = _rng(20)
    w = rng.standard_normal((40, 256)).astype(np.float32)
    t = nvfp4.quantize(w)
    wq = ref.dequantize64(t.packed, t.block_scales, t.global_scale)
    x = rng.standard_normal((3, 256)).astype(np.float32)
    bias = rng.standard_normal(40).astype(np.float32)
    y = nvfp4.gemv(t, x, bias=bias)
    assert y.shape == (3, 40) and y.dtype == np.float32
    assert _relerr(y, x.astype(np.float64) @ wq.T + bias) <= 1e-5
    yv = nvfp4.gemv(t, x[1])
    assert yv.shape == (40,)
    assert _relerr(yv, x[1].astype(np.float64) @ wq.T) <= 1e-5
    x16 = x.astype(np.float16)
    y16 = nvfp4.gemv(t, x16, bias=bias.astype(np.float16))
    assert y16.dtype == np.float16
    y16_ref = x16.astype(np.float64) @ wq.T + bias.astype(np.float16)
    np.testing.assert_allclose(y16.astype(np.float64), y16_ref, rtol=2e-3, atol=2e-3 * np.max(np.abs(y16_ref)))


def test_gemv_bfloat16_torch():
    torch = pytest.importorskip("torch")
    g = torch.Generator().manual_seed(21)
    t = nvfp4.quantize(torch.randn(48, 512, generator=g, dtype=torch.bfloat16))
    x = torch.randn(4, 512, generator=g).to(torch.bfloat16)
    y = nvfp4.gemv(t, x)
    assert y.dtype == torch.bfloat16 and y.shape == (4, 48)
    wq = ref.dequantize64(t.packed.numpy(), t.block_scales.numpy(), t.global_scale)
    y_ref = x.double().numpy() @ wq.T
    # fp32 accumulation then one bf16 rounding: within half a bf16 ulp (2^-8 relative) plus accumulation.
    np.testing.assert_allclose(y.double().numpy(), y_ref, rtol=2 ** -8 + 1e-5, atol=1e-5 * np.abs(y_ref).max())


def _w4a4_reference(w, x, act_gs=None):
    wp, ws, wgs = ref.quantize(w)
    xp, xs, xgs = ref.quantize(x, act_gs)  # the whole x shares one global scale
    return ref.dequantize64(xp, xs, xgs) @ ref.dequantize64(wp, ws, wgs).T


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("m", [1, 4, 16])
def test_w4a4_matches_fp64_reference_of_independently_quantized_operands(kernel, m):
    rng = _rng(30 + m)
    w = rng.standard_normal((64, 512)).astype(np.float32)
    x = (rng.standard_normal((m, 512)) * np.exp2(rng.integers(-3, 3, (m, 1)))).astype(np.float32)
    packed, scales, gs = _quantize_raw(w, kernel)
    for act_gs in (None, 0.01):
        y = _gemv_raw(packed, scales, gs, x, kernel, activation="nvfp4", act_gs=act_gs)
        y_ref = _w4a4_reference(w, x, act_gs)
        assert _relerr(y, y_ref) <= 1e-5
    # W4A4 really quantizes x: it differs from W4A16 by about the activation quantization error.
    y16 = _gemv_raw(packed, scales, gs, x, kernel)
    assert 1e-4 < _relerr(y, y16) < 0.5


def test_w4a4_public_api():
    rng = _rng(40)
    w = rng.standard_normal((32, 256)).astype(np.float32)
    x = rng.standard_normal((2, 256)).astype(np.float32)
    t = nvfp4.quantize(w)
    y = nvfp4.gemv(t, x, activation="nvfp4")
    assert _relerr(y, _w4a4_reference(w, x)) <= 1e-5
    y_static = nvfp4.gemv(t, x, activation="nvfp4", act_global_scale=0.002)
    assert _relerr(y_static, _w4a4_reference(w, x, 0.002)) <= 1e-5


@pytest.mark.parametrize("kernel", [k for k in KERNELS if k != "scalar"])
def test_simd_paths_agree_with_scalar(kernel):
    rng = _rng(50)
    w = (rng.standard_normal((100, 2048)) * 5).astype(np.float32)
    a = _quantize_raw(w, "scalar")
    b = _quantize_raw(w, kernel)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    for m in (1, 3, 16):
        x = rng.standard_normal((m, 2048)).astype(np.float32)
        ys = _gemv_raw(*a, x, "scalar")
        yv = _gemv_raw(*a, x, kernel)
        np.testing.assert_allclose(yv, ys, rtol=1e-5, atol=1e-5 * np.abs(ys).max())


@pytest.mark.parametrize("kernel", KERNELS)
def test_gemv_every_group_remainder_and_m_1_to_17(kernel):
    # The AVX-512 kernels take 16 blocks (256 weights) per step and finish a row with a partial group of
    # 1..15 blocks; M = 1 has its own kernel, M = 2..16 one tile each, M = 17 a tile of 16 plus one of 1.
    # Block counts 1..17 and 31..33 give every remainder with zero, one and two whole groups.
    rng = _rng(3000)
    for blocks in list(range(1, 18)) + [31, 32, 33]:
        k = 16 * blocks
        w = (rng.standard_normal((3, k)) * rng.uniform(0.01, 100, (3, 1))).astype(np.float32)
        packed, scales, gs = _quantize_raw(w, "scalar")
        wq = ref.dequantize64(packed, scales, gs)
        x = rng.standard_normal((17, k)).astype(np.float32)
        for m in range(1, 18):
            y = _gemv_raw(packed, scales, gs, x[:m], kernel)
            y_ref = x[:m].astype(np.float64) @ wq.T
            bound = np.abs(x[:m].astype(np.float64)) @ np.abs(wq).T
            assert np.all(np.abs(y - y_ref) <= 1e-5 * bound + 1e-30), (blocks, m)


@pytest.mark.parametrize("kernel", KERNELS)
def test_gemv_every_scale_byte(kernel):
    # from_parts accepts any scale byte: negative scales, subnormal ones (exponent 0) and the NaN bytes 0x7F /
    # 0xFF must decode as the spec says in every kernel (the AVX-512 one decodes them arithmetically).
    rng = _rng(3100)
    scales = np.arange(256, dtype=np.uint8).reshape(8, 32)  # 8 rows of 32 blocks, every byte once
    packed = rng.integers(0, 256, (8, 32 * 8), dtype=np.uint8)
    x = rng.standard_normal((2, 512)).astype(np.float32)
    wq = ref.dequantize64(packed, scales, 1.0)
    nan_rows = np.isnan(wq).any(axis=1)
    assert nan_rows.tolist() == [False] * 3 + [True] + [False] * 3 + [True]
    for m in (1, 2):
        y = _gemv_raw(packed, scales, 1.0, x[:m], kernel)
        assert np.all(np.isnan(y[:, nan_rows]))
        y_ref = x[:m].astype(np.float64) @ wq[~nan_rows].T
        bound = np.abs(x[:m].astype(np.float64)) @ np.abs(wq[~nan_rows]).T
        assert np.all(np.abs(y[:, ~nan_rows] - y_ref) <= 1e-5 * bound + 1e-30)


@pytest.mark.parametrize("isa", ALL_ISAS)
def test_cpu_isa_environment_variable_forces_a_path(isa, monkeypatch):
    rng = _rng(3200)
    w = rng.standard_normal((40, 4096 + 48)).astype(np.float32)
    t = nvfp4.quantize(w)
    x = rng.standard_normal((3, w.shape[1])).astype(np.float32)
    monkeypatch.setenv("RESET_NATIVE_CPU_ISA", isa)
    if isa not in KERNELS:
        with pytest.raises(NotImplementedError, match=f"RESET_NATIVE_CPU_ISA={isa} but this CPU lacks"):
            nvfp4.gemv(t, x)
        with pytest.raises(NotImplementedError):
            nvfp4.cpu_info()
        return
    assert nvfp4.cpu_info()["kernel"] == isa
    y = nvfp4.gemv(t, x)
    # The same code path as asking for it explicitly: identical bytes.
    np.testing.assert_array_equal(y, _gemv_raw(t.packed, t.block_scales, t.global_scale, x, isa))
    monkeypatch.setenv("RESET_NATIVE_CPU_ISA", "auto")
    assert nvfp4.cpu_info()["kernel"] == KERNELS[-1]  # the widest path this CPU has


def test_cpu_isa_environment_variable_rejects_unknown_values(monkeypatch):
    t = nvfp4.quantize(np.ones((2, 16), np.float32))
    monkeypatch.setenv("RESET_NATIVE_CPU_ISA", "sse9")
    with pytest.raises(ValueError, match="RESET_NATIVE_CPU_ISA must be auto, scalar, avx2 or avx512, got 'sse9'"):
        nvfp4.gemv(t, np.ones(16, np.float32))


def test_cpu_info_reports_threads_and_paths():
    info = nvfp4.cpu_info()
    assert info["available"] == KERNELS
    assert info["kernel"] in KERNELS
    assert info["threads"] >= 1
    if not os.environ.get("OMP_NUM_THREADS"):  # else exactly the count the user chose
        assert info["threads"] <= max(1, info["logical_cpus"])
        if info["physical_cores"] > 0:
            assert info["threads"] <= info["physical_cores"]


# ------------------------------------------------------------------------------------------ numpy / torch


def test_numpy_and_torch_give_identical_bytes():
    torch = pytest.importorskip("torch")
    rng = _rng(60)
    for dtype, tdtype in ((np.float32, torch.float32), (np.float16, torch.float16)):
        w = (rng.standard_normal((30, 512)) * 7).astype(dtype)
        a = nvfp4.quantize(w)
        b = nvfp4.quantize(torch.from_numpy(w.copy()))
        assert isinstance(a.packed, np.ndarray) and isinstance(b.packed, torch.Tensor)
        assert a.device == "cpu" and b.device == torch.device("cpu")
        assert a.global_scale == b.global_scale
        np.testing.assert_array_equal(a.packed, b.packed.numpy())
        np.testing.assert_array_equal(a.block_scales, b.block_scales.numpy())
        x = rng.standard_normal((3, 512)).astype(dtype)
        ya = nvfp4.gemv(a, x)
        yb = nvfp4.gemv(b, torch.from_numpy(x.copy()))
        assert yb.dtype == tdtype
        np.testing.assert_array_equal(ya, yb.numpy())
        np.testing.assert_array_equal(nvfp4.dequantize(a), nvfp4.dequantize(b).numpy())


def test_torch_tensor_requiring_grad_is_accepted():
    torch = pytest.importorskip("torch")
    w = torch.randn(8, 64, requires_grad=True)
    t = nvfp4.quantize(w)
    np.testing.assert_array_equal(t.packed.numpy(), ref.quantize(w.detach().numpy())[0])


def test_from_parts_accepts_float8_scales_and_reports_shape():
    torch = pytest.importorskip("torch")
    if not hasattr(torch, "float8_e4m3fn"):
        pytest.skip("torch without float8")
    t = nvfp4.quantize(torch.randn(4, 32))
    t2 = nvfp4.NVFP4Tensor.from_parts(t.packed, t.block_scales.view(torch.float8_e4m3fn), t.global_scale)
    assert t2.shape == (4, 32) and t2.block_scales.dtype == torch.uint8
    assert t2.nbytes == 4 * 16 + 4 * 2
    assert "NVFP4Tensor(shape=(4, 32)" in repr(t2)
    torch.testing.assert_close(nvfp4.dequantize(t2), nvfp4.dequantize(t))


# ------------------------------------------------------------------------------------------ layouts


@pytest.mark.parametrize("rows, cols", [(1, 1), (128, 4), (130, 5), (300, 12)])
def test_swizzle_matches_formula_and_round_trips(rows, cols):
    linear = _rng(rows).integers(0, 127, (rows, cols), dtype=np.uint8)
    sw = nvfp4.swizzle_block_scales(linear)
    assert sw.shape == (-(-rows // 128) * 128, -(-cols // 4) * 4)
    np.testing.assert_array_equal(sw.ravel(), ref.swizzle(linear))
    np.testing.assert_array_equal(nvfp4.unswizzle_block_scales(sw, linear.shape), linear)
    np.testing.assert_array_equal(nvfp4.unswizzle_block_scales(sw.ravel(), linear.shape), linear)


def test_swizzle_torch_cpu():
    torch = pytest.importorskip("torch")
    linear = torch.randint(0, 127, (200, 6), dtype=torch.uint8)
    sw = nvfp4.swizzle_block_scales(linear)
    assert isinstance(sw, torch.Tensor)
    np.testing.assert_array_equal(sw.numpy().ravel(), ref.swizzle(linear.numpy()))
    assert torch.equal(nvfp4.unswizzle_block_scales(sw, (200, 6)), linear)


def test_mixed_cpu_kinds_and_large_m():
    torch = pytest.importorskip("torch")
    rng = _rng(70)
    w = rng.standard_normal((24, 128)).astype(np.float32)
    t = nvfp4.quantize(torch.from_numpy(w))
    wq = ref.dequantize64(t.packed.numpy(), t.block_scales.numpy(), t.global_scale)
    x = rng.standard_normal((40, 128)).astype(np.float32)  # M > 16: several activation tiles
    y = nvfp4.gemv(t, x)  # torch weights, numpy activations: the result follows x
    assert isinstance(y, np.ndarray) and y.shape == (40, 24)
    assert _relerr(y, x.astype(np.float64) @ wq.T) <= 1e-5
    yt = nvfp4.gemv(t, torch.from_numpy(x[0]))
    assert isinstance(yt, torch.Tensor) and yt.shape == (24,)
    assert _relerr(yt.numpy(), x[0].astype(np.float64) @ wq.T) <= 1e-5


def test_w4a4_all_zero_activations_and_static_scale_saturation():
    t = nvfp4.quantize(_rng(71).standard_normal((8, 64)).astype(np.float32))
    y = nvfp4.gemv(t, np.zeros((2, 64), np.float32), activation="nvfp4")
    np.testing.assert_array_equal(y, 0)
    # A static activation scale far too small saturates every activation to +-6 * 448 * gx, as specified.
    x = np.full((1, 64), 5.0, np.float32)
    xp, xs, _ = ref.quantize(x, 1e-4)
    assert np.all(xs == 0x7E) and np.all(xp == 0x77)
    y = nvfp4.gemv(t, x, activation="nvfp4", act_global_scale=1e-4)
    assert _relerr(y, _w4a4_reference(nvfp4.dequantize(t).astype(np.float32), x, 1e-4)) < 0.2
    y_exact = ref.dequantize64(xp, xs, 1e-4) @ ref.dequantize64(t.packed, t.block_scales, t.global_scale).T
    assert _relerr(y, y_exact) <= 1e-5


def test_module_works_without_torch():
    import subprocess
    import sys

    code = ("import sys; sys.modules['torch'] = None\n"  # makes `import torch` fail
            "import numpy as np\n"
            "from reset_native import nvfp4\n"
            "t = nvfp4.quantize(np.ones((2, 16), np.float32))\n"
            "assert nvfp4.gemv(t, np.ones(16, np.float32)).shape == (2,)\n"
            "assert 'torch' not in sys.modules or sys.modules['torch'] is None\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_multithreaded_paths_match_single_threaded_and_fp64():
    # Big enough that quantize, dequantize and gemv split the work over threads (>= 1M weights per thread).
    rng = _rng(80)
    n, k = 1024, 2048
    w = rng.standard_normal((n, k)).astype(np.float32)
    packed = np.empty((n, k // 2), np.uint8)
    scales = np.empty((n, k // 16), np.uint8)
    gs = C.quantize(w, "float32", packed, scales, None, "auto", 0)
    for kernel in KERNELS:
        p1, s1, g1 = np.empty_like(packed), np.empty_like(scales), None
        g1 = C.quantize(w, "float32", p1, s1, None, kernel, 1)
        assert g1 == gs
        np.testing.assert_array_equal(p1, packed)
        np.testing.assert_array_equal(s1, scales)
    wq = ref.dequantize64(packed, scales, gs)
    out = np.empty((n, k), np.float32)
    C.dequantize(packed, scales, gs, out, "float32", "auto", 0)
    np.testing.assert_array_equal(out, wq.astype(np.float32))
    for m in (1, 5):
        x = rng.standard_normal((m, k)).astype(np.float32)
        y = np.empty((m, n), np.float32)
        C.gemv(packed, scales, gs, x, "float32", y, None, "bf16", None, "auto", 4)
        assert _relerr(y, x.astype(np.float64) @ wq.T) <= 1e-5
