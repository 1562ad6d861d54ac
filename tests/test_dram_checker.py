"""The independent checker: it finds a planted violation of each rule, and finds none in the logs
of random mixed traces over every preset, scheduler, page policy, rank and channel count."""
import zlib

import numpy as np
import pytest

from reset_native.dram import DDR4Spec, MemorySystem, check_timing

from test_dram_helpers import make_log, run_checked

SPEC = DDR4Spec.preset("DDR4_2400R_8Gb_x8")
T = SPEC.timings
WRITE_END = T["CWL"] + T["BL"] // 2


# Each case: rule name, required distance, and a log builder taking the distance under test.
CASES = [
    ("tRCD", T["tRCD"], lambda d: [(0, "ACT", 0, 0, 0, 5, -1), (d, "RD", 0, 0, 0, 5, 0)]),
    ("tRAS", T["tRAS"], lambda d: [(0, "ACT", 0, 0, 0, 5, -1), (d, "PRE", 0, 0, 0, 5, -1)]),
    ("tRP", T["tRP"], lambda d: [(0, "ACT", 0, 0, 0, 5, -1), (39, "PRE", 0, 0, 0, 5, -1),
                                 (39 + d, "ACT", 0, 0, 0, 6, -1)]),
    ("tRC", T["tRC"], lambda d: [(0, "ACT", 0, 0, 0, 5, -1), (39, "PRE", 0, 0, 0, 5, -1),
                                 (d, "ACT", 0, 0, 0, 6, -1)]),
    ("tRTP", T["tRTP"], lambda d: [(0, "ACT", 0, 0, 0, 5, -1), (40, "RD", 0, 0, 0, 5, 0),
                                   (40 + d, "PRE", 0, 0, 0, 5, -1)]),
    ("tWR", WRITE_END + T["tWR"], lambda d: [(0, "ACT", 0, 0, 0, 5, -1), (40, "WR", 0, 0, 0, 5, 0),
                                             (40 + d, "PRE", 0, 0, 0, 5, -1)]),
    ("tCCD_L", T["tCCD_L"], lambda d: [(0, "ACT", 0, 0, 0, 5, -1), (6, "ACT", 0, 0, 1, 5, -1),
                                       (22, "RD", 0, 0, 0, 5, 0), (22 + d, "RD", 0, 0, 1, 5, 0)]),
    ("tCCD_S", T["tCCD_S"], lambda d: [(0, "ACT", 0, 0, 0, 5, -1), (4, "ACT", 0, 1, 0, 5, -1),
                                       (20, "RD", 0, 0, 0, 5, 0), (20 + d, "RD", 0, 1, 0, 5, 0)]),
    ("tRRD_L", T["tRRD_L"], lambda d: [(0, "ACT", 0, 0, 0, 5, -1), (d, "ACT", 0, 0, 1, 5, -1)]),
    ("tRRD_S", T["tRRD_S"], lambda d: [(0, "ACT", 0, 0, 0, 5, -1), (d, "ACT", 0, 1, 0, 5, -1)]),
    ("tFAW", T["tFAW"], lambda d: [(4 * g, "ACT", 0, g, 0, 5, -1) for g in range(4)] + [(d, "ACT", 0, 0, 1, 5, -1)]),
    ("tWTR_L", WRITE_END + T["tWTR_L"], lambda d: [(0, "ACT", 0, 0, 0, 5, -1), (6, "ACT", 0, 0, 1, 5, -1),
                                                   (22, "WR", 0, 0, 0, 5, 0), (22 + d, "RD", 0, 0, 1, 5, 0)]),
    ("tWTR_S", WRITE_END + T["tWTR_S"], lambda d: [(0, "ACT", 0, 0, 0, 5, -1), (4, "ACT", 0, 1, 0, 5, -1),
                                                   (20, "WR", 0, 0, 0, 5, 0), (20 + d, "RD", 0, 1, 0, 5, 0)]),
    ("RD_to_WR", T["CL"] + T["BL"] // 2 + 2 - T["CWL"],
     lambda d: [(0, "ACT", 0, 0, 0, 5, -1), (16, "RD", 0, 0, 0, 5, 0), (16 + d, "WR", 0, 0, 0, 5, 1)]),
    ("tRTRS", T["BL"] // 2 + T["tRTRS"], lambda d: [(0, "ACT", 0, 0, 0, 5, -1), (4, "ACT", 1, 0, 0, 5, -1),
                                                   (20, "RD", 0, 0, 0, 5, 0), (20 + d, "RD", 1, 0, 0, 5, 0)]),
    ("tRFC", T["tRFC"], lambda d: [(0, "REF", 0, 0, 0, -1, -1), (d, "ACT", 0, 0, 0, 5, -1)]),
    ("tRP", T["tRP"], lambda d: [(0, "ACT", 0, 0, 0, 5, -1), (39, "PREA", 0, 0, 0, -1, -1),
                                 (39 + d, "REF", 0, 0, 0, -1, -1)]),
    ("command_bus", 1, lambda d: [(0, "ACT", 0, 0, 0, 5, -1), (d, "ACT", 1, 0, 0, 5, -1)]),
]


@pytest.mark.parametrize("rule,required,build", CASES, ids=[c[0] + str(i) for i, c in enumerate(CASES)])
def test_checker_accepts_the_minimum_distance_and_flags_one_clock_less(rule, required, build):
    assert check_timing(make_log(build(required)), SPEC, refresh=False) == []
    found = check_timing(make_log(build(required - 1)), SPEC, refresh=False)
    assert rule in {v.rule for v in found}, found
    v = next(v for v in found if v.rule == rule)
    assert v.second_cycle - v.first_cycle == required - 1


