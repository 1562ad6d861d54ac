"""The GEMV's software FP4 decode (fp4_word in cuda/nvfp4/gemv_kernel.cuh) against its defining formula
(pair_J of cuda/nvfp4/nvfp4_device.cuh), on the host: tests/cuda_host/fp4_word_check.cu is built with nvcc
(the decode is __host__ __device__; its PTX-only piece, lop3, has a host twin) and run over
word sets. Each output bit depends on a handful of input bits across nibbles, so besides every nibble value at
every position the test sweeps a stride of all 2^32 words; the full sweep (~7 min) is the slow test."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "tests" / "cuda_host" / "fp4_word_check.cu"


@pytest.fixture(scope="module")
def checker(tmp_path_factory):
    nvcc = shutil.which("nvcc") or ("/usr/local/cuda/bin/nvcc" if os.path.exists("/usr/local/cuda/bin/nvcc") else None)
    if nvcc is None:
        pytest.skip("nvcc not found: the host build of the decode check needs it")
    exe = tmp_path_factory.mktemp("fp4_word") / "fp4_word_check"
    subprocess.run([nvcc, "-std=c++17", "-O2", "-arch=sm_90", f"-I{ROOT / 'cpp' / 'include'}", f"-I{ROOT / 'cuda'}",
                    "--expt-relaxed-constexpr", "-o", str(exe), str(SRC)], check=True, capture_output=True)

    def run(*args):
        r = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True)
        return r.returncode, r.stdout.strip()

    return run


def test_every_nibble_at_every_position(checker):
    for pos in range(8):
        for v in range(16):
            for background in (0, 0xFFFFFFFF, 0x5A5A5A5A, 0xA5A5A5A5):
                w = (background & ~(0xF << (4 * pos)) | (v << (4 * pos))) & 0xFFFFFFFF
                assert checker(w, w, 1) == (0, "ok 1"), hex(w)


def test_all_16_bit_halves_and_a_stride_of_all_words(checker):
    assert checker(0, 0xFFFF, 1) == (0, "ok 65536")              # low half, high half zero
    assert checker(0xFFFF, 0xFFFFFFFF, 0x10000) == (0, "ok 65536")  # ...FFFF in the low half, every high half
    assert checker(0, 0xFFFFFFFF, 65537 * 13) == (0, f"ok {0xFFFFFFFF // (65537 * 13) + 1}")


def test_checker_detects_a_wrong_decode(checker):
    code, out = checker(0x12345678, 0x12345678, 1, "mutate")  # one output bit flipped inside the program
    assert code == 1 and out.startswith("mismatch fp16 w=0x12345678 pair 1"), out


@pytest.mark.slow
def test_all_words(checker):
    assert checker() == (0, f"ok {2**32}")
