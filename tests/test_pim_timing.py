"""GradPIM timing: command logs pass the independent checker with the PIM rules, the physical bound of
SPEC-gradpim section 3 holds, the bank-group speedup appears, and slice extrapolation is faithful."""
import numpy as np
import pytest

from reset_native.dram import COMMANDS
from reset_native.pim import (GradPIMConfig, check_pim_timing, compare_update, layout,
                              simulate_update)

PIM = {name: COMMANDS.index(k) for k, name in (("PIM0", "LD"), ("PIM1", "MAC"), ("PIM2", "ST"), ("PIM3", "ALU"))}


@pytest.mark.parametrize("kw", [
    dict(),
    dict(optimizer="adam"),
    dict(optimizer="momentum_wd", ranks=2),
    dict(spec="DDR4_2400R_8Gb_x16", optimizer="nesterov"),
    dict(spec="DDR4_2400R_8Gb_x4", optimizer="sgd_wd", channels=2),
    dict(layout="rows", registers_per_unit=8),
    dict(spec="DDR4_3200_8Gb_x8", optimizer="sgd", cross_group=2),
])
def test_pim_command_logs_pass_the_checker_with_pim_rules(kw):
    cfg = GradPIMConfig(**kw)
    r = simulate_update(cfg, 45_000 * cfg.channels, "pim", command_log=True)
    log = r.command_log
    assert check_pim_timing(cfg, log) == []
    # the run really exercised refresh, every bank group and the unit commands
    assert r.commands["REF"] >= 1 and r.commands["PIM_ST"] > 0
    assert r.commands["ACT"] >= 1 and r.commands["PRE"] >= 1  # sequences open and close rows themselves
    units = {(int(c), int(k), int(g)) for c, k, g, cmd in zip(log["channel"], log["rank"], log["bankgroup"],
                                                               log["command"]) if cmd == PIM["ST"]}
    o = cfg.spec.organisation
    assert len(units) == cfg.channels * cfg.ranks * o.bankgroups
    assert r.external_bytes == 0 and r.commands["RD"] == r.commands["WR"] == 0
    assert r.internal_column_ops == r.commands["PIM_LD"] + r.commands["PIM_MAC"] + r.commands["PIM_ST"]


def test_checker_catches_a_pim_command_moved_too_early():
    cfg = GradPIMConfig()
    log = simulate_update(cfg, 20_000, "pim", command_log=True).command_log.copy()
    t = cfg.spec.timings
    # two unit column commands of one bank group, consecutive in that group: pull the second closer
    mask = np.isin(log["command"], [PIM["LD"], PIM["MAC"], PIM["ST"]]) & (log["bankgroup"] == 1)
    idx = np.flatnonzero(mask)
    a, b = next((i, j) for i, j in zip(idx, idx[1:]) if log["cycle"][j] - log["cycle"][i] == t["tCCD_L"])
    free = set(log["cycle"].tolist())
    new = next(c for c in range(log["cycle"][b] - 1, log["cycle"][a], -1) if c not in free)
    log["cycle"][b] = new
    v = check_pim_timing(cfg, log)
    assert any(x.rule == "pim_tCCD_L" and x.second_cycle == new for x in v)
    # and a unit column command to a closed row is a bank-state violation
    log2 = simulate_update(cfg, 20_000, "pim", command_log=True).command_log.copy()
    first_act = int(np.flatnonzero(log2["command"] == COMMANDS.index("ACT"))[0])
    log2["row"][first_act] += 1
    assert any(x.rule == "bank_state" for x in check_pim_timing(cfg, log2))


