"""`reset-native pim report`: the GradPIM case study as a Markdown file, a JSON file and PNG figures."""
from __future__ import annotations

import json
import os
import platform
import time
from typing import Any, Dict, List


def _sweeps(quick: bool) -> Dict[str, List[Dict[str, Any]]]:
    from .pim import OPTIMIZERS, GradPIMConfig, compare_update, training_iteration
    from ._pim_networks import NETWORKS

    n = 200_000 if quick else 25_600_000
    grades = ["DDR4_2400R_8Gb_x8"] if quick else ["DDR4_2400R_8Gb_x8", "DDR4_3200_8Gb_x8"]
    out: Dict[str, List[Dict[str, Any]]] = {"optimizers": [], "networks": [], "registers": [], "ranks": [],
                                             "devices": []}

    def row(cfg, cmp, **extra):
        t = cfg.spec.timings
        ideal = cfg.spec.organisation.bankgroups * cfg.ranks * t["tCCD_S"] / t["tCCD_L"]
        return dict(extra, preset=cfg.spec.name, optimizer=cfg.optimizer, ranks=cfg.ranks,
                    registers=cfg.registers_per_unit, n_params=n, host_cycles=cmp.host.cycles,
                    pim_cycles=cmp.pim.cycles, speedup=cmp.speedup, ideal=ideal, fraction=cmp.speedup / ideal,
                    host_bytes_per_param=cmp.host.bytes_per_param, pim_bytes_per_param=cmp.pim.bytes_per_param,
                    command_bus=cmp.pim.command_bus_utilisation, energy_ratio=cmp.energy_ratio,
                    host_fraction_of_peak=cmp.bound["host_fraction_of_peak"],
                    pim_fraction_of_floor=cmp.bound["pim_floor_cycles"] / cmp.pim.cycles)

    for preset in grades:
        for opt in (OPTIMIZERS[:3] + ("adam",) if quick else OPTIMIZERS):
            cfg = GradPIMConfig(preset, optimizer=opt)
            out["optimizers"].append(row(cfg, compare_update(cfg, n)))
    nets = list(NETWORKS)[:2] if quick else list(NETWORKS)
    for name in nets:
        for opt in ("momentum", "adam"):
            cfg = GradPIMConfig(optimizer=opt, max_simulated_params=1 << 18 if quick else 1 << 20)
            it = training_iteration(name, cfg)
            out["networks"].append(dict(network=name, optimizer=opt, params=NETWORKS[name].params,
                                        batch=it.batch_size, fb_ms=it.forward_backward_ns / 1e6,
                                        update_host_ms=it.update_host_ns / 1e6, update_pim_ms=it.update_pim_ns / 1e6,
                                        iteration_speedup=it.speedup, traffic_reduction=it.traffic_reduction,
                                        update_share_of_traffic=it.update_share_of_traffic,
                                        update_share_of_time=it.update_share_of_time))
    for regs in ((6, 16) if quick else (6, 8, 12, 16, 24, 32, 64)):
        cfg = GradPIMConfig(registers_per_unit=regs)
        out["registers"].append(row(cfg, compare_update(cfg, n)))
    for ranks in ((1, 2) if quick else (1, 2, 4)):
        for opt in ("sgd", "momentum"):
            cfg = GradPIMConfig(ranks=ranks, optimizer=opt)
            out["ranks"].append(row(cfg, compare_update(cfg, n)))
    for preset in ("DDR4_2400R_8Gb_x4", "DDR4_2400R_8Gb_x8", "DDR4_2400R_8Gb_x16"):
        cfg = GradPIMConfig(preset)
        out["devices"].append(row(cfg, compare_update(cfg, n), width=cfg.spec.organisation.device_width))
    return out


def _table(rows: List[Dict[str, Any]], cols: List[tuple]) -> str:
    head = "| " + " | ".join(c[0] for c in cols) + " |"
    sep = "|" + "|".join("---" for _ in cols) + "|"
    body = ["| " + " | ".join(fmt.format(r[key]) for _, key, fmt in cols) + " |" for r in rows]
    return "\n".join([head, sep] + body)


