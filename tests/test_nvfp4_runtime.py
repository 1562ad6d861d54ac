"""The compiled module and the C++ runtime it runs with.

Both pytest crashes on the 16-core GPU host (2026-11-28) came from a second copy of libstdc++'s locale
machinery in the process: that build of `_core` exported 278 `std::locale` symbols (a statically linked
libstdc++; a build against the shared libstdc++ exports none) while torch had loaded libstdc++.so.6. Number
formatting through an iostream then crashes, or silently produces an empty string (reproduced on the dev VM
with a small `-static-libstdc++` library loaded after torch). nvfp4 no longer uses iostreams
(tests/test_nvfp4_errors.py checks its messages); these tests catch the build itself and the behaviour it
breaks in the rest of `_core`.
"""
import os
import shutil
import subprocess
import sys

import pytest

from reset_native import _core


def _defined_dynamic_symbols(path: str) -> list:
    nm = shutil.which("nm")
    if nm is None or not sys.platform.startswith("linux"):
        pytest.skip("needs binutils' nm on Linux")
    out = subprocess.run([nm, "-D", "--defined-only", "-C", path], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_core_exports_no_copy_of_the_cxx_runtime():
    lines = _defined_dynamic_symbols(_core.__file__)
    runtime = [ln for ln in lines if "std::locale" in ln or "std::ios_base::" in ln]
    assert not runtime, (f"{len(runtime)} C++ runtime symbols are exported by {_core.__file__} (libstdc++ linked "
                         f"statically without hiding its symbols), e.g. {runtime[:3]}")


# A number formatted through std::ostringstream in _core (the dram engine's out-of-range address message),
# in a fresh interpreter after torch has loaded its libraries.
_IOSTREAM_AFTER_TORCH = r"""
try:
    import torch  # noqa: F401
except ImportError:
    pass
import numpy as np
from reset_native import _core, dram
D = _core.dram
try:
    D.simulate(D.preset(D.preset_names()[0]), 1, 1, dram.MAPPINGS[dram.DEFAULT_MAPPING], "frfcfs", "open", 32, 32,
               28, 16, True, np.array([0]), np.array([0], np.uint8), np.array([1 << 62], np.uint64), False)
except ValueError as e:
    print(e)
"""


def test_iostream_number_formatting_in_core_after_torch_is_loaded():
    out = subprocess.run([sys.executable, "-X", "faulthandler", "-c", _IOSTREAM_AFTER_TORCH], capture_output=True,
                         text=True, env=dict(os.environ, OMP_NUM_THREADS="16"), timeout=120)
    assert out.returncode == 0, f"exit {out.returncode}: {out.stderr[-2000:]}"
    assert "address 0x4000000000000000 of request 0 is beyond the capacity of 0x" in out.stdout, out.stdout
