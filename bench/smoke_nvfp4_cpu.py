"""Smoke test of every NVFP4 CPU entry point, each in its own child process, for a first run on a new machine:
a crash (segfault, illegal instruction) in one step is reported with its exit signal and a native backtrace
(gdb when installed, else a preloaded signal handler built with cc), and the remaining steps still run. Exit status 1 if any step failed.

    python bench/smoke_nvfp4_cpu.py
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

PRELUDE = """
import numpy as np
from reset_native import _core, nvfp4
C = _core.nvfp4
rng = np.random.default_rng(0)
def gemv(t, x, kernel, threads):
    y = np.empty((x.shape[0], t.shape[0]), np.float32)
    C.gemv(t.packed, t.block_scales, t.global_scale, x, "float32", y, None, "bf16", None, kernel, threads)
    return y
def check(t, x, y):
    from tests_ref import dq
    ref = x.astype(np.float64) @ dq(t).T
    bound = np.abs(x.astype(np.float64)) @ np.abs(dq(t)).T
    assert np.all(np.abs(y - ref) <= 1e-5 * bound + 1e-30), float(np.max(np.abs(y - ref) / (bound + 1e-30)))
"""

# Exact fp64 dequantization, independent of the library (E2M1 and E4M3 from their bit fields).
REF = """
import numpy as np
def _e4m3(b):
    e, m = (b >> 3) & 15, b & 7
    if e == 15 and m == 7:
        return float("nan")
    v = (m / 8) * 2.0 ** -6 if e == 0 else (1 + m / 8) * 2.0 ** (e - 7)
    return -v if b & 0x80 else v
E4M3 = np.array([_e4m3(b) for b in range(256)])
E2M1 = np.array([0, .5, 1, 1.5, 2, 3, 4, 6, -0., -.5, -1, -1.5, -2, -3, -4, -6])
def dq(t):
    p = np.asarray(t.packed)
    codes = np.stack([p & 15, p >> 4], axis=-1).reshape(p.shape[0], -1)
    return E2M1[codes] * np.repeat(E4M3[np.asarray(t.block_scales)], 16, axis=1) * t.global_scale
"""

ERRORS = """
import re
def expect(exc, pattern, f, *a):
    try:
        f(*a)
    except exc as e:
        assert re.search(pattern, str(e)), str(e)
        return
    raise AssertionError("no " + exc.__name__ + " from " + pattern)
w = np.ones((6, 64), np.float32); w[4, 33] = np.nan
expect(ValueError, r"w\\[4, 33\\] is nan", nvfp4.quantize, w)
expect(ValueError, r"w\\[4, 33\\] is nan", nvfp4.quantize, w.astype(np.float16))
p, s = np.zeros((2, 8), np.uint8), np.zeros((2, 1), np.uint8)
expect(ValueError, r"must be non-empty, got shape \\[0, 16\\]", C.dequantize, p[:0], s[:0], 1.0, np.empty((0, 16), np.float32), "float32")
print("ok")
"""

# Not nvfp4: the dram engine still formats through std::ostringstream (a hex address in this message). If
# these steps crash on a machine where the nvfp4 error steps pass, iostreams themselves are broken there.
DRAM_IOSTREAM = """
from reset_native import dram
D = _core.dram
try:
    D.simulate(D.preset(D.preset_names()[0]), 1, 1, dram.MAPPINGS[dram.DEFAULT_MAPPING], "frfcfs", "open", 32, 32,
               28, 16, True, np.array([0]), np.array([0], np.uint8), np.array([1 << 62], np.uint64), False)
except ValueError as e:
    assert "0x4000000000000000" in str(e), str(e)
    print("ok")
"""

STEPS = {
    "cpu features": "print(C.avx2_available(), C.avx512_available())",
    "selected kernel": "print(C.selected_kernel('auto'))",
    "physical cores": "print(C.physical_cores())",
    "default threads": "print(C.default_threads())",
    "cpu_info": "print(nvfp4.cpu_info())",
    "dequantize 1x16": """
t = nvfp4.NVFP4Tensor.from_parts(np.arange(8, dtype=np.uint8).reshape(1, 8), np.array([[0x38]], np.uint8), 1.0)
print(nvfp4.dequantize(t))""",
    "quantize 300x4112": "t = nvfp4.quantize(rng.standard_normal((300, 4112)).astype(np.float32)); print(t)",
    "gemv every kernel, M=1,3,16,17, 1 thread": """
t = nvfp4.quantize(rng.standard_normal((37, 4112)).astype(np.float32))
for kernel in nvfp4.cpu_info()["available"]:
    for m in (1, 3, 16, 17):
        x = rng.standard_normal((m, 4112)).astype(np.float32)
        check(t, x, gemv(t, x, kernel, 1))
    print(kernel, "ok")""",
    "gemv default kernel, all threads, 40 calls": """
t = nvfp4.quantize(rng.standard_normal((4000, 4096)).astype(np.float32))
for i in range(40):
    x = rng.standard_normal((1 + i % 5, 4096)).astype(np.float32)
    y = gemv(t, x, "auto", 0)
check(t, x, y)
print("ok", nvfp4.cpu_info()["threads"], "threads")""",
    "read_checksum all threads": "b = np.ones(1 << 26, np.uint8); print(C.read_checksum(b, 0) == (1 << 26) // 8 * 0x0101010101010101 % (1 << 64))",
    # The C++ error paths format numbers into messages (the GPU host crashed in exactly these before they
    # stopped using iostreams); with torch imported first as well, since it brings its own runtime libraries.
    "error messages": ERRORS,
    "error messages, torch imported first": "import torch\n" + ERRORS,
    "diagnostic: iostream number formatting elsewhere in _core (dram)": DRAM_IOSTREAM,
    "diagnostic: the same, torch imported first": "import torch\n" + DRAM_IOSTREAM,
    "C++ / OpenMP runtimes mapped into the process (numpy, _core, torch)": """
