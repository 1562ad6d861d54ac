"""W4A4 (dynamic activation scale) under split K: where the activation amax comes from and how many slices.

For the Qwen3 decode layers of bench/bench_nvfp4_gpu.py, CUDA-graph time (median, weights rotated past the L2) of
the W4A4 GEMV with bf16 x: the automatic choice ("auto"), the automatic slices with the amax pre-kernel
(RESET_NATIVE_GEMV_SPLIT_AMAX=0, "pre") and with every CTA reducing the amax itself (=1, "inline"), forced slice
counts with either, and W4A16 "auto" for reference. Every output of a case is compared bit for bit across the
variants with the same slice count (the amax is a max: where it comes from must not change a bit).

  python3 bench/probes/gemv_w4a4_split.py [--ms 4,8,16] [--forced 2,4] [--reps 5]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_nvfp4_gpu import LAYERS, graph_time_us, read_bandwidth, rotated_nvfp4  # noqa: E402
from gemv_ksplit_sweep import slices, with_env  # noqa: E402

from reset_native import _nvfp4_cuda as nc  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ms", default="4,8,16")
    ap.add_argument("--forced", default="2,4")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    props = torch.cuda.get_device_properties(0)
    bw = read_bandwidth(args.reps)
    print(f"# {props.name}, read bandwidth {bw / 1e12:.3f} TB/s", flush=True)
    forced = [f for f in args.forced.split(",") if f]
    gen = torch.Generator(device="cuda").manual_seed(0)
    rows, mismatches = [], 0
    for model in ("8b", "32b"):
        for name, n, k in LAYERS[model]:
            wq, gs = rotated_nvfp4(n, k, gen, props.L2_cache_size)
            p0, s0 = wq[0]  # the quantizer's own output
            for m in [int(v) for v in args.ms.split(",")]:
                x = torch.randn((m, k), device="cuda", generator=gen, dtype=torch.bfloat16)

                def run(act, split, amax):
                    """(time, one output) with RESET_NATIVE_GEMV_KSPLIT=split and, unless None, _SPLIT_AMAX=amax."""
                    fns = [lambda p=p, s=s: nc.gemv(p, s, gs, x, act) for p, s in wq]
                    measure = lambda: (graph_time_us(fns, args.reps), fns[0]())  # noqa: E731
                    if amax is not None:
                        inner = measure
                        measure = lambda: with_env("RESET_NATIVE_GEMV_SPLIT_AMAX", amax, inner)  # noqa: E731
                    return with_env("RESET_NATIVE_GEMV_KSPLIT", split, measure)

                r = {"layer": f"{model} {name}", "m": m, "s": slices(p0, s0, x, "nvfp4"),
                     "a16": run("bf16", "auto", None)[0]}
                outs = {}
                for split in ["auto"] + forced:
                    for amax in (None, "0", "1"):
                        if split != "auto" and amax is None:
                            continue
                        t, y = run("nvfp4", split, amax)
                        r[(split, amax)] = t
                        outs.setdefault(split, []).append(y)
                for ys in outs.values():
                    mismatches += sum(not torch.equal(ys[0], y) for y in ys[1:])
                rows.append(r)
                print(f"  {r['layer']} m={m} done", file=sys.stderr, flush=True)
            wq = None  # the copies freed before the next shape (a rebinding: the closures above read wq)
            torch.cuda.empty_cache()
    head = f"{'layer':<12}{'M':>3} {'A16':>6} S {'auto':>6} {'pre':>6} {'inline':>6}"
    head += "".join(f" {'S' + f + 'pre':>7} {'S' + f + 'inl':>7}" for f in forced)
    print(head)
    for r in rows:
        line = (f"{r['layer']:<12}{r['m']:>3} {r['a16']:>6.1f} {r['s']} {r[('auto', None)]:>6.1f} "
                f"{r[('auto', '0')]:>6.1f} {r[('auto', '1')]:>6.1f}")
        line += "".join(f" {r[(f, '0')]:>7.1f} {r[(f, '1')]:>7.1f}" for f in forced)
        print(line)
    print(f"# outputs differing between amax sources at the same slice count: {mismatches}")


if __name__ == "__main__":
    main()
