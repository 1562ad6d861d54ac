"""Prefill (M > 16 tokens) of ``reset_native.nvfp4.gemv`` on CUDA: dequantize + cuBLAS instead of GEMV slices.

The GEMV kernels take at most 16 tokens per launch and read the whole weight each time, so a 2048-token prompt run
as 16-token slices reads it 128 times on CUDA cores. From :data:`MIN_TOKENS` tokens, W4A16 with float16 / bfloat16
x (float32 x and W4A4: below) instead expands the weight into x's dtype a chunk of rows at a time and multiplies
each chunk on tensor cores (``torch.addmm``, cuBLAS), the usual answer for prefill on GPUs without FP4 tensor cores.

Same semantics as the GEMV, one rounding: each chunk is expanded *without* the global scale. e2m1 * e4m3 has at
most 6 significant bits and lies in [2^-10, 2688], so it is exact in float16 and bfloat16; the global scale is the
GEMM's alpha and the bias goes to cuBLASLt's fp32 epilogue, so y = gs * (x @ W_local^T) + bias is rounded once.
Only the order of the fp32 sums differs from the GEMV's. cuBLAS follows torch's
``torch.backends.cuda.matmul.allow_{fp16,bf16}_reduced_precision_reduction`` flags (torch's default allows
reduced-precision split-K reductions, as for any torch matmul); set them False for fp32 reductions throughout.

W4A4 (session 26) takes the route too, with x of any float dtype: x is first quantized with the call's activation
global scale gx (the GEMV kernels' bits: SPEC section 2 with gx as given) and expanded without gx, like the weights,
into bfloat16 (float16 for float16 x); both operands are then exact and the GEMM's alpha is gw * gx. Accuracy studies
of W4A4 on Hopper run whole prompts, so their prefill is where the time goes. A dynamic gx (amax(|x|) / 2688) is read
to the host once, as on the slices (:func:`act_global_scale`); rows of x with a NaN / Inf come out NaN (the GEMV
kernels give non-finite outputs there, never a silent number). W4A16 with float32 x (session 26) splits x exactly
into three bfloat16 parts, like the GEMV kernels (:func:`split_bf16`), runs them as 3M rows of one GEMM against the
bfloat16 chunk and sums the three fp32 results: fp32-accurate products at 3x the GEMM's rows, far below the slices.

The expanded chunk is the only extra memory: at most :data:`CHUNK_BYTES`, plus each chunk's output until they are
joined when there is a bias, a torch.compile trace or a float32 W4A4 output (which also keep their fp32 GEMM outputs),
and for W4A4 the quantized x expanded to 16 bits ([M, K], x's size or half of it). An x that
requires grad keeps the slices (see :func:`route`). ``RESET_NATIVE_GEMV_PREFILL`` = ``slices`` | ``dequant`` | ``mid``
forces a route for A/B measurements (bench/bench_nvfp4_prefill.py, bench/bench_nvfp4_mid.py); unset or ``auto``, the
token count decides.

Session 27 added the 'mid' route (:func:`mid_gemm`): 17..:data:`MID_MAX_TOKENS` tokens of 16-bit x with K % 128 == 0
run one medium-M GEMM that reads the weights once per 32, 64 or 128 tokens and decodes FP4 in registers (in sm_90a
builds the warp-specialised wgmma kernel of session 30, elsewhere mma.sync; docs/nvfp4_cuda.md "Medium M"); from
MID_MAX_TOKENS + 1 tokens those calls take the dequantize + cuBLAS route.
"""
import math

import numpy as np

from . import _nvfp4_cuda
from . import _nvfp4_prefill_cpu
from . import _torch_launch as _launch

