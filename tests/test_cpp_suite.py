"""Builds C++ programs against the INSTALLED package (find_package) and runs them: the embedding
example and the GoogleTest suite in tests/cpp (through ctest). Skips only when cmake or GoogleTest is
missing on a developer machine; CI sets RESET_NATIVE_REQUIRE_CPP_TESTS=1 so a skip there is a failure."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import reset_native

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = os.environ.get("RESET_NATIVE_REQUIRE_CPP_TESTS") == "1"


def _skip_or_fail(reason):
    if REQUIRED:
        pytest.fail(reason)
    pytest.skip(reason)


def _run(cmd, **kw):
    out = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert out.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    return out


def _configure_and_build(src: Path, build: Path):
    if shutil.which("cmake") is None:
        _skip_or_fail("cmake not found")
    cfg = subprocess.run(
        ["cmake", "-S", str(src), "-B", str(build), f"-Dreset_native_DIR={reset_native.cmake_dir()}",
         "-DCMAKE_BUILD_TYPE=Release"],
        capture_output=True, text=True)
    if cfg.returncode != 0 and "GTest" in cfg.stdout + cfg.stderr:
        _skip_or_fail("GoogleTest not found (apt-get install libgtest-dev)")
    assert cfg.returncode == 0, cfg.stdout[-4000:] + cfg.stderr[-4000:]
    _run(["cmake", "--build", str(build), "-j", "2"])


def test_cpp_consumer_embeds_the_installed_package(tmp_path):
    _configure_and_build(ROOT / "examples" / "cpp_consumer", tmp_path / "consumer")
    out = _run([str(tmp_path / "consumer" / "consumer")])
    assert f"reset_native {reset_native.__version__}" in out.stdout
    assert "consumer ok" in out.stdout


def test_ctest_suite_passes(tmp_path):
    build = tmp_path / "ctest"
    _configure_and_build(ROOT / "tests" / "cpp", build)
    out = _run(["ctest", "--test-dir", str(build), "--output-on-failure"])
    assert "tests passed" in out.stdout
    assert "No tests were found" not in out.stdout
