"""Split K's in-kernel fixup (cuda/nvfp4/gemv_split_fixup.cuh): the last CTA of each walker group adds the K slices
in the split kernel itself, instead of a second kernel. By default at one token; forced here
(RESET_NATIVE_GEMV_SPLIT_FIXUP=1) on every A16 split: the same bits as the second kernel (=0) on the block-diagonal
and the 16-bit split kernels, within the fp64 bound, in CUDA graph replays (whose nonce is frozen at capture), and on
workspaces full of garbage; the tags are reset to 0 after every call. GPU tests skip without a device."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nvfp4_gpu_reference as ref  # noqa: E402

from reset_native import _nvfp4_cuda as nc  # noqa: E402

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.gpu

_weights = ref.seeded_weights
_workspace_bytes = ref.gemv_workspace_bytes  # (A16)


@pytest.fixture(autouse=True)
def _default_rules(monkeypatch):
    ref.clear_gemv_env(monkeypatch, "RESET_NATIVE_GEMV_BD_SPLIT", "RESET_NATIVE_GEMV_BD_LEAN_SPLIT")
    monkeypatch.setenv("RESET_NATIVE_GEMV_SPLIT_FIXUP", "1")


# (n, k, m, switch, value): the block-diagonal split (one token: the lean form where each slice is 4 chunks and n % 16
# == 0, else the cb form; two tokens), then the 16-bit kernel's split (the rule's 4 slices at 16 tokens, forced uneven
# slices, a partial row tile, padded tokens).
CASES = [(320, 8192, 1, "RESET_NATIVE_GEMV_BD_SPLIT", "2"), (200, 8192, 1, "RESET_NATIVE_GEMV_BD_SPLIT", "3"),
         (336, 5120, 2, "RESET_NATIVE_GEMV_BD_SPLIT", "5"), (200, 8192, 16, None, None),
         (200, 8192, 9, "RESET_NATIVE_GEMV_KSPLIT", "3"), (37, 4096, 8, "RESET_NATIVE_GEMV_KSPLIT", "4"),
         (200, 5120, 3, "RESET_NATIVE_GEMV_KSPLIT", "2")]


def _case(n, k, m, switch, value, dtype, monkeypatch, seed=0):
    if switch is not None:
        monkeypatch.setenv(switch, value)
    packed, scales, gs, p, s = _weights(n, k, n + k)
    gen = torch.Generator().manual_seed(n * 7 + m + seed)
    x = torch.randn((m, k), generator=gen).to(dtype).cuda()
    bias = torch.randn(n, generator=gen).to(dtype).cuda()
    residual = torch.randn((m, n), generator=gen).to(dtype).cuda()
    return packed, scales, gs, p, s, x, bias, residual


@pytest.mark.parametrize("n,k,m,switch,value", CASES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_fixup_gives_the_second_kernels_bits(n, k, m, switch, value, dtype, monkeypatch):
    packed, scales, gs, p, s, x, bias, residual = _case(n, k, m, switch, value, dtype, monkeypatch)
    need = _workspace_bytes(p, s, x)
    slices = need // (m * n * 4)
    assert slices > 1, "the case must exercise split K"
    assert need == slices * m * n * 4 + 4 + -(-n // 16) * 8  # the tags after the partial sums
    ref.poison_next_block(need + m * n * 4)
    y = nc.gemv(p, s, gs, x, "bf16", None, bias, residual)
    ref.check_vs_fp64(y, packed, scales, gs, x, "bf16", bias, residual)
    monkeypatch.setenv("RESET_NATIVE_GEMV_SPLIT_FIXUP", "0")
    assert _workspace_bytes(p, s, x) == slices * m * n * 4
    assert torch.equal(y, nc.gemv(p, s, gs, x, "bf16", None, bias, residual))


def test_fixup_float32_x(monkeypatch):
    """float32 x (three bf16 parts) splits the same way."""
    packed, scales, gs, p, s, x, bias, residual = _case(200, 8192, 4, "RESET_NATIVE_GEMV_KSPLIT", "3", torch.float32,
                                                        monkeypatch)
    assert _workspace_bytes(p, s, x) > 0
    y = nc.gemv(p, s, gs, x, "bf16", None, bias, residual)
    ref.check_vs_fp64(y, packed, scales, gs, x, "bf16", bias, residual)
    monkeypatch.setenv("RESET_NATIVE_GEMV_SPLIT_FIXUP", "0")
    assert torch.equal(y, nc.gemv(p, s, gs, x, "bf16", None, bias, residual))


@pytest.mark.parametrize("n,k,m,switch,value", [CASES[0], CASES[3]])
def test_graph_replays_reuse_their_tags(n, k, m, switch, value, monkeypatch):
    """A captured call keeps its nonce and its workspace: every replay must find the tags its previous replay reset.
    Eager calls in between (other workspaces, other nonces) change nothing."""
    packed, scales, gs, p, s, x, bias, residual = _case(n, k, m, switch, value, torch.bfloat16, monkeypatch)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        nc.gemv(p, s, gs, x, "bf16", None, bias, residual)
    torch.cuda.current_stream().wait_stream(side)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        y = nc.gemv(p, s, gs, x, "bf16", None, bias, residual)
    gen = torch.Generator().manual_seed(11)
    for _ in range(4):
        x.copy_(torch.randn((m, k), generator=gen).to(torch.bfloat16))
        g.replay()
        eager = nc.gemv(p, s, gs, x, "bf16", None, bias, residual)
        torch.cuda.synchronize()
        assert torch.equal(y, eager)
    ref.check_vs_fp64(y, packed, scales, gs, x, "bf16", bias, residual)


def _tags(ws_bytes, partial):
    start = -(-partial // 8) * 8
    return ws_bytes[start:start + (ws_bytes.numel() - start) // 8 * 8].cpu().numpy().view(np.uint64)


@pytest.mark.parametrize("garbage", ["ones", "random", "counts"])
@pytest.mark.parametrize("n,k,m,switch,value", [CASES[1], CASES[3]])
def test_garbage_workspace_and_tags_reset(n, k, m, switch, value, garbage, monkeypatch):
    """Through the C++ entry point with a workspace of our own: whatever its bytes hold before (all ones, random
    bytes, tags of another nonce one count short of done), the output is the eager call's, and afterwards no tag holds
    a count: each group's is 0, the ones no group used are as they were."""
    _, _, gs, p, s, x, bias, residual = _case(n, k, m, switch, value, torch.bfloat16, monkeypatch)
    want = nc.gemv(p, s, gs, x, "bf16", None, bias, residual)
    need = _workspace_bytes(p, s, x)
    slices, ntiles = need // (m * n * 4), -(-n // 16)
    partial = slices * m * n * 4
    ws = torch.empty(need, dtype=torch.uint8, device="cuda")
    rng = np.random.default_rng(5)
    if garbage == "ones":
        ws.fill_(0xFF)
    elif garbage == "random":
        ws.copy_(torch.from_numpy(rng.integers(0, 256, need, dtype=np.uint8)))
    else:
        ws.fill_(0x5A)
        fake = (rng.integers(1, 2**48, ntiles, dtype=np.uint64) << np.uint64(16)) | np.uint64(slices - 1)
        start = -(-partial // 8) * 8
        ws[start:start + 8 * ntiles].copy_(torch.from_numpy(fake.view(np.uint8)))
    before = _tags(ws, partial)
    out = torch.full((m, n), float("nan"), dtype=torch.bfloat16, device="cuda")
    stream = torch.cuda.current_stream().cuda_stream
    for _ in range(2):  # the second call finds the first one's zeros
        out.fill_(float("nan"))
        wanted = nc._native.cuda_gemv(p.data_ptr(), s.data_ptr(), gs, n, k, x.data_ptr(), 2, m, False, 1.0, 0,
                                      bias.data_ptr(), out.data_ptr(), stream, residual.data_ptr(),
                                      split_workspace=ws.data_ptr(), split_workspace_bytes=need)
        assert wanted == need
        torch.cuda.synchronize()
        assert torch.equal(out, want)
        after = _tags(ws, partial)
        used = after != before
        assert used.any() and np.all(after[used] == 0)
        assert np.all(after[:ntiles][~used[:ntiles]] == before[:ntiles][~used[:ntiles]])


def test_the_rule_takes_the_fixup_at_one_token(monkeypatch):
    """Unforced, only one-token A16 splits carry tags (the fixup); two tokens and more keep the second kernel."""
    monkeypatch.delenv("RESET_NATIVE_GEMV_SPLIT_FIXUP")
    for m, tags in ((1, True), (2, False), (16, False)):
        n, k = 320, 8192
        _, _, _, p, s = _weights(n, k, 3)
        monkeypatch.setenv("RESET_NATIVE_GEMV_KSPLIT", "4")
        x = torch.zeros((m, k), dtype=torch.bfloat16, device="cuda")
        assert _workspace_bytes(p, s, x) == 4 * m * n * 4 + (4 + n // 16 * 8 if tags else 0), m
