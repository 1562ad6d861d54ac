"""8-row tiles of the block-diagonal NVFP4 GEMV (kSmallRows8, gemv_bd_kernel.cuh): each lane's A rows g + 8 are zero,
so a CTA computes 8 output rows per tile. Each row is still summed by one CTA over the same chunks in the same order,
so the outputs must equal the 16-row kernel's bit for bit (RESET_NATIVE_GEMV_BD_ROWS8=1 against =0, read at every
call), stay within the fp64 bound, and replay in a CUDA graph with the same bits. The rule (switch unset) takes 8-row
tiles where 16-row tiles leave CTA slots idle: N <= 8 rows x 2 CTAs x SMs. GPU tests skip without a device."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nvfp4_gpu_reference as ref  # noqa: E402

from reset_native import _nvfp4_cuda as nc  # noqa: E402

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.gpu

SWITCH = "RESET_NATIVE_GEMV_BD_ROWS8"
ROWS8_BIT = 16  # kSmallRows8, the last template argument of gemv_bd_kernel


@pytest.fixture(autouse=True)
def _default_rules(monkeypatch):
    for name in ("RESET_NATIVE_GEMV_RING", "RESET_NATIVE_GEMV_BD", "RESET_NATIVE_GEMV_KSPLIT",
                 "RESET_NATIVE_GEMV_BD_SMALL", "RESET_NATIVE_GEMV_BD_SPLIT", SWITCH):
        monkeypatch.delenv(name, raising=False)


def _weights(n, k, seed):
    gen = torch.Generator().manual_seed(seed)
    p, s, gs = nc.quantize(torch.randn((n, k), generator=gen).cuda())
    return p, s, float(gs), gen


def _call(p, s, gs, x, bias=None, residual=None):
    return nc.gemv(p, s, gs, x, "bf16", bias=bias, residual=residual)


# (n, k): fewer rows than one 8-row tile, a partial last 8-row tile, one 16-row tile, tiles of one chunk of K,
# K = 5120 (5 chunks: the 8-deep prefetch wraps tiles mid-way), a Qwen3 q/k/v-sized N (several tiles per CTA),
# and K % 1024 != 0 (the general path: the switch must leave it alone).
SHAPES = [(5, 4096), (13, 4096), (16, 4096), (200, 4096), (264, 1024), (136, 5120), (2048, 4096), (6144, 4096),
          (1000, 1040)]


@pytest.mark.parametrize("n,k", SHAPES)
@pytest.mark.parametrize("m", [1, 2])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_rows8_same_bits_as_16_rows_and_fp64(n, k, m, dtype, monkeypatch):
    monkeypatch.setenv("RESET_NATIVE_GEMV_RING", "0")  # the register path
    p, s, gs, gen = _weights(n, k, n + k + m)
    x = (torch.randn((m, k), generator=gen) * 3).to(dtype).cuda()
    bias = torch.randn(n, generator=gen).to(dtype).cuda()
    residual = torch.randn((m, n), generator=gen).to(dtype).cuda()
    for extra in ({}, {"bias": bias}, {"bias": bias, "residual": residual}):
        monkeypatch.setenv(SWITCH, "0")
        torch.full(((m * n * 2 + (1 << 20)) // 4,), float("nan"), device="cuda")  # poison the allocator's next block
        base = _call(p, s, gs, x, **extra)
        monkeypatch.setenv(SWITCH, "1")
        torch.full(((m * n * 2 + (1 << 20)) // 4,), float("nan"), device="cuda")
        rows8 = _call(p, s, gs, x, **extra)
        assert torch.equal(rows8.view(torch.int16), base.view(torch.int16)), extra.keys()
    ref.check_vs_fp64(rows8, p.cpu().numpy(), s.cpu().numpy(), gs, x, "bf16", bias, residual)  # the last extra


@pytest.mark.parametrize("m", [1, 2])
def test_rows8_graph_replays_same_bits(m, monkeypatch):
    monkeypatch.setenv(SWITCH, "1")
    n, k = 1000, 4096
    p, s, gs, gen = _weights(n, k, 7 + m)
    x = torch.randn((m, k), generator=gen).to(torch.bfloat16).cuda()
    eager = _call(p, s, gs, x)
    out = torch.empty_like(eager)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        _call(p, s, gs, x)  # warm-up outside the capture
    torch.cuda.current_stream().wait_stream(stream)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        out.copy_(_call(p, s, gs, x))
    for _ in range(3):
        out.fill_(float("nan"))
        g.replay()
        torch.cuda.synchronize()
        assert torch.equal(out.view(torch.int16), eager.view(torch.int16))


def _rows8_launched(n, k, m):
    p, s, gs, gen = _weights(n, k, 3)
    x = torch.randn((m, k), generator=gen).to(torch.bfloat16).cuda()
    args = ref.kernel_template_args(lambda: _call(p, s, gs, x), "gemv_bd_kernel")
    assert len(args) == 1, args  # one block-diagonal launch
    return (args[0][-1] & ROWS8_BIT) != 0


@pytest.mark.parametrize("m", [1, 2])
def test_rows8_rule_takes_them_where_16_row_tiles_leave_slots_idle(m, monkeypatch):
    monkeypatch.setenv("RESET_NATIVE_GEMV_RING", "0")
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    limit = 8 * 2 * sms  # rows that 8-row tiles cover in one round of two CTAs per SM
    assert _rows8_launched(limit, 4096, m)
    assert _rows8_launched(512, 4096, m)
    assert not _rows8_launched(limit + 8, 4096, m)
    assert not _rows8_launched(6144, 4096, m)
    monkeypatch.setenv(SWITCH, "0")
    assert not _rows8_launched(512, 4096, m)
    monkeypatch.setenv(SWITCH, "1")
    assert _rows8_launched(6144, 4096, m)
