"""Where the time of the one-launch CUDA decode_step goes (docs/sampler.md, CUDA details), and what
the cluster size (CTAs per row) costs or saves.

For each batch size, configuration and cluster size it reports the CUDA-graph replay time of the
step, and, from one profiled launch (CudaLaunchOptions.phase_clocks: clock64() at each phase's end
in every CTA), the mean duration of each phase over the CTAs in SM cycles and microseconds:
  copy (the slice into shared memory), entropy (chunk partials), gather (first cluster barrier),
  plan (rank 0's merge + state machine, second barrier, plan copy), L0..L5 (radix levels: top-k
  first, then top-p), sample (the draw, with its barrier), end (the last cluster barrier).
The part of the replay time outside the kernel's phases is launch and scheduling.

    python bench/sampler_phases.py [--batches 1,8,64] [--clusters 0,8,4] [--repeats 200]

Prints a table and writes JSON to bench/out/sampler_phases.json. Needs a CUDA build and device.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sampler import CONFIG, FIXED_T, TOPK_CONFIG, VOCAB, gpu_time, graphed  # noqa: E402

from reset_native import _core  # noqa: E402
from reset_native._sampler_arrays import DTYPE_CODES  # noqa: E402
from reset_native.sampler import ReSETConfig, ReSETState  # noqa: E402

S = _core.sampler
PHASES = {1: "copy", 2: "entropy", 3: "gather", 4: "plan", 5: "L0", 6: "L1", 7: "L2", 8: "L3", 9: "L4", 10: "L5",
          12: "sample", 13: "end"}  # phase_clocks slot -> the phase that ends there (decode_step.cu, Phase)
MAX_CTAS_PER_ROW = 16


def sm_clock_mhz():
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=clocks.sm", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10).stdout.split()
        return float(out[0])
    except Exception:  # noqa: BLE001 - the table then shows cycles only
        return None


def step_fn(state, logits, last, max_cluster, clocks=None):
    rows = logits.shape[0]
    tokens = torch.empty(rows, dtype=torch.int64, device="cuda")
    temps = torch.empty(rows, dtype=torch.float32, device="cuda")
    ents = torch.empty(rows, dtype=torch.float32, device="cuda")
    c = state.config

    def run():
        S.decode_step_cuda(state._native, state._classes.data_ptr(), VOCAB, state.batch_size, c.window,
                           state._window.data_ptr(), state._sums.data_ptr(), state._ints.data_ptr(), rows,
                           last.data_ptr(), 0, logits.data_ptr(), DTYPE_CODES[str(logits.dtype)[6:]], VOCAB,
                           tokens.data_ptr(), temps.data_ptr(), ents.data_ptr(), state._error_flag.data_ptr(),
                           torch.cuda.current_stream().cuda_stream, max_cluster,
                           0 if clocks is None else clocks.data_ptr())
    return run


def phases(state, logits, last, max_cluster):
    """Mean cycles per phase over the CTAs of one profiled launch, and the cluster size used."""
    rows = logits.shape[0]
    clocks = torch.full((rows * MAX_CTAS_PER_ROW, S.PHASE_SLOTS), -1, dtype=torch.int64, device="cuda")
    step_fn(state, logits, last, max_cluster, clocks)()
    torch.cuda.synchronize()
    marks = clocks.cpu().numpy()
    marks = marks[marks[:, 0] >= 0]
    out = {"ctas_per_row": len(marks) // rows}
    for p, name in PHASES.items():
        if (marks[:, p] < 0).all():
            continue
        prev = np.max(np.where(marks[:, :p] >= 0, marks[:, :p], -1), axis=1)  # the last mark before p
        out[name] = float(np.mean(marks[:, p] - prev))
    out["total"] = float(np.mean(marks[:, 13] - marks[:, 0]))
    return out


def describe(entry, mhz):
    graph = f"graph {entry['graph_us']:.1f} us" if entry["graph_us"] else "graph n/a"
    parts = [graph, f"C={entry['ctas_per_row']}"]
    for key in list(PHASES.values()) + ["total"]:
        if key in entry:
            parts.append(f"{key} {entry[key] / mhz:.2f}" if mhz else f"{key} {entry[key]:.0f}cyc")
    return ", ".join(parts) + (" (phases in us)" if mhz else "")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", default="1,8,64")
    parser.add_argument("--clusters", default="0,8,4", help="max CTAs per row to try; 0 = automatic")
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    mhz = sm_clock_mhz()
    print(f"device: {torch.cuda.get_device_name()}, SM clock {mhz} MHz (cycles -> us uses it)")
    configs = {"greedy": ReSETConfig.fixed(0.0), "fixed": ReSETConfig.fixed(FIXED_T), "top_p": CONFIG,
               "top_k_top_p": TOPK_CONFIG}
    results = []
    rng = np.random.default_rng(0)
    for rows in [int(b) for b in args.batches.split(",")]:
        logits = torch.from_numpy(rng.standard_normal((rows, VOCAB)).astype(np.float32) * 3).cuda()
        last = torch.full((rows,), -1, device="cuda")
        for name, config in configs.items():
            if rows > 1 and name in ("greedy", "fixed"):
                continue
            for max_cluster in [int(c) for c in args.clusters.split(",")]:
                state = ReSETState(config, rows, VOCAB, device="cuda")
                replay = graphed(step_fn(state, logits, last, max_cluster))
                entry = {"batch": rows, "config": name, "max_cluster": max_cluster,
                         "graph_us": gpu_time(replay, args.repeats) * 1e6 if replay else None}
                entry.update(phases(state, logits, last, max_cluster))
                state.check_errors()
                results.append(entry)
                print(f"B={rows:3d} {name:12s} C<={max_cluster:2d}: {describe(entry, mhz)}")
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / "sampler_phases.json").write_text(json.dumps({"device": torch.cuda.get_device_name(), "sm_mhz": mhz,
                                                         "results": results}, indent=2))
    print(f"wrote {out / 'sampler_phases.json'}")


if __name__ == "__main__":
    main()