#: Fewest tokens that take the dequantize + GEMM route (H200 crossover, bench/RESULTS.md "Session 25"; W4A4's,
#: "Session 26", is about the same).
MIN_TOKENS = 80
#: The same for W4A16 with float32 x, whose slices run three MMAs per weight fragment: the route won on every layer
#: from 32 tokens, the fewest measured (1.28-3.29x; bench/RESULTS.md "Session 26", call 3).
MIN_TOKENS_FP32 = 32
#: Most tokens the medium-M GEMM ("mid") takes; above, dequantize + cuBLAS (H200, bench/RESULTS.md "Session 27").
MID_MAX_TOKENS = 128
#: Most tokens the medium-M GEMM kernel itself takes (kGemmMidMaxTokens in nvfp4_cuda.hpp; a GPU test checks it):
#: RESET_NATIVE_GEMV_PREFILL=mid sends calls up to here to it.
MID_KERNEL_MAX_TOKENS = 1024
#: Most weight rows (kGemmMidMaxRows: 65535 row blocks of 256) and outputs M * N (kGemmMidMaxOutputs) it takes.
MID_KERNEL_MAX_ROWS = 65535 * 256
MID_KERNEL_MAX_OUTPUTS = 1 << 31
#: K must be a multiple of this for the medium-M GEMM (its K stage).
MID_K_MULTIPLE = 128
#: Most bytes of expanded weights alive at once. Smaller chunks cost time (32 MiB: up to 1.3x at 32-128 tokens, more
#: launches and smaller GEMMs; bench/bench_nvfp4_prefill.py --chunk-mib 32, bench/RESULTS.md "Session 25"); 256 MiB
#: expands most layers whole.
CHUNK_BYTES = 256 << 20


def route(m: int, n: int, activation: str, x, bias=None) -> str:
    """'mid', 'dequant' or 'slices' for an M > 16 call with N outputs (activation 'bf16' = W4A16 or 'nvfp4' = W4A4);
    RESET_NATIVE_GEMV_PREFILL overrides the token-count rule ('mid' up to the kernel's MID_KERNEL_MAX_TOKENS; where
    the kernel cannot take the call: the rule).
    'mid' (the medium-M GEMM, :func:`mid_gemm`) takes calls (W4A4: eager ones only) with float16 / bfloat16 x,
    K % 128 == 0 and up to :data:`MID_MAX_TOKENS` tokens, within the kernel's row and output limits, unless a bias
    records autograd (the kernel has no gradient; addmm gives the bias one). Fewer than 16 outputs keep the slices on
    the dequantize route (see chunks()).
    An x that requires grad (grad mode on) keeps the slices: nvfp4.gemv has no autograd formula at any M (its op's
    backward raises), and a backward through the expanded weights would run in x's dtype on weights up to 2688
    (float16 overflow). (A bias that requires grad alone does not: addmm differentiates it correctly; NVFP4Linear's
    bias is a buffer.)"""
    torch = _launch._torch()
    forced = _nvfp4_prefill_cpu.forced_route()
    if forced == "slices" or (x.requires_grad and torch.is_grad_enabled()):
        return "slices"
    # The kernel's own limits (gemm_mid_supported; the GPU tests compare them); a bias that records autograd needs
    # addmm's gradient (the kernel has none).
    bias_grad = bias is not None and bias.requires_grad and torch.is_grad_enabled()
    # Traced calls reach the kernel through its custom op (reset_native::nvfp4_gemm_mid) for W4A16; W4A4's x
    # quantization (w4a4_operand) launches outside any op and may read its scale to the host, so it stays eager.
    mid = ((activation == "bf16" or _launch.eager()) and x.dtype in (torch.float16, torch.bfloat16) and
           x.shape[1] % MID_K_MULTIPLE == 0 and m <= (MID_KERNEL_MAX_TOKENS if forced == "mid" else MID_MAX_TOKENS)
           and n <= MID_KERNEL_MAX_ROWS and m * n <= MID_KERNEL_MAX_OUTPUTS and not bias_grad)
    if mid and forced in ("mid", "auto"):
        return "mid"
    fp32_mm = hasattr(torch.ops.aten.mm, "dtype")  # mm(out_dtype=float32): traced calls and W4A4 with fp32 x
    if activation == "bf16":  # float32 x: three bfloat16 parts through the fp32-output mm (gemm)
        supported = fp32_mm or (_launch.eager() and x.dtype != torch.float32)
    else:  # W4A4 quantizes x with plain (untraced) launches, and float32 x needs the fp32-output mm
        supported = _launch.eager() and (x.dtype != torch.float32 or fp32_mm)
    if not (supported and n >= 16):
        return "slices"
    fewest = MIN_TOKENS_FP32 if activation == "bf16" and x.dtype == torch.float32 else MIN_TOKENS
    return "dequant" if forced == "dequant" or m >= fewest else "slices"


