"""The medium-M GEMM's whole plan (mid_plan_for in cuda/nvfp4/gemm_mid.cu, through cuda_gemm_mid_plan_rule: host code,
so it runs on CPU machines in CUDA builds): shape, K splits and stream-K CTAs on the Qwen3 decode layers, and the
switches RESET_NATIVE_GEMM_MID_SK and _SPLITS. The stream-K kernel itself: test_nvfp4_cuda_mid_streamk.py (GPU)."""
import pytest

from reset_native import _core

native = _core.nvfp4
pytestmark = [pytest.mark.skipif(not hasattr(native, "cuda_gemm_mid_plan_rule"), reason="build without CUDA"),
              pytest.mark.skipif(not getattr(native, "cuda_gemm_mid_wgmma", False),
                                 reason="build without sm_90a (no stream-K)")]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("RESET_NATIVE_GEMM_MID", "RESET_NATIVE_GEMM_MID_SK", "RESET_NATIVE_GEMM_MID_SPLITS"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def plan(m, n, k, hopper=True, sms=132):
    return native.cuda_gemm_mid_plan_rule(m, n, k, hopper, sms)


# Qwen3 decode layers [N, K] and the rule's plan at 32 / 64 / 128 tokens on 132 SMs: (shape, K splits, stream-K CTAs)
QWEN3 = {
    "8b qkv": ((6144, 4096), [("ws32c4", 5, 0), ("ws64c2", 2, 0), ("ws128c2", 2, 0)]),
    "8b o": ((4096, 4096), [("ws32c4", 8, 0), ("ws64c2", 4, 0), ("ws128c2", 4, 0)]),
    "8b gate_up": ((24576, 4096), [("ws32c3", 1, 0), ("ws64c3", 1, 0), ("ws128c3", 1, 0)]),
    "8b down": ((4096, 12288), [("ws32c4", 8, 0), ("ws64c2", 4, 0), ("ws128c2", 4, 0)]),
    "32b qkv": ((10240, 5120), [("ws32c4", 3, 0), ("ws64c2", 1, 132), ("ws128c2", 1, 132)]),
    "32b o": ((5120, 8192), [("ws32c4", 6, 0), ("ws64c2", 3, 0), ("ws128c2", 3, 0)]),
    "32b gate_up": ((51200, 5120), [("ws32c3", 1, 132), ("ws64c2", 1, 132), ("ws128c2", 1, 132)]),
    "32b down": ((5120, 25600), [("ws32c4", 6, 0), ("ws64c2", 3, 0), ("ws128c2", 3, 0)]),
}


@pytest.mark.parametrize("layer", list(QWEN3))
def test_the_plan_on_the_qwen3_layers(layer):
    """Stream-K where the grid leaves >= 20% of its waves' slots idle and each CTA takes >= half a block's stages
    (at 128 tokens per CTA also >= 2 whole blocks per CTA, or an unsplit grid of one wave at most 2/3 full with K of
    at least 32 stages): Qwen3-32B gate/up (200 / 400 CTAs on 132 SMs) and 32B q/k/v at 33..128 tokens (80 CTAs)."""
    (n, k), want = QWEN3[layer]
    assert [plan(m, n, k) for m in (32, 64, 128)] == want


def test_the_switch(clean_env):
    n, k = 10240, 5120
    assert plan(64, n, k)[2] == 132
    clean_env.setenv("RESET_NATIVE_GEMM_MID_SK", "0")
    assert plan(64, n, k) == ("ws64c2", 1, 0)
    clean_env.setenv("RESET_NATIVE_GEMM_MID_SK", "1")  # everywhere the ws kernel runs, in the rule's own shape
    assert plan(32, 6144, 4096) == ("ws32c4", 1, 132)
    assert plan(128, 4096, 4096) == ("ws128c2", 1, 132)  # 32 blocks x 32 stages: 1024 / 4 >= 132
    assert plan(20, 64, 1024) == ("ws32c4", 1, 2)  # 8 stages: 2 CTAs of 4
    assert plan(20, 5, 128) == ("ws32c4", 1, 1)
    assert plan(40, 4096, 4096, hopper=False)[2] == 0  # mma.sync: no stream-K


def test_a_forced_shape_runs_on_the_grid_unless_stream_k_is_asked_for(clean_env):
    clean_env.setenv("RESET_NATIVE_GEMM_MID", "ws64c2")
    assert plan(64, 10240, 5120) == ("ws64c2", 1, 0)
    clean_env.setenv("RESET_NATIVE_GEMM_MID_SK", "1")
    assert plan(64, 10240, 5120) == ("ws64c2", 1, 132)
    clean_env.setenv("RESET_NATIVE_GEMM_MID", "ws64c2m2")
    assert plan(64, 10240, 5120) == ("ws64c2m2", 1, 264)  # two CTAs per SM, all resident


def test_stream_k_ctas_follow_the_gpu_and_the_work(clean_env):
    assert plan(64, 10240, 5120, sms=114) == ("ws64c2", 1, 114)  # an H100 PCIe's SMs: 80 blocks, one wave
    clean_env.setenv("RESET_NATIVE_GEMM_MID_SK", "1")
    assert plan(128, 1000, 384) == ("ws128c2", 1, 6)  # 8 blocks x 3 stages, >= 4 stages per CTA


def test_no_stream_k_past_its_32_bit_stage_count(clean_env):
    clean_env.setenv("RESET_NATIVE_GEMM_MID_SK", "1")
    assert plan(24, 200000, 1 << 28)[2] > 0  # 782 blocks x 2^21 stages < 2^31
    assert plan(24, 200000, 1 << 29)[2] == 0  # > 2^31: the grid


def test_forced_splits_run_the_grid(clean_env):
    clean_env.setenv("RESET_NATIVE_GEMM_MID_SPLITS", "3")
    assert plan(64, 6144, 4096) == ("ws64c2", 3, 0)
    assert plan(64, 51200, 5120) == ("ws64c2", 3, 0)  # stream-K by the rule otherwise
    clean_env.setenv("RESET_NATIVE_GEMM_MID_SK", "1")
    assert plan(64, 51200, 5120) == ("ws64c2", 1, 132)
    clean_env.setenv("RESET_NATIVE_GEMM_MID_SK", "")
    clean_env.setenv("RESET_NATIVE_GEMM_MID_SPLITS", "100")  # out of 1..64: the rule's
    assert plan(64, 6144, 4096) == ("ws64c2", 2, 0)


@pytest.mark.parametrize("request_value", ["", "auto", "ws999"])
def test_a_request_that_falls_back_to_the_rule_keeps_its_stream_k(request_value, clean_env):
    clean_env.setenv("RESET_NATIVE_GEMM_MID", request_value)
    assert plan(64, 51200, 5120) == ("ws64c2", 1, 132)


def test_at_128_tokens_stream_k_needs_2_blocks_per_cta_or_one_long_wave_at_most_2_3_full():
    """At 128 tokens per CTA a stream-K piece is 64 KiB: stream-K needs 2 whole blocks per CTA, or an unsplit grid of
    one wave at most 2/3 full with K of at least 32 stages (the measured case: 32B q/k/v, 80 blocks of 40 stages)."""
    assert plan(128, 128 * 88, 5120) == ("ws128c2", 1, 132)  # 88 CTAs: 2/3 of 132
    assert plan(128, 128 * 89, 5120) == ("ws128c2", 1, 0)  # 89: fuller
    assert plan(128, 128 * 200, 5120) == ("ws128c2", 1, 0)  # 1.5 waves, < 2 blocks per CTA
    assert plan(128, 128 * 400, 5120) == ("ws128c2", 1, 132)  # 4 waves, 3 blocks per CTA
    assert plan(128, 128 * 80, 4096) == ("ws128c2", 1, 132)  # 32 stages
    assert plan(128, 128 * 80, 3968) == ("ws128c2", 1, 0)  # 31 stages
    assert plan(128, 128 * 20, 1024) == ("ws128c2", 2, 0)  # short K: the split grid as before
    assert plan(128, 10240, 5120, sms=114) == ("ws128c2", 1, 0)  # 80 of 114 slots: fuller than 2/3


def test_never_fewer_stream_k_ctas_than_the_grid_runs_at_once():
    """Short K caps stream-K at 4 stages per CTA: 16 row blocks of one stage would become 5 stream-K CTAs of 192 rows
    (4-5 stages each) against the grid's 16 CTAs, so the grid runs (its one wave is 12% full: the idle test alone
    would pick stream-K)."""
    assert plan(24, 4096, 128) == ("ws32c4", 1, 0)
    assert plan(48, 4096, 256) == ("ws64c2", 1, 0)  # 32 blocks x 2 stages: 16 CTAs against 32
    assert plan(48, 128 * 165, 1024) == ("ws64c2", 1, 132)  # 165 blocks x 8 stages: 132 CTAs, the GPU test's case
