"""Split-K sweep of the NVFP4 GEMV (cuda/nvfp4/gemv_split.cuh) on the Qwen3 decode layers: CUDA-graph time of
W4A16 (bf16 x) unsplit (RESET_NATIVE_GEMV_KSPLIT=1), with the automatic choice, and with forced slice counts;
W4A4 unsplit and automatic; W4A16 automatic with one warp team per CTA (RESET_NATIVE_GEMV_TEAMS=1, column 1team)
and, at M <= 2, without the block-diagonal kernel (RESET_NATIVE_GEMV_BD=0, column no_bd) and with it at every K
(RESET_NATIVE_GEMV_BD=1, column all_bd: the choice before session 8); W4A16 and W4A4 with two
warp teams wherever x fits whole (RESET_NATIVE_GEMV_TEAMS=2; with no_bd at M <= 2 only where the bd kernel is off). Same timing method as bench/bench_nvfp4_gpu.py (weights rotated past the L2).

  python3 bench/probes/gemv_ksplit_sweep.py [--ms 2,4,8,16] [--forced 2,3,4,6,9,13] [--forced-w4a4 2,4] [--lean]
                                           [--reps 6]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_nvfp4_gpu import LAYERS, graph_time_us, read_bandwidth, rotated_nvfp4  # noqa: E402

from reset_native import _nvfp4_cuda as nc  # noqa: E402


def with_env(name, value, fn):
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        return fn()
    finally:
        if old is None:
            del os.environ[name]
        else:
            os.environ[name] = old


def with_split(value, fn):
    return with_env("RESET_NATIVE_GEMV_KSPLIT", value, fn)


def slices(p, s, x, activation):
    n, k = p.shape[0], p.shape[1] * 2
    b = nc._native.cuda_gemv_workspace_bytes(p.data_ptr(), s.data_ptr(), n, k, x.data_ptr(), 2, x.shape[0],
                                             activation == "nvfp4")
    return max(1, b // (x.shape[0] * n * 4))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ms", default="2,4,8,16")
    ap.add_argument("--forced", default="2,3,4,6,9,13")
    ap.add_argument("--forced-w4a4", default="", help="slice counts forced for W4A4 too (columns A4S=n)")
    ap.add_argument("--lean", action="store_true", help="skip the team and block-diagonal columns")
    ap.add_argument("--reps", type=int, default=6)
    ap.add_argument("--layers", default="all", choices=["8b", "32b", "all"])
    args = ap.parse_args()
    props = torch.cuda.get_device_properties(0)
    l2 = props.L2_cache_size
    bw = read_bandwidth(args.reps)
    print(f"# {props.name}, read bandwidth {bw / 1e12:.3f} TB/s", flush=True)
    gen = torch.Generator(device="cuda").manual_seed(0)
    forced = [f for f in args.forced.split(",") if f]
    forced4 = [f for f in args.forced_w4a4.split(",") if f]
    rows = []
    for model in (["8b", "32b"] if args.layers == "all" else [args.layers]):
        for name, n, k in LAYERS[model]:
            nv_bytes = n * k * 9 // 16
            wq, gs = rotated_nvfp4(n, k, gen, l2)
            p0, s0 = wq[0]  # the quantizer's own output
            for m in [int(v) for v in args.ms.split(",")]:
                x = torch.randn((m, k), device="cuda", generator=gen, dtype=torch.bfloat16)

                def t(act, value):
                    fns = [lambda p=p, s=s: nc.gemv(p, s, gs, x, act) for p, s in wq]
                    return with_split(value, lambda: graph_time_us(fns, args.reps))

                y_off = with_split("1", lambda: nc.gemv(p0, s0, gs, x, "bf16").float())
                y_auto = nc.gemv(p0, s0, gs, x, "bf16").float()
                diff = float((y_auto - y_off).abs().max() / y_off.abs().max())
                nan = float("nan")
                extra = not args.lean
                r = {"layer": f"{model} {name}", "m": m, "floor": (nv_bytes + 2 * m * (k + n)) / bw * 1e6,
                     "auto_s": slices(p0, s0, x, "bf16"), "off": t("bf16", "1"), "auto": t("bf16", "auto"),
                     "w4a4_off": t("nvfp4", "1"), "w4a4_auto": t("nvfp4", "auto"), "diff": diff,
                     "forced": {f: t("bf16", f) for f in forced},
                     "forced4": {f: t("nvfp4", f) for f in forced4},
                     "one_team": with_env("RESET_NATIVE_GEMV_TEAMS", "1", lambda: t("bf16", "auto")) if extra else nan,
                     "no_bd": (with_env("RESET_NATIVE_GEMV_BD", "0", lambda: t("bf16", "auto")) if m <= 2 and extra
                               else nan),
                     "all_bd": (with_env("RESET_NATIVE_GEMV_BD", "1", lambda: t("bf16", "auto")) if m <= 2 and extra
                                else nan),
                     "teams2": with_env("RESET_NATIVE_GEMV_TEAMS", "2", lambda: t("bf16", "auto")) if extra else nan,
                     "w4a4_teams2": (with_env("RESET_NATIVE_GEMV_TEAMS", "2", lambda: t("nvfp4", "auto")) if extra
                                     else nan)}
                rows.append(r)
                print(f"  {r['layer']} m={m}: off {r['off']:.1f} auto(S={r['auto_s']}) {r['auto']:.1f}",
                      file=sys.stderr, flush=True)
            wq = None  # the copies freed before the next shape (a rebinding: the closures above read wq)
            torch.cuda.empty_cache()
    print(f"{'layer':<12}{'M':>3} {'floor':>6} {'off':>6} {'auto':>6} S {'x':>5} {'w4a4off':>7} {'w4a4auto':>8} "
          + " ".join(f"{'S=' + f:>6}" for f in forced) + "".join(f" {'A4S=' + f:>6}" for f in forced4)
          + f" {'1team':>6} {'no_bd':>6} {'all_bd':>6} {'2teams':>6} {'w4a4_2t':>7}  maxdiff")
    for r in rows:
        print(f"{r['layer']:<12}{r['m']:>3} {r['floor']:>6.1f} {r['off']:>6.1f} {r['auto']:>6.1f} {r['auto_s']} "
              f"{r['off'] / r['auto']:>5.2f} {r['w4a4_off']:>7.1f} {r['w4a4_auto']:>8.1f} "
              + " ".join(f"{r['forced'][f]:>6.1f}" for f in forced) + "".join(f" {r['forced4'][f]:>6.1f}" for f in forced4)
              + f" {r['one_team']:>6.1f} {r['no_bd']:>6.1f} {r['all_bd']:>6.1f} {r['teams2']:>6.1f} {r['w4a4_teams2']:>7.1f}  {r['diff']:.1e}")


if __name__ == "__main__":
    main()