def test_store_to_load_turnaround_and_trcd_are_respected_exactly():
    cfg = GradPIMConfig(registers_per_unit=6)  # one step per batch: a store->load turnaround every step
    log = simulate_update(cfg, 9000, "pim", command_log=True).command_log
    t = cfg.spec.timings
    wtr = t["BL"] // 2 + t["tWTR_L"]
    seen_wtr = seen_rcd = False
    last = {}
    for row in log:
        key = (row["rank"], row["bankgroup"])
        cmd = row["command"]
        if cmd in (PIM["LD"], PIM["MAC"]) and key in last and last[key][0] == PIM["ST"]:
            assert row["cycle"] - last[key][1] >= wtr
            seen_wtr |= row["cycle"] - last[key][1] == wtr
        if cmd == COMMANDS.index("ACT"):
            last[("act",) + key + (row["bank"],)] = (cmd, row["cycle"])
        if cmd in (PIM["LD"], PIM["MAC"], PIM["ST"]):
            act = last.get(("act",) + key + (row["bank"],))
            assert act is not None and row["cycle"] - act[1] >= t["tRCD"]
            seen_rcd |= row["cycle"] - act[1] == t["tRCD"]
            last[key] = (cmd, row["cycle"])
    assert seen_wtr and seen_rcd  # the scheduler packs to the limit, not beyond


