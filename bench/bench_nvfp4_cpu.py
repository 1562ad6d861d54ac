"""CPU NVFP4 GEMV on Qwen3-8B-shaped layers vs float32 matmul on the dequantized weights (same run).

For each layer [N, K] and M in (1, 4, 16) it reports: the NVFP4 W4A16 GEMV time (the CPU path as dispatched:
AVX-512, AVX2 or scalar, see nvfp4.cpu_info(); RESET_NATIVE_CPU_ISA forces one), the effective GB/s of weight
bytes read (packed + block scales), that as a fraction of this machine's memory read bandwidth (measured here,
with the same threads), the W4A4 time, and the ratio against numpy and torch float32 matmul on the dequantized
weights; at M = 1 also every other SIMD path this CPU has and one thread, and (on gate_up_proj) a thread-count
sweep of the GEMV and the read probe. Every timed operand (NVFP4 and float32 weights) is rotated over enough
copies to exceed the last-level cache, so every call reads its weights from DRAM, as in a real decode step.

Two timing modes, both for the GEMV and for the float32 baselines:
* back to back (the main table): calls follow each other without pause, as the GEMVs of a decode step do
  (the layers of a model run one after the other); time per call = a round of consecutive calls / its count.
* cold pool (second table): every call after a 50 ms pause, so each library's worker threads have gone to
  sleep and every call pays for waking them (what a GEMV run once in a while costs).

    python bench/bench_nvfp4_cpu.py            # full tables, JSON to bench/out/nvfp4_cpu.json
    python bench/bench_nvfp4_cpu.py --quick    # fewer repetitions, two layers
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

import reset_native
from reset_native import _core, nvfp4

LAYERS = {
    "qkv_proj": (6144, 4096),
    "o_proj": (4096, 4096),
    "gate_up_proj": (24576, 4096),
    "down_proj": (4096, 12288),
}
def _l3_bytes() -> int:
    """Largest cache size sysfs reports (0 if unknown); parses sizes like "32768K" or "300M"."""
    best = 0
    for f in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        try:
            text = f.read_text().strip()
            best = max(best, int(text[:-1]) * {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[text[-1]])
        except (OSError, ValueError, KeyError, IndexError):
            pass
    return best


# Rotated copies of every operand that is timed (NVFP4 and float32 weights) add up to at least this much, well
# above any cache, so calls read from DRAM: at least 1 GiB (the read probe's size; the dev VM's guest reports a
# 32 MiB L3 but its host's caches are unknown) and 3x the largest cache sysfs reports (many-core servers have
# hundreds of MiB).
ROTATE_BYTES = max(1 << 30, 3 * _l3_bytes())


def _time(fn, reps: int, warmup: int = 1) -> dict:
    """Seconds of `reps` calls after `warmup` calls: best (least disturbed by other processes) and median."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return {"min": min(samples), "median": statistics.median(samples)}


# Pause before every interleaved call. numpy's OpenBLAS and torch's OpenMP worker threads keep spinning for a
# while after a call returns, so whatever runs right after them finds the second core busy: measured here, the
# two-thread NVFP4 GEMV's median was up to ~30 % slower right after a numpy matmul and ~17 % after a torch one
# than after a pause (2026-11-28, 3 runs of 15 alternating rounds; the effect varied with the background
# load). The pause lets every call start with the others' threads asleep, whichever library ran before it.
SETTLE_S = 0.05


def _time_interleaved(fns: dict, reps: int) -> dict:
    """Times several functions in alternation (one call of each per round, each after a SETTLE_S pause), so
    that on a shared machine they see the same background load; returns _time-style stats per name."""
    for fn in fns.values():
        fn()
    samples = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            time.sleep(SETTLE_S)
            t0 = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - t0)
    return {name: {"min": min(v), "median": statistics.median(v)} for name, v in samples.items()}


# Back-to-back rounds: each function runs this long in a row (at least BATCH_MIN, at most BATCH_MAX calls).
ROUND_S = 0.01
BATCH_MIN, BATCH_MAX = 4, 32