def mid_gemm(packed, block_scales, global_scale: float, x, activation: str, act_gs, bias):
    """The 'mid' route: y [M, N] in x's dtype from the medium-M GEMM (weights read once per 32, 64 or 128 tokens).
    W4A4 first quantizes x with its activation global scale gx (quantize_values: exact e2m1 * e4m3 values in x's
    dtype) and multiplies with gw * gx, as :func:`w4a4_gemm` does; a dynamic gx is read to the host
    (act_global_scale)."""
    n, half_k = packed.shape
    if not _launch.eager():  # a torch.compile trace: the op, W4A16 only (route() keeps traced W4A4 off this route)
        if activation != "bf16":
            raise NotImplementedError("the medium-M GEMM takes W4A4 only outside a torch.compile trace")
        return _launch._torch().ops.reset_native.nvfp4_gemm_mid(packed, block_scales, global_scale, x, bias)
    if activation == "nvfp4":
        x, global_scale = w4a4_operand(x, act_gs, global_scale, x.dtype)
    supported, workspace = _nvfp4_cuda.gemm_mid_plan(n, 2 * half_k, x)
    if not supported:  # route() checked the kernel's limits (dtype, K, M, N, M * N); alignment is gemm_mid's
        raise RuntimeError(f"nvfp4 gemm_mid cannot take x {tuple(x.shape)} {x.dtype} against [{n}, {2 * half_k}]")
    return _nvfp4_cuda.gemm_mid(packed, block_scales, global_scale, x, bias, workspace)


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


def act_global_scale(x) -> float:
    """W4A4's dynamic activation global scale amax(|x|) / 2688 in fp32 (1.0 for an all-zero x), computed on the
    device and read to the host (the one synchronisation of a prefill W4A4 call without a static scale). A NaN / Inf
    in x raises here: a whole-x scale from it would turn every output into NaN."""
    torch = _launch._torch()
    amax = float(x.abs().amax().to(torch.float32).item())
    if not math.isfinite(amax):
        raise ValueError("x must be finite for activation='nvfp4' (W4A4) without act_global_scale: amax(|x|) is "
                         f"{amax}")
    return _nvfp4_cuda.global_scale_of_amax(amax)


def w4a4_operand(x, act_gs, global_scale: float, dtype):
    """W4A4's operands for a 16-bit GEMM: (x quantized with gx and expanded without it, in dtype: one launch, exact
    e2m1 * e4m3 values; a NaN / Inf element comes out NaN, so the GEMM makes its row NaN with no host read; alpha =
    gw * gx in fp32), gx = act_gs or the dynamic act_global_scale(x)."""
    gx = act_global_scale(x) if act_gs is None else float(act_gs)
    return _nvfp4_cuda.quantize_values(x, gx, dtype), float(np.float32(global_scale) * np.float32(gx))


def w4a4_gemm(packed, block_scales, global_scale: float, x, act_gs, bias, chunk_bytes: int = CHUNK_BYTES):
    """W4A4: y [M, N] = gw * gx * (Q(x) @ W_local^T) + bias in x's dtype (nvfp4 module docstring); x [M, K]
    float32 / float16 / bfloat16, contiguous, on the weights' device; act_gs the static gx or None (dynamic)."""
    torch = _launch._torch()
    operand = torch.float16 if x.dtype == torch.float16 else torch.bfloat16  # e2m1 * e4m3 is exact in either
    xq, alpha = w4a4_operand(x, act_gs, global_scale, operand)
    return gemm(packed, block_scales, alpha, xq, bias, chunk_bytes, out_dtype=x.dtype)


