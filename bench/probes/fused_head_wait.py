"""The fused block-diagonal GEMVs' session-12 forms against the default form (cb), timed in the same process:
cbw (the weight-load wait at the head of the step loop) and async (the weights through per-thread cp.async stages
in shared memory, 5 steps in flight at every step), RESET_NATIVE_GEMV_BD_SMALL_FUSED=cbw / async.

Why: in the RMSNorm-prologue instances ptxas waits for every weight load in flight (one scoreboard holds all of
them) at each of the kDepth unrolled steps, i.e. also for the refill the previous step has just issued; the plain
and SiLU-only instances wait once, at the head of the kDepth steps (bench/probes/sass_sb_waits.py lists it per
instance). The cbw form makes the head wait explicit in every fused instance; async waits per step for that
step's group only (cp.async.wait_group).

First table: the plain GEMV (default cb form against RESET_NATIVE_GEMV_BD_SMALL=a, the same cp.async stages) on every
Qwen3 layer the block-diagonal kernel takes (not 32B down; 8B down at one token only). Second table: Qwen3-8B / 32B
q/k/v (+ input RMSNorm) and gate/up (+ SiLU * up, + post-attention RMSNorm + SiLU * up, + RMSNorm alone) at M = 1,
2, bf16 x. "plain" is the unfused GEMV (its own default form), "sep" the
separate ops a fused call replaces (norm op, plain GEMV, silu_mul op). us per call: CUDA-graph replay (median of
--reps; the better of two medians per form, timed cb, cbw, async, async, cbw, cb), weight copies rotated past 3x
the L2, PDL on, ring off. "same": every form and the separate ops give the same bits. cb/x > 1: x faster.

  python3 bench/probes/fused_head_wait.py [--ms 1,2] [--reps 10]
JSON to $OUT/fused_head_wait.json when $OUT is set, else bench/out/.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_nvfp4_gpu import graph_time_us  # noqa: E402
from fused_small_sweep import under, weight_copies  # noqa: E402

from reset_native import _nvfp4_cuda as nc  # noqa: E402
from reset_native import _nvfp4_fused as nf  # noqa: E402
from reset_native.integrations import fused_mlp, fused_norm  # noqa: E402

SHAPES = [  # name, n, k, fused forms (norm, silu)
    ("8b o", 4096, 4096, []), ("8b down", 4096, 12288, []), ("32b o", 5120, 8192, []),
    ("8b qkv", 6144, 4096, [(True, False)]),
    ("8b gate_up", 24576, 4096, [(False, True), (True, True), (True, False)]),
    ("32b qkv", 10240, 5120, [(True, False)]),
    ("32b gate_up", 51200, 5120, [(False, True), (True, True), (True, False)]),
]
FORMS = ("cb", "cbw", "async")
SWITCH = "RESET_NATIVE_GEMV_BD_SMALL_FUSED"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ms", default="1,2")
    ap.add_argument("--reps", type=int, default=10)
    args = ap.parse_args()
    props = torch.cuda.get_device_properties(0)
    l2 = getattr(props, "L2_cache_size", 50 * 2**20)
    ms = [int(v) for v in args.ms.split(",")]
    torch.manual_seed(0)
    dt = torch.bfloat16
    r0 = {"RESET_NATIVE_GEMV_RING": "0"}
    rows = []
    for shape, n, k, fused in SHAPES:
        ws = weight_copies(n, k, l2)
        nw = (1 + 0.1 * torch.randn(k, device="cuda")).to(dt)
        for m in ms:
            x = torch.randn(m, k, device="cuda").to(dt)
            if m == 2 and k >= 12288:
                continue  # the 16-bit kernel's call (bd_chosen)
            plain = [lambda p=p, s=s: nc.gemv(p, s, 0.01, x, "bf16") for p, s in ws]
            # the plain GEMV: default (cb) and RESET_NATIVE_GEMV_BD_SMALL=a (cp.async stages), cb, a, a, cb
            ra = dict(r0, RESET_NATIVE_GEMV_BD_SMALL="a")
            t_plain, y_plain = under(r0, lambda: (graph_time_us(plain, args.reps), plain[0]()))
            t_pa, y_pa = under(ra, lambda: (graph_time_us(plain, args.reps), plain[0]()))
            t_pa = min(t_pa, under(ra, lambda: graph_time_us(plain, args.reps)))
            t_plain = min(t_plain, under(r0, lambda: graph_time_us(plain, args.reps)))
            rows.append(dict(case=f"{shape}", m=m, n=n, k=k, plain_us=t_plain, plain_async_us=t_pa,
                             same=torch.equal(y_plain, y_pa)))
            for norm, silu in fused:
                w = nw if norm else None

                def separate(p, s, w=w, silu=silu):
                    xin = fused_norm.rms_norm(x, w, 1e-6) if w is not None else x
                    y = nc.gemv(p, s, 0.01, xin, "bf16")
                    return fused_mlp.silu_mul(y[:, :n // 2], y[:, n // 2:]) if silu else y

                sep = [lambda p=p, s=s: separate(p, s) for p, s in ws]
                fns = [lambda p=p, s=s, w=w, silu=silu: nf.gemv_fused(p, s, 0.01, x, w, 1e-6, silu_mul=silu)
                       for p, s in ws]
                t_sep, y_sep = under(r0, lambda: (graph_time_us(sep, args.reps), sep[0]()))
                t, y = {}, {}
                for form in FORMS + FORMS[::-1]:  # cb, cbw, async, async, cbw, cb: the better median of each
                    env = dict(r0, **{SWITCH: form})
                    tf, yf = under(env, lambda: (graph_time_us(fns, args.reps), fns[0]()))
                    t[form] = min(t.get(form, float("inf")), tf)
                    y[form] = yf
                same = all(torch.equal(y[f], y_sep) for f in FORMS)
                label = shape + (" + norm" if norm else "") + (" + silu" if silu else "")
                rows.append(dict(case=label, m=m, n=n, k=k, plain_us=t_plain, separate_us=t_sep, same=same,
                                 **{f"{f}_us": t[f] for f in FORMS}))
        del ws
        torch.cuda.empty_cache()
    print(f"# {props.name}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, torch {torch.__version__}, bf16 x, "
          f"ring off, reps {args.reps}; us per call (CUDA-graph replay, weights past L2)")
    print("plain GEMV: default (cb) vs RESET_NATIVE_GEMV_BD_SMALL=a")
    print(f"{'case':28s} {'M':>2s} {'cb':>7s} {'a':>7s} {'cb/a':>7s} {'GB/s a':>7s} same")
    for r in rows:
        if "plain_async_us" in r:
            nbytes = r["n"] * r["k"] * (0.5 + 1 / 16)
            print(f"{r['case']:28s} {r['m']:2d} {r['plain_us']:7.2f} {r['plain_async_us']:7.2f} "
                  f"{r['plain_us'] / r['plain_async_us']:6.3f}x {nbytes / r['plain_async_us'] / 1e3:7.0f} "
                  f"{'yes' if r['same'] else 'NO'}")
    print("fused: RESET_NATIVE_GEMV_BD_SMALL_FUSED forms")
    print(f"{'case':28s} {'M':>2s} {'plain':>7s} {'sep':>7s} " + " ".join(f"{f:>7s}" for f in FORMS)
          + " " + " ".join(f"{'cb/' + f:>9s}" for f in FORMS[1:]) + f" {'sep/best':>9s} same")
    for r in rows:
        if "cb_us" not in r:
            continue
        best = min(r[f"{f}_us"] for f in FORMS)
        print(f"{r['case']:28s} {r['m']:2d} {r['plain_us']:7.2f} {r['separate_us']:7.2f} "
              + " ".join(f"{r[f + '_us']:7.2f}" for f in FORMS) + " "
              + " ".join(f"{r['cb_us'] / r[f + '_us']:8.3f}x" for f in FORMS[1:])
              + f" {r['separate_us'] / best:8.3f}x {'yes' if r['same'] else 'NO'}")
    out = Path(os.environ.get("OUT", "bench/out")) / "fused_head_wait.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(device=props.name, rows=rows), indent=1))


if __name__ == "__main__":
    main()
