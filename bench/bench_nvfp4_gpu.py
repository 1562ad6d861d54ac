"""NVFP4 GEMV on the GPU vs cuBLAS BF16 and torch's int4 weight-only kernel, Qwen3 decode layers, M = 1..16.

One command, one table:  python bench/bench_nvfp4_gpu.py [--layers 8b|32b|all] [--ms 1,2,4,8,16] [--reps 30]
Times are CUDA-graph replays (median of --reps replays of a graph that calls the op on the rotated weight copies in
turn, at least --calls-per-graph times (20), divided by its call count); enough weight copies are rotated that their
bytes exceed 3x the L2, so weights come from HBM. A graph's fixed costs (its launch, a first call with nothing to
overlap) are shared by all its calls: with one pass over the copies only, as before session 33 (--calls-per-graph 0),
the layers with only 2-4 copies (8B and 32B gate/up, 32B down) came out 1-9 us slower per call. The HBM read
bandwidth is measured in the same run (a large reduction), and the NVFP4 floor is
  bytes = N*K*(0.5 + 1/16) + M*K*2 + M*N*2  over that bandwidth.
Under the table, one line per target of the project's issue (stated for an H100 80GB): met or not, rows meeting it,
the worst row (bench/nvfp4_gpu_targets.py, which also re-reads a saved JSON).
JSON goes to $OUT/bench_nvfp4_gpu.json when $OUT is set, else bench/out/.
The GEMVs launch with programmatic dependent launch (PDL): inside the graph each call starts streaming its
weights while the previous call drains, as consecutive layers do in a decode step. RESET_NATIVE_PDL=0 in the
environment measures plain launches (the header line says which). --compare-ring also times W4A16 through the
opt-in TMA weight ring (RESET_NATIVE_GEMV_RING=1) in the same run and checks that both paths give the same
bits ("ring" column: default time / ring time, > 1 means the ring is faster).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from nvfp4_gpu_targets import LAYERS, call_bytes, target_lines  # bench/; probes import LAYERS from here
from reset_native import _nvfp4_cuda as nc


# Least calls per timed graph (--calls-per-graph): a graph of a few calls measures its own start as well.
MIN_GRAPH_CALLS = 20


def graph_time_us(fns, reps, min_calls=MIN_GRAPH_CALLS):
    """Median replay time of a CUDA graph that calls fns in turn, whole passes over the list until it holds at least
    min_calls calls (0: one pass), divided by its call count."""
    fns = list(fns)
    if not fns or min_calls < 0:
        raise ValueError(f"graph_time_us needs at least one fn and min_calls >= 0, got {len(fns)} and {min_calls}")
    fns *= max(1, math.ceil(min_calls / len(fns)))
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for f in fns:
            f()
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for f in fns:
            f()
    for _ in range(3):
        g.replay()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        g.replay()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) * 1e3 / len(fns))
    del g
    return statistics.median(times)


def read_bandwidth(reps, min_calls=MIN_GRAPH_CALLS):
    buf = torch.empty(2 * 1024**3 // 4, dtype=torch.float32, device="cuda").uniform_()
    out = torch.empty((), dtype=torch.float32, device="cuda")
    t = graph_time_us([lambda: torch.sum(buf, dim=0, out=out)], reps, min_calls)
    return buf.numel() * 4 / (t * 1e-6)


def layer_bench_setup(script, args):
    """What the M > 16 layer benches (bench_nvfp4_prefill.py, bench_nvfp4_mid.py) start from, given their --ms,
    --reps and --layers: (token counts, device properties, L2 bytes, a seeded CUDA generator, the HBM read bandwidth
    measured now, the models). Exits naming the script without a CUDA GPU."""
    if not torch.cuda.is_available():
        sys.exit(f"{script} needs a CUDA GPU")
    props = torch.cuda.get_device_properties(0)
    return ([int(v) for v in args.ms.split(",")], props, getattr(props, "L2_cache_size", 50 << 20),
            torch.Generator(device="cuda").manual_seed(0), read_bandwidth(args.reps),
            ["8b", "32b"] if args.layers == "all" else [args.layers])


def forced_route(route, t, x, act, gx):
    """A call of nvfp4.gemv with RESET_NATIVE_GEMV_PREFILL = route (slices, mid, dequant) for its duration: the
    prefill benches' A/B of the routes, graph-capturable (the variable is read on the host at capture)."""
    from reset_native import nvfp4

    def run():
        os.environ["RESET_NATIVE_GEMV_PREFILL"] = route
        try:
            return nvfp4.gemv(t, x, activation=act, act_global_scale=gx)
        finally:
            os.environ.pop("RESET_NATIVE_GEMV_PREFILL", None)
    return run


