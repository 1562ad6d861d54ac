"""The fused and W4A4 block-diagonal kernels' register-path forms (session 11): "cb" (the default: one output per
thread in the tile epilogue, x staged two units at a time) against "legacy" (the kernels before), timed in the same
process. (Since session 12 the fused kernels' default, the "cb" column here, is cb with the weight-load wait at the
loop head; bench/probes/fused_head_wait.py.)

Rows: the fused GEMVs of Qwen3-8B and Qwen3-32B (input RMSNorm -> q/k/v; gate/up -> SiLU * up, without and with the
post-attention RMSNorm), switch RESET_NATIVE_GEMV_BD_SMALL_FUSED; and the plain W4A4 GEMV (bf16 x quantized in the
kernel, activation scale computed on the device) of the 8 projection layers, switch RESET_NATIVE_GEMV_BD_SMALL_W4A4.
The weight ring is off (RESET_NATIVE_GEMV_RING=0, the default since session 10). us per call: CUDA-graph replay
(median of --reps; the better of two such medians per form, timed legacy, cb, cb, legacy), weight copies rotated
past 3x the L2, PDL on. "sep us" = the separate ops the fused call replaces
(norm op, plain GEMV in its default form, silu_mul op); "legacy/cb" > 1: cb faster. "same" = both forms' outputs
equal bit for bit (and, for fused rows, equal to the separate ops'). W4A4 32B down (K = 25600: 25 chunks, from 20 on
choose_ksplit splits K) runs the split-K 16-bit kernel under both values (ratio ~1: a control row).

  python3 bench/probes/fused_small_sweep.py [--ms 1,2] [--reps 10] [--groups fused,w4a4]
JSON to $OUT/fused_small_sweep.json when $OUT is set, else bench/out/.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_fused_gemv import probe_args, separate_ops, weight_copies, write_rows  # noqa: E402
from bench_nvfp4_gpu import graph_time_us  # noqa: E402
from gemv_bd_small_sweep import under as under_switches  # noqa: E402

from reset_native import _nvfp4_cuda as nc  # noqa: E402
from reset_native import _nvfp4_fused as nf  # noqa: E402

FUSED = [  # name, n, k, norm, silu
    ("8b qkv + norm", 6144, 4096, True, False),
    ("8b gate_up + silu", 24576, 4096, False, True),
    ("8b gate_up + norm + silu", 24576, 4096, True, True),
    ("32b qkv + norm", 10240, 5120, True, False),
    ("32b gate_up + silu", 51200, 5120, False, True),
    ("32b gate_up + norm + silu", 51200, 5120, True, True),
]
W4A4 = [  # name, n, k
    ("8b qkv w4a4", 6144, 4096), ("8b o w4a4", 4096, 4096), ("8b gate_up w4a4", 24576, 4096),
    ("8b down w4a4", 4096, 12288), ("32b qkv w4a4", 10240, 5120), ("32b o w4a4", 5120, 8192),
    ("32b gate_up w4a4", 51200, 5120), ("32b down w4a4", 5120, 25600),
]
SWITCHES = ("RESET_NATIVE_GEMV_RING", "RESET_NATIVE_GEMV_BD", "RESET_NATIVE_GEMV_BD_SMALL",
            "RESET_NATIVE_GEMV_BD_SMALL_FUSED", "RESET_NATIVE_GEMV_BD_SMALL_W4A4")


def under(env, fn):
    """fn() with exactly env set among SWITCHES (the others unset), restored afterwards."""
    return under_switches(env, fn, SWITCHES)


def main():
    args, props, l2 = probe_args(__doc__, [("--groups", "fused,w4a4")])
    ms = [int(v) for v in args.ms.split(",")]
    groups = args.groups.split(",")
    torch.manual_seed(0)
    dt = torch.bfloat16
    r0 = {"RESET_NATIVE_GEMV_RING": "0"}
    rows = []
    cases = [("fused",) + c for c in FUSED] if "fused" in groups else []
    if "w4a4" in groups:
        cases += [("w4a4", name, n, k, False, False) for name, n, k in W4A4]
    for group, name, n, k, norm, silu in cases:
        ws = weight_copies(n, k, l2)
        nw = (1 + 0.1 * torch.randn(k, device="cuda")).to(dt) if norm else None
        switch = "RESET_NATIVE_GEMV_BD_SMALL_FUSED" if group == "fused" else "RESET_NATIVE_GEMV_BD_SMALL_W4A4"
        for m in ms:
            x = torch.randn(m, k, device="cuda").to(dt)
            if group == "fused":
                fns = [lambda p=p, s=s: nf.gemv_fused(p, s, 0.01, x, nw, 1e-6, silu_mul=silu) for p, s in ws]
                sep = [lambda p=p, s=s: separate_ops(p, s, x, nw, silu) for p, s in ws]
                t_sep, y_sep = under(r0, lambda: (graph_time_us(sep, args.reps), sep[0]()))
            else:
                fns = [lambda p=p, s=s: nc.gemv(p, s, 0.01, x, "nvfp4") for p, s in ws]
                t_sep, y_sep = None, None
            env_leg = dict(r0, **{switch: "legacy"})
            # legacy, cb, cb, legacy: the better of each form's two medians (no order advantage for either)
            t_leg, y_leg = under(env_leg, lambda: (graph_time_us(fns, args.reps), fns[0]()))
            t_cb, y_cb = under(r0, lambda: (graph_time_us(fns, args.reps), fns[0]()))
            t_cb = min(t_cb, under(r0, lambda: graph_time_us(fns, args.reps)))
            t_leg = min(t_leg, under(env_leg, lambda: graph_time_us(fns, args.reps)))
            same = torch.equal(y_leg, y_cb) and (y_sep is None or torch.equal(y_sep, y_cb))
            rows.append(dict(case=name, group=group, n=n, k=k, m=m, separate_us=t_sep, legacy_us=t_leg, cb_us=t_cb,
                             ratio=t_leg / t_cb, same=same))
        del ws
        torch.cuda.empty_cache()
    print(f"# {props.name}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, torch {torch.__version__}, bf16 x, "
          f"ring off, reps {args.reps}; us per call (CUDA-graph replay, weights past L2)")
    print(f"{'case':26s} {'M':>2s} {'sep us':>8s} {'legacy us':>9s} {'cb us':>8s} {'legacy/cb':>10s}  same")
    for r in rows:
        sep_s = f"{r['separate_us']:8.2f}" if r["separate_us"] is not None else f"{'-':>8s}"
        print(f"{r['case']:26s} {r['m']:2d} {sep_s} {r['legacy_us']:9.2f} {r['cb_us']:8.2f} {r['ratio']:9.3f}x  "
              f"{'yes' if r['same'] else 'NO'}")
    write_rows("fused_small_sweep", props.name, rows)


if __name__ == "__main__":
    main()
