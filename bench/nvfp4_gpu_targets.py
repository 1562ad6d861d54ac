"""The NVFP4 GEMV targets of the project's issue (stated for an H100 80GB) checked against bench_nvfp4_gpu.py's rows.

bench_nvfp4_gpu.py prints these lines under its table; this file also re-reads a saved run:
    python bench/nvfp4_gpu_targets.py bench/out/bench_nvfp4_gpu.json
Each line says met / NOT met, how many rows meet it, and the worst row. A target whose rows are missing from the run
(an M not timed, --no-baselines) is reported as not checked, never as met.
"""
from __future__ import annotations

import json
import sys

# The decode layers, (name, N, K) per model.
LAYERS = {
    "8b": [("qkv", 6144, 4096), ("o", 4096, 4096), ("gate_up", 24576, 4096), ("down", 4096, 12288)],
    "32b": [("qkv", 10240, 5120), ("o", 5120, 8192), ("gate_up", 51200, 5120), ("down", 5120, 25600)],
}
# The five large layers of the issue (M = 1 >= 85% of the floor, M16/M1, cuBLAS ratios); the other three are small.
LARGE = {("8b", "gate_up"), ("8b", "down"), ("32b", "gate_up"), ("32b", "down"), ("32b", "qkv")}
N_LAYERS = 8  # Qwen3-8B and Qwen3-32B, four decode layers each
LAYER_SUM_MODEL, LAYER_SUM_LAYERS = "8b", ("qkv", "o", "gate_up", "down")


def call_bytes(n, k, m):
    """Bytes one W4A16 call must move, its floor's numerator: FP4 weights and E4M3 scales (N*K*(1/2 + 1/16)), bf16 x in
    and y out."""
    return n * k * 9 // 16 + m * k * 2 + m * n * 2


def _name(r):
    return f"{r['model']} {r['layer']} M={r['m']}"


def _line(text, rows, value, bound, at_least, fmt, expected=None):
    """One target over rows: value(r) per row must be >= bound (at_least) or <= bound; the worst row is the lowest
    value (at_least) or the highest. expected: the rows a whole run has (fewer: a partial run, never "met")."""
    if not rows:
        return f"# target {text}: not checked (no rows)"
    vals = [(value(r), r) for r in rows]
    passed = sum((v >= bound) if at_least else (v <= bound) for v, _ in vals)
    worst_v, worst_r = (min if at_least else max)(vals, key=lambda vr: vr[0])
    state = "NOT met" if passed < len(vals) else ("met" if expected is None or len(vals) >= expected
                                                   else f"met on the {len(vals)} of {expected} rows run")
    return f"# target {text}: {state}, {passed}/{len(vals)} rows (worst {_name(worst_r)}: {fmt(worst_v)})"


def target_lines(rows):
    """The target lines for a run's rows (dicts with model, layer, m, w4a16_us, floor_us and, when timed,
    cublas_bf16_us and int4_us)."""
    by = {(r["model"], r["layer"], r["m"]): r for r in rows}
    large = lambda r: (r["model"], r["layer"]) in LARGE  # noqa: E731
    m1 = [r for r in rows if r["m"] == 1]
    m16 = [r for r in rows if r["m"] == 16]
    frac = lambda r: r["floor_us"] / r["w4a16_us"]  # noqa: E731
    pct = lambda v: f"{v:.1%}"  # noqa: E731
    times = lambda v: f"{v:.2f}x"  # noqa: E731
    lines = [
        _line("M=1 on the large layers >= 85% of the floor", [r for r in m1 if large(r)], frac, 0.85, True, pct,
              len(LARGE)),
        _line("M=1 on the small layers >= 70% of the floor", [r for r in m1 if not large(r)], frac, 0.70, True, pct,
              N_LAYERS - len(LARGE)),
        _line("M=16 within 1.3x of M=1 on the large layers",
              [r for r in m16 if large(r) and (r["model"], r["layer"], 1) in by],
              lambda r: r["w4a16_us"] / by[(r["model"], r["layer"], 1)]["w4a16_us"], 1.3, False, times, len(LARGE)),
        _line(">= 3.2x cuBLAS BF16 at M=1 on the large layers", [r for r in m1 if large(r) and "cublas_bf16_us" in r],
              lambda r: r["cublas_bf16_us"] / r["w4a16_us"], 3.2, True, times, len(LARGE)),
        _line(">= 3x cuBLAS BF16 at M=16 on the large layers", [r for r in m16 if large(r) and "cublas_bf16_us" in r],
              lambda r: r["cublas_bf16_us"] / r["w4a16_us"], 3.0, True, times, len(LARGE)),
        # "faster": the int4 time over ours must exceed 1 (a tie is not faster; 1 + 1e-9 as the >= bound)
        _line("faster than int4 tinygemm at every M", [r for r in rows if "int4_us" in r],
              lambda r: r["int4_us"] / r["w4a16_us"], 1.0 + 1e-9, True, times, N_LAYERS * len({r["m"] for r in rows})),
    ]
    sel = [by.get((LAYER_SUM_MODEL, name, 1)) for name in LAYER_SUM_LAYERS]
    text = f"Qwen3-{LAYER_SUM_MODEL.upper()} layer sum at M=1 within 1.25x of the floor"
    if all(sel):
        ratio = sum(r["w4a16_us"] for r in sel) / sum(r["floor_us"] for r in sel)
        lines.append(f"# target {text}: {'met' if ratio <= 1.25 else 'NOT met'} ({ratio:.2f}x)")
    else:
        lines.append(f"# target {text}: not checked (no rows)")
    return lines


def main(argv):
    if len(argv) != 2:
        sys.exit(f"usage: {argv[0]} bench_nvfp4_gpu.json")
    data = json.loads(open(argv[1]).read())
    meta = data.get("meta", {})
    print(f"# {meta.get('device', '?')}, {meta.get('date', '?')}, graphs of >= {meta.get('calls_per_graph', 0)} calls "
          "(targets stated for an H100 80GB)")
    print("\n".join(target_lines(data["rows"])))


if __name__ == "__main__":
    main(sys.argv)