def _save(fig, out: str, name: str) -> str:
    """Writes a finished figure to out/name (80 dpi) and closes it; returns its path."""
    import matplotlib.pyplot as plt

    path = os.path.join(out, name)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _figures(data, out: str) -> List[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    rows = data["optimizers"]
    presets = sorted({r["preset"] for r in rows})
    opts = [r["optimizer"] for r in rows if r["preset"] == presets[0]]
    fig, ax = plt.subplots(figsize=(6, 3))
    width = 0.8 / len(presets)
    for k, p in enumerate(presets):
        vals = [next(r["speedup"] for r in rows if r["preset"] == p and r["optimizer"] == o) for o in opts]
        ax.bar([i + k * width for i in range(len(opts))], vals, width, label=p)
        ideal = next(r["ideal"] for r in rows if r["preset"] == p)
        ax.axhline(ideal, ls="--", lw=0.8, color=f"C{k}")
    ax.set_xticks([i + width * (len(presets) - 1) / 2 for i in range(len(opts))], opts, fontsize=8)
    ax.set_ylabel("update speedup (host / PIM)")
    ax.legend(fontsize=7)
    ax.set_title("GradPIM update speedup; dashed: 4 tCCD_S / tCCD_L", fontsize=9)
    files.append(_save(fig, out, "gradpim_speedup.png"))

    nets = data["networks"]
    names = sorted({r["network"] for r in nets}, key=lambda s: [r["network"] for r in nets].index(s))
    fig, ax = plt.subplots(figsize=(6, 3))
    for k, opt in enumerate(("momentum", "adam")):
        vals = [100 * next(r["traffic_reduction"] for r in nets if r["network"] == n and r["optimizer"] == opt)
                for n in names]
        ax.bar([i + 0.4 * k for i in range(len(names))], vals, 0.4, label=opt)
    ax.set_xticks([i + 0.2 for i in range(len(names))], names, fontsize=8)
    ax.set_ylabel("DRAM traffic removed (%)")
    ax.legend(fontsize=7)
    ax.set_title("whole-iteration DRAM traffic reduction per network", fontsize=9)
    files.append(_save(fig, out, "gradpim_traffic.png"))

    fig, axes = plt.subplots(1, 3, figsize=(9, 2.8))
    r = data["registers"]
    axes[0].plot([x["registers"] for x in r], [x["speedup"] for x in r], "o-")
    axes[0].set_xlabel("registers per unit")
    axes[0].set_ylabel("speedup")
    for opt in ("sgd", "momentum"):
        rr = [x for x in data["ranks"] if x["optimizer"] == opt]
        axes[1].plot([x["ranks"] for x in rr], [x["speedup"] for x in rr], "o-", label=opt)
    axes[1].set_xlabel("ranks")
    axes[1].legend(fontsize=7)
    d = data["devices"]
    axes[2].bar([f"x{x['width']}" for x in d], [x["speedup"] for x in d])
    axes[2].set_xlabel("device width")
    fig.suptitle("sensitivity (DDR4-2400, momentum unless noted)", fontsize=9)
    files.append(_save(fig, out, "gradpim_sensitivity.png"))
    return files


def write_report(out: str, quick: bool = False) -> str:
    os.makedirs(out, exist_ok=True)
    t0 = time.time()
    data = _sweeps(quick)
    elapsed = time.time() - t0
    _figures(data, out)
    spd = [("preset", "preset", "{}"), ("optimizer", "optimizer", "{}"), ("host B/param", "host_bytes_per_param", "{:.0f}"),
           ("host cycles", "host_cycles", "{:.0f}"), ("PIM cycles", "pim_cycles", "{:.0f}"),
           ("speedup", "speedup", "{:.3f}"), ("ideal 4tCCD_S/tCCD_L", "ideal", "{:.3f}"),
           ("fraction", "fraction", "{:.3f}"), ("host % of bus peak", "host_fraction_of_peak", "{:.3f}"),
           ("PIM % of floor", "pim_fraction_of_floor", "{:.3f}"), ("cmd bus", "command_bus", "{:.2f}"),
           ("energy host/PIM", "energy_ratio", "{:.2f}")]
    net = [("network", "network", "{}"), ("optimizer", "optimizer", "{}"), ("params", "params", "{:,}"),
           ("batch", "batch", "{}"), ("fwd+bwd ms", "fb_ms", "{:.2f}"), ("update host ms", "update_host_ms", "{:.2f}"),
           ("update PIM ms", "update_pim_ms", "{:.2f}"), ("iteration speedup", "iteration_speedup", "{:.3f}"),
           ("traffic removed", "traffic_reduction", "{:.3f}"),
           ("update share of traffic", "update_share_of_traffic", "{:.3f}"),
           ("update share of time", "update_share_of_time", "{:.3f}")]
    sens = [("preset", "preset", "{}"), ("optimizer", "optimizer", "{}"), ("ranks", "ranks", "{}"),
            ("registers", "registers", "{}"), ("speedup", "speedup", "{:.3f}"), ("ideal", "ideal", "{:.3f}"),
            ("fraction", "fraction", "{:.3f}"), ("cmd bus", "command_bus", "{:.2f}")]
    n = data["optimizers"][0]["n_params"]
    md = [f"# GradPIM case study ({'quick' if quick else 'full'})", "",
          f"Generated by `reset-native pim report` in {elapsed:.1f} s on {platform.node()} ({platform.machine()}), "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Update size {n:,} parameters "
          "(two cycle-accurate slices extrapolated linearly where larger than max_simulated_params). "
          "Defaults: 1 channel, 1 rank, 16 registers per unit, fp32 weights/state, fp16 gradients and weight copy.",
          "", "## Update speedup per optimizer and speed grade", "", _table(data["optimizers"], spd), "",
          "![speedup](gradpim_speedup.png)", "", "## Whole training iteration per network", "",
          "NPU: roofline, 8 TFLOP/s x 0.6, DRAM traffic at the bandwidth the memory model measured for the "
          "host update stream.", "", _table(data["networks"], net), "", "![traffic](gradpim_traffic.png)", "",
          "## Sensitivity", "", "Registers per unit (momentum):", "", _table(data["registers"], sens), "",
          "Ranks:", "", _table(data["ranks"], sens), "", "Device width (x4 / x8 / x16):", "",
          _table(data["devices"], sens), "", "![sensitivity](gradpim_sensitivity.png)", ""]
    path = os.path.join(out, "gradpim_report.md")
    with open(path, "w") as f:
        f.write("\n".join(md))
    with open(os.path.join(out, "gradpim_report.json"), "w") as f:
        json.dump(data, f, indent=1)
    return path
