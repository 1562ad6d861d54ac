"""NVFP4 GEMV with two teams of 8 warps sharing one staged x per CTA (gemv_kernel TEAMS = 2: x too big for two
CTAs per SM whole, e.g. 16 tokens at K = 4096): the same bits as the one-team kernel (each row tile is computed by
one team exactly as by a CTA) and within the fp64 bound. GPU tests skip without a device."""
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


# (n, k, m): 16 tokens x 4 chunks of x (153 KB with the reduction buffers: one CTA per SM); n = 8 leaves the second
# team without a tile, n = 24 gives each team one, n = 200 ends with an odd tile count and a partial tile; 12 tokens
# x 5 chunks pads the MMA's token side.
@pytest.mark.parametrize("n,k,m", [(8, 4096, 16), (24, 4096, 16), (200, 4096, 16), (136, 5120, 12)])
@pytest.mark.parametrize("dtype,activation", [(torch.bfloat16, "bf16"), (torch.float16, "bf16"),
                                              (torch.bfloat16, "nvfp4"), (torch.float16, "nvfp4")])
def test_teams_same_bits_as_one_team_and_fp64(n, k, m, dtype, activation, monkeypatch):
    monkeypatch.delenv("RESET_NATIVE_GEMV_RING", raising=False)
    monkeypatch.delenv("RESET_NATIVE_GEMV_KSPLIT", raising=False)  # K <= 5120 never splits
    gen = torch.Generator().manual_seed(n + k + m)
    packed, scales, gs = ref.quantize(torch.randn((n, k), generator=gen).numpy())
    p, s = torch.from_numpy(packed).cuda(), torch.from_numpy(scales).cuda()
    x = torch.randn((m, k), generator=gen).to(dtype).cuda()
    bias = torch.randn(n, generator=gen).to(dtype).cuda()
    residual = torch.randn((m, n), generator=gen).to(dtype).cuda()
    ref.poison_next_block(m * n * 4)
    teams = nc.gemv(p, s, float(gs), x, activation, None, bias, residual)
    monkeypatch.setenv("RESET_NATIVE_GEMV_TEAMS", "1")
    one = nc.gemv(p, s, float(gs), x, activation, None, bias, residual)
    assert torch.equal(teams, one)
    # fp64 reference: output rounding + (K/16 + 16) fp32 ulps of sum |x w| (as tests/test_nvfp4_cuda.py).
    x32 = x.float().cpu().numpy()
    x64 = ref.dequantize(*ref.quantize(x32)).astype(np.float64) if activation == "nvfp4" else x32.astype(np.float64)
    w = ref.dequantize(packed, scales, gs).astype(np.float64)
    yref = x64 @ w.T + bias.double().cpu().numpy()[None, :] + residual.double().cpu().numpy()
    abs_sum = np.abs(x64) @ np.abs(w).T + np.abs(residual.double().cpu().numpy())
    ref.assert_within_fp64_bound(teams, yref, abs_sum, k)
