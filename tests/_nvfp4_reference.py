"""An independent, straightforward numpy re-implementation of SPEC-nvfp4 (no reset_native code), used by the
tests as the bit-exact reference: decoding from the fp64 bit-field formulas, encoding by nearest-value search
over all representable values with explicit tie handling, and fp32 arithmetic in the spec's order."""
from __future__ import annotations

import numpy as np

F32 = np.float32


def e2m1_value(code: int) -> float:
    """fp64 value of a 4-bit E2M1 code from its fields: sign, 2 exponent bits (bias 1), 1 mantissa bit."""
    sign = -1.0 if code & 8 else 1.0
    e, m = (code >> 1) & 3, code & 1
    mag = m * 0.5 if e == 0 else 2.0 ** (e - 1) * (1.0 + m / 2.0)
    return sign * mag


def e4m3_value(byte: int) -> float:
    """fp64 value of an FP8 E4M3 (fn) byte: 4 exponent bits (bias 7), 3 mantissa bits, S.1111.111 = NaN."""
    sign = -1.0 if byte & 0x80 else 1.0
    e, m = (byte >> 3) & 15, byte & 7
    if e == 15 and m == 7:
        return float("nan")
    mag = (m / 8.0) * 2.0 ** -6 if e == 0 else (1.0 + m / 8.0) * 2.0 ** (e - 7)
    return sign * mag


E2M1_TABLE = np.array([e2m1_value(c) for c in range(16)])
E4M3_TABLE = np.array([e4m3_value(b) for b in range(256)])
# Non-negative finite E4M3 values in increasing order; their bytes 0x00..0x7E are increasing too.
_E4M3_POS = E4M3_TABLE[:0x7F]


def e4m3_encode_rne(v: np.ndarray) -> np.ndarray:
    """Nearest E4M3 byte to each non-negative value <= 448; ties go to the even byte (even mantissa)."""
    v = np.asarray(v, dtype=np.float64)
    hi = np.clip(np.searchsorted(_E4M3_POS, v, side="left"), 0, 0x7E)
    lo = np.clip(hi - 1, 0, 0x7E)
    d_lo = np.abs(v - _E4M3_POS[lo])
    d_hi = np.abs(_E4M3_POS[hi] - v)
    pick = np.where(d_lo < d_hi, lo, np.where(d_hi < d_lo, hi, np.where(lo % 2 == 0, lo, hi)))
    return pick.astype(np.uint8)


_E2M1_POS = E2M1_TABLE[:8]


def e2m1_encode_rne(q: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """Nearest E2M1 magnitude code (ties to even code, saturating at 6, NaN -> 0) plus the given sign bit."""
    mag = np.abs(np.asarray(q, dtype=np.float64))
    mag = np.where(np.isnan(mag), 0.0, np.minimum(mag, 6.0))
    dist = np.abs(mag[..., None] - _E2M1_POS)  # [..., 8]
    best = dist.min(axis=-1, keepdims=True)
    candidates = dist == best
    # Among equally near codes prefer the even one (RNE); at most two are tied and they are adjacent.
    even_tied = candidates & (np.arange(8) % 2 == 0)
    code = np.where(even_tied.any(axis=-1), even_tied.argmax(axis=-1), candidates.argmax(axis=-1))
    return (code | np.where(negative, 8, 0)).astype(np.uint8)


def quantize(w: np.ndarray, global_scale: float | None = None):
    """Reference quantizer. w: float array [N, K] (float32, or float16 widened exactly). Returns
    (packed uint8 [N, K/2], block_scales uint8 [N, K/16], global_scale float)."""
    w = np.asarray(w).astype(np.float32)
    n, k = w.shape
    if global_scale is None:
        amax = F32(np.max(np.abs(w)))
        gs = F32(1.0) if amax == 0 else F32(amax / F32(2688.0))
    else:
        gs = F32(global_scale)
    blocks = w.reshape(n, k // 16, 16)
    amax_b = np.max(np.abs(blocks), axis=-1).astype(np.float32)
    d = F32(F32(6.0) * gs)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        bs = (amax_b / d).astype(np.float32)
    bs = np.where(np.isnan(bs), F32(2.0 ** -9), bs)
    bs = np.clip(bs, F32(2.0 ** -9), F32(448.0))
    scale_bytes = e4m3_encode_rne(bs)
    s = (E4M3_TABLE[scale_bytes].astype(np.float32) * gs).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        q = (blocks / s[..., None]).astype(np.float32)
    codes = e2m1_encode_rne(q, np.signbit(blocks)).reshape(n, k)
    packed = (codes[:, 0::2] | (codes[:, 1::2] << 4)).astype(np.uint8)
    return packed, scale_bytes.reshape(n, k // 16), float(gs)


def unpack_codes(packed: np.ndarray) -> np.ndarray:
    n, half = packed.shape
    codes = np.empty((n, 2 * half), dtype=np.uint8)
    codes[:, 0::2] = packed & 0xF
    codes[:, 1::2] = packed >> 4
    return codes


def dequantize64(packed: np.ndarray, block_scales: np.ndarray, global_scale: float) -> np.ndarray:
    """Exact fp64 values of an NVFP4 matrix."""
    codes = unpack_codes(np.asarray(packed))
    scales = np.repeat(E4M3_TABLE[np.asarray(block_scales)], 16, axis=1)
    return E2M1_TABLE[codes] * scales * float(global_scale)


def swizzle(linear: np.ndarray) -> np.ndarray:
    """128x4 layout straight from the SPEC offset formula (flat bytes)."""
    rows, cols = linear.shape
    rp, cp = -(-rows // 128) * 128, -(-cols // 4) * 4
    out = np.zeros(rp * cp, dtype=np.uint8)
    for r in range(rows):
        for c in range(cols):
            out[((r // 128) * (cp // 4) + c // 4) * 512 + (r % 32) * 16 + ((r % 128) // 32) * 4 + c % 4] = linear[r, c]
    return out
