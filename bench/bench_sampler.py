"""Per-step time of reset_native's decode_step (ReSET: entropy + state + temperature + top-p sample)
at B = 1, 8, 64 and V = 151936 (Qwen3 vocabulary), against
  (a) plain softmax sampling in torch at a fixed temperature (softmax + exponential race), and
  (b) the per-request Python processor design of the paper's code (entropy with a host sync per
      request per token, then temperature and softmax sampling),
on the CPU and, when present, the GPU (decode_step and (a) as CUDA-graph replays; the GPU also times
decode_step with top_k=50 added, and decode_step launched eagerly).
Also the CPU entropy throughput against the machine's read bandwidth.

    python bench/bench_sampler.py [--device cpu|cuda|all] [--batches 1,8,64] [--quick]

Prints a table and writes JSON to bench/out/bench_sampler.json.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

import reset_native
from reset_native.sampler import ReSETConfig, ReSETState, decode_step

VOCAB = 151936
# Qwen3-8B values from the paper; newline ids are irrelevant for timing (random logits).
CONFIG = ReSETConfig(t_low=0.1, tau0=0.5505, t_high=1.0, window=32, top_p=0.95)
TOPK_CONFIG = ReSETConfig(t_low=0.1, tau0=0.5505, t_high=1.0, window=32, top_p=0.95, top_k=50)
FIXED_T = 0.6


def cpu_time(fn, repeats, warmup=2):
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def gpu_time(fn, repeats, warmup=3):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / 1e3 / repeats


def graphed(fn):
    """Captures fn() (after a warm-up on a side stream) and returns a replay callable, or None."""
    try:
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            fn()
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            fn()
        return graph.replay
    except Exception as exc:  # noqa: BLE001 - reported, not hidden
        print(f"  (CUDA graph capture failed: {type(exc).__name__}: {exc})")
        return None


def torch_fixed_sampling(logits):
    """softmax at a fixed T, then an exponential race (argmax p / Exp(1)), as vLLM samples: unlike
    torch.multinomial it never synchronises, so it can be graph-captured."""
    probs = torch.softmax(logits / FIXED_T, dim=-1)
    return (probs / torch.empty_like(probs).exponential_()).argmax(dim=-1)


class PythonProcessor:
    """The per-request design: per row, entropy with a host sync (.item()), the state machine in
    Python, then temperature and softmax sampling of that row."""

    def __init__(self, rows):
        self.win = [[] for _ in range(rows)]
        self.gsum = [0.0] * rows
        self.gn = [0] * rows

    def __call__(self, logits):
        out = []
        for r in range(logits.shape[0]):
            row = logits[r]
            logp = torch.log_softmax(row, dim=-1)
            h = float(-(logp.exp() * logp).sum().item())  # host sync per request per token
            win = self.win[r]
            hs = sum(win) / len(win) if win else h
            hbar = self.gsum[r] / self.gn[r] if self.gn[r] else hs
            tau = hs if hs > hbar else CONFIG.tau0
            t = CONFIG.t_high if h >= tau else CONFIG.t_low
            win.append(h)
            del win[:-CONFIG.window]
            self.gsum[r] += h
            self.gn[r] += 1
            out.append(torch.multinomial(torch.softmax(row / t, dim=-1), 1))
        return torch.cat(out)


def bench_device(device, batches, repeats, results):
    gen = torch.Generator(device="cpu").manual_seed(0)
    for rows in batches:
        logits = (torch.randn(rows, VOCAB, generator=gen) * 3).to(device)
        last = torch.full((rows,), -1, dtype=torch.int64).to(device)
        state = ReSETState(CONFIG, rows, VOCAB, device=device)
        fixed_state = ReSETState(ReSETConfig.fixed(FIXED_T, top_p=0.95), rows, VOCAB, device=device)
        proc = PythonProcessor(rows)
        entry = {"device": device, "batch": rows, "vocab": VOCAB}
        if device == "cpu":
            entry["decode_step_us"] = cpu_time(lambda: decode_step(state, logits, last), repeats) * 1e6
            entry["decode_step_fixed_us"] = cpu_time(lambda: decode_step(fixed_state, logits, last), repeats) * 1e6
            entry["torch_fixed_us"] = cpu_time(lambda: torch_fixed_sampling(logits), repeats) * 1e6
            entry["python_processor_us"] = cpu_time(lambda: proc(logits), max(3, repeats // 4)) * 1e6
        else:
            replay = graphed(lambda: decode_step(state, logits, last))
            entry["decode_step_us"] = gpu_time(replay, repeats) * 1e6 if replay else None
            entry["decode_step_eager_us"] = gpu_time(lambda: decode_step(state, logits, last), repeats) * 1e6
            replay_f = graphed(lambda: decode_step(fixed_state, logits, last))
            entry["decode_step_fixed_us"] = gpu_time(replay_f, repeats) * 1e6 if replay_f else None
            topk_state = ReSETState(TOPK_CONFIG, rows, VOCAB, device=device)  # adds the top-k search
            replay_k = graphed(lambda: decode_step(topk_state, logits, last))
            entry["decode_step_topk50_us"] = gpu_time(replay_k, repeats) * 1e6 if replay_k else None
            replay_t = graphed(lambda: torch_fixed_sampling(logits))
            entry["torch_fixed_us"] = gpu_time(replay_t, repeats) * 1e6 if replay_t else None
            entry["torch_fixed_eager_us"] = gpu_time(lambda: torch_fixed_sampling(logits), repeats) * 1e6
            entry["python_processor_us"] = gpu_time(lambda: proc(logits), max(3, repeats // 10)) * 1e6
            state.check_errors()
            topk_state.check_errors()
            # One read of the logits is the floor: fraction of HBM bandwidth (H100 SXM 3.35 TB/s).
            if entry["decode_step_us"]:
                entry["hbm_fraction_one_read"] = rows * VOCAB * 4 / (entry["decode_step_us"] * 1e-6) / 3.35e12
        if entry.get("torch_fixed_us") and entry.get("decode_step_us"):
            entry["ratio_vs_torch_fixed"] = entry["decode_step_us"] / entry["torch_fixed_us"]
        if entry.get("python_processor_us") and entry.get("decode_step_us"):
            entry["speedup_vs_python_processor"] = entry["python_processor_us"] / entry["decode_step_us"]
        results.append(entry)
        print("  " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in entry.items()))


def cpu_entropy_bandwidth(repeats):
    """Entropy-only work (greedy: no sampling pass) over rows that do not fit in cache, as GB/s,
    against a torch sum over 256 MiB with the same thread count."""
    rows = 64
    logits = torch.randn(rows, VOCAB) * 3
    state = ReSETState(ReSETConfig.fixed(0.0), rows, VOCAB)
    last = torch.full((rows,), -1)
    seconds = cpu_time(lambda: decode_step(state, logits, last), repeats)
    entropy_gbs = rows * VOCAB * 4 / seconds / 1e9
    big = torch.ones(64 * 1024 * 1024)
    sum_seconds = cpu_time(lambda: big.sum(), repeats)
    read_gbs = big.numel() * 4 / sum_seconds / 1e9
    return {"rows": rows, "entropy_gb_s": entropy_gbs, "torch_sum_read_gb_s": read_gbs,
            "fraction_of_read_bandwidth": entropy_gbs / read_gbs, "threads": torch.get_num_threads(),
            "reset_native_threads": reset_native.build_info()["threads"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="all", choices=["cpu", "cuda", "all"])
    parser.add_argument("--batches", default="1,8,64")
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    if "cuda" in devices and not (reset_native.has_cuda() and torch.cuda.is_available()):
        print("no CUDA device / CUDA build: GPU part skipped")
        devices.remove("cuda")
    meta = {"date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "machine": platform.node(),
            "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "torch": torch.__version__, "build": reset_native.build_info(),
            "gpu": torch.cuda.get_device_name() if "cuda" in devices else None, "config": str(CONFIG)}
    results = []
    for device in devices:
        print(f"[{device}]")
        bench_device(device, batches, 20 if args.quick else (60 if device == "cpu" else 500), results)
    extra = {}
    if "cpu" in devices:
        extra["cpu_entropy_bandwidth"] = cpu_entropy_bandwidth(10 if args.quick else 30)
        print("  cpu entropy:", extra["cpu_entropy_bandwidth"])

    print("\n| device | B | decode_step (us) | fixed-T decode_step (us) | torch softmax sampling (us) | "
          "ratio | Python processor (us) | speedup |")
    print("|---|---|---|---|---|---|---|---|")
    fmt = lambda v: "-" if v is None else (f"{v:.1f}" if v >= 10 else f"{v:.2f}")  # noqa: E731
    for e in results:
        print(f"| {e['device']} | {e['batch']} | {fmt(e.get('decode_step_us'))} | {fmt(e.get('decode_step_fixed_us'))} "
              f"| {fmt(e.get('torch_fixed_us'))} | {fmt(e.get('ratio_vs_torch_fixed'))} | "
              f"{fmt(e.get('python_processor_us'))} | {fmt(e.get('speedup_vs_python_processor'))} |")
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    name = os.environ.get("BENCH_SAMPLER_JSON", "bench_sampler.json")
    (out / name).write_text(json.dumps({"meta": meta, "results": results, **extra}, indent=2, default=str))
    print(f"wrote {out / name}")


if __name__ == "__main__":
    main()