def copies_for(nbytes, l2):
    return max(2, min(64, math.ceil(3 * l2 / max(nbytes, 1))))


def quantized_copies(w, l2):
    """w [n, k] quantized on the GPU, and enough copies of its packed bytes and scales to rotate past the L2:
    ([(packed, scales), ...], global scale); the first pair is the quantizer's own output."""
    n, k = w.shape
    p0, s0, gs = nc.quantize(w)
    return [(p0, s0)] + [(p0.clone(), s0.clone()) for _ in range(copies_for(n * k * 9 // 16, l2) - 1)], gs


def rotated_nvfp4(n, k, gen, l2):
    """quantized_copies of random bf16 [n, k] weights drawn from gen."""
    return quantized_copies(torch.randn((n, k), device="cuda", generator=gen, dtype=torch.bfloat16), l2)


def int4_pack(n, k, copies):
    """torch's tinygemm int4 weights (group 128) or None when this torch lacks the op."""
    try:
        w = torch.randint(0, 16, (n, k), dtype=torch.int32, device="cuda")
        wu8 = (w[:, ::2] << 4 | w[:, 1::2]).to(torch.uint8)
        packed = [torch._convert_weight_to_int4pack(wu8, 8) for _ in range(copies)]
        sz = torch.randn(k // 128, n, 2, device="cuda", dtype=torch.bfloat16) * 0.01
        return packed, sz
    except Exception as e:  # noqa: BLE001 - report, don't fail the table
        print(f"  int4 tinygemm unavailable: {e}", file=sys.stderr)
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", default="all", choices=["8b", "32b", "all"])
    ap.add_argument("--ms", default="1,2,4,8,16")
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument("--calls-per-graph", type=int, default=MIN_GRAPH_CALLS,
                    help="least calls per timed graph, in whole passes over the weight copies (0: one pass)")
    ap.add_argument("--compare-ring", action="store_true", help="also time W4A16 through the TMA weight ring")
    args = ap.parse_args()
    ms = [int(v) for v in args.ms.split(",")]
    if args.calls_per_graph < 0:
        ap.error(f"--calls-per-graph must be >= 0, got {args.calls_per_graph}")
    timing = {"reps": args.reps, "min_calls": args.calls_per_graph}
    props = torch.cuda.get_device_properties(0)
    l2 = getattr(props, "L2_cache_size", 50 * 1024**2)
    bw = read_bandwidth(**timing)
    models = ["8b", "32b"] if args.layers == "all" else [args.layers]
    rows = []
    gen = torch.Generator(device="cuda").manual_seed(0)
    print(f"# {props.name}, {props.multi_processor_count} SMs, L2 {l2 / 2**20:.0f} MiB, "
          f"measured read bandwidth {bw / 1e12:.3f} TB/s, torch {torch.__version__}, "
          f"PDL {'off' if os.environ.get('RESET_NATIVE_PDL') == '0' else 'on'}, "
          f"graphs of >= {args.calls_per_graph} calls", flush=True)
    for model in models:
        for name, n, k in LAYERS[model]:
            w = torch.randn((n, k), device="cuda", generator=gen, dtype=torch.bfloat16)
            wq, gs = quantized_copies(w, l2)
            (p0, s0), cp = wq[0], len(wq)
            cb = copies_for(n * k * 2, l2)
            wb = None if args.no_baselines else [w] + [w.clone() for _ in range(cb - 1)]
            i4 = None if args.no_baselines else int4_pack(n, k, copies_for(n * k // 2, l2))
            for m in ms:
                x = torch.randn((m, k), device="cuda", generator=gen, dtype=torch.bfloat16)
                # correctness spot check against the dequantized weights (bf16 output tolerance)
                y = nc.gemv(p0, s0, gs, x, "bf16").float()
                yr = x.float() @ nc.dequantize(p0, s0, gs, torch.float32).T
                rel = float((y - yr).norm() / yr.norm())
                r = {"model": model, "layer": name, "n": n, "k": k, "m": m, "copies": cp, "rel_err": rel}
                r["w4a16_us"] = graph_time_us([lambda p=p, s=s: nc.gemv(p, s, gs, x, "bf16") for p, s in wq], **timing)
                if args.compare_ring:  # the choice is read at each call, so at graph capture
                    os.environ["RESET_NATIVE_GEMV_RING"] = "1"
                    try:
                        r["w4a16_ring_us"] = graph_time_us(
                            [lambda p=p, s=s: nc.gemv(p, s, gs, x, "bf16") for p, s in wq], **timing)
                        y_ring = nc.gemv(p0, s0, gs, x, "bf16")
                    finally:
                        del os.environ["RESET_NATIVE_GEMV_RING"]
                    y_default = nc.gemv(p0, s0, gs, x, "bf16")
                    r["ring_mismatches"] = int((y_ring != y_default).sum())
                    r["ring_max_abs_diff"] = float((y_ring.float() - y_default.float()).abs().max())
                r["w4a4_us"] = graph_time_us([lambda p=p, s=s: nc.gemv(p, s, gs, x, "nvfp4") for p, s in wq], **timing)
                r["w4a4_static_us"] = graph_time_us(
                    [lambda p=p, s=s: nc.gemv(p, s, gs, x, "nvfp4", 0.002) for p, s in wq], **timing)
                if wb is not None:
                    r["cublas_bf16_us"] = graph_time_us([lambda b=b: torch.matmul(x, b.T) for b in wb], **timing)
                if i4 is not None:
                    packs, sz = i4
                    try:
                        r["int4_us"] = graph_time_us(
                            [lambda q=q: torch._weight_int4pack_mm(x, q, 128, sz) for q in packs], **timing)
                    except Exception as e:  # noqa: BLE001 - keep the table
                        print(f"  int4 tinygemm failed: {e}", file=sys.stderr)
                        i4 = None
                r["floor_us"] = call_bytes(n, k, m) / bw * 1e6
                r["frac_floor"] = r["floor_us"] / r["w4a16_us"]
                rows.append(r)
                print(f"  {model} {name} m={m}: {r['w4a16_us']:.1f} us ({r['frac_floor']:.0%} of floor)",
                      file=sys.stderr, flush=True)
            del w, wq, wb, i4
            torch.cuda.empty_cache()

    hdr = (f"{'layer':<12}{'N':>6}{'K':>6}{'M':>3} {'W4A16':>7} {'W4A4':>7} {'W4A4s':>7} {'cuBLAS':>7} {'int4':>7} "
           f"{'floor':>6} {'%floor':>6} {'xBF16':>6} {'xint4':>6} {'M/M1':>5} {'relerr':>7}"
           + (f" {'ring':>7} {'xring':>5} diff" if args.compare_ring else ""))
    print(hdr)
    m1 = {(r["model"], r["layer"]): r["w4a16_us"] for r in rows if r["m"] == 1}
    for r in rows:
        cub, i4 = r.get("cublas_bf16_us", float("nan")), r.get("int4_us", float("nan"))
        ratio = r["w4a16_us"] / m1.get((r["model"], r["layer"]), float("nan"))
        print(f"{r['model'] + ' ' + r['layer']:<12}{r['n']:>6}{r['k']:>6}{r['m']:>3} {r['w4a16_us']:>7.1f} "
              f"{r['w4a4_us']:>7.1f} {r['w4a4_static_us']:>7.1f} {cub:>7.1f} {i4:>7.1f} {r['floor_us']:>6.1f} "
              f"{r['frac_floor']:>6.0%} {cub / r['w4a16_us']:>6.2f} {i4 / r['w4a16_us']:>6.2f} {ratio:>5.2f} "
              f"{r['rel_err']:>7.1e}"
              + (f" {r['w4a16_ring_us']:>7.1f} {r['w4a16_us'] / r['w4a16_ring_us']:>5.2f} {r['ring_mismatches']}"
                 f"/{r['ring_max_abs_diff']:.2g}" if args.compare_ring else ""))
    for model in models:
        sel = [r for r in rows if r["model"] == model and r["m"] == 1]
        if len(sel) == 4:
            ours, floor = sum(r["w4a16_us"] for r in sel), sum(r["floor_us"] for r in sel)
            print(f"# Qwen3-{model.upper()} layer sum M=1: {ours:.1f} us, floor {floor:.1f} us, "
                  f"ratio {ours / floor:.2f}")
    print(f"# the issue's targets, stated for an H100 80GB; this run: {props.name}")
    print("\n".join(target_lines(rows)))
    out_dir = Path(os.environ.get("OUT") or Path(__file__).resolve().parent / "out")
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {"device": props.name, "sms": props.multi_processor_count, "l2_bytes": l2, "read_bw_Bps": bw,
            "torch": torch.__version__, "calls_per_graph": args.calls_per_graph,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "reps": args.reps}
    (out_dir / "bench_nvfp4_gpu.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
