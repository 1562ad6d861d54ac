"""Prefill (M > 16 tokens) of ``reset_native.nvfp4.gemv`` on CUDA: dequantize + cuBLAS instead of GEMV slices.

The GEMV kernels take at most 16 tokens per launch and read the whole weight each time, so a 2048-token prompt run
as 16-token slices reads it 128 times on CUDA cores. From :data:`MIN_TOKENS` tokens, W4A16 with float16 / bfloat16
x instead expands the weight into x's dtype a chunk of rows at a time and multiplies each chunk on tensor cores
(``torch.addmm``, cuBLAS), the usual answer for prefill on GPUs without FP4 tensor cores.

Same semantics as the GEMV, one rounding: each chunk is expanded *without* the global scale. e2m1 * e4m3 has at
most 6 significant bits and lies in [2^-10, 2688], so it is exact in float16 and bfloat16; the global scale is the
GEMM's alpha and the bias goes to cuBLASLt's fp32 epilogue, so y = gs * (x @ W_local^T) + bias is rounded once.
Only the order of the fp32 sums differs from the GEMV's. cuBLAS follows torch's
``torch.backends.cuda.matmul.allow_{fp16,bf16}_reduced_precision_reduction`` flags (torch's default allows
reduced-precision split-K reductions, as for any torch matmul); set them False for fp32 reductions throughout.

W4A4 and float32 x keep the 16-token slices: W4A4's activation quantization runs inside the GEMV kernels (and on
Hopper it is an accuracy study, not a speed path), and float32 x would need an fp32 GEMM with 4-byte weights.

The expanded chunk is the only extra memory: at most :data:`CHUNK_BYTES`, plus each chunk's output until they are
joined when there is a bias or a torch.compile trace (which also keeps their fp32 GEMM outputs). An x that
requires grad keeps the slices (see :func:`route`). ``RESET_NATIVE_GEMV_PREFILL`` = ``slices`` | ``dequant`` forces a
route for A/B measurements (bench/bench_nvfp4_prefill.py); unset or ``auto``, the token count decides.
"""
import os

from . import _nvfp4_cuda
from . import _torch_launch as _launch

#: Fewest tokens that take the dequantize + GEMM route (H200 crossover, bench/RESULTS.md "Session 25").
MIN_TOKENS = 80
#: Most bytes of expanded weights alive at once. Smaller chunks cost time (32 MiB: up to 1.3x at 32-128 tokens, more
#: launches and smaller GEMMs; bench/bench_nvfp4_prefill.py --chunk-mib 32, bench/RESULTS.md "Session 25"); 256 MiB
#: expands most layers whole.
CHUNK_BYTES = 256 << 20
_ROUTES = ("auto", "slices", "dequant")


def route(m: int, n: int, activation: str, x) -> str:
    """'dequant' or 'slices' for an M > 16 call with N outputs; RESET_NATIVE_GEMV_PREFILL overrides the token-count
    rule. Fewer than 16 outputs keep the slices (see chunks()). An x that requires grad (grad mode on) keeps the
    slices: nvfp4.gemv has no autograd formula at any M (its op's backward raises), and a backward through the
    expanded weights would run in x's dtype on weights up to 2688 (float16 overflow). (A bias that requires grad
    alone does not: addmm differentiates it correctly; NVFP4Linear's bias is a buffer.)"""
    torch = _launch._torch()
    forced = os.environ.get("RESET_NATIVE_GEMV_PREFILL", "auto") or "auto"
    if forced not in _ROUTES:
        raise ValueError(f"RESET_NATIVE_GEMV_PREFILL must be one of {_ROUTES}, got {forced!r}")
    supported = activation == "bf16" and x.dtype in (torch.float16, torch.bfloat16) and n >= 16
    if not _launch.eager() and not hasattr(torch.ops.aten.mm, "dtype"):  # no fp32-output mm for a traced call
        supported = False
    if not supported or forced == "slices" or (x.requires_grad and torch.is_grad_enabled()):
        return "slices"
    return "dequant" if forced == "dequant" or m >= MIN_TOKENS else "slices"


def chunks(n: int, rows_fit: int):
    """[(r0, r1), ...] covering rows 0..n: multiples of 16 rows, at most rows_fit each (16 at least), and no chunk
    under 16 rows unless n is: a ragged tail joins the chunk before it. torch's addmm uses cuBLASLt's bias epilogue
    (fp32, one rounding) only for products at least two columns wide (``mat2_sizes[1] > 1`` in its CUDA Blas.cpp);
    narrower ones would add the bias after rounding."""
    rows = max(16, min(n, rows_fit) // 16 * 16)
    starts = list(range(0, n, rows))
    if len(starts) > 1 and n - starts[-1] < 16:
        starts.pop()
    return [(r0, starts[i + 1] if i + 1 < len(starts) else n) for i, r0 in enumerate(starts)]


def gemm(packed, block_scales, global_scale: float, x, bias, chunk_bytes: int = CHUNK_BYTES):
    """y [M, N] = global_scale * (x @ W_local^T) + bias in x's dtype; x [M, K] float16 / bfloat16, contiguous, on
    the weights' device (the caller has checked all of it). chunk_bytes bounds the expanded rows alive at once."""
    torch = _launch._torch()
    n, half_k = packed.shape
    k = 2 * half_k
    m = x.shape[0]
    # Eager calls: without a bias each chunk's GEMM writes its columns of y in place (beta = 0: one rounding of
    # alpha * AB); a bias goes through addmm's 1-D form, which cuBLASLt adds in its fp32 epilogue (the 2-D beta = 1
    # form and a separate add round alpha * AB first: bench/probes/addmm_bias_rounding.py, bench/RESULTS.md
    # "Session 25"), and the chunks are joined afterwards. A torch.compile trace may not keep addmm whole (inductor
    # added the bias after rounding: 12x the one-rounding bound, session 25), so it takes the GEMM's fp32 output and
    # scales, adds and rounds in fp32 itself (route() keeps traced calls on the slices where torch lacks that form).
    eager = _launch.eager()
    in_place = bias is None and eager
    y = torch.empty((m, n), dtype=x.dtype, device=x.device) if in_place else None
    pieces = []
    for r0, r1 in chunks(n, chunk_bytes // (k * x.element_size())):
        w = _nvfp4_cuda.dequantize(packed[r0:r1], block_scales[r0:r1], 1.0, x.dtype)
        if in_place:
            part = y[:, r0:r1]  # columns of y, row stride N: cuBLAS writes them where they stand
            torch.addmm(part, x, w.t(), beta=0, alpha=global_scale, out=part)
        elif eager:
            pieces.append(torch.addmm(bias[r0:r1], x, w.t(), alpha=global_scale))
        else:
            acc = torch.mm(x, w.t(), out_dtype=torch.float32) * global_scale
            pieces.append((acc if bias is None else acc + bias[r0:r1].float()).to(x.dtype))
        del w  # the chunk's memory is free for the next one
    return y if in_place else (pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=1))
