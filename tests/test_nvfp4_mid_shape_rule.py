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


def shape(m, n=24576, hopper=True, request=""):
    return native.cuda_gemm_mid_shape(m, n, hopper, request)


MID_RULE = "wg64g4" if WG else "n8m1"  # 33..64 tokens: the pipelined wgmma loop where the build has it


def test_rule_by_token_count():
    assert [shape(m) for m in (1, 17, 32)] == ["n4m2"] * 3
    assert [shape(m) for m in (33, 48, 64)] == [MID_RULE] * 3
    past_64 = "wg128g4s" if WG else "n8m1"  # the serial loop on 128 tokens
    assert [shape(m) for m in (65, 96, 128, 1024)] == [past_64] * 4


def test_wgmma_only_on_compute_capability_9_0():
    assert shape(100, hopper=False) == "n8m1"
    assert shape(40, hopper=False, request="wg64") == "n8m1"
    assert shape(40, hopper=False, request="n4m1") == "n4m1"  # the mma.sync shapes run anywhere


@needs_wgmma
def test_every_shape_is_taken_when_requested():
    for request in ("n4m1", "n4m2", "n8m1", "wg32", "wg64", "wg128", "wg64g4", "wg128g4", "wg128g4s"):
        assert shape(40, request=request) == request
        assert shape(100, request=request) == request


def test_other_requests_fall_back_to_the_rule():
    for request in ("wg32g4", "wg256", "n8m2", "N4M2", "bogus", "g4", "wg", "wg64g44", "wg64g4s", "wg128s", "s"):
        assert shape(40, request=request) == MID_RULE, request
        assert shape(20, request=request) == "n4m2", request


@needs_wgmma
def test_wgmma_shapes_keep_row_blocks_within_the_grid():
    """Row blocks go on the grid's y dimension (at most 65535): 128 rows per CTA, 256 with g4."""
    assert shape(40, n=65535 * 128, request="wg64") == "wg64"
    assert shape(40, n=65535 * 128 + 1, request="wg64") == "wg64g4"  # the rule: 256 rows per CTA still fit
    assert shape(40, n=65535 * 256, request="wg64g4") == "wg64g4"
    assert shape(100, n=65535 * 256) == "wg128g4s"
    assert shape(100, n=65535 * 256 + 1) == "n8m1"
    assert shape(40, n=65535 * 256) == "wg64g4"
    assert shape(40, n=65535 * 256 + 1) == "n8m1"
    assert shape(100, n=65535 * 256 + 1, request="wg128g4s") == "n8m1"


def test_the_build_has_the_wgmma_kernels_exactly_when_its_architectures_name_sm_90a_alone():
    """CMakeLists.txt defines RESET_NATIVE_WGMMA for 90a / 90a-real / 90a-virtual without a plain 90 beside it."""
    archs = reset_native.build_info()["cuda_arch"].split(",")
    has_90a = any(a in ("90a", "90a-real", "90a-virtual") for a in archs)
    has_90 = any(a in ("90", "90-real") for a in archs)
    assert WG == (has_90a and not has_90)
