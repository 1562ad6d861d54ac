"""NVFP4 GEMV: two warp teams sharing one staged x also where x would fit two CTAs per SM (the rule
teams_where_two_ctas_fit in cuda/nvfp4/gemv_launch.cuh, kTeamsDefault since session 19 helper teams27: 16-bit x, 2..16
tokens, at A16 at most 12 row tiles per SM; tests/test_nvfp4_gpu_teams_default.py covers it further). Each row tile is
computed by one team exactly as by a CTA, so the rule's output equals the forced choices (RESET_NATIVE_GEMV_TEAMS=1:
never two teams, =2: always where x fits, =measured: session 10's rule) bit for bit, and fp64 math within the
package's bound. Which kernel runs is read from the CUDA kernel names the torch profiler records. GPU tests skip
without a device."""
from __future__ import annotations

import functools
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nvfp4_gpu_reference as ref  # noqa: E402

from reset_native import _nvfp4_cuda as nc  # noqa: E402

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.gpu


@functools.lru_cache(maxsize=16)
def _ref_weights(n, k):
    return ref.quantize(torch.randn((n, k), generator=torch.Generator().manual_seed(n * 7 + k)).numpy())


def _teams_of_call(fn):
    """TEAMS template argument of every 16-bit GEMV kernel the call launched (profiler kernel names)."""
    return [a[8] for a in ref.gemv16_kernel_args(fn)]


# (n, k, m): session 10's range (4..8 tokens, K <= 5120), a partial last tile (n = 200), a second team without a tile
# (n = 8), and that range's edges: 3 and 9 tokens, K = 6144 (two teams by the default, two CTAs with "measured").
SHAPES = [(200, 4096, 4), (200, 4096, 8), (8, 4096, 5), (136, 5120, 6), (200, 4096, 3), (200, 4096, 9), (72, 6144, 7)]


@pytest.mark.parametrize("n,k,m", SHAPES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("activation", ["bf16", "nvfp4"])
def test_rule_same_bits_as_forced_choices_and_fp64(n, k, m, dtype, activation, monkeypatch):
    ref.clear_gemv_env(monkeypatch)
    packed, scales, gs = _ref_weights(n, k)
    p, s, x, bias, residual = ref.gemv_call_inputs((packed, scales, gs), m, dtype)
    ref.poison_next_block(m * n * 4)
    y_rule = nc.gemv(p, s, float(gs), x, activation, None, bias, residual)
    for forced in ("1", "2", "measured"):
        monkeypatch.setenv("RESET_NATIVE_GEMV_TEAMS", forced)
        assert torch.equal(nc.gemv(p, s, float(gs), x, activation, None, bias, residual), y_rule), forced
    ref.check_vs_fp64(y_rule, packed, scales, float(gs), x, activation, bias, residual)


def test_rule_kernel_choice(monkeypatch):
    """Two teams exactly where the rule says (bf16 x, A16, K % 1024 == 0, random weights: only the choice matters;
    the instances of bench/probes/gemv_teams_routing.py's route on 132 SMs)."""
    ref.clear_gemv_env(monkeypatch)
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    gen = torch.Generator(device="cuda").manual_seed(0)

    def teams(n, k, m, dtype=torch.bfloat16, activation="bf16"):
        p = torch.randint(0, 256, (n, k // 2), generator=gen, device="cuda", dtype=torch.uint8)
        s = torch.randint(0x30, 0x40, (n, k // 16), generator=gen, device="cuda", dtype=torch.uint8)
        x = torch.randn((m, k), generator=gen, device="cuda").to(dtype)
        return _teams_of_call(lambda: nc.gemv(p, s, 0.01, x, activation))

    assert teams(6144, 4096, 4) == [2]  # Qwen3-8B q/k/v: three CTAs per SM before
    assert teams(4096, 4096, 8) == [2]  # 8B o: two CTAs per SM before
    assert teams(10240, 5120, 6) == [2]  # 32B q/k/v
    assert teams(6144, 4096, 8, torch.float16) == [2]
    limit = 16 * 12 * sms  # rows of 12 row tiles per SM
    assert teams(limit, 4096, 8) == [2]
    assert teams(limit + 16, 4096, 8) == [1]  # one tile more: two CTAs per SM
    assert teams(6144, 4096, 3) == [2]  # 3 tokens: three CTAs per SM before session 19 helper teams27
    assert teams(6144, 4096, 9) == [2]  # 9 tokens: two CTAs per SM (x fits) before
    assert teams(5120, 8192, 4) == [2]  # K = 8192 (32B o): no K limit since teams27 (two CTAs per SM before)
    assert teams(6144, 1024, 8, torch.float32) == [1]  # fp32 x (three bf16 parts; K = 1024 so x fits two CTAs)
    assert teams(24576, 4096, 16) == [2]  # 16 tokens at K = 4096: x fits one CTA per SM only, two teams as before
    monkeypatch.setenv("RESET_NATIVE_GEMV_TEAMS", "1")
    assert teams(6144, 4096, 4) == [1]
    monkeypatch.setenv("RESET_NATIVE_GEMV_TEAMS", "2")
    assert teams(limit + 16, 4096, 8) == [2]
    monkeypatch.setenv("RESET_NATIVE_GEMV_TEAMS", "measured")  # session 10's rule: 4..8 tokens, K <= 5120
    assert teams(6144, 4096, 4) == [2]
    assert teams(6144, 4096, 3) == [1]
    assert teams(6144, 4096, 9) == [1]
    assert teams(5120, 8192, 4) == [1]


def test_rule_in_cuda_graph(monkeypatch):
    """Captured under the rule (two teams), replays equal eager calls without teams, also after x changes in place."""
    ref.clear_gemv_env(monkeypatch)
    packed, scales, gs = _ref_weights(200, 4096)
    p, s = torch.from_numpy(packed).cuda(), torch.from_numpy(scales).cuda()
    gen = torch.Generator().manual_seed(5)
    x = torch.randn((8, 4096), generator=gen).to(torch.bfloat16).cuda()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        nc.gemv(p, s, float(gs), x, "bf16")  # warm-up outside the capture
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        y = nc.gemv(p, s, float(gs), x, "bf16")
    monkeypatch.setenv("RESET_NATIVE_GEMV_TEAMS", "1")
    for _ in range(2):
        x.copy_(torch.randn((8, 4096), generator=gen).to(torch.bfloat16).cuda())
        graph.replay()
        torch.cuda.synchronize()
        assert torch.equal(y, nc.gemv(p, s, float(gs), x, "bf16"))
