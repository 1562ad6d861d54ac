"""Configure-time checks of the CMake build (no compilation): bad build options fail early and clearly."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not found")


def _configure(tmp_path, *defs, env_extra=None):
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run(
        ["cmake", "-S", str(ROOT), "-B", str(tmp_path / "b"), "-DRESET_NATIVE_PYTHON=OFF", *defs],
        capture_output=True, text=True, env=env)


def test_cuda_on_without_nvcc_fails_at_configure_with_a_clear_message(tmp_path):
    out = _configure(tmp_path, "-DRESET_NATIVE_CUDA=ON", env_extra={"CUDACXX": str(tmp_path / "no-nvcc")})
    assert out.returncode != 0
    assert "RESET_NATIVE_CUDA=ON but no CUDA compiler (nvcc) was found" in out.stderr


def test_unknown_cuda_mode_is_rejected(tmp_path):
    out = _configure(tmp_path, "-DRESET_NATIVE_CUDA=MAYBE")
    assert out.returncode != 0
    assert "RESET_NATIVE_CUDA must be AUTO, ON or OFF" in out.stderr


def test_cuda_off_configures_a_cpu_only_build(tmp_path):
    out = _configure(tmp_path, "-DRESET_NATIVE_CUDA=OFF")
    assert out.returncode == 0, out.stderr
    assert "CUDA kernels OFF" in out.stdout
