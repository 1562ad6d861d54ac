"""Benchmark / case study of GradPIM (reset_native.pim).

1. Update speedup, PIM vs the bank-group-interleaved host baseline, per optimizer and speed grade, at
   N parameters (default 25.6M = ResNet-50), with the fraction of 4 tCCD_S / tCCD_L and of the physical bound.
2. Device width (x4/x8/x16), ranks, registers per unit, layout and the cross-group knob.
3. Extrapolation check: slice-extrapolated vs a full cycle-accurate simulation at --full-params.
4. Simulator speed: simulated commands and cycles per second of wall time for a full PIM and host run.
5. Whole training iteration per built-in network (momentum and Adam), and ResNet-50 vs NPU peak.
Prints tables; writes bench/out/bench_pim.json.

    python bench/bench_pim.py [--params 25600000] [--full-params 8000000]
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from reset_native.pim import NETWORKS, OPTIMIZERS, GradPIMConfig, NPUModel, compare_update, simulate_update, training_iteration

OUT = Path(__file__).resolve().parent / "out"


def row(cfg, n, label=""):
    t0 = time.perf_counter()
    c = compare_update(cfg, n)
    wall = time.perf_counter() - t0
    t = cfg.spec.timings
    ideal = cfg.spec.organisation.bankgroups * cfg.ranks * t["tCCD_S"] / t["tCCD_L"]
    return dict(label=label, preset=cfg.spec.name, optimizer=cfg.optimizer, ranks=cfg.ranks,
                registers=cfg.registers_per_unit, layout=cfg.layout, cross_group=cfg.cross_group, n=n,
                host_cycles=c.host.cycles, pim_cycles=c.pim.cycles, speedup=c.speedup, ideal=ideal,
                fraction_of_ideal=c.speedup / ideal, host_fraction_of_peak=c.bound["host_fraction_of_peak"],
                pim_fraction_of_floor=c.bound["pim_floor_cycles"] / c.pim.cycles,
                command_bus=c.pim.command_bus_utilisation, host_B_per_param=c.host.bytes_per_param,
                energy_ratio=c.energy_ratio, wall_s=wall)


def show(rows, title):
    print(f"\n## {title}")
    print(f"{'label':14s} {'preset':19s} {'optimizer':12s} {'rk':>2s} {'reg':>3s} {'host cyc':>11s} {'PIM cyc':>11s} "
          f"{'speedup':>7s} {'ideal':>6s} {'frac':>5s} {'host%pk':>7s} {'pim%fl':>6s} {'cmdbus':>6s} {'E h/p':>5s}")
    for r in rows:
        print(f"{r['label']:14s} {r['preset']:19s} {r['optimizer']:12s} {r['ranks']:2d} {r['registers']:3d} "
              f"{r['host_cycles']:11.0f} {r['pim_cycles']:11.0f} {r['speedup']:7.3f} {r['ideal']:6.3f} "
              f"{r['fraction_of_ideal']:5.3f} {r['host_fraction_of_peak']:7.3f} {r['pim_fraction_of_floor']:6.3f} "
              f"{r['command_bus']:6.2f} {r['energy_ratio']:5.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--params", type=int, default=25_600_000)
    ap.add_argument("--full-params", type=int, default=8_000_000)
    args = ap.parse_args()
    n = args.params
    out = {"machine": f"{platform.node()} {platform.machine()} {platform.processor()}",
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "params": n}

    rows = [row(GradPIMConfig(p, optimizer=o), n) for p in ("DDR4_2400R_8Gb_x8", "DDR4_3200_8Gb_x8")
            for o in OPTIMIZERS]
    show(rows, "update speedup per optimizer and speed grade")
    out["optimizers"] = rows

    sens = [row(GradPIMConfig(p), n, f"x{GradPIMConfig(p).spec.organisation.device_width}")
            for p in ("DDR4_2400R_8Gb_x4", "DDR4_2400R_8Gb_x8", "DDR4_2400R_8Gb_x16")]
    sens += [row(GradPIMConfig(ranks=r, optimizer=o), n, f"ranks={r}") for r in (1, 2, 4) for o in ("sgd", "momentum")]
    sens += [row(GradPIMConfig(registers_per_unit=k), n, f"regs={k}") for k in (6, 8, 12, 16, 24, 32, 64)]
    sens += [row(GradPIMConfig(layout="rows", registers_per_unit=k), n, f"rows,regs={k}") for k in (6, 16, 64)]
    sens += [row(GradPIMConfig(cross_group=4), n, "cross_group=4")]
    sens += [row(GradPIMConfig(host_interleaved=False), n, "host:PIM layout")]
    show(sens, "sensitivity (DDR4-2400, momentum unless noted)")
    out["sensitivity"] = sens

    check = []
    for mode in ("pim", "host"):
        cfg = GradPIMConfig()
        t0 = time.perf_counter()
        ext = simulate_update(cfg, args.full_params, mode)
        t1 = time.perf_counter()
        full = simulate_update(cfg.replace(max_simulated_params=args.full_params), args.full_params, mode)
        t2 = time.perf_counter()
        cmds = sum(full.commands.values())
        check.append(dict(mode=mode, n=args.full_params, extrapolated_cycles=ext.cycles, full_cycles=full.cycles,
                          rel_error=ext.cycles / full.cycles - 1, extrapolated_wall_s=t1 - t0, full_wall_s=t2 - t1,
                          commands=cmds, commands_per_s=cmds / (t2 - t1), cycles_per_s=full.cycles / (t2 - t1)))
    print("\n## extrapolation vs full simulation, simulator speed (DDR4-2400 x8, momentum)")
    for c in check:
        print(f"{c['mode']:4s} n={c['n']}: extrapolated {c['extrapolated_cycles']:.0f} vs full {c['full_cycles']:.0f} "
              f"cycles ({100 * c['rel_error']:+.3f}%); full run {c['full_wall_s']:.2f} s = "
              f"{c['commands_per_s'] / 1e6:.2f} M commands/s, {c['cycles_per_s'] / 1e6:.1f} M cycles/s; "
              f"extrapolated {c['extrapolated_wall_s']:.2f} s")
    out["extrapolation"] = check

    nets = []
    for name in NETWORKS:
        for opt in ("momentum", "adam"):
            it = training_iteration(name, GradPIMConfig(optimizer=opt))
            nets.append(dict(network=name, optimizer=opt, batch=it.batch_size, fb_ms=it.forward_backward_ns / 1e6,
                             update_host_ms=it.update_host_ns / 1e6, update_pim_ms=it.update_pim_ns / 1e6,
                             iteration_speedup=it.speedup, traffic_reduction=it.traffic_reduction,
                             update_share_of_time=it.update_share_of_time))
    print("\n## training iteration (NPU 8 TFLOP/s x 0.6, DDR4-2400 x8, 1 channel)")
    for r in nets:
        print(f"{r['network']:11s} {r['optimizer']:9s} batch {r['batch']:3d}: fwd+bwd {r['fb_ms']:9.2f} ms, update "
              f"host {r['update_host_ms']:7.2f} / PIM {r['update_pim_ms']:7.2f} ms, iteration {r['iteration_speedup']:.3f}x, "
              f"traffic -{100 * r['traffic_reduction']:.1f}%")
    out["networks"] = nets
    npus = []
    for peak in (8e12, 1e14, 1e15):
        it = training_iteration("resnet50", GradPIMConfig(), npu=NPUModel(peak_flops=peak))
        npus.append(dict(peak_flops=peak, compute_bound=it.compute_bound, fb_ms=it.forward_backward_ns / 1e6,
                         iteration_speedup=it.speedup, update_share_of_time=it.update_share_of_time))
    print("\n## resnet50 momentum vs NPU peak (efficiency 0.6)")
    for r in npus:
        print(f"{r['peak_flops']:.0e} FLOP/s: fwd+bwd {r['fb_ms']:.2f} ms ({'compute' if r['compute_bound'] else 'memory'}"
              f" bound), update {100 * r['update_share_of_time']:.1f}% of the host iteration, "
              f"iteration speedup {r['iteration_speedup']:.3f}x")
    out["npu_sweep"] = npus
    OUT.mkdir(exist_ok=True)
    (OUT / "bench_pim.json").write_text(json.dumps(out, indent=1))
    print(f"\nwrote {OUT / 'bench_pim.json'}")


if __name__ == "__main__":
    main()
