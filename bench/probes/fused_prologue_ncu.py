"""Why the RMSNorm-prologue GEMVs stream slower than the plain ones (session 11: ~0.8-1.3 us more per row tile each
CTA walks, with the same registers and SASS main loop): ncu per kernel of the plain block-diagonal GEMV and its
fused forms (norm, SiLU, norm + SiLU) on Qwen3-32B q/k/v and gate/up at one token.

  ncu --csv --print-units base --cache-control all --clock-control none --metrics <METRICS below, comma-joined> \\
      -k regex:gemv_bd_kernel --log-file /tmp/pro.csv python3 bench/probes/fused_prologue_ncu.py run
  python3 bench/probes/fused_prologue_ncu.py table /tmp/pro.csv

(bench/probes/fused_prologue_ncu.sh does both.) "run" calls each form twice on its own weights (the second call is
the one reported: warm instruction cache; ncu flushes the caches before each kernel, so the weights come from HBM);
ring off.
"""
from __future__ import annotations

import csv
import sys
from collections import OrderedDict

METRICS = OrderedDict([
    ("gpu__time_duration.sum", "us"),
    ("dram__bytes_read.sum", "MB"),
    ("dram__throughput.avg.pct_of_peak_sustained_elapsed", "dram%"),
    ("sm__warps_active.avg.pct_of_peak_sustained_active", "occ%"),
    ("launch__grid_size", "grid"),
    ("smsp__inst_executed.sum", "Minst"),
    ("smsp__average_warps_issue_stalled_long_scoreboard_per_issue_active.ratio", "lgsb"),
    ("smsp__average_warps_issue_stalled_barrier_per_issue_active.ratio", "bar"),
    ("smsp__average_warps_issue_stalled_wait_per_issue_active.ratio", "wait"),
])
SCALE = {"gpu__time_duration.sum": 1e-3, "dram__bytes_read.sum": 1e-6, "smsp__inst_executed.sum": 1e-6}
CASES = [("32b qkv", 10240, 5120, False, False), ("32b qkv + norm", 10240, 5120, True, False),
         ("32b gate_up", 51200, 5120, False, False), ("32b gate_up + silu", 51200, 5120, False, True),
         ("32b gate_up + norm + silu", 51200, 5120, True, True)]


def run():
    import os

    import torch

    from reset_native import _nvfp4_cuda as nc
    from reset_native import _nvfp4_fused as nf

    os.environ["RESET_NATIVE_GEMV_RING"] = "0"
    torch.manual_seed(0)
    for _, n, k, norm, silu in CASES:
        p = torch.randint(0, 256, (n, k // 2), dtype=torch.uint8, device="cuda")
        s = torch.randint(0x20, 0x40, (n, k // 16), dtype=torch.uint8, device="cuda")
        x = torch.randn(1, k, device="cuda").to(torch.bfloat16)
        nw = (1 + 0.1 * torch.randn(k, device="cuda")).to(torch.bfloat16) if norm else None
        for _ in range(2):
            if norm or silu:
                nf.gemv_fused(p, s, 0.01, x, nw, 1e-6, silu_mul=silu)
            else:
                nc.gemv(p, s, 0.01, x, "bf16")
        torch.cuda.synchronize()


def table(path):
    with open(path) as f:
        lines = [line for line in f if line.startswith('"')]
    kernels = OrderedDict()  # ncu ID -> {metric: value}
    for row in csv.DictReader(lines):
        kernels.setdefault(row["ID"], {})[row["Metric Name"]] = float(row["Metric Value"].replace(",", "") or "nan")
    ids = list(kernels)
    if len(ids) != 2 * len(CASES):
        print(f"expected {2 * len(CASES)} profiled kernels, got {len(ids)}")
    print(f"{'case':26s} " + " ".join(f"{v:>7s}" for v in METRICS.values()))
    for i, (name, *_rest) in enumerate(CASES):
        if 2 * i + 1 >= len(ids):
            break
        m = kernels[ids[2 * i + 1]]  # the second call of the form
        cells = [m.get(key, float("nan")) * SCALE.get(key, 1.0) for key in METRICS]
        print(f"{name:26s} " + " ".join(f"{c:7.2f}" for c in cells))


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "run":
        run()
    elif len(sys.argv) >= 3 and sys.argv[1] == "table":
        table(sys.argv[2])
    else:
        print(__doc__)
        sys.exit(2)
