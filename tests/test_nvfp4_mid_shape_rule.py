"""The medium-M GEMM's kernel-shape rule and the parsing of RESET_NATIVE_GEMM_MID (mid_shape_rule in
cuda/nvfp4/gemm_mid.cu, through cuda_gemm_mid_shape: host code, so it runs on CPU machines in CUDA builds; the
kernels themselves: test_nvfp4_cuda_mid.py). A forced shape that does not fit falls back to the rule without a
signal, so the GPU tests cannot see a broken parser: these can."""
import pytest

import reset_native
from reset_native import _core

native = _core.nvfp4
pytestmark = pytest.mark.skipif(not hasattr(native, "cuda_gemm_mid_shape"), reason="build without CUDA")
WG = bool(getattr(native, "cuda_gemm_mid_wgmma", False))
needs_wgmma = pytest.mark.skipif(not WG, reason="build without sm_90a (no wgmma kernels)")


def shape(m, n=4096, hopper=True, request="", sms=132):
    """The shape for m tokens and n rows (default: 22 row blocks of 192, far from a wave of 132 SMs)."""
    return native.cuda_gemm_mid_shape(m, n, hopper, request, sms)


# the warp-specialised wgmma kernel's built shapes (gemm_ws_kernel.cuh): tokens per CTA, consumer warpgroups, m2 = two
# CTAs per SM
WS_SHAPES = ("ws16c2", "ws32c2", "ws64c2", "ws128c2", "ws32c3", "ws64c3", "ws128c3", "ws32c4", "ws64c4", "ws32c2m2",
             "ws64c2m2")
# The rule where the build has wgmma: the warp-specialised kernel with 32 tokens and 4 consumer warpgroups up to 32
# tokens, 64 and 2 up to 64, 128 and 2 beyond (3 where that grid fills one wave: below); without: mma.sync (session
# 27's shapes).
RULE_32 = "ws32c4" if WG else "n4m2"
MID_RULE = "ws64c2" if WG else "n8m1"  # 33..64 tokens
RULE_128 = "ws128c2" if WG else "n8m1"


def test_rule_by_token_count():
    assert [shape(m) for m in (1, 17, 32)] == [RULE_32] * 3
    assert [shape(m) for m in (33, 48, 64)] == [MID_RULE] * 3
    assert [shape(m) for m in (65, 96, 128, 1024)] == [RULE_128] * 4


@needs_wgmma
def test_three_warpgroups_where_their_grid_fills_one_wave():
    """192-row CTAs where token blocks x row blocks of 192 are 90..100% of the SMs (Qwen3-8B gate/up on 132 SMs: 128
    CTAs, against 96 of 256 rows or 192 of 128)."""
    assert [shape(m, n=24576) for m in (17, 32, 48, 64, 100, 128)] == ["ws32c3"] * 2 + ["ws64c3"] * 2 + ["ws128c3"] * 2
    assert shape(129, n=24576) == "ws128c2"  # two token blocks: 256 CTAs
    assert shape(40, n=192 * 119) == "ws64c3" and shape(40, n=192 * 118) == "ws64c2"  # 0.9 x 132 = 118.8
    assert shape(40, n=192 * 132) == "ws64c3" and shape(40, n=192 * 132 + 1) == "ws64c2"
    assert shape(20, n=192 * 60) == "ws32c4" and shape(20, n=192 * 60, sms=64) == "ws32c3"  # the GPU's SM count
    assert shape(200, n=192 * 60) == "ws128c3"  # 2 token blocks x 60


def test_wgmma_only_on_compute_capability_9_0():
    assert shape(100, hopper=False) == "n8m1"
    assert shape(40, hopper=False, request="wg64") == "n8m1"
    assert shape(40, hopper=False, request="n4m1") == "n4m1"  # the mma.sync shapes run anywhere


@needs_wgmma
def test_every_shape_is_taken_when_requested():
    for request in ("n4m1", "n4m2", "n8m1", "wg32", "wg64", "wg128", "wg64g4", "wg128g4", "wg128g4s") + WS_SHAPES:
        assert shape(40, request=request) == request
        assert shape(100, request=request) == request


def test_other_requests_fall_back_to_the_rule():
    for request in ("wg32g4", "wg256", "n8m2", "N4M2", "bogus", "g4", "wg", "wg64g44", "wg64g4s", "wg128s", "s",
                    "ws", "ws128c4", "ws16c4", "ws64c5", "ws64c2m1", "ws64c2m3", "ws128c2m2", "ws64", "WS64C2"):
        assert shape(40, request=request) == MID_RULE, request
        assert shape(20, request=request) == RULE_32, request


@needs_wgmma
def test_wgmma_shapes_keep_row_blocks_within_the_grid():
    """Row blocks go on the grid's y dimension (at most 65535): 128 rows per CTA, 256 with g4 (64 per warpgroup in the
    warp-specialised shapes); where the rule's shape has too many row blocks, session 29's rule takes over."""
    assert shape(40, n=65535 * 128, request="wg64") == "wg64"
    assert shape(40, n=65535 * 128 + 1, request="wg64") == "wg64g4"  # the rule: 256 rows per CTA still fit
    assert shape(40, n=65535 * 256, request="wg64g4") == "wg64g4"
    assert shape(100, n=65535 * 256) == "wg128g4s"
    assert shape(100, n=65535 * 256 + 1) == "n8m1"
    assert shape(40, n=65535 * 256) == "wg64g4"
    assert shape(40, n=65535 * 256 + 1) == "n8m1"
    assert shape(100, n=65535 * 256 + 1, request="wg128g4s") == "n8m1"
    assert shape(40, n=65535 * 128, request="ws64c2") == "ws64c2"
    assert shape(40, n=65535 * 128 + 1, request="ws64c2") == "wg64g4"
    assert shape(40, n=65535 * 256, request="ws64c4") == "ws64c4"
    assert shape(40, n=65535 * 128) == "ws64c2" and shape(100, n=65535 * 128) == "ws128c2"
    assert shape(20, n=65535 * 256) == "ws32c4" and shape(20, n=65535 * 256 + 1) == "n4m2"


def test_ws_shapes_need_wgmma():
    if not WG:
        assert all(shape(40, request=r) == MID_RULE for r in WS_SHAPES)
    assert shape(40, hopper=False, request="ws64c2") == "n8m1"


def test_the_build_has_the_wgmma_kernels_exactly_when_its_architectures_name_sm_90a_alone():
    """CMakeLists.txt defines RESET_NATIVE_WGMMA for 90a / 90a-real / 90a-virtual without a plain 90 beside it."""
    archs = reset_native.build_info()["cuda_arch"].split(",")
    has_90a = any(a in ("90a", "90a-real", "90a-virtual") for a in archs)
    has_90 = any(a in ("90", "90-real") for a in archs)
    assert WG == (has_90a and not has_90)