import os, subprocess, sys
try:
    import torch
except ImportError:
    pass
libs = sorted({ln.split()[-1] for ln in open("/proc/self/maps") if any(k in ln for k in ("libstdc++", "libgcc_s",
                                                                                             "libgomp", "libomp", "libiomp"))})
print("\\n".join(libs))
# Objects that define (and so may interpose) the C++ runtime's locale machinery besides libstdc++ itself: a
# second copy in one process breaks iostreams' number formatting.
objs = sorted({ln.split()[-1] for ln in open("/proc/self/maps") if " r-xp " in ln and ln.split()[-1].startswith("/")})
for path in [os.path.realpath(sys.executable)] + objs:
    if "libstdc++" in path or os.path.getsize(path) > (200 << 20):
        continue
    nm = subprocess.run(["nm", "-D", "--defined-only", "-C", path], capture_output=True, text=True)
    n = sum("std::locale" in ln for ln in nm.stdout.splitlines())
    if n or nm.returncode != 0:
        print(path, "defines", n, "std::locale symbols" if nm.returncode == 0 else "(nm failed)")
print("checked", len(objs) + 1, "objects")""",
}


# Without gdb (the GPU host has none): a preloaded SIGSEGV / SIGBUS / SIGILL / SIGABRT handler that prints the
# native frames (glibc backtrace) and the mappings they point into, then lets the signal kill the process.
BACKTRACE_C = r"""
#define _GNU_SOURCE
#include <execinfo.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
static char stack[1 << 16];
static void on_fault(int sig) {
  void* frames[48];
  int n = backtrace(frames, 48);
  dprintf(2, "native backtrace (signal %d):\n", sig);
  backtrace_symbols_fd(frames, n, 2);
  FILE* maps = fopen("/proc/self/maps", "r");
  char line[512];
  while (maps && fgets(line, sizeof line, maps)) {
    if (strstr(line, " r-xp ") || strstr(line, " r--p 00000000")) dprintf(2, "map %s", line);
  }
  signal(sig, SIG_DFL);
  raise(sig);
}
__attribute__((constructor)) static void install(void) {
  void* warm[2];
  backtrace(warm, 2);  // loads libgcc_s now, not inside the handler
  stack_t ss = {.ss_sp = stack, .ss_size = sizeof stack};
  sigaltstack(&ss, 0);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_fault;
  sa.sa_flags = SA_ONSTACK;
  sigaction(SIGSEGV, &sa, 0); sigaction(SIGBUS, &sa, 0); sigaction(SIGILL, &sa, 0); sigaction(SIGABRT, &sa, 0);
}
"""


def native_backtrace(cmd: list, tmp: str) -> str:
    if shutil.which("gdb"):
        g = subprocess.run(["gdb", "-q", "-batch", "-ex", "run", "-ex", "bt 25", "--args"] + cmd,
                           capture_output=True, text=True, timeout=300, cwd=tmp)
        lines = g.stdout.splitlines()
        signal_at = next((i for i, ln in enumerate(lines) if "received signal" in ln), 0)
        frames = [ln[:240] for ln in lines[signal_at:] if ln.startswith(("#", "Thread", "\nThread"))
                  or "received signal" in ln][:16]
        return "gdb backtrace:\n" + "\n".join("    " + ln for ln in frames)
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return "no gdb and no C compiler: no native backtrace"
    with open(f"{tmp}/segv_backtrace.c", "w") as f:
        f.write(BACKTRACE_C)
    so = f"{tmp}/segv_backtrace.so"
    b = subprocess.run([cc, "-O1", "-g", "-shared", "-fPIC", "-o", so, f"{tmp}/segv_backtrace.c"], capture_output=True,
                       text=True)
    if b.returncode != 0:
        return "could not build the backtrace handler: " + b.stderr[-300:]
    import os
    env = dict(os.environ, LD_PRELOAD=so)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp, env=env)
    err = r.stderr
    at = err.find("native backtrace")
    if at < 0:
        return f"rerun with a preloaded handler exited {r.returncode} without a native backtrace: {err[-400:]}"
    text = err[at:]
    frames = [ln for ln in text.splitlines() if not ln.startswith("map ")]
    # Only the mappings the frames point into (object path in parentheses or brackets).
    objs = {ln.split("(")[0].strip() for ln in frames[1:] if "(" in ln}
    maps = [ln[4:] for ln in text.splitlines() if ln.startswith("map ") and any(o and ln.endswith(o) for o in objs)]
    return "native backtrace:\n" + "\n".join("    " + ln[:240] for ln in frames[:40] + maps[:20])


def run_step(name: str, body: str, tmp: str) -> bool:
    code = PRELUDE + textwrap.dedent(body)
    cmd = [sys.executable, "-X", "faulthandler", "-c", code]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp)
    out = (r.stdout + r.stderr).strip()
    status = "ok" if r.returncode == 0 else f"FAILED (exit {r.returncode})"
    print(f"[{status}] {name}: {out[-1500:]}", flush=True)
    if r.returncode < 0:
        print("  " + native_backtrace(cmd, tmp), flush=True)
    return r.returncode == 0


def main() -> int:
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        with open(f"{tmp}/tests_ref.py", "w") as f:
            f.write(REF)
        results = [run_step(name, body, tmp) for name, body in STEPS.items()]
    print(f"smoke: {sum(results)}/{len(results)} steps ok", flush=True)
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
