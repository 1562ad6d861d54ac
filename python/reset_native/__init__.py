"""reset_native: NVFP4 decode kernels, ReSET entropy-based sampling, and a GradPIM/DDR4 memory model.

The heavy lifting is in the C++/CUDA core (``reset_native._core``); this package is the API users import.
Torch is optional: numpy arrays work everywhere, torch tensors (CPU or CUDA) where torch is installed.
"""
from __future__ import annotations

import functools

from . import _core
from ._version import __version__
from .sampler import DecodeOutput, ReSETConfig, ReSETState, calibrate_tau0, decode_step, newline_token_ids

__all__ = [
    "__version__", "build_info", "has_cuda", "cmake_dir",
    "ReSETConfig", "ReSETState", "DecodeOutput", "decode_step", "calibrate_tau0", "newline_token_ids",
    "generate", "nvfp4",
]

from . import nvfp4  # noqa: E402  (numpy only; torch is imported lazily inside)


def __getattr__(name):
    if name == "generate":  # torch and transformers load on first use only
        from .integrations.generate import generate

        return generate
    raise AttributeError(f"module 'reset_native' has no attribute {name!r}")


def build_info() -> dict:
    """What this build contains: version, compiler, cuda_compiled, cuda_arch, openmp, threads, simd."""
    info = dict(_core.build_info())
    info["cuda_device"] = _core.cuda_device_available()
    return info


def has_cuda() -> bool:
    """True when CUDA kernels are compiled in AND a CUDA device is usable right now."""
    return _cuda_compiled() and bool(_core.cuda_device_available())


@functools.lru_cache(maxsize=None)
def _cuda_compiled() -> bool:
    # Fixed for the life of the process; has_cuda runs on every CUDA call of nvfp4, build_info() builds a dict.
    return bool(_core.build_info()["cuda_compiled"])


def cmake_dir() -> str:
    """Directory holding reset_nativeConfig.cmake, for ``-Dreset_native_DIR=...`` / CMAKE_PREFIX_PATH."""
    from pathlib import Path

    # An editable install splits the package: Python sources in the checkout, built files (share/,
    # lib/, include/) in site-packages. __path__ lists both, so look in each.
    for entry in __path__:
        candidate = Path(entry) / "share" / "cmake" / "reset_native"
        if (candidate / "reset_nativeConfig.cmake").is_file():
            return str(candidate)
    raise FileNotFoundError(
        "reset_nativeConfig.cmake not found next to the package; reinstall with `pip install .`")