@pytest.mark.parametrize("kw", [
    dict(), dict(optimizer="sgd"), dict(optimizer="adam"), dict(ranks=2), dict(ranks=4, optimizer="sgd"),
    dict(spec="DDR4_2400R_8Gb_x16"), dict(spec="DDR4_3200_8Gb_x8", channels=2), dict(registers_per_unit=64),
])
def test_pim_never_beats_the_physical_bound(kw):
    cfg = GradPIMConfig(**kw)
    cmp = compare_update(cfg, 200_000)
    b = cmp.bound
    t = cfg.spec.timings
    o = cfg.spec.organisation
    host_ideal = cmp.host.external_bytes / 64 * (t["BL"] // 2) / cfg.channels
    assert b["host_ideal_cycles"] == pytest.approx(host_ideal)
    assert cmp.host.cycles >= host_ideal
    assert cmp.pim.cycles >= host_ideal / (o.bankgroups * cfg.ranks * t["tCCD_S"] / t["tCCD_L"])
    assert cmp.pim.cycles >= sum(cmp.pim.commands.values()) / cfg.channels  # one command per clock
    assert cmp.pim.command_bus_utilisation <= 1.0


def test_many_ranks_hit_the_command_bus_limit():
    cfg = GradPIMConfig(ranks=4, optimizer="sgd")
    p = simulate_update(cfg, 400_000, "pim")
    assert p.command_bus_utilisation > 0.85
    p1 = simulate_update(cfg.replace(ranks=1), 400_000, "pim")
    assert p1.cycles / p.cycles < 4 * 0.85  # far from 4x: the command bus, not the bank groups, limits


def test_large_update_speedup_near_bankgroup_factor_and_x16_half():
    base = GradPIMConfig("DDR4_2400R_8Gb_x8")
    t = base.spec.timings
    ideal = 4 * t["tCCD_S"] / t["tCCD_L"]
    s8 = compare_update(base, 25_600_000)
    assert s8.pim.extrapolated and s8.host.extrapolated
    assert 0.9 * ideal <= s8.speedup <= 1.05 * ideal
    s16 = compare_update(GradPIMConfig("DDR4_2400R_8Gb_x16"), 25_600_000)
    assert 0.4 <= s16.speedup / s8.speedup <= 0.6
    s32 = compare_update(GradPIMConfig("DDR4_3200_8Gb_x8"), 25_600_000)
    assert s32.speedup < s8.speedup  # tCCD_L = 8 at 3200: 2.0x ideal


def test_slice_extrapolation_matches_full_simulation():
    cfg = GradPIMConfig(max_simulated_params=1 << 19)
    full = cfg.replace(max_simulated_params=1 << 23)
    for mode in ("pim", "host"):
        a = simulate_update(cfg, 2_500_000, mode)
        b = simulate_update(full, 2_500_000, mode)
        assert a.extrapolated and not b.extrapolated
        assert a.cycles == pytest.approx(b.cycles, rel=0.01)
        assert a.external_bytes == pytest.approx(b.external_bytes, rel=1e-3)
        assert a.energy_nJ == pytest.approx(b.energy_nJ, rel=0.01)


@pytest.mark.parametrize("opt,bytes_per_param", [("sgd", 12), ("sgd_wd", 12), ("momentum", 20), ("nesterov", 20),
                                                 ("momentum_wd", 20), ("adam", 28)])
def test_host_bytes_per_parameter_and_equal_internal_accesses(opt, bytes_per_param):
    cfg = GradPIMConfig(optimizer=opt)
    n = 64 * 1024
    cmp = compare_update(cfg, n)
    assert cmp.host.bytes_per_param == bytes_per_param
    assert cmp.pim.external_bytes == 0
    # every byte the host moves is one unit column access inside the bank groups (64 B per rank access)
    assert cmp.pim.internal_column_ops == cmp.host.external_bytes / 64
    assert cmp.host.commands["RD"] + cmp.host.commands["WR"] == cmp.host.external_bytes / 64


def test_more_registers_fewer_turnarounds_and_rows_layout_costs_activations():
    n = 150_000
    cycles = [simulate_update(GradPIMConfig(registers_per_unit=r), n, "pim").cycles for r in (6, 12, 24, 48)]
    assert all(a >= b for a, b in zip(cycles, cycles[1:])) and cycles[0] > 1.03 * cycles[-1]
    rows = [simulate_update(GradPIMConfig(layout="rows", registers_per_unit=r), n, "pim") for r in (6, 48)]
    assert rows[0].cycles > rows[1].cycles > cycles[-1]
    assert rows[0].commands["ACT"] > 5 * rows[1].commands["ACT"]


def test_energy_breakdown_follows_counts():
    cfg = GradPIMConfig()
    cmp = compare_update(cfg, 100_000)
    h, p = cmp.host.energy_breakdown_nJ, cmp.pim.energy_breakdown_nJ
    assert p["io"] == 0 and p["read_write_core"] == 0 and p["pim_column"] > 0
    assert h["pim_column"] == 0 and h["io"] == pytest.approx(cmp.host.external_bytes * 8 * cfg.io_pJ_per_bit / 1e3)
    assert cmp.energy_ratio > 1
    assert cmp.pim.energy_nJ == pytest.approx(sum(p.values()))


def test_layout_keeps_each_element_in_one_device_and_one_bank_group():
    for spec in ("DDR4_2400R_8Gb_x8", "DDR4_2400R_8Gb_x16", "DDR4_2400R_8Gb_x4"):
        cfg = GradPIMConfig(spec, ranks=2, optimizer="adam")
        lay = layout(cfg, 10**6)
        from reset_native.pim import locate
        e = np.arange(0, 3 * lay["chunk_elements"] * lay["units"], 7)
        where = {s: locate(cfg, e, s) for s in lay["streams"]}
        for s, loc in where.items():
            nbytes = 4 if lay["streams"][s][3] == "fp32" else 2
            assert (loc[:, 7] + nbytes <= lay["column_bytes"]).all()          # whole element in one device
            assert len({tuple(r) for r in loc[:, [0, 1, 2, 3, 4, 5, 6, 7]]}) == len(e)  # no two share bytes
        base = where["weight"]
        for s, loc in where.items():
            np.testing.assert_array_equal(loc[:, :3], base[:, :3])  # same channel, rank, bank group
            np.testing.assert_array_equal(loc[:, 6], base[:, 6])    # same device (byte lane)
        assert len({tuple(r) for r in base[:, :3]}) == lay["units"]  # chunks spread over all bank groups
        banks = {s: set(loc[:, 3]) for s, loc in where.items()}
        assert len(set().union(*banks.values())) == cfg.spec.organisation.banks_per_group


def test_host_baseline_is_the_fair_one():
    # the same host on the PIM layout (a chunk in one bank group) is paced by tCCD_L: the interleaved
    # baseline is faster, so the reported speedup is not inflated by a weak baseline
    fair = simulate_update(GradPIMConfig(), 300_000, "host")
    naive_cfg = GradPIMConfig(host_interleaved=False)
    naive = simulate_update(naive_cfg, 300_000, "host", command_log=True)
    assert naive.external_bytes == fair.external_bytes
    assert naive.cycles > 1.3 * fair.cycles
    log = naive.command_log
    from reset_native.dram import check_timing
    assert check_timing(log, naive_cfg.spec) == []
