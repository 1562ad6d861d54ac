"""NVFP4 GEMV with split K (cuda/nvfp4/gemv_split.cuh): which calls split, results against fp64 for even and uneven
slices, determinism and CUDA graphs, the unsplit fallback without workspace, the deferred launch that asks for its
workspace and the backend's remembered workspace sizes. GPU tests skip without a device."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nvfp4_gpu_reference as ref  # noqa: E402

from reset_native import _nvfp4_cuda as nc  # noqa: E402

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.gpu

_weights = ref.seeded_weights
_workspace_bytes = ref.gemv_workspace_bytes
_CODES = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}


def _a16_bytes(slices, m, n):
    """An A16 split call's workspace: the partial sums, then, at one token (the in-kernel fixup's rule,
    gemv_split_fixup.cuh), 8-byte aligned tags, one per row tile at most."""
    return slices * m * n * 4 + (4 + -(-n // 16) * 8 if m == 1 else 0)


def test_which_calls_split(monkeypatch):
    monkeypatch.delenv("RESET_NATIVE_GEMV_KSPLIT", raising=False)
    monkeypatch.delenv("RESET_NATIVE_GEMV_SPLIT_FIXUP", raising=False)
    monkeypatch.delenv("RESET_NATIVE_GEMV_RING", raising=False)
    monkeypatch.delenv("RESET_NATIVE_GEMV_BD", raising=False)
    monkeypatch.delenv("RESET_NATIVE_GEMV_BD_SPLIT", raising=False)
    n, k = 64, 12288  # 12 chunks of 1024
    _, _, _, p, s = _weights(n, k, 1)
    x = lambda m, dt=torch.bfloat16: torch.zeros((m, k), dtype=dt, device="cuda")  # noqa: E731
    # Long K with x over 96 KB whole: two chunks per slice, 6 slices; partial sums 6 x m x n floats.
    assert _workspace_bytes(p, s, x(16), "bf16") == _a16_bytes(6, 16, n)
    assert _workspace_bytes(p, s, x(16), "nvfp4") == 6 * 16 * n * 4
    assert _workspace_bytes(p, s, x(4), "bf16") == _a16_bytes(6, 4, n)  # (12 * 4 + 1) rows of 2112 B + 4 KB = 105 KB
    # float32 x is staged as three bf16 parts.
    assert _workspace_bytes(p, s, x(4, torch.float32), "bf16") == _a16_bytes(6, 4, n)
    # x small enough whole (82 KB at m = 3; 27 KB at m = 1): no split.
    assert _workspace_bytes(p, s, x(3), "bf16") == 0
    assert _workspace_bytes(p, s, x(1), "bf16") == 0
    monkeypatch.setenv("RESET_NATIVE_GEMV_KSPLIT", "1")
    assert _workspace_bytes(p, s, x(16), "bf16") == 0
    monkeypatch.setenv("RESET_NATIVE_GEMV_KSPLIT", "3")
    assert _workspace_bytes(p, s, x(3), "bf16") == _a16_bytes(3, 3, n)
    assert _workspace_bytes(p, s, x(1), "bf16") == _a16_bytes(3, 1, n)  # forced: even where the bd kernel would run
    monkeypatch.setenv("RESET_NATIVE_GEMV_KSPLIT", "20")  # at most one slice per chunk
    assert _workspace_bytes(p, s, x(3), "bf16") == _a16_bytes(12, 3, n)
    monkeypatch.setenv("RESET_NATIVE_GEMV_SPLIT_FIXUP", "1")  # the fixup forced at three tokens: tags
    assert _workspace_bytes(p, s, x(3), "bf16") == 12 * 3 * n * 4 + 4 + n // 16 * 8
    assert _workspace_bytes(p, s, x(3), "nvfp4") == 12 * 3 * n * 4  # W4A4 never
    monkeypatch.setenv("RESET_NATIVE_GEMV_SPLIT_FIXUP", "0")  # the second kernel at one token too: no tags
    assert _workspace_bytes(p, s, x(1), "bf16") == 12 * 1 * n * 4
    monkeypatch.delenv("RESET_NATIVE_GEMV_SPLIT_FIXUP")
    monkeypatch.delenv("RESET_NATIVE_GEMV_KSPLIT")
    # Very long K splits even where the block-diagonal kernel runs (W4A4 at m <= 2): 20 chunks in 10 slices. A16 at
    # m = 1 from K = 16384 on (where the unsplit call runs the 16-bit kernel, bd_chosen) takes the block-diagonal
    # kernel's lean split, here 4 slices of 5 chunks (bd_long_k_slices, session 40); the 16-bit kernel would not
    # split (x, 40 KB whole, is too small).
    _, _, _, p3, s3 = _weights(16, 20480, 4)
    x3 = torch.zeros((1, 20480), dtype=torch.bfloat16, device="cuda")
    assert _workspace_bytes(p3, s3, x3, "nvfp4") == 10 * 16 * 4
    assert _workspace_bytes(p3, s3, x3, "bf16") == _a16_bytes(4, 1, 16)
    monkeypatch.setenv("RESET_NATIVE_GEMV_BD_SPLIT", "0")
    assert _workspace_bytes(p3, s3, x3, "bf16") == 0
    monkeypatch.delenv("RESET_NATIVE_GEMV_BD_SPLIT")
    monkeypatch.setenv("RESET_NATIVE_GEMV_BD", "0")  # no block-diagonal kernel, so no block-diagonal split
    assert _workspace_bytes(p3, s3, x3, "bf16") == 0
    monkeypatch.delenv("RESET_NATIVE_GEMV_BD")
    # Short K (5 chunks): A16 never splits automatically, however many tokens. W4A4 from 4 tokens with fewer than
    # two row tiles per CTA (here 4 tiles) splits by 4: each CTA then quantizes a quarter of x.
    _, _, _, p1, s1 = _weights(n, 5120, 3)
    x16 = torch.zeros((16, 5120), dtype=torch.bfloat16, device="cuda")
    assert _workspace_bytes(p1, s1, x16, "bf16") == 0
    assert _workspace_bytes(p1, s1, x16, "nvfp4") == 4 * 16 * n * 4
    assert _workspace_bytes(p1, s1, x16[:4], "nvfp4") == 4 * 4 * n * 4
    assert _workspace_bytes(p1, s1, x16[:3], "nvfp4") == 0
    # K % 1024 != 0 runs the general-path kernels, never split.
    _, _, _, p2, s2 = _weights(16, 9232, 2)
    assert _workspace_bytes(p2, s2, torch.zeros((16, 9232), dtype=torch.bfloat16, device="cuda"), "bf16") == 0


# (n, k, m, forced slices): 8 chunks in 4 slices (the automatic choice at m = 16) and 3 uneven ones (2 + 3 + 3);
# 5 chunks in 2 (2 + 3) and 5; 4 in 4; m = 1 forced past the block-diagonal kernel. n = 200 / 37 end in a partial
# row tile; m = 3 / 9 pad the MMA's token side.
CASES = [(200, 8192, 16, None), (200, 8192, 9, "3"), (200, 5120, 3, "2"), (200, 5120, 16, "5"), (37, 4096, 8, "4"),
         (48, 2048, 1, "2")]


@pytest.mark.parametrize("n,k,m,forced", CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("activation", ["bf16", "nvfp4"])
def test_split_vs_fp64(n, k, m, forced, dtype, activation, monkeypatch):
    if forced is None:
        monkeypatch.delenv("RESET_NATIVE_GEMV_KSPLIT", raising=False)
    else:
        monkeypatch.setenv("RESET_NATIVE_GEMV_KSPLIT", forced)
    packed, scales, gs, p, s = _weights(n, k, n + k)
    gen = torch.Generator().manual_seed(n * 3 + m)
    x = torch.randn((m, k), generator=gen).to(dtype).cuda()
    bias = torch.randn(n, generator=gen).to(dtype).cuda()
    residual = torch.randn((m, n), generator=gen).to(dtype).cuda()
    # float32 x is staged as three bf16 parts: at m > 8 not even one chunk per slice fits next to a second CTA, so
    # those calls keep the chunked kernel (checked the same way).
    if not (dtype == torch.float32 and activation == "bf16" and m > 8):
        assert _workspace_bytes(p, s, x, activation) > 0, "the case must exercise split K"
    ref.poison_next_block(m * n * 4)
    y = nc.gemv(p, s, gs, x, activation, None, bias, residual)
    assert y.dtype == dtype and y.shape == (m, n)
    ref.check_vs_fp64(y, packed, scales, gs, x, activation, bias, residual)
    # Fixed slice order: the same bits on every call.
    assert torch.equal(y, nc.gemv(p, s, gs, x, activation, None, bias, residual))


def test_split_long_k_two_tokens_and_graph(monkeypatch):
    """m = 2 with x too long for the block-diagonal kernel (80 KiB per token) splits too; in a CUDA graph."""
    monkeypatch.delenv("RESET_NATIVE_GEMV_KSPLIT", raising=False)
    n, k = 48, 40960
    packed, scales, gs, p, s = _weights(n, k, 5)
    gen = torch.Generator().manual_seed(6)
    x = torch.randn((2, k), generator=gen).to(torch.bfloat16).cuda()
    assert _workspace_bytes(p, s, x, "bf16") > 0
    eager = nc.gemv(p, s, gs, x, "bf16")
    ref.check_vs_fp64(eager, packed, scales, gs, x, "bf16", None, None)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        nc.gemv(p, s, gs, x, "bf16")
    torch.cuda.current_stream().wait_stream(side)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        y = nc.gemv(p, s, gs, x, "bf16")
    x.copy_(torch.randn((2, k), generator=gen).to(torch.bfloat16))
    g.replay()
    torch.cuda.synchronize()
    assert torch.equal(y, nc.gemv(p, s, gs, x, "bf16"))
    ref.check_vs_fp64(y, packed, scales, gs, x, "bf16", None, None)


def _long_k_case(monkeypatch, x_seed):
    """A call that splits K by the default rule (64 x 8192 weights, 16 tokens of bf16 x): (packed, scales, gs,
    packed on the GPU, scales on the GPU, x, the split workspace bytes it wants)."""
    monkeypatch.delenv("RESET_NATIVE_GEMV_KSPLIT", raising=False)
    packed, scales, gs, p, s = _weights(64, 8192, 9)
    x = torch.randn((16, 8192), generator=torch.Generator().manual_seed(x_seed)).to(torch.bfloat16).cuda()
    need = _workspace_bytes(p, s, x, "bf16")
    assert need > 0
    return packed, scales, gs, p, s, x, need


def test_without_workspace_runs_unsplit(monkeypatch):
    """The C++ entry point given no (or too little) workspace runs the unsplit kernel: the bits of KSPLIT=1."""
    _, _, gs, p, s, x, need = _long_k_case(monkeypatch, 10)
    m, k, n = x.shape[0], x.shape[1], p.shape[0]
    out = torch.empty((m, n), dtype=torch.bfloat16, device="cuda")
    ws = torch.empty(need // 4 - 1, dtype=torch.float32, device="cuda")
    stream = torch.cuda.current_stream().cuda_stream
    for ws_ptr, ws_bytes in ((0, 0), (ws.data_ptr(), ws.numel() * 4)):
        out.fill_(float("nan"))
        wanted = nc._native.cuda_gemv(p.data_ptr(), s.data_ptr(), gs, n, k, x.data_ptr(), 2, m, False, 1.0, 0, 0,
                                      out.data_ptr(), stream, split_workspace=ws_ptr, split_workspace_bytes=ws_bytes)
        assert wanted == need  # what it would have used, though it ran unsplit
        monkeypatch.setenv("RESET_NATIVE_GEMV_KSPLIT", "1")
        unsplit = nc.gemv(p, s, gs, x, "bf16")
        monkeypatch.delenv("RESET_NATIVE_GEMV_KSPLIT")
        assert torch.equal(out, unsplit)
    split = nc.gemv(p, s, gs, x, "bf16")
    # Different summation order, so not the same bits, but within a few fp32 ulps of the sums.
    assert torch.allclose(split.float(), unsplit.float(), rtol=2**-7, atol=1e-3)


@pytest.mark.parametrize("n,k,m,forced", [(200, 8192, 16, None), (200, 5120, 3, "2"), (37, 4096, 8, "4")])
def test_split_w4a4_amax_in_kernel_or_pre_kernel_same_bits(n, k, m, forced, monkeypatch):
    """W4A4 with the dynamic activation scale under split K: the amax comes from every CTA's own reduction over
    all of x (RESET_NATIVE_GEMV_SPLIT_AMAX=1; CTA 0 stores it for the reduction kernel) or from the pre-kernel
    (=0); the rule picks by the L2 traffic. A max does not depend on who takes it: the same bits, in eager calls
    and in a CUDA graph whose x changes (so the stored amax cannot be stale), and within the fp64 bound."""
    if forced is None:
        monkeypatch.delenv("RESET_NATIVE_GEMV_KSPLIT", raising=False)
    else:
        monkeypatch.setenv("RESET_NATIVE_GEMV_KSPLIT", forced)
    packed, scales, gs, p, s = _weights(n, k, n + 2 * k)
    gen = torch.Generator().manual_seed(m + k)
    x = (torch.randn((m, k), generator=gen) * 3).to(torch.bfloat16).cuda()
    assert _workspace_bytes(p, s, x, "nvfp4") > 0
    ys = {}
    for src in ("1", "0", None):
        if src is None:
            monkeypatch.delenv("RESET_NATIVE_GEMV_SPLIT_AMAX", raising=False)
        else:
            monkeypatch.setenv("RESET_NATIVE_GEMV_SPLIT_AMAX", src)
        ys[src] = nc.gemv(p, s, gs, x, "nvfp4")
    assert torch.equal(ys["1"], ys["0"]) and torch.equal(ys[None], ys["0"])
    ref.check_vs_fp64(ys["1"], packed, scales, gs, x, "nvfp4", None, None)
    monkeypatch.setenv("RESET_NATIVE_GEMV_SPLIT_AMAX", "1")
    nc.gemv(p, s, gs, x, "nvfp4")  # warm-up outside the capture
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        y = nc.gemv(p, s, gs, x, "nvfp4")
    x.copy_((torch.randn((m, k), generator=gen) * 0.01).to(torch.bfloat16))  # a much smaller amax
    g.replay()
    torch.cuda.synchronize()
    monkeypatch.setenv("RESET_NATIVE_GEMV_SPLIT_AMAX", "0")
    assert torch.equal(y, nc.gemv(p, s, gs, x, "nvfp4"))
    ref.check_vs_fp64(y, packed, scales, gs, x, "nvfp4", None, None)


def _launch(p, s, gs, x, out, ws, ws_bytes, defer):
    n, k = p.shape[0], p.shape[1] * 2
    return nc._native.cuda_gemv(p.data_ptr(), s.data_ptr(), gs, n, k, x.data_ptr(), _CODES[x.dtype], x.shape[0],
                                False, 1.0, 0, 0, out.data_ptr(), torch.cuda.current_stream().cuda_stream,
                                split_workspace=ws, split_workspace_bytes=ws_bytes, defer_short_workspace=defer)


def test_deferred_launch_asks_for_its_workspace(monkeypatch):
    """defer_short_workspace: a call that would split with more workspace than given launches nothing (its output
    keeps its poison) and returns the bytes it wants; given them, it launches the split kernel (the backend's bits);
    a call that does not split launches at once and returns 0."""
    packed, scales, gs, p, s, x, need = _long_k_case(monkeypatch, 11)
    n = p.shape[0]
    out = torch.empty((16, n), dtype=torch.bfloat16, device="cuda")
    ws = torch.empty(need // 4, dtype=torch.float32, device="cuda")
    for ws_ptr, ws_bytes in ((0, 0), (ws.data_ptr(), need - 4)):
        out.fill_(float("nan"))
        assert _launch(p, s, gs, x, out, ws_ptr, ws_bytes, True) == need
        torch.cuda.synchronize()
        assert bool(torch.isnan(out).all())  # nothing ran
    assert _launch(p, s, gs, x, out, ws.data_ptr(), need, True) == need
    assert torch.equal(out, nc.gemv(p, s, gs, x, "bf16"))
    ref.check_vs_fp64(out, packed, scales, gs, x, "bf16", None, None)
    one = x[:1].clone()
    assert _workspace_bytes(p, s, one, "bf16") == 0
    out1 = torch.full((1, n), float("nan"), dtype=torch.bfloat16, device="cuda")
    assert _launch(p, s, gs, one, out1, 0, 0, True) == 0
    assert torch.equal(out1, nc.gemv(p, s, gs, one, "bf16"))


def test_remembered_workspace_sizes_never_change_results(monkeypatch):
    """The backend remembers the split workspace each call shape wanted and offers that much at the next call. A
    stale entry, too small (the launch defers, the call repeats with enough), too big (the launch uses what it needs)
    or left from another rule (RESET_NATIVE_GEMV_KSPLIT=1 here), gives the bits of a fresh call, also when the
    first call is captured in a CUDA graph, and the entry is corrected (to the bytes the split kernel used: entries
    >= need launch split, and a fresh call's bits are the split ones, test_deferred_launch_asks_for_its_workspace)."""
    packed, scales, gs, p, s, x, need = _long_k_case(monkeypatch, 12)
    monkeypatch.setattr(nc, "_split_bytes_wanted", {})
    fresh = nc.gemv(p, s, gs, x, "bf16")
    ref.check_vs_fp64(fresh, packed, scales, gs, x, "bf16", None, None)
    (key, wanted), = nc._split_bytes_wanted.items()
    assert wanted == need
    for stale in (4, need - 4, 2 * need, need):
        nc._split_bytes_wanted[key] = stale
        assert torch.equal(nc.gemv(p, s, gs, x, "bf16"), fresh)
        assert nc._split_bytes_wanted[key] == need
    monkeypatch.setenv("RESET_NATIVE_GEMV_KSPLIT", "1")
    unsplit = nc.gemv(p, s, gs, x, "bf16")  # offered `need` bytes, wants none
    assert nc._split_bytes_wanted[key] == 0
    assert torch.equal(unsplit, nc.gemv(p, s, gs, x, "bf16"))
    monkeypatch.delenv("RESET_NATIVE_GEMV_KSPLIT")
    nc._split_bytes_wanted.clear()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):  # the first call of this shape: its launch defers inside the capture
        y = nc.gemv(p, s, gs, x, "bf16")
    g.replay()
    torch.cuda.synchronize()
    assert torch.equal(y, fresh)