def _time_back_to_back(fns: dict, rounds: int, warmup: int = 3) -> dict:
    """Seconds per call when each function is called many times in a row, as the GEMVs of a decode step are.
    Rounds alternate between the functions (so on a shared machine they see the same background load); each
    round starts with a SETTLE_S pause (the previous library's spinning threads go idle) and `warmup` untimed
    calls (this library's threads wake up), then times a batch of consecutive calls. A sample is the batch's
    time / its calls (every call counted, none picked); returns the best and the median sample per name."""
    batch = {}
    for name, fn in fns.items():
        t0 = time.perf_counter()
        for _ in range(warmup):
            fn()
        per_call = (time.perf_counter() - t0) / warmup
        batch[name] = max(BATCH_MIN, min(BATCH_MAX, int(ROUND_S / max(per_call, 1e-9)) + 1))
    samples = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            time.sleep(SETTLE_S)
            for _ in range(warmup):
                fn()
            t0 = time.perf_counter()
            for _ in range(batch[name]):
                fn()
            samples[name].append((time.perf_counter() - t0) / batch[name])
    return {name: {"min": min(v), "median": statistics.median(v), "calls": batch[name]}
            for name, v in samples.items()}


_READ_BUF = None


def _read_buffer() -> np.ndarray:
    global _READ_BUF
    if _READ_BUF is None:
        _READ_BUF = np.ones(max(1 << 30, ROTATE_BYTES), dtype=np.uint8)
    return _READ_BUF


def read_gbs(threads: int, reps: int) -> float:
    """Best read rate of the probe buffer (1 GiB, or ROTATE_BYTES if larger) with `threads` threads (0: the kernels' default)."""
    buf = _read_buffer()
    return buf.nbytes / _time(lambda: _core.nvfp4.read_checksum(buf, threads), reps)["min"] / 1e9


def measure_read_bandwidth(reps: int) -> dict:
    """The read probe with the GEMV's default thread count (the same threading the kernels use), with one
    thread, and with every logical CPU (in case SMT siblings add bandwidth), plus numpy's one-thread sum."""
    info = nvfp4.cpu_info()
    buf = _read_buffer()
    best_numpy = _time(lambda: buf.view(np.float64).sum(), reps)["min"]
    return {"bytes": buf.nbytes, "threads": info["threads"], "read_checksum_gbs": read_gbs(0, reps),
            "read_checksum_1thread_gbs": read_gbs(1, reps),
            "read_checksum_all_cpus_gbs": read_gbs(info["logical_cpus"], reps),
            "numpy_sum_gbs": buf.nbytes / best_numpy / 1e9}


