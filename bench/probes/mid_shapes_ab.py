"""A/B of the medium-M kernel shapes (RESET_NATIVE_GEMM_MID) on the Qwen3 decode layers, also at M <= 16 where the
route takes the GEMV: every shape through `_nvfp4_cuda.gemm_mid` itself, against the GEMV (M <= 16) and cuBLAS BF16 in
the same process. CUDA-graph replay medians, weight copies rotated past the L2 (bench_nvfp4_gpu.py's helpers).

    python3 bench/probes/mid_shapes_ab.py --ms 16,32,64,128 --shapes rule,ws64c2,wg64g4 [--layers 8b] [--reps 5]
    python3 bench/probes/mid_shapes_ab.py --ms 64,128 --shapes rule,rule:1,rule:2,rule:3

`rule` is the launcher's own choice; `shape:N` forces N K splits (RESET_NATIVE_GEMM_MID_SPLITS); suffixes `+sk` / `-sk`
turn stream-K on / off (RESET_NATIVE_GEMM_MID_SK), `+pdl` / `-pdl` programmatic dependent launch of the ws path
(RESET_NATIVE_GEMM_MID_PDL), `+gemmpdl` PDL only between the x permutation and the GEMM (`gemm`).
Each time is followed by the K splits that shape ran with (`s2`), or by its stream-K CTAs
(`k132`).
`--isolate` follows every call with a small dependent kernel on its output (`out.add_(1)`, in every column alike): the
next call then cannot start on SMs the call before leaves idle, as in a model where the GEMM's neighbours are other
ops. Without it, repeated calls of one GEMM overlap through PDL, which flatters grids that fill part of a wave.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_nvfp4_gpu import LAYERS, copies_for, graph_time_us, read_bandwidth, rotated_nvfp4  # noqa: E402

from reset_native import _nvfp4_cuda as nc  # noqa: E402


def shaped(shape, fn):
    """fn with RESET_NATIVE_GEMM_MID = shape while it runs (the launcher reads it on the host, also at capture);
    `shape:N` also sets RESET_NATIVE_GEMM_MID_SPLITS = N (N K splits; `rule:1` = the rule's shape, never split),
    suffixes `+sk` / `-sk` RESET_NATIVE_GEMM_MID_SK = 1 / 0 (stream-K of the ws kernel or not), `+pdl` / `-pdl` /
    `+gemmpdl` RESET_NATIVE_GEMM_MID_PDL = 1 / 0 / gemm (programmatic dependent launch of the ws path, none, or only
    between the permutation and the GEMM)."""
    flags = {}
    sk, pdl = "RESET_NATIVE_GEMM_MID_SK", "RESET_NATIVE_GEMM_MID_PDL"
    for suffix, env_name, value in (("+sk", sk, "1"), ("-sk", sk, "0"), ("+pdl", pdl, "1"), ("-pdl", pdl, "0"),
                                    ("+gemmpdl", pdl, "gemm")):
        if suffix in shape:
            shape = shape.replace(suffix, "")
            flags[env_name] = value
    name, _, splits = shape.partition(":")
    env = {"RESET_NATIVE_GEMM_MID": None if name == "rule" else name,
           "RESET_NATIVE_GEMM_MID_SPLITS": splits or None, "RESET_NATIVE_GEMM_MID_SK": None,
           "RESET_NATIVE_GEMM_MID_PDL": None, **flags}

    def run():
        old = {key: os.environ.pop(key, None) for key in env}
        os.environ.update({key: value for key, value in env.items() if value is not None})
        try:
            return fn()
        finally:
            for key, value in old.items():
                os.environ.pop(key, None)
                if value is not None:
                    os.environ[key] = value
    return run


def mid_call(p, s, gs, x, shape):
    def call():
        ok, ws = nc.gemm_mid_plan(p.shape[0], x.shape[1], x)
        assert ok
        return nc.gemm_mid(p, s, gs, x, None, ws)
    return shaped(shape, call)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", default="all", choices=["8b", "32b", "all"])
    ap.add_argument("--ms", default="16,32,64,128")
    ap.add_argument("--shapes", default="rule")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--isolate", action="store_true", help="a dependent op after every call (see the docstring)")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("mid_shapes_ab.py needs a CUDA GPU")
    ms = [int(v) for v in args.ms.split(",")]
    shapes = args.shapes.split(",")
    l2 = getattr(torch.cuda.get_device_properties(0), "L2_cache_size", 50 << 20)
    gen = torch.Generator(device="cuda").manual_seed(0)
    bw = read_bandwidth(args.reps)
    after = (lambda fn: (lambda: fn().add_(1))) if args.isolate else (lambda fn: fn)
    print(f"# {torch.cuda.get_device_name()}, HBM read {bw / 1e12:.3f} TB/s, bf16 x, W4A16, us"
          + (", every call followed by a dependent add_" if args.isolate else ""))
    print("| layer | M | floor |" + (" add_ |" if args.isolate else "") + " bf16 | gemv | " + " | ".join(shapes)
          + " | max rel diff |")
    print("| --- " * (6 + len(shapes) + args.isolate) + "|")
    for model in (["8b", "32b"] if args.layers == "all" else [args.layers]):
        for lname, n, k in LAYERS[model]:
            copies, gs = rotated_nvfp4(n, k, gen, l2)
            dense = [torch.randn((n, k), device="cuda", generator=gen, dtype=torch.bfloat16)
                     for _ in range(copies_for(n * k * 2, l2))]
            for m in ms:
                x = torch.randn((m, k), device="cuda", generator=gen, dtype=torch.bfloat16)
                bf16 = graph_time_us([after(lambda w=w: torch.matmul(x, w.t())) for w in dense], args.reps)
                gemv = (graph_time_us([after(lambda p=p, s=s: nc.gemv(p, s, gs, x, "bf16")) for p, s in copies],
                                      args.reps)
                        if m <= 16 else float("nan"))
                add = ""
                if args.isolate:  # the add_ alone (part of every column's time), 32 per graph
                    y = torch.zeros((m, n), device="cuda", dtype=torch.bfloat16)
                    add = f" {graph_time_us([lambda: y.add_(1)] * 32, args.reps):.1f} |"
                times, outs, splits = [], [], []
                for shape in shapes:
                    times.append(graph_time_us([after(mid_call(p, s, gs, x, shape)) for p, s in copies], args.reps))
                    outs.append(mid_call(*copies[0], gs, x, shape)().float())
                    _, split, ctas = shaped(shape, lambda: nc.gemm_mid_launch_plan(n, k, x))()
                    splits.append(f"k{ctas}" if ctas else f"s{split}")
                ref = outs[0]
                diff = max(float(((o - ref).abs().max() / ref.abs().max()).item()) for o in outs)
                floor = n * k * (0.5 + 1 / 16) / bw * 1e6
                cells = " | ".join(f"{t:.1f} {sp}" for t, sp in zip(times, splits))
                print(f"| {model} {lname} | {m} | {floor:.1f} |{add} {bf16:.1f} | {gemv:.1f} | {cells} | {diff:.1e} |",
                      flush=True)
            del copies, dense
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
