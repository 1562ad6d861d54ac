"""NVFP4 GEMV, two-team kernel: one reduction buffer per team where two would push the SM past the 196 KB shared-memory
carve-out (cuda/nvfp4/gemv_kernel.cuh red_one_fits, session 39). A tile's sums are written, summed and read in the same
order either way, so the outputs equal the one-team kernel's bit for bit and lie within the fp64 bound; the launch
asks for one buffer exactly where the rule says. Output poisoned before each call. GPU tests skip without a device."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nvfp4_gpu_reference as ref  # noqa: E402

from reset_native import _nvfp4_cuda as nc  # noqa: E402

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.gpu

ROW_BYTES = (1024 + 32) * 2  # one staged token row of one 1024-wide K chunk (kTokStride u16)


def two_team_smem(k, m, buffers):
    """The two-team kernel's shared memory, worked out by hand: x staged whole (k / 1024 chunks x m token rows + one
    zero row) and `buffers` reduction buffers per team of 8 warps x 16 rows x (16 tokens + 2 pad floats) at m > 8.
    Against the 196 KB carve-out less the 1 KB reserved per CTA (199680 bytes): K = 5120, m = 16 takes 207936 bytes
    with two buffers and 189504 with one; m = 15 takes 197376 with two."""
    rows = k // 1024 * m + 1
    return rows * ROW_BYTES + 2 * buffers * 8 * 16 * (16 + 2) * 4


@pytest.mark.parametrize("m,expected", [(16, two_team_smem(5120, 16, 1)), (15, two_team_smem(5120, 15, 2))])
def test_launch_asks_for_one_buffer_where_two_pass_the_carveout(m, expected, monkeypatch):
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch)
    fn = ref.random_gemv_call(1280, 5120, m, m, "bf16")
    assert ref.gemv16_instances(fn) == [ref.TWO_TEAMS]
    assert ref.kernel_launch_shared_bytes(fn, "gemv_kernel") == [expected]


# (n, k, m): K = 5120 at 16 tokens (Qwen3-32B q/k/v and gate_up), K = 6144 at 13 and 14 tokens (79 and 85 staged rows),
# each with a partial last tile; 15 tokens at K = 5120 keeps two buffers (the same check on the other side).
@pytest.mark.parametrize("n,k,m", [(1288, 5120, 16), (200, 6144, 13), (136, 6144, 14), (200, 5120, 15)])
@pytest.mark.parametrize("dtype,activation", [(torch.bfloat16, "bf16"), (torch.float16, "bf16"),
                                              (torch.bfloat16, "nvfp4")])
def test_one_buffer_same_bits_as_one_team_and_fp64(n, k, m, dtype, activation, monkeypatch):
    ref.clear_gemv_env(monkeypatch)
    monkeypatch.setenv("RESET_NATIVE_GEMV_KSPLIT", "1")  # keep K = 6144 whole
    monkeypatch.setenv("RESET_NATIVE_GEMV_TEAMS", "2")  # two teams (their rule picks them here too)
    packed, scales, gs, p, s = ref.seeded_weights(n, k, n + k + m)
    x, bias, residual = ref.gemv_inputs(n, k, m, dtype)
    ref.poison_next_block(m * n * 4)
    teams = nc.gemv(p, s, float(gs), x, activation, None, bias, residual)
    monkeypatch.setenv("RESET_NATIVE_GEMV_TEAMS", "1")
    ref.poison_next_block(m * n * 4)
    one = nc.gemv(p, s, float(gs), x, activation, None, bias, residual)
    assert torch.equal(teams, one)
    ref.check_vs_fp64(teams, packed, scales, gs, x, activation, bias, residual)


def test_w4a4_compact_cluster_with_one_buffer_same_bits_as_one_team(monkeypatch):
    """W4A4 at 16 tokens on Qwen3-32B q/k/v's shape (640 row tiles) runs the cluster kernel with the compact form,
    whose quantized codes travel in the reduction buffers: with one buffer per team the largest share's codes (20 of
    the 80 staged rows, 12800 bytes) still fit the 18432 bytes left, and the outputs equal the one-team kernel's."""
    ref.needs_h200_routing()
    ref.clear_gemv_env(monkeypatch)
    fn = ref.random_gemv_call(10240, 5120, 16, 16, "nvfp4")
    forms = ref.gemv16_forms_of_call(fn)
    assert [f[:3] for f in forms] == [ref.TWO_TEAMS] and forms[0][3] & ref.W4A4_CLUSTER_COMPACT, forms
    ref.poison_next_block(16 * 10240 * 4)
    teams = fn()
    monkeypatch.setenv("RESET_NATIVE_GEMV_TEAMS", "1")
    ref.poison_next_block(16 * 10240 * 4)
    one = fn()
    assert one.isfinite().all() and torch.equal(teams, one)