def test_checker_flags_bank_state_errors_and_data_bus_overlap():
    wrong_row = [(0, "ACT", 0, 0, 0, 5, -1), (16, "RD", 0, 0, 0, 6, 0)]
    assert [v.rule for v in check_timing(make_log(wrong_row), SPEC, refresh=False)] == ["bank_state"]
    no_act = [(16, "WR", 0, 0, 0, 5, 0)]
    assert [v.rule for v in check_timing(make_log(no_act), SPEC, refresh=False)] == ["bank_state"]
    ref_open = [(0, "ACT", 0, 0, 0, 5, -1), (60, "REF", 0, 0, 0, -1, -1)]
    assert "bank_state" in {v.rule for v in check_timing(make_log(ref_open), SPEC, refresh=False)}
    overlap = [(0, "ACT", 0, 0, 0, 5, -1), (4, "ACT", 1, 0, 0, 5, -1), (20, "RD", 0, 0, 0, 5, 0),
               (22, "RD", 1, 0, 0, 5, 0)]
    assert {"data_bus", "tRTRS"} <= {v.rule for v in check_timing(make_log(overlap), SPEC, refresh=False)}


def test_checker_flags_missing_refreshes():
    refi = T["tREFI"]
    base = [(0, "ACT", 0, 0, 0, 5, -1), (39, "PRE", 0, 0, 0, 5, -1)]
    refs = [(k * refi, "REF", 0, 0, 0, -1, -1) for k in range(1, 21)]
    assert check_timing(make_log(base + refs), SPEC, end_cycle=20 * refi) == []
    found = check_timing(make_log(base), SPEC, end_cycle=20 * refi)
    assert {v.rule for v in found} == {"tREFI"}


def _random_trace(rng, system, n, *, hot_rows=False):
    gaps = rng.geometric(1 / rng.uniform(2, 12), n) - 1
    arrival = np.cumsum(gaps).astype(np.int64)
    is_write = rng.random(n) < 0.35
    bursts = system.capacity_bytes // 64
    if hot_rows:  # few rows: many hits, conflicts and write-read mixing in open rows
        base = rng.integers(0, bursts, 8)
        address = (base[rng.integers(0, 8, n)] + rng.integers(0, 64, n)) % bursts
    else:
        address = rng.integers(0, bursts, n)
    return arrival, is_write, address.astype(np.uint64) * 64


@pytest.mark.parametrize("preset", DDR4Spec.preset_names())
@pytest.mark.parametrize("scheduler,page_policy,ranks,channels",
                         [("frfcfs", "open", 1, 1), ("fcfs", "open", 2, 1), ("frfcfs", "closed", 2, 2),
                          ("fcfs", "closed", 1, 2), ("frfcfs", "open", 4, 1)])
def test_random_mixed_traces_break_no_rule(preset, scheduler, page_policy, ranks, channels):
    spec = DDR4Spec.preset(preset)
    seed = zlib.crc32(f"{preset}-{scheduler}-{page_policy}-{ranks}-{channels}".encode())
    rng = np.random.default_rng(seed)
    # tREFI shortened so every run also crosses several refreshes
    spec = spec.with_timings(tREFI=2000)
    system = MemorySystem(spec, channels=channels, ranks=ranks, scheduler=scheduler, page_policy=page_policy,
                          mapping="bg_interleaved" if seed % 2 else "ro:ra:bg:ba:co:ch", write_queue=16)
    for hot in (False, True):
        trace = _random_trace(rng, system, 1200, hot_rows=hot)
        r = run_checked(system, trace)
        assert r.reads == int((~trace[1]).sum()) and r.writes == int(trace[1].sum())
        assert r.row_hits + r.row_misses + r.row_conflicts == r.reads + r.writes
        assert (r.read_latencies[~trace[1]] >= spec.CL + 4).all()
        assert (r.read_latencies[trace[1]] == -1).all()
        if page_policy == "closed":
            assert r.commands["RD"] == r.commands["WR"] == 0
            assert r.commands["RDA"] + r.commands["WRA"] == r.reads + r.writes
        assert r.commands["REF"] >= ranks * (r.cycles // 2000 - 1)  # the longest-running channel refreshed


def test_checker_takes_extra_rules_for_pim_commands():
    log = make_log([(0, "ACT", 0, 0, 0, 5, -1), (16, "PIM0", 0, 0, 0, 5, 0), (20, "PIM0", 0, 0, 0, 5, 1),
                    (21, "RD", 0, 0, 0, 5, 2)])
    assert check_timing(log, SPEC, refresh=False, open_row_commands=["PIM0"]) == []
    rules = [("PIM0", "PIM0", rel, T["tCCD_L"], "pim_tCCD_L") for rel in ("bank", "bankgroup")]
    found = check_timing(log, SPEC, refresh=False, extra_rules=rules, open_row_commands=["PIM0"])
    assert [(v.rule, v.first_cycle, v.second_cycle) for v in found] == [("pim_tCCD_L", 16, 20)]
    wrong_row = make_log([(0, "ACT", 0, 0, 0, 5, -1), (16, "PIM0", 0, 0, 0, 6, 0)])
    assert [v.rule for v in check_timing(wrong_row, SPEC, refresh=False, open_row_commands=["PIM0"])] == ["bank_state"]
    with pytest.raises(ValueError, match="relation"):
        check_timing(log, SPEC, extra_rules=[("PIM0", "PIM0", "chip", 4, "x")])
