"""The package builds, imports, reports what it contains, and maps C++ errors to Python ones."""
import subprocess
import sys
from pathlib import Path

import pytest

import reset_native
from reset_native import _core


def test_build_info_has_the_documented_keys():
    info = reset_native.build_info()
    for key in ("version", "compiler", "cuda_compiled", "cuda_arch", "openmp", "threads", "simd"):
        assert key in info, key
    assert info["version"] == reset_native.__version__
    assert info["threads"] >= 1
    assert isinstance(info["cuda_compiled"], bool)
    # cuda_arch is set exactly when CUDA was compiled in
    assert bool(info["cuda_arch"]) == info["cuda_compiled"]


def test_has_cuda_requires_both_a_cuda_build_and_a_device():
    info = reset_native.build_info()
    assert reset_native.has_cuda() == (info["cuda_compiled"] and info["cuda_device"])


@pytest.mark.parametrize(
    "kind, exc",
    [("argument", ValueError), ("type", TypeError), ("unsupported", NotImplementedError), ("error", RuntimeError)],
)
def test_cpp_errors_map_to_python_exceptions_with_message_intact(kind, exc):
    message = f"the {kind} message: öü 123"
    with pytest.raises(exc) as info:
        _core._raise_for_test(kind, message)
    assert str(info.value) == message
    # the specific mappings must not degrade into the generic one
    if exc is not RuntimeError:
        assert not type(info.value) is RuntimeError


def test_unknown_kind_is_itself_a_value_error():
    with pytest.raises(ValueError, match="kind must be one of"):
        _core._raise_for_test("bogus", "x")


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "reset_native", *args], capture_output=True, text=True)


def test_cli_version_and_info():
    out = _cli("--version")
    assert out.returncode == 0 and reset_native.__version__ in out.stdout
    out = _cli("info")
    assert out.returncode == 0 and "cuda_compiled" in out.stdout


def test_cli_cmakedir_points_at_the_package_config():
    out = _cli("--cmakedir")
    assert out.returncode == 0
    path = Path(out.stdout.strip())
    assert (path / "reset_nativeConfig.cmake").is_file()
    assert (path / "reset_nativeTargets.cmake").is_file()


def test_cuda_sources_compiled_where_ci_requires_it():
    """CI sets RESET_NATIVE_REQUIRE_CUDA_BUILD=1 when nvcc exists: an AUTO build must then contain CUDA."""
    import os

    if os.environ.get("RESET_NATIVE_REQUIRE_CUDA_BUILD") != "1":
        pytest.skip("only enforced in CI (RESET_NATIVE_REQUIRE_CUDA_BUILD=1)")
    info = reset_native.build_info()
    assert info["cuda_compiled"], "nvcc was found but the CUDA kernels were not compiled in"
    assert info["cuda_arch"]
