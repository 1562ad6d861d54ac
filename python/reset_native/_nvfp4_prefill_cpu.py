"""Prefill (many tokens) of ``reset_native.nvfp4.gemv`` on the CPU: dequantize + BLAS instead of the GEMV kernels.

The CPU GEMV kernels (cpp/src/nvfp4/) decode every weight once per call and are built for decode-sized M, where
reading the weights is the cost. From :data:`MIN_TOKENS` tokens the multiply-adds are, and a BLAS sgemm does them
several times faster (session 26 on the 2-vCPU development VM: 1.35-2.19x at 48 tokens, 2.55-3.77x at 128,
3.79-6.51x at 256; bench/bench_nvfp4_cpu_prefill.py, bench/RESULTS.md "Session 26, CPU prefill"). So calls from
that size (W4A16 and W4A4) expand the weights into float32 a chunk of rows at a time (at most :data:`CHUNK_BYTES`)
and multiply with numpy's matmul (torch's for torch tensors).

Same semantics as the kernels: the rows are expanded *without* the global scale (e2m1 * e4m3, exact in float32),
x is widened to float32, y = (x @ W_local^T) * gs + bias in float32 and rounded once to x's dtype; only the order of
the fp32 sums differs. Torch CPU tensors multiply with torch's matmul (see gemm); their result does not require grad,
like the kernels'. W4A4 (session 26) quantizes x first with the C++ quantizer and multiplies its exact values
(:func:`w4a4_operand`), with gw * gx as the scale; an x with a NaN / Inf goes to the kernels, which raise the error.
``RESET_NATIVE_GEMV_PREFILL`` = ``slices`` (the kernels) | ``dequant`` forces a route, as on CUDA.
Nothing here imports torch (it is used only when the caller passes a torch tensor).
"""
import os
import sys

import numpy as np

from . import _core

#: Fewest tokens that take the dequantize + BLAS route on the CPU. On the development VM every layer measured was
#: 0.93-1.53x at 32 tokens and 1.35-2.19x at 48 (bench/RESULTS.md "Session 26, CPU prefill").
MIN_TOKENS = 48
#: Most bytes of float32 weights expanded at once.
CHUNK_BYTES = 32 << 20
#: Chunks of fewer values are expanded on the calling thread (see gemm).
SMALL_CHUNK = 1 << 20
ROUTES = ("auto", "slices", "dequant", "mid")  # "mid" is the CUDA medium-M GEMM; on the CPU it means auto


def forced_route() -> str:
    """RESET_NATIVE_GEMV_PREFILL ('auto' when unset or empty); a bad value raises naming the variable."""
    forced = os.environ.get("RESET_NATIVE_GEMV_PREFILL", "auto") or "auto"
    if forced not in ROUTES:
        raise ValueError(f"RESET_NATIVE_GEMV_PREFILL must be one of {ROUTES}, got {forced!r}")
    return forced


def use_route(m: int, activation: str) -> bool:
    """Whether an M-token CPU call (activation 'bf16' or 'nvfp4') takes the dequantize + BLAS route."""
    forced = forced_route()
    if forced == "slices":
        return False
    return forced == "dequant" or m >= MIN_TOKENS


def w4a4_operand(x32: np.ndarray, act_gs):
    """W4A4's activation operand: (the values of x32 [M, K] float32 quantized with the activation global scale gx,
    *without* gx (e2m1 * e4m3, exact), gx), gx = act_gs or amax(|x|) / 2688 as the kernels compute it (the C++
    quantizer itself); None when x has a NaN / Inf, so that the caller runs the kernels, which raise their error
    naming the element."""
    if not np.isfinite(x32).all():
        return None
    m, k = x32.shape
    codes = np.empty((m, k // 2), dtype=np.uint8)
    scales = np.empty((m, k // 16), dtype=np.uint8)
    gx = _core.nvfp4.quantize(x32, "float32", codes, scales, act_gs)
    values = np.empty((m, k), dtype=np.float32)
    _core.nvfp4.dequantize(codes, scales, 1.0, values, "float32")
    return values, float(gx)


def gemm(packed: np.ndarray, block_scales: np.ndarray, global_scale: float, x32, bias32,
         chunk_bytes: int = CHUNK_BYTES) -> np.ndarray:
    """y [M, N] float32 numpy = global_scale * (x32 @ W_local^T) + bias32, from the packed weights (numpy, [N, K/2]
    and [N, K/16] uint8, checked by the caller), x32 [M, K] float32 (numpy, or a torch CPU tensor: torch's matmul
    then, on the threads torch's other ops of the model use; numpy's BLAS beside them made a whole SmolLM2 prefill
    3x slower on the 2-vCPU development VM, its thread pool and torch's spinning on the same cores) and bias32 [N]
    float32 numpy or None."""
    if isinstance(x32, np.ndarray):
        def product(part, out):
            np.matmul(x32, part.T, out=out)
    else:
        torch = sys.modules["torch"]

        def product(part, out):
            out[...] = torch.matmul(x32, torch.from_numpy(part).T).numpy()
    n, half_k = packed.shape
    k = 2 * half_k
    rows = max(1, min(n, chunk_bytes // (4 * k)))
    w = np.empty((rows, k), dtype=np.float32)  # one chunk of expanded rows, reused
    y = np.empty((x32.shape[0], n), dtype=np.float32)
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        part = w[:r1 - r0]
        # exact; small chunks on the calling thread alone: waking reset_native's worker pool right after BLAS's
        # threads (both spin a while when idle) looked like the cause of 3-4 ms stalls on the 2-vCPU development VM
        # (session 26; one stall came after this change too, bench/RESULTS.md "Session 26, CPU prefill")
        threads = 1 if part.size < SMALL_CHUNK else 0
        _core.nvfp4.dequantize(packed[r0:r1], block_scales[r0:r1], 1.0, part, "float32", "auto", threads)
        product(part, y[:, r0:r1])
    y *= np.float32(global_scale)
    if bias32 is not None:
        y += bias32
    return y
