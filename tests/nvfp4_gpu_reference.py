"""Independent numpy re-implementation of the NVFP4 quantizer (SPEC-nvfp4 section 2) for the CUDA tests.

Written from the spec, not from the kernels: E4M3 rounding via frexp + rint, E2M1 rounding via rint on the
format's three grids (0.5 / 1 / 2). All arithmetic in IEEE float32 like the spec demands.
"""
from __future__ import annotations

import functools

import numpy as np

F32 = np.float32
E2M1_VALUES = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6], dtype=np.float32)


def e4m3_value(byte: np.ndarray) -> np.ndarray:
    byte = np.asarray(byte, dtype=np.int64) & 0x7F
    e, m = byte >> 3, byte & 7
    normal = np.ldexp(1.0 + m / 8.0, e - 7)
    sub = m * 2.0**-9
    return np.where(e == 0, sub, normal).astype(np.float32)


def e4m3_round(bs: np.ndarray) -> np.ndarray:
    """Positive float32 scale -> E4M3 byte: clamp to [2^-9, 448], round to nearest even."""
    v = np.clip(np.asarray(bs, dtype=np.float32), F32(2.0**-9), F32(448.0)).astype(np.float64)
    out = np.empty(v.shape, dtype=np.int64)
    sub = v < 2.0**-6
    out[sub] = np.rint(v[sub] * 512.0).astype(np.int64)  # subnormal grid 2^-9; 8 -> 0x08 = 2^-6
    f, ex = np.frexp(v[~sub])  # v = f * 2^ex, f in [0.5, 1)
    exp = ex - 1
    q = np.rint((f * 2.0 - 1.0) * 8.0).astype(np.int64)
    carry = q == 8
    exp = exp + carry
    q = np.where(carry, 0, q)
    out[~sub] = ((exp + 7) << 3) | q
    return out.astype(np.uint8)


def e2m1_round(a: np.ndarray) -> np.ndarray:
    """|x/s| (float32, >= 0) -> magnitude code 0..7 (RNE on each binade's grid, saturating at 6)."""
    a = np.asarray(a, dtype=np.float64)
    small = np.rint(a * 2.0) / 2.0
    mid = np.rint(a)
    big = np.minimum(np.rint(a / 2.0) * 2.0, 6.0)
    val = np.where(a < 2.0, small, np.where(a < 4.0, mid, big))
    val = np.where(np.isnan(val), 6.0, val)
    return np.searchsorted(E2M1_VALUES, val.astype(np.float32)).astype(np.uint8)


def global_scale_of(w32: np.ndarray) -> np.float32:
    amax = F32(np.max(np.abs(w32))) if w32.size else F32(0)
    return F32(amax / F32(2688.0)) if amax > 0 else F32(1.0)