def thread_sweep(pool, x, reps: int) -> list:
    """M = 1 GEMV (default path) and the read probe at several thread counts: shows where the GEMV stops
    scaling and whether the default thread count is a sensible one."""
    info = nvfp4.cpu_info()
    counts = sorted({c for c in (1, 2, 4, 8, 12, 16, 24, 32, 48, 64) if c <= info["logical_cpus"]}
                    | {info["threads"], info["logical_cpus"]})
    y = np.empty((1, pool[0].shape[0]), np.float32)
    turn = [0]

    def run(threads):
        turn[0] = (turn[0] + 1) % len(pool)
        p = pool[turn[0]]
        _core.nvfp4.gemv(p.packed, p.block_scales, p.global_scale, x, "float32", y, None, "bf16", None, "auto",
                         threads)

    rows = []
    for c in counts:
        t = _time(lambda: run(c), reps)["min"]
        rows.append({"threads": c, "gemv_gbs": pool[0].nbytes / t / 1e9, "gemv_ms": t * 1e3,
                     "read_gbs": read_gbs(c, max(2, reps // 2))})
    return rows


def bench_layer(name: str, n: int, k: int, ms, reps: int, torch) -> list:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((n, k), dtype=np.float32)
    t0 = time.perf_counter()
    t = nvfp4.quantize(w)
    quantize_s = time.perf_counter() - t0
    wd = nvfp4.dequantize(t)
    del w
    weight_bytes = t.nbytes
    copies = max(1, -(-ROTATE_BYTES // weight_bytes))
    pool = [t] + [nvfp4.NVFP4Tensor.from_parts(t.packed.copy(), t.block_scales.copy(), t.global_scale)
                  for _ in range(copies - 1)]
    f32_copies = max(1, -(-ROTATE_BYTES // wd.nbytes))
    wd_pool = [wd] + [wd.copy() for _ in range(f32_copies - 1)]
    wdt_pool = [torch.from_numpy(a) for a in wd_pool] if torch is not None else None
    rows = []
    for m in ms:
        x = rng.standard_normal((m, k)).astype(np.float32)
        turn = [0]

        def run_nvfp4(activation="bf16"):
            turn[0] = (turn[0] + 1) % copies
            nvfp4.gemv(pool[turn[0]], x, activation=activation)

        y = np.empty((m, n), np.float32)

        def raw(kernel, threads):
            turn[0] = (turn[0] + 1) % copies
            p = pool[turn[0]]
            _core.nvfp4.gemv(p.packed, p.block_scales, p.global_scale, x, "float32", y, None, "bf16", None,
                             kernel, threads)

        f32_turn = [0, 0]

        def run_numpy():
            f32_turn[0] = (f32_turn[0] + 1) % f32_copies
            return x @ wd_pool[f32_turn[0]].T

        fns = {"nvfp4": run_nvfp4, "w4a4": lambda: run_nvfp4("nvfp4"), "numpy": run_numpy}
        if wdt_pool is not None:
            xt = torch.from_numpy(x)

            def run_torch():
                f32_turn[1] = (f32_turn[1] + 1) % f32_copies
                return torch.matmul(xt, wdt_pool[f32_turn[1]].T)

            fns["torch"] = run_torch
        other_isas = [k for k in nvfp4.cpu_info()["available"] if k not in ("scalar", nvfp4.cpu_info()["kernel"])]
        if m == 1:
            for isa in other_isas:
                fns["isa_" + isa] = lambda isa=isa: raw(isa, 0)
        b2b = _time_back_to_back(fns, max(3, reps // 2))
        if m == 1:
            fns["one_thread"] = lambda: raw("auto", 1)
        stats = _time_interleaved(fns, reps)
        sweep = thread_sweep(pool, x, max(3, reps // 2)) if m == 1 and name == "gate_up_proj" else None
        small_sweep = None
        if m == 1 and name != "gate_up_proj":
            # Fewer threads for a small layer: faster when the pool is cold (fewer helpers to wake)? Both modes.
            info = nvfp4.cpu_info()
            counts = sorted({c for c in (1, 2, 4, 8, 12) if c < info["threads"]} | {info["threads"]})
            sweep_fns = {c: (lambda c=c: raw("auto", c)) for c in counts}
            sweep_b2b = _time_back_to_back(sweep_fns, max(3, reps // 2))
            sweep_cold = _time_interleaved(sweep_fns, reps)
            small_sweep = [{"threads": c, "b2b_s": sweep_b2b[c], "cold_s": sweep_cold[c]} for c in counts]
        scalar_s = _time(lambda: raw("scalar", 0), max(2, reps // 4)) if m == 1 else None
        one_thread_cpu_s = None
        if m == 1:
            # CPU time of the calling thread for the one-thread GEMV: not inflated by waiting for a core
            # while other processes run, so it shows the kernel's own speed on a shared machine.
            cpu = []
            for _ in range(reps):
                c0 = time.thread_time()
                raw("auto", 1)
                cpu.append(time.thread_time() - c0)
            one_thread_cpu_s = {"min": min(cpu), "median": statistics.median(cpu)}
        nv_s, w4a4_s, np_s = stats["nvfp4"], stats["w4a4"], stats["numpy"]
        torch_s, one_thread_s = stats.get("torch"), stats.get("one_thread")
        # Accuracy sanity (not a test): the same product on the dequantized weights.
        y_ref = x.astype(np.float64) @ wd.T.astype(np.float64)
        rel = float(np.max(np.abs(nvfp4.gemv(t, x) - y_ref)) / np.max(np.abs(y_ref)))
        rows.append({"layer": name, "N": n, "K": k, "M": m, "weight_bytes": weight_bytes, "copies": copies,
                     "f32_copies": f32_copies,
                     "b2b": {"nvfp4_s": b2b["nvfp4"], "nvfp4_w4a4_s": b2b["w4a4"], "numpy_f32_s": b2b["numpy"],
                             "torch_f32_s": b2b.get("torch"),
                             "nvfp4_other_isa_s": {isa: b2b["isa_" + isa] for isa in other_isas
                                                   if "isa_" + isa in b2b}},
                     "nvfp4_s": nv_s, "nvfp4_w4a4_s": w4a4_s, "nvfp4_1thread_s": one_thread_s,
                     "nvfp4_1thread_cpu_s": one_thread_cpu_s,
                     "nvfp4_scalar_s": scalar_s, "numpy_f32_s": np_s, "torch_f32_s": torch_s,
                     "nvfp4_other_isa_s": {isa: stats["isa_" + isa] for isa in other_isas if "isa_" + isa in stats},
                     "thread_sweep": sweep, "small_sweep": small_sweep,
                     "weight_gbs": weight_bytes / b2b["nvfp4"]["min"] / 1e9,
                     "weight_gbs_cold": weight_bytes / nv_s["min"] / 1e9, "rel_err_vs_fp64": rel,
                     "quantize_s": quantize_s})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, qkv and gate_up only")
    parser.add_argument("--reps", type=int, default=None, help="timed rounds per case (default 12)")
    parser.add_argument("--layers", nargs="*", choices=list(LAYERS), default=None)
    parser.add_argument("--m", nargs="*", type=int, default=[1, 4, 16])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "out" / "nvfp4_cpu.json"))
    args = parser.parse_args()
    reps = args.reps or (5 if args.quick else 12)
    layers = args.layers or (["qkv_proj", "gate_up_proj"] if args.quick else list(LAYERS))
    try:
        import torch
    except ImportError:
        torch = None

    info = reset_native.build_info()
    cpu = nvfp4.cpu_info()
    info["nvfp4_cpu"] = cpu
    bw = measure_read_bandwidth(3 if args.quick else 5)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, simd {info['simd']}, "
          f"openmp {info['openmp']}")
    print(f"largest cache (sysfs): {_l3_bytes() >> 20} MiB; timed weights rotate over >= {ROTATE_BYTES >> 20} MiB")
    print(f"nvfp4 CPU path: {cpu['kernel']} (available: {', '.join(cpu['available'])}; RESET_NATIVE_CPU_ISA="
          f"{os.environ.get('RESET_NATIVE_CPU_ISA', '')!r}), threads {cpu['threads']} (physical cores "
          f"{cpu['physical_cores']}, logical CPUs {cpu['logical_cpus']}, OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', '')!r})")
    print(f"memory read bandwidth: {bw['read_checksum_gbs']:.1f} GB/s (read_checksum, {bw['threads']} threads = "
          f"the GEMV's), {bw['read_checksum_1thread_gbs']:.1f} GB/s (1 thread), "
          f"{bw['read_checksum_all_cpus_gbs']:.1f} GB/s ({cpu['logical_cpus']} threads), "
          f"{bw['numpy_sum_gbs']:.1f} GB/s (numpy sum, 1 thread)")
    rows = []
    for name in layers:
        layer_rows = bench_layer(name, *LAYERS[name], args.m, reps, torch)
        n, k = LAYERS[name]
        q = layer_rows[0]["quantize_s"]
        print(f"quantize {name} [{n}, {k}] float32: {q * 1e3:.1f} ms ({n * k * 4 / q / 1e9:.2f} GB/s of input)")
        rows += layer_rows
    # The read bandwidth we compare against is the best DRAM read rate seen in this run: the probes, or the
    # float32 baselines at M=1 (their weight bytes over their time, either timing mode) when a BLAS streams
    # faster than the probes.
    f32_rates = [4 * r["N"] * r["K"] / t["min"] / 1e9 for r in rows if r["M"] == 1
                 for t in (r["numpy_f32_s"], r["torch_f32_s"], r["b2b"]["numpy_f32_s"], r["b2b"]["torch_f32_s"]) if t]
    bw["float32_gemv_best_gbs"] = max(f32_rates, default=0.0)
    peak = max(bw["read_checksum_gbs"], bw["read_checksum_1thread_gbs"], bw["read_checksum_all_cpus_gbs"],
               bw["numpy_sum_gbs"], bw["float32_gemv_best_gbs"])
    bw["peak_gbs"] = peak

    def ms(t, key="min", width=7):
        return f"{t[key] * 1e3:{width}.2f}" if t else f"{'':{width}s}"

    def ratio(base, t, width=6):
        return f"{base['min'] / t['min']:{width}.2f}" if base and t else f"{'':{width}s}"

    for r in rows:
        for isa, t in (r["b2b"]["nvfp4_other_isa_s"] or {}).items():
            mine = r["b2b"]["nvfp4_s"]["min"]
            cold = r["nvfp4_other_isa_s"].get(isa)
            print(f"{r['layer']}: M=1 with the {isa} path: back to back {t['min'] * 1e3:.3f} ms = "
                  f"{r['weight_bytes'] / t['min'] / 1e9:.1f} GB/s ({cpu['kernel']} path {mine * 1e3:.3f} ms: "
                  f"{t['min'] / mine:.2f}x faster than {isa})"
                  + (f"; cold {cold['min'] * 1e3:.3f} ms ({cpu['kernel']} {r['nvfp4_s']['min'] * 1e3:.3f} ms)"
                     if cold else ""))
        if r["small_sweep"]:
            print(f"{r['layer']}: M=1 by threads, ms back to back / cold: " + ", ".join(
                f"{s['threads']} thr {s['b2b_s']['min'] * 1e3:.3f} / {s['cold_s']['min'] * 1e3:.3f}"
                for s in r["small_sweep"]))
        if r["thread_sweep"]:
            print(f"{r['layer']}: M=1 thread sweep, back to back ({cpu['kernel']} path): " + ", ".join(
                f"{s['threads']} thr {s['gemv_gbs']:.1f} GB/s (read {s['read_gbs']:.1f})" for s in r["thread_sweep"]))
    for r in rows:
        if r["nvfp4_1thread_cpu_s"]:
            c = r["nvfp4_1thread_cpu_s"]["median"]
            print(f"{r['layer']}: M=1 one thread: {r['nvfp4_1thread_s']['min'] * 1e3:.2f} ms (cold), scalar kernel "
                  f"{r['nvfp4_scalar_s']['min'] * 1e3:.2f} ms; thread CPU time (median) {c * 1e3:.2f} ms = "
                  f"{r['weight_bytes'] / c / 1e9:.2f} GB/s of weights per core")
    print(f"best read rate of the float32 baselines at M=1: {bw['float32_gemv_best_gbs']:.1f} GB/s; "
          f"%BW below is against {peak:.1f} GB/s (best read rate of this run)")
    print("times: ms per call, best sample; GB/s = NVFP4 weight bytes (packed + scales) / time; x np / x torch = "
          "float32 matmul on the dequantized weights / NVFP4 (higher is better), same timing mode on both sides")
    print()
    print("BACK TO BACK (main): consecutive calls, as the layers of a decode step; per call = batch time / calls; "
          "best of rounds (median in brackets)")
    header = (f"{'layer':13s} {'N x K':>12s} {'M':>3s} {'nvfp4 ms':>8s} {'(median)':>8s} {'GB/s':>6s} {'%BW':>4s} "
              f"{'w4a4':>7s} {'np f32':>7s} {'x np':>6s} {'torch':>7s} {'x torch':>7s}")
    print(header)
    print("-" * len(header))
    for r in rows:
        b = r["b2b"]
        nv = b["nvfp4_s"]
        print(f"{r['layer']:13s} {r['N']:>5d}x{r['K']:<6d} {r['M']:>3d} {ms(nv, width=8)} ({ms(nv, 'median', 6)}) "
              f"{r['weight_gbs']:6.1f} {100 * r['weight_gbs'] / peak:4.0f} {ms(b['nvfp4_w4a4_s'])} "
              f"{ms(b['numpy_f32_s'])} {ratio(b['numpy_f32_s'], nv)} {ms(b['torch_f32_s'])} "
              f"{ratio(b['torch_f32_s'], nv, 7)}")
    print()
    print(f"COLD POOL: every call after a {SETTLE_S * 1e3:.0f} ms pause (all worker threads asleep); best of "
          f"{reps} (median in brackets)")
    print(header)
    print("-" * len(header))
    for r in rows:
        nv = r["nvfp4_s"]
        print(f"{r['layer']:13s} {r['N']:>5d}x{r['K']:<6d} {r['M']:>3d} {ms(nv, width=8)} ({ms(nv, 'median', 6)}) "
              f"{r['weight_gbs_cold']:6.1f} {100 * r['weight_gbs_cold'] / peak:4.0f} {ms(r['nvfp4_w4a4_s'])} "
              f"{ms(r['numpy_f32_s'])} {ratio(r['numpy_f32_s'], nv)} {ms(r['torch_f32_s'])} "
              f"{ratio(r['torch_f32_s'], nv, 7)}")
    print()
    goal = []
    for r in rows:
        if r["M"] != 1:
            continue
        for mode, gbs, nv, base in (("back to back", r["weight_gbs"], r["b2b"]["nvfp4_s"], r["b2b"]["numpy_f32_s"]),
                                    ("cold", r["weight_gbs_cold"], r["nvfp4_s"], r["numpy_f32_s"])):
            pct, x = 100 * gbs / peak, base["min"] / nv["min"]
            goal.append({"layer": r["layer"], "mode": mode, "pct_bw": pct, "x_numpy": x,
                         "met": pct >= 50 and x >= 4})
    r_b2b = [g for g in goal if g["mode"] == "back to back"]
    r_cold = [g for g in goal if g["mode"] == "cold"]
    for label, gs in (("back to back", r_b2b), ("cold pool", r_cold)):
        print(f"issue-3 goal at M=1 (>= 50 %BW and >= 4x numpy), {label}: " + ", ".join(
            f"{g['layer']} {g['pct_bw']:.0f}% {g['x_numpy']:.2f}x {'met' if g['met'] else 'NOT met'}" for g in gs))
    bw["goal"] = goal
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "build": info,
                               "bandwidth": bw, "rows": rows}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