def split_bf16(x):
    """[3M, K] bfloat16 parts hi, mid, lo of a float32 x [M, K] (stacked along M) with hi + mid + lo = x exactly for
    normal values, like the GEMV kernels' split of float32 x. Each part keeps the top 16 bits of what is left
    (truncation, by bit masks): exact in bfloat16 before any cast, so no compiler can fold the split away (Inductor
    drops a float -> bfloat16 -> float round trip inside a fused kernel, which left the hi part alone: 116x the
    bound in session 26's compile test), and |x| up to float32's max never overflows."""
    torch = _launch._torch()
    keep = -65536  # 0xFFFF0000: sign, exponent and the top 7 mantissa bits

    def top(v):
        return (v.view(torch.int32) & keep).view(torch.float32)

    hi = top(x)
    rest = x - hi  # exact: the bits hi dropped
    mid = top(rest)
    return torch.cat([hi, mid, rest - mid], dim=0).to(torch.bfloat16)  # rest - mid: <= 8 significant bits, exact


def gemm(packed, block_scales, global_scale: float, x, bias, chunk_bytes: int = CHUNK_BYTES, out_dtype=None):
    """y [M, N] = global_scale * (x @ W_local^T) + bias in out_dtype (default x's dtype); x [M, K] float16 /
    bfloat16 / float32, contiguous, on the weights' device (the caller has checked all of it); out_dtype float32 from
    16-bit x only for W4A4 (w4a4_gemm). chunk_bytes bounds the expanded rows alive at once (and, for float32 x,
    the GEMM's fp32 output of a chunk)."""
    torch = _launch._torch()
    n, half_k = packed.shape
    k = 2 * half_k
    m = x.shape[0]
    out_dtype = x.dtype if out_dtype is None else out_dtype
    # float32 x: its three exact bfloat16 parts go through one GEMM as 3M rows, and the three fp32 results are summed
    # (fp32-accurate products on tensor cores, as in the GEMV kernels).
    parts = 3 if x.dtype == torch.float32 else 1
    if parts == 3:
        x = split_bf16(x)
    rows_fit = chunk_bytes // max(k * x.element_size(), 4 * x.shape[0] if parts == 3 else 0)
    # Eager calls: without a bias each chunk's GEMM writes its columns of y in place (beta = 0: one rounding of
    # alpha * AB); a bias goes through addmm's 1-D form, which cuBLASLt adds in its fp32 epilogue (the 2-D beta = 1
    # form and a separate add round alpha * AB first: bench/probes/addmm_bias_rounding.py, bench/RESULTS.md
    # "Session 25"), and the chunks are joined afterwards. A torch.compile trace may not keep addmm whole (inductor
    # added the bias after rounding: 12x the one-rounding bound, session 25), so it takes the GEMM's fp32 output and
    # scales, adds and rounds in fp32 itself (route() keeps traced calls on the slices where torch lacks that form).
    # An fp32 output (float32 x, W4A4 with float32 x) takes the fp32-output mm like a traced call.
    addmm_form = _launch.eager() and out_dtype == x.dtype
    in_place = bias is None and addmm_form
    y = torch.empty((m, n), dtype=x.dtype, device=x.device) if in_place else None
    pieces = []
    for r0, r1 in chunks(n, rows_fit):
        w = _nvfp4_cuda.dequantize(packed[r0:r1], block_scales[r0:r1], 1.0, x.dtype)
        if in_place:
            part = y[:, r0:r1]  # columns of y, row stride N: cuBLAS writes them where they stand
            torch.addmm(part, x, w.t(), beta=0, alpha=global_scale, out=part)
        elif addmm_form:
            pieces.append(torch.addmm(bias[r0:r1], x, w.t(), alpha=global_scale))
        else:
            acc = torch.mm(x, w.t(), out_dtype=torch.float32)
            if parts == 3:
                acc = acc[:m] + acc[m:2 * m] + acc[2 * m:]
            acc = acc * global_scale
            pieces.append((acc if bias is None else acc + bias[r0:r1].float()).to(out_dtype))
        del w  # the chunk's memory is free for the next one
    return y if in_place else (pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=1))
