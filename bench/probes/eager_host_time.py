"""Host time per eager NVFP4 GEMV call (no CUDA graph): what a caller pays on the CPU to launch one GEMV.

For a few Qwen3 rows and M, times a loop of `--calls` eager calls with the CPU clock, before synchronising (the
launch queue holds them, so the loop measures submission, not the GPU), median of `--reps` loops. Columns: the
public API (`reset_native.nvfp4.gemv`), the backend (`_nvfp4_cuda.gemv`: its eager route), the torch custom op
called directly (`torch.ops.reset_native.nvfp4_gemv`, what torch.compile graphs run), the native launch alone
(`_core.nvfp4.cuda_gemv` with the arguments prepared once: C++ planning + cudaLaunchKernelEx; W4A16 only, where no
workspace is needed), the C++ planning alone (`cuda_gemv_workspace_bytes`, which plans the call and launches
nothing; W4A16), and torch.matmul on bf16 weights of the same shape as a yardstick. W4A4 rows use the dynamic
activation scale. `--profile` then prints cProfile's top functions of the public API's W4A4 call on the first row.

  python3 bench/probes/eager_host_time.py [--rows 8b:o:1,8b:o:16] [--calls 200] [--reps 7] [--profile]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_nvfp4_gpu import LAYERS  # noqa: E402
from nvfp4_front_host_time import loop_us  # noqa: E402

from reset_native import _nvfp4_cuda as nc  # noqa: E402
from reset_native import nvfp4  # noqa: E402


def host_us(fn, calls, reps):
    """Median over reps of the CPU time of `calls` calls of fn (not synchronised inside the loop), per call."""
    return statistics.median(loop_us(fn, calls, reps, torch.cuda.synchronize))


def native_launch(t, x):
    """The pybind launch of a W4A16 GEMV with every argument computed once (None when the call needs a workspace)."""
    from reset_native import _core

    native = _core.nvfp4
    n, k = t.shape
    m = x.shape[0]
    code = nc._dtype_code(x.dtype, "x")
    if native.cuda_gemv_workspace_bytes(t.packed.data_ptr(), t.block_scales.data_ptr(), n, k, x.data_ptr(), code, m,
                                        False):
        return None
    out = torch.empty((m, n), dtype=x.dtype, device=x.device)
    stream = torch.cuda.current_stream().cuda_stream
    args = (t.packed.data_ptr(), t.block_scales.data_ptr(), t.global_scale, n, k, x.data_ptr(), code, m, False, 1.0, 0,
            0, out.data_ptr(), stream)
    return lambda: native.cuda_gemv(*args)


def plan_query(t, x):
    """The pybind workspace query of a W4A16 GEMV (C++ planning, no launch) with its arguments computed once."""
    from reset_native import _core

    n, k = t.shape
    args = (t.packed.data_ptr(), t.block_scales.data_ptr(), n, k, x.data_ptr(), nc._dtype_code(x.dtype, "x"),
            x.shape[0], False)
    return lambda: _core.nvfp4.cuda_gemv_workspace_bytes(*args)


def profile_public(t, x, calls):
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    for _ in range(calls):
        nvfp4.gemv(t, x, activation="nvfp4")
    prof.disable()
    torch.cuda.synchronize()
    pstats.Stats(prof).sort_stats("tottime").print_stats(22)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="8b:o:1,8b:o:8,8b:o:16,8b:down:8,8b:down:16,32b:qkv:16")
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    shapes = {(model, name): (n, k) for model, layers in LAYERS.items() for name, n, k in layers}
    gen = torch.Generator(device="cuda").manual_seed(0)
    ops = nc._ops()
    print(f"# {torch.cuda.get_device_name(0)}; host us per eager call, median of {args.reps} loops of "
          f"{args.calls} calls", flush=True)
    print(f"{'row':14s} {'act':5s} {'public':>7s} {'backend':>7s} {'op':>7s} {'native':>7s} {'plan':>7s} {'matmul':>7s}",
          flush=True)
    first = None
    for row in args.rows.split(","):
        model, name, m = row.split(":")
        n, k = shapes[(model, name)]
        w = torch.randn((n, k), device="cuda", generator=gen, dtype=torch.bfloat16)
        t = nvfp4.quantize(w)
        x = torch.randn((int(m), k), device="cuda", generator=gen, dtype=torch.bfloat16)
        first = first or (t, x)
        mm = host_us(lambda: torch.matmul(x, w.T), args.calls, args.reps)
        for act in ("bf16", "nvfp4"):
            pub = host_us(lambda: nvfp4.gemv(t, x, activation=act), args.calls, args.reps)
            be = host_us(lambda: nc.gemv(t.packed, t.block_scales, t.global_scale, x, act), args.calls, args.reps)
            op = host_us(lambda: ops.nvfp4_gemv(t.packed, t.block_scales, t.global_scale, x, act, None, None),
                         args.calls, args.reps)
            launch = native_launch(t, x) if act == "bf16" else None
            nat = f"{host_us(launch, args.calls, args.reps):7.1f}" if launch else f"{'-':>7s}"
            plan = f"{host_us(plan_query(t, x), args.calls, args.reps):7.1f}" if act == "bf16" else f"{'-':>7s}"
            print(f"{row:14s} {act:5s} {pub:7.1f} {be:7.1f} {op:7.1f} {nat} {plan} {mm:7.1f}", flush=True)
    if args.profile:
        profile_public(*first, args.calls * 5)


if __name__ == "__main__":
    main()
