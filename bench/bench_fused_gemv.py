"""Decoder ops fused into the NVFP4 GEMV vs the separate ops, Qwen3-8B decode layers, one table.

  python bench/bench_fused_gemv.py [--ms 1,2] [--reps 20] [--models 8b,32b] [--ring-compare]

For each fusion a Qwen3-8B decode layer has (input RMSNorm -> q/k/v [6144, 4096]; post-attention RMSNorm ->
gate/up [24576, 4096] -> SiLU * up) and each M: CUDA-graph replay time (median of --reps) of the separate path
(torch.ops.reset_native.rms_norm, nvfp4_gemv, silu_mul) and of the fused GEMV, per call,
with weight copies rotated so their bytes exceed 3x the L2 (weights come from HBM, as in a decode step). Both
paths launch with PDL as the model does. The fused outputs are checked bit-identical to the separate ones in the
same run. --models 8b,32b adds the same fusions on Qwen3-32B's layers (q/k/v [10240, 5120], gate/up [51200, 5120]).
--ring-compare also times the fused GEMV with RESET_NATIVE_GEMV_RING=0 (register loads; column "fused reg us",
"ring gain" = that / fused us: > 1 where the default rule's weight ring is faster) and checks its bits too.
JSON to $OUT/bench_fused_gemv.json when $OUT is set, else bench/out/.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from reset_native import _nvfp4_cuda as nc
from reset_native import _nvfp4_fused as nf
from reset_native.integrations import fused_mlp, fused_norm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_nvfp4_gpu import copies_for, graph_time_us  # noqa: E402

CASES = {"8b": [("qkv + norm", 6144, 4096, False), ("gate_up + norm", 24576, 4096, False),
                ("gate_up + norm + silu", 24576, 4096, True)],
         "32b": [("32b qkv + norm", 10240, 5120, False), ("32b gate_up + norm", 51200, 5120, False),
                 ("32b gate_up + norm + silu", 51200, 5120, True)]}


def weight_copies(n, k, l2):
    """Random packed bytes and E4M3 scales in [2^-7, 2^-3.x], enough copies that their bytes pass 3x the L2."""
    nbytes = n * k // 2 + n * k // 16
    return [(torch.randint(0, 256, (n, k // 2), dtype=torch.uint8, device="cuda"),
             torch.randint(0x20, 0x40, (n, k // 16), dtype=torch.uint8, device="cuda"))
            for _ in range(copies_for(nbytes, l2))]


def separate_ops(p, s, x, nw, silu, gs=0.01, eps=1e-6):
    """The ops a fused call replaces: rms_norm (where nw is given), the plain GEMV, silu_mul over its two halves
    (where silu)."""
    y = nc.gemv(p, s, gs, fused_norm.rms_norm(x, nw, eps) if nw is not None else x, "bf16")
    n = y.shape[1]
    return fused_mlp.silu_mul(y[:, :n // 2], y[:, n // 2:]) if silu else y


def probe_args(doc, extra=()):
    """The fused GEMV probes' command line (--ms, --reps, then extra (flag, default) string options), the device's
    properties and its L2 size: (args, props, l2)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--ms", default="1,2")
    ap.add_argument("--reps", type=int, default=10)
    for flag, default in extra:
        ap.add_argument(flag, default=default)
    props = torch.cuda.get_device_properties(0)
    return ap.parse_args(), props, getattr(props, "L2_cache_size", 50 * 2**20)


def write_rows(name, device, rows):
    """The table's rows as JSON to $OUT/<name>.json ($OUT unset: bench/out/)."""
    out = Path(os.environ.get("OUT", "bench/out")) / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(device=device, rows=rows), indent=1))


def with_ring_off(fn):
    old = os.environ.get("RESET_NATIVE_GEMV_RING")
    os.environ["RESET_NATIVE_GEMV_RING"] = "0"
    try:
        return fn()
    finally:
        if old is None:
            del os.environ["RESET_NATIVE_GEMV_RING"]
        else:
            os.environ["RESET_NATIVE_GEMV_RING"] = old


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ms", default="1,2")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--models", default="8b", help="comma list of 8b, 32b")
    ap.add_argument("--ring-compare", action="store_true", help="also time the fused GEMV with RESET_NATIVE_GEMV_RING=0")
    args = ap.parse_args()
    if not torch.cuda.is_available() or not nc.AVAILABLE:
        sys.exit("bench_fused_gemv: needs a CUDA GPU and a build with RESET_NATIVE_CUDA=ON")
    props = torch.cuda.get_device_properties(0)
    l2 = getattr(props, "L2_cache_size", 50 * 2**20)
    torch.manual_seed(0)
    rows = []
    dt = torch.bfloat16
    cases = [c for model in args.models.split(",") for c in CASES[model]]
    for name, n, k, silu in cases:
        ws = weight_copies(n, k, l2)
        nw = (1 + 0.1 * torch.randn(k, device="cuda")).to(dt)
        for m in [int(v) for v in args.ms.split(",")]:
            x = torch.randn(m, k, device="cuda").to(dt)
            sep = [lambda p=p, s=s: separate_ops(p, s, x, nw, silu) for p, s in ws]
            fus = [lambda p=p, s=s: nf.gemv_fused(p, s, 0.01, x, nw, 1e-6, silu) for p, s in ws]
            same = all(torch.equal(a(), b()) for a, b in zip(sep[:2], fus[:2]))
            t_sep, t_fus = graph_time_us(sep, args.reps), graph_time_us(fus, args.reps)
            row = dict(case=name, n=n, k=k, m=m, separate_us=t_sep, fused_us=t_fus, saved_us=t_sep - t_fus,
                       speedup=t_sep / t_fus, bit_identical=same)
            if args.ring_compare:
                row["bit_identical"] = same and with_ring_off(lambda: torch.equal(fus[0](), sep[0]()))
                row["bit_identical"] = row["bit_identical"] and torch.equal(fus[0](), with_ring_off(fus[0]))
                row["fused_reg_us"] = with_ring_off(lambda: graph_time_us(fus, args.reps))
            rows.append(row)
        del ws
    print(f"{props.name}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, torch {torch.__version__}, "
          f"PDL {'off' if os.environ.get('RESET_NATIVE_PDL') == '0' else 'on'}")
    reg = " fused reg us ring gain" if args.ring_compare else ""
    print(f"{'case':26s} {'M':>3s} {'separate us':>12s} {'fused us':>9s} {'saved us':>9s} {'speedup':>8s}{reg} same")
    for r in rows:
        reg = f" {r['fused_reg_us']:12.2f} {r['fused_reg_us'] / r['fused_us']:8.2f}x" if args.ring_compare else ""
        print(f"{r['case']:26s} {r['m']:3d} {r['separate_us']:12.2f} {r['fused_us']:9.2f} {r['saved_us']:9.2f} "
              f"{r['speedup']:7.2f}x{reg} {'yes' if r['bit_identical'] else 'NO'}")
    write_rows("bench_fused_gemv", props.name, rows)


if __name__ == "__main__":
    main()
