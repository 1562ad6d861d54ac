"""The AVX-512 GEMV kernels checked on any x86 machine: tests/emulation/check_gemv_avx512.cpp compiles
cpp/src/nvfp4/gemv_avx512.cpp against SIMDe's portable AVX-512 intrinsics (Debian package libsimde-dev) and
compares every M = 1..18 and block-count remainder against an fp64 reference. On CPUs with AVX-512 the real
kernels are also run by test_nvfp4.py; this covers the layout logic where they cannot run. Skips without a
C++ compiler or SIMDe."""
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_avx512_kernels_under_simde_emulation(tmp_path):
    cxx = shutil.which("g++") or shutil.which("clang++")
    if cxx is None:
        pytest.skip("no C++ compiler")
    if not Path("/usr/include/simde/x86/avx512.h").exists():
        pytest.skip("SIMDe headers not installed (apt-get install libsimde-dev)")
    exe = tmp_path / "check_gemv_avx512"
    cmd = [cxx, "-std=c++17", "-O1", "-w", "-DSIMDE_NO_NATIVE", "-DRN_AVX512=",
           f"-I{ROOT / 'tests' / 'emulation'}", f"-I{ROOT / 'cpp' / 'include'}", f"-I{ROOT / 'cpp' / 'src' / 'nvfp4'}",
           str(ROOT / "tests" / "emulation" / "check_gemv_avx512.cpp"), str(ROOT / "cpp" / "src" / "nvfp4" / "gemv_avx512.cpp"),
           str(ROOT / "cpp" / "src" / "nvfp4" / "format.cpp"), "-o", str(exe)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "fails=0" in run.stdout, run.stdout + run.stderr