def quantize(w, global_scale=None):
    """w: float array [N, K] (any float dtype; widened to float32). Returns (packed, block_scales, gs)."""
    w32 = np.asarray(w, dtype=np.float32)
    n, k = w32.shape
    gs = global_scale_of(w32) if global_scale is None else F32(global_scale)
    blocks = w32.reshape(n, k // 16, 16)
    amax_b = np.max(np.abs(blocks), axis=2)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        bs = (amax_b / (F32(6.0) * gs)).astype(np.float32)
        scale_bytes = e4m3_round(bs)
        s = (e4m3_value(scale_bytes) * gs).astype(np.float32)
        q = (np.abs(blocks) / s[:, :, None]).astype(np.float32)
    codes = e2m1_round(q) | (np.signbit(blocks).astype(np.uint8) << 3)
    codes = codes.reshape(n, k)
    packed = (codes[:, 0::2] | (codes[:, 1::2] << 4)).astype(np.uint8)
    return packed, scale_bytes, gs


def dequantize(packed, block_scales, gs) -> np.ndarray:
    packed = np.asarray(packed, dtype=np.uint8)
    n, half_k = packed.shape
    codes = np.empty((n, 2 * half_k), dtype=np.uint8)
    codes[:, 0::2], codes[:, 1::2] = packed & 0xF, packed >> 4
    mag = E2M1_VALUES[codes & 7]
    s = np.repeat(e4m3_value(block_scales), 16, axis=1)
    val = ((mag * s).astype(np.float32) * F32(gs)).astype(np.float32)
    return np.where(codes & 8, -val, val).astype(np.float32)


def assert_within_fp64_bound(y, yref, abs_sum, k, f32_eps=0.0):
    """|y - yref| within the output's rounding (of |yref|) plus (K/16 + 16) fp32 ulps of sum |x w|: fp32 accumulation
    with one (truncating) tensor-core accumulation step per 16 products; one wrong code costs ~sum/K. The GPU GEMV
    tests' one bound. y: torch tensor (its dtype sets the rounding; f32_eps for fp32 outputs); yref, abs_sum: fp64
    numpy arrays of y's shape."""
    import torch

    out_eps = {torch.float32: f32_eps, torch.float16: 2.0**-11, torch.bfloat16: 2.0**-8}[y.dtype]
    yd = y.double().cpu().numpy()
    assert np.isfinite(yd).all(), "unwritten (poisoned) or non-finite outputs"
    tol = out_eps * np.abs(yref) + 2.0**-24 * (k / 16 + 16) * abs_sum + 1e-30
    err = np.abs(yd - yref)
    assert (err <= tol).all(), f"max err/tol {float((err / tol).max()):.3g}"


def check_vs_fp64_weights(y, x, w64, activation, bias=None, residual=None, f32_eps=0.0, act_gs=None):
    """y against fp64 math, within assert_within_fp64_bound: x (quantized first for W4A4, with the activation global
    scale act_gs; None: from its amax) times the dequantized weights w64 (fp64 numpy, [n, k]), plus bias and residual.
    y, x, bias, residual (either may be None): torch."""
    x32 = x.float().cpu().numpy()
    x64 = dequantize(*quantize(x32, act_gs)).astype(np.float64) if activation == "nvfp4" else x32.astype(np.float64)
    yref = x64 @ w64.T
    abs_sum = np.abs(x64) @ np.abs(w64).T
    if bias is not None:
        yref = yref + bias.double().cpu().numpy()[None, :]
    if residual is not None:
        yref = yref + residual.double().cpu().numpy()
        abs_sum = abs_sum + np.abs(residual.double().cpu().numpy())
    assert_within_fp64_bound(y, yref, abs_sum, x.shape[1], f32_eps)


def check_vs_fp64(y, packed, scales, gs, x, activation, bias, residual, act_gs=None):
    """check_vs_fp64_weights on quantize()'s output (packed, scales, gs), dequantized here."""
    check_vs_fp64_weights(y, x, dequantize(packed, scales, gs).astype(np.float64), activation, bias, residual,
                          act_gs=act_gs)


# The GEMV launcher's routing switches: tests that assert which kernel a shape gets unset them first.
GEMV_ROUTE_ENV = ("RESET_NATIVE_GEMV_TEAMS", "RESET_NATIVE_GEMV_RING", "RESET_NATIVE_GEMV_KSPLIT",
                  "RESET_NATIVE_GEMV_BD", "RESET_NATIVE_GEMV_W4A4_CLUSTER",
                  "RESET_NATIVE_GEMV_W4A4_CLUSTER_FORM", "RESET_NATIVE_GEMV_W4A4_SPLIT_CLUSTER",
                  "RESET_NATIVE_GEMV_TEAM_ORDER")

# kForm16Cluster (cuda/nvfp4/gemv_kernel.cuh): the W4A4 two-team kernel in clusters of CTAs, by default from
# kW4a4ClusterMinTokens tokens (w4a4_cluster_size) where the instance runs its rule's form: clusters of 4 with both
# cluster forms (kForm16ClusterAmax | kForm16ClusterCompact, gemv_w4a4_cluster.cuh) where 2 x SMs < row tiles <=
# 5 x SMs (since session 21 helper w4a4rule40), else clusters of 2 without a form.
W4A4_CLUSTER_ENV = "RESET_NATIVE_GEMV_W4A4_CLUSTER"
W4A4_CLUSTER_FORM_ENV = "RESET_NATIVE_GEMV_W4A4_CLUSTER_FORM"
W4A4_CLUSTER = 16384  # kForm16Cluster
W4A4_CLUSTER_AMAX, W4A4_CLUSTER_COMPACT = 32768, 65536  # kForm16ClusterAmax, kForm16ClusterCompact
W4A4_CLUSTER_BOTH = W4A4_CLUSTER_AMAX | W4A4_CLUSTER_COMPACT
TWO_TEAMS = (1, 0, 2)  # (MINB, SPLIT, TEAMS) of the two-team kernel
W4A4_CLUSTER_MIN_TOKENS = 8
W4A4_CLUSTER_BAND = (2, 5)
# The W4A4 split-K kernel in clusters (cuda/nvfp4/gemv_split_cluster.cuh): by default from
# W4A4_SPLIT_CLUSTER_MIN_TOKENS tokens (clusters of 4 or 2: gemv_split_cluster.cuh kSplitCluster*; not in the FORM)
# where the split instance runs its rule's form, it adds kForm16Cluster and both cluster forms to the rule;
# RESET_NATIVE_GEMV_W4A4_SPLIT_CLUSTER = 1 turns it off (the plain split kernel), = C (2..8) forces clusters of C at
# every M.
W4A4_SPLIT_CLUSTER_ENV = "RESET_NATIVE_GEMV_W4A4_SPLIT_CLUSTER"
W4A4_SPLIT_CLUSTER_MIN_TOKENS = 8
SPLIT_INSTANCE = (2, 1, 1)  # (MINB, SPLIT, TEAMS) of the split-K kernel


def w4a4_default_cluster_bit(instance, m, n, sms=None):
    """The FORM bits (kForm16Cluster, plus both cluster forms) a W4A4 fast-path call of m tokens and n output rows adds
    by default (RESET_NATIVE_GEMV_W4A4_CLUSTER, _CLUSTER_FORM and _SPLIT_CLUSTER unset, RESET_NATIVE_GEMV_16_FORM
    giving the rule's form) to the instance (MINB, SPLIT, TEAMS) it runs, on `sms` multiprocessors (None: H200_SMS,
    as needs_h200_routing assumes): two teams from 8 tokens (both forms in the band of row tiles), split K from 8
    tokens (always both forms, since helper w4a4splitdef43)."""
    if tuple(instance) == SPLIT_INSTANCE:
        return W4A4_CLUSTER | W4A4_CLUSTER_BOTH if m >= W4A4_SPLIT_CLUSTER_MIN_TOKENS else 0
    if tuple(instance) != TWO_TEAMS or m < W4A4_CLUSTER_MIN_TOKENS:
        return 0
    sms = H200_SMS if sms is None else sms
    tiles = (n + 15) // 16
    lo, hi = W4A4_CLUSTER_BAND
    return W4A4_CLUSTER | (W4A4_CLUSTER_BOTH if lo * sms < tiles <= hi * sms else 0)


def poison_next_block(nbytes):
    """Makes the next allocation of up to nbytes on the current stream start as NaN, so that an output the next call
    allocates and leaves partly unwritten shows NaN there.

    The CUDA caching allocator gives a request of <= 1 MiB the smallest free block of its small pool that fits, a
    larger one the smallest of its large pool, or a new segment. So every free block of the current stream gets NaN
    over its first max(nbytes, 1 MiB) bytes (each block taken by a request of its own size, largest first: best fit then
    hands out exactly that block), and where no free block could take a request of up to nbytes, a new segment is
    made and poisoned the same way; then all are freed again (the cache keeps them, so later calls make no new
    segments for the same sizes). (Session 38 replaced one NaN block of nbytes + 1 MiB, which always came from the large
    pool: outputs of <= 1 MiB, from the small pool, were not poisoned by it.) tests/test_nvfp4_gpu_poison.py checks
    this premise.
    """
    import torch

    here = (torch.cuda.current_device(), torch.cuda.current_stream().cuda_stream)
    sizes, span = poison_plan(torch.cuda.memory_snapshot(), *here, nbytes)
    held = []
    for size in sizes:
        t = torch.empty(size // 4, dtype=torch.int32, device="cuda")
        t[: span // 4].fill_(-1)  # all bits set: NaN as fp32, and as both halves in bf16 / fp16 (fp32 NaN: one half 0)
        held.append(t)
    del held


def poison_plan(segments, device, stream, nbytes):
    """(request sizes in bytes, largest first; bytes to poison at the start of each) for poison_next_block, from
    torch.cuda.memory_snapshot()'s segments: one request per free block of the device's default pool on the stream
    (small-pool blocks in pieces of at most 1 MiB: a larger request would go to the large pool), plus a request of
    1 MiB if no small block could take one (a new small segment) and of nbytes if above 1 MiB and no large block could
    take it (a new large segment). Private pools (CUDA graphs) are left out: plain requests never use them."""
    mib = 1 << 20
    sizes, largest = [], {"small": 0, "large": 0}
    for seg in segments:
        if (seg.get("device", device), seg.get("stream", 0), tuple(seg.get("segment_pool_id", (0, 0)))) != (
                device, stream, (0, 0)):
            continue
        for block in seg["blocks"]:
            if block["state"] != "inactive":
                continue
            size = block["size"]
            largest[seg["segment_type"]] = max(largest[seg["segment_type"]], size)
            if seg["segment_type"] == "small":
                sizes += [mib] * (size // mib) + ([size % mib] if size % mib else [])
            else:
                sizes.append(size)
    span = max(int(nbytes), mib)
    if largest["small"] < mib:
        sizes.append(mib)
    if span > mib and largest["large"] < span:
        sizes.append(span)
    return sorted(sizes, reverse=True), span


def clear_gemv_env(monkeypatch, *extra):
    """Unsets the routing switches (and the variables in `extra`), so that the launcher's own rules pick the kernel."""
    for var in extra + GEMV_ROUTE_ENV:
        monkeypatch.delenv(var, raising=False)


def set_env(monkeypatch, name, value):
    """os.environ[name] = value through monkeypatch; None unsets it."""
    if value is None:
        monkeypatch.delenv(name, raising=False)
    else:
        monkeypatch.setenv(name, value)


@functools.lru_cache(maxsize=8)
def random_gemv_calls(n, k, m, seed):
    """(w4a4, a16): a W4A4 (dynamic scale) and a W4A16 GEMV call, each fn() -> y, on random_gpu_weights(n, k) and
    one bf16 x [m, k] drawn with `seed`."""
    import torch

    from reset_native import _nvfp4_cuda as nc

    p, s, gs = random_gpu_weights(n, k)
    x = torch.randn((m, k), generator=torch.Generator().manual_seed(seed)).to(torch.bfloat16).cuda()
    return (lambda: nc.gemv(p, s, gs, x, "nvfp4")), (lambda: nc.gemv(p, s, gs, x, "bf16"))


def random_gemv_call(n, k, m, seed, activation):
    """One of random_gemv_calls: activation "nvfp4" (W4A4, dynamic scale) or "bf16" (W4A16)."""
    w4a4, a16 = random_gemv_calls(n, k, m, seed)
    return w4a4 if activation == "nvfp4" else a16


def random_w4a4_call_with_epilogue(n, k, m, dtype):
    """fn() -> y: a W4A4 (dynamic scale) GEMV on random_gpu_weights(n, k) with gemv_inputs(n, k, m, dtype)'s x,
    bias and residual."""
    from reset_native import _nvfp4_cuda as nc

    p, s, gs = random_gpu_weights(n, k)
    x, bias, residual = gemv_inputs(n, k, m, dtype)
    return lambda: nc.gemv(p, s, gs, x, "nvfp4", None, bias, residual)


def random_nvfp4_case(n, k, m, dtype, seed, bias=False, spread=1.0):
    """(NVFP4Tensor of random [n, k] weights quantized on the GPU, x [m, k] of dtype, bias [n] of dtype or None), drawn
    from a CPU generator seeded with seed. Rows of weights and of x have magnitudes e^(spread * N(0, 1)): a dynamic
    activation scale from the whole x leaves the small rows on small block scales. Keep x @ W^T inside float16's
    range with a smaller spread for long K."""
    import torch
    from reset_native import nvfp4

    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, k, generator=g) * torch.exp(spread * torch.randn(n, 1, generator=g))
    t = nvfp4.quantize(w.cuda())
    x = (torch.randn(m, k, generator=g) * torch.exp(spread * torch.randn(m, 1, generator=g))).to(dtype).cuda()
    b = torch.randn(n, generator=g).to(dtype).cuda() if bias else None
    return t, x, b


def dequantized64(t):
    """The fp64 weights [n, k] of an NVFP4Tensor on the GPU, by this module's dequantize."""
    return dequantize(t.packed.cpu().numpy(), t.block_scales.cpu().numpy(), t.global_scale).astype(np.float64)


def mid_case(n, k, m, dtype, seed, bias=False):
    """random_nvfp4_case for the medium-M tests: float16 takes narrower row scales, so that x @ W^T stays inside its
    range (with e^N(0,1) row scales a 4096-long product passed 65504 for some seeds: an inf, correctly rounded;
    bench/RESULTS.md "Session 27")."""
    import torch

    return random_nvfp4_case(n, k, m, dtype, seed, bias, spread=0.5 if dtype == torch.float16 else 1.0)


def mid_launch_plan(n, k, m):
    """(shape, K splits, stream-K CTAs) the medium-M launcher picks for n x k at m tokens of bf16 x on this GPU."""
    import torch

    from reset_native import _nvfp4_cuda as nc

    return nc.gemm_mid_launch_plan(n, k, torch.empty(m, k, dtype=torch.bfloat16, device="cuda"))


def mid_gemm_over_poison(t, x, b):
    """cuda_gemm_mid straight from the binding (bf16 x) on a NaN-filled output and workspace of the plan's bytes (so
    stream-K's flags read non-zero, as a previous call may leave them, until the call zeroes them)."""
    import torch

    from reset_native import _nvfp4_cuda as nc

    m, k = x.shape
    n = t.packed.shape[0]
    ok, ws_bytes = nc.gemm_mid_plan(n, k, x)
    assert ok
    out = torch.full((m, n), float("nan"), dtype=torch.bfloat16, device="cuda")
    ws = torch.full((max(ws_bytes, 4) // 4,), float("nan"), device="cuda")
    nc._native.cuda_gemm_mid(t.packed.data_ptr(), t.block_scales.data_ptr(), t.global_scale, n, k, x.data_ptr(), 2,
                             m, b.data_ptr(), out.data_ptr(), ws.data_ptr(), ws_bytes,
                             torch.cuda.current_stream().cuda_stream)
    return out


def eager_then_graph_replay(call, x):
    """(call() run eagerly, the output of call captured in a CUDA graph and replayed after x was halved in place):
    a warm-up on a side stream first, as torch's graph capture wants."""
    import torch

    y_eager = call()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        call()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        y_graph = call()
    x.copy_(x * 0.5)
    graph.replay()
    torch.cuda.synchronize()
    return y_eager, y_graph


def gemv_workspace_bytes(p, s, x, activation="bf16"):
    """Split-K workspace bytes the GEMV launcher asks for: packed p [n, k/2] and scales s on the GPU, x [m, k] on the
    GPU, activation "bf16" (W4A16) or "nvfp4" (W4A4); 0 where the call does not split."""
    import torch

    from reset_native import _nvfp4_cuda as nc

    n, k = p.shape[0], p.shape[1] * 2
    code = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}[x.dtype]
    return int(nc._native.cuda_gemv_workspace_bytes(p.data_ptr(), s.data_ptr(), n, k, x.data_ptr(), code, x.shape[0],
                                                     activation == "nvfp4"))


@functools.lru_cache(maxsize=8)
def _seeded_quantized(n, k, seed):
    import torch

    return quantize(torch.randn((n, k), generator=torch.Generator().manual_seed(seed)).numpy())


def seeded_weights(n, k, seed):
    """(packed, scales, gs, packed on the GPU, scales on the GPU): standard-normal [n, k] weights drawn with `seed` and
    quantized by this module's reference (the host part cached per shape and seed)."""
    import torch

    packed, scales, gs = _seeded_quantized(n, k, seed)
    return packed, scales, float(gs), torch.from_numpy(packed).cuda(), torch.from_numpy(scales).cuda()


def random_gpu_weights(n, k):
    """Packed FP4 (every code) and E4M3 scales 0x30..0x3F drawn on the GPU (seed n * 7 + k), global scale 0.01:
    finite outputs without the host quantizer, for shapes too large for it."""
    import torch

    gen = torch.Generator(device="cuda").manual_seed(n * 7 + k)
    p = torch.randint(0, 256, (n, k // 2), generator=gen, device="cuda", dtype=torch.uint8)
    s = torch.randint(0x30, 0x40, (n, k // 16), generator=gen, device="cuda", dtype=torch.uint8)
    return p, s, 0.01


def gemv16_forms_of_call(fn):
    """(MINB, SPLIT, TEAMS, FORM) template arguments of every 16-bit GEMV kernel fn() launched."""
    return [(a[5], a[7], a[8], a[9]) for a in gemv16_kernel_args(fn)]


def gemv16_kernel_args(fn):
    """Template arguments of every 16-bit GEMV kernel (gemv_kernel<...>) that fn() launched (kernel_template_args)."""
    return kernel_template_args(fn, "gemv_kernel")


def kernel_template_args(fn, kernel):
    """Template arguments (ints; bools as 0/1) of every launch of the kernel template `kernel` (e.g. "gemv_kernel",
    "gemv_bd_kernel") that fn() made, read from the kernel names the torch profiler records (demangled or mangled);
    skips the test when the profiler records no kernel names here."""
    import re

    import pytest

    prof = _profile_cuda(fn)
    found = []
    for e in prof.events():
        m = re.search(r"(?<![a-z_])" + kernel + r"<([^>]*)>", e.name)  # demangled: <2, false, 1, true, true, 2, ...>
        if m:
            args = [v.strip() for v in m.group(1).split(",")]
        else:
            m = re.search(str(len(kernel)) + kernel + r"I((?:L[ib]\d+E)+)", e.name)  # mangled: ILi2ELb0ELi1E...
            if not m:
                continue
            args = re.findall(r"L[ib](\d+)E", m.group(1))
        found.append([int({"true": "1", "false": "0"}.get(a, a)) for a in args])
    if not found and not any("gemv" in e.name for e in prof.events()):
        pytest.skip("the profiler recorded no kernel names here")
    return found


def _profile_cuda(fn):
    """The torch profiler (CUDA activity) over one fn() call, with the device idle before and after."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    return prof


def kernel_launch_shared_bytes(fn, kernel):
    """Shared memory per CTA (bytes, as the profiler's trace records it) of every launch of the kernel template `kernel`
    that fn() made; skips the test when the trace records no kernel names or no shared memory."""
    import json
    import os
    import tempfile

    import pytest

    prof = _profile_cuda(fn)
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        prof.export_chrome_trace(path)
        with open(path) as f:
            events = json.load(f).get("traceEvents", [])
    finally:
        os.remove(path)
    found = [e.get("args", {}).get("shared memory") for e in events
             if e.get("cat") == "kernel" and kernel in e.get("name", "")]
    if not found or None in found:
        pytest.skip("the profiler's trace records no kernel names or shared memory here")
    return found


def gemv_inputs(n, k, m, dtype):
    """x [m, k], bias [n] and residual [m, n] in dtype on the GPU, drawn in that order from a generator seeded
    n + k + m."""
    import torch

    gen = torch.Generator().manual_seed(n + k + m)
    x = torch.randn((m, k), generator=gen).to(dtype).cuda()
    bias = torch.randn(n, generator=gen).to(dtype).cuda()
    residual = torch.randn((m, n), generator=gen).to(dtype).cuda()
    return x, bias, residual


def gemv_call_inputs(weights, m, dtype):
    """GPU tensors of one GEMV call on weights (quantize()'s (packed, scales, gs) of an [n, k] matrix): packed and
    scales, then gemv_inputs(n, k, m, dtype)."""
    import torch

    packed, scales, _ = weights
    n, k = packed.shape[0], packed.shape[1] * 2
    return (torch.from_numpy(packed).cuda(), torch.from_numpy(scales).cuda()) + gemv_inputs(n, k, m, dtype)


def assert_graph_replay_matches_eager(monkeypatch, fn, x, env, value, seeds=(5, 6)):
    """fn() (one GEMV call on x) captured in a CUDA graph under the current environment, after an eager warm-up call;
    then env = value, and for each seed x is refilled in place from torch.randn (that seed, x's shape and dtype) and
    the graph's replay must equal an eager fn() bit for bit."""
    import torch

    fn()  # warm-up outside the capture
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        y = fn()
    monkeypatch.setenv(env, value)
    for seed in seeds:
        x.copy_(torch.randn(tuple(x.shape), generator=torch.Generator().manual_seed(seed)).to(x.dtype))
        g.replay()
        torch.cuda.synchronize()
        assert torch.equal(y, fn()), seed


def capture_chained_pair(call, residual):
    """call(residual), then call(its output) (a PDL-chained dependency), captured in one CUDA graph: (graph, y1, y2)."""
    import torch

    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        y1 = call(residual)
        y2 = call(y1)
    return g, y1, y2


def assert_chained_replay_matches_eager(g, y1, y2, x, call, residual, seeds=(5, 6)):
    """For each seed x is refilled in place from torch.randn (that seed, x's shape and dtype) and the replay of
    capture_chained_pair's graph must equal eager calls bit for bit: y1 = call(residual), y2 = call(y1)."""
    import torch

    for seed in seeds:
        x.copy_(torch.randn(tuple(x.shape), generator=torch.Generator().manual_seed(seed)).to(x.dtype))
        g.replay()
        torch.cuda.synchronize()
        want1 = call(residual)
        assert torch.equal(y1, want1), seed
        assert torch.equal(y2, call(want1)), seed


def w4a4_general_and_chunked_forms(monkeypatch, gs):
    """W4A4 calls at n = 200, M = 16 (bf16 x) on the two kernels without the fast-path forms: (FAST, FORM) of the
    general path's launches (K = 3088: K % 1024 != 0, never split) and (WHOLE, FORM) of the chunked kernel's (K = 8192:
    16 tokens of x do not fit whole; RESET_NATIVE_GEMV_KSPLIT=1 is set so that it does not split)."""
    import torch

    from reset_native import _nvfp4_cuda as nc

    gen = torch.Generator(device="cuda").manual_seed(2)
    p2 = torch.randint(0, 256, (200, 3088 // 2), generator=gen, device="cuda", dtype=torch.uint8)
    s2 = torch.randint(0x30, 0x40, (200, 3088 // 16), generator=gen, device="cuda", dtype=torch.uint8)
    x2 = torch.randn((16, 3088), generator=torch.Generator().manual_seed(5)).to(torch.bfloat16).cuda()
    general = [(a[3], a[9]) for a in gemv16_kernel_args(lambda: nc.gemv(p2, s2, gs, x2, "nvfp4"))]
    monkeypatch.setenv("RESET_NATIVE_GEMV_KSPLIT", "1")
    p8, s8, _ = random_gpu_weights(200, 8192)
    x8 = torch.randn((16, 8192), generator=torch.Generator().manual_seed(4)).to(torch.bfloat16).cuda()
    chunked = [(a[4], a[9]) for a in gemv16_kernel_args(lambda: nc.gemv(p8, s8, gs, x8, "nvfp4"))]
    return general, chunked


# The device the tests' expected kernel instances were worked out for (bench/probes/gemv_teams_routing.py and the
# other routing models): an H100 / H200.
H200_SMS, H200_OPTIN = 132, 227 * 1024


def needs_h200_routing():
    """Skips the test unless the GPU routes like an H100 / H200: 132 SMs and 227 KiB of opt-in shared memory per
    block (a torch without that attribute: assumed)."""
    import pytest
    import torch

    props = torch.cuda.get_device_properties(0)
    optin = getattr(props, "shared_memory_per_block_optin", None)
    if props.multi_processor_count != H200_SMS or optin not in (None, H200_OPTIN):
        pytest.skip("the routing of these shapes assumes 132 SMs and 227 KiB of opt-in shared memory per block")


def gemv16_instances(fn):
    """(MINB, SPLIT, TEAMS) of every 16-bit GEMV kernel fn() launched (the FORM bits are the form rules' business)."""
    return [(a[5], a[7], a[8]) for a in gemv16_kernel_args(fn)]
