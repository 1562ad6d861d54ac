"""Spec, system, frontends, statistics, CLI and bad inputs of reset_native.dram."""
import json

import numpy as np
import pytest

from reset_native import cli
from reset_native.dram import DDR4Spec, MemorySystem, read_trace, simulate

from test_dram_helpers import cycles_of, reads_at_zero, run_checked


def test_presets_print_every_value_and_overrides_make_new_specs():
    names = DDR4Spec.preset_names()
    assert {"DDR4_2400R_8Gb_x8", "DDR4_3200_8Gb_x8", "DDR4_2400R_8Gb_x16", "DDR4_2400R_8Gb_x4"} <= set(names)
    spec = DDR4Spec.preset("DDR4_2400R_8Gb_x8")
    table = spec.table()
    for key, value in spec.timings.items():
        assert any(line.split()[:2] == [key, str(value)] for line in table.splitlines())
    assert "IDD4R" in table and "bankgroups=4" in table
    # the values SPEC-gradpim section 2 lists
    expect = dict(CL=16, CWL=12, tRCD=16, tRP=16, tRAS=39, tRC=55, tCCD_S=4, tCCD_L=6, tRRD_S=4, tRRD_L=6,
                  tFAW=26, tWTR_S=3, tWTR_L=9, tRTP=9, tWR=18, BL=8, tREFI=9360, tRFC=420)
    assert {k: spec.timings[k] for k in expect} == expect and spec.tCK_ns == 0.833
    fast = DDR4Spec.preset("DDR4_3200_8Gb_x8")
    assert (fast.CL, fast.tCCD_L, fast.tFAW, fast.tREFI, fast.tRFC, fast.tCK_ns) == (22, 8, 34, 12480, 560, 0.625)
    x16 = DDR4Spec.preset("DDR4_2400R_8Gb_x16").organisation
    assert x16.bankgroups == 2 and x16.device_width == 16 and x16.devices_per_rank == 4
    o = spec.organisation
    assert (o.channels, o.ranks, o.bankgroups, o.banks, o.rows, o.columns, o.device_width) == (1, 1, 4, 16, 65536,
                                                                                                1024, 8)
    assert o.capacity_bytes == 8 * 2**30  # 8 devices x 8 Gb
    changed = spec.with_timings(tCCD_L=7, tRC=60)
    assert changed.tCCD_L == 7 and changed.tRC == 60 and spec.tCCD_L == 6 and changed != spec


@pytest.mark.parametrize("kw,match", [
    (dict(tRC=50), "tRC must be >= tRAS \\+ tRP"),
    (dict(tRCD=0), "tRCD must be >= 1"),
    (dict(CL=-3), "CL must be >= 1"),
    (dict(tCCD_L=3), "tCCD_L must be >= tCCD_S"),
    (dict(tCCD_S=2, tCCD_L=2), "tCCD_S must be >= BL/2"),
    (dict(tRRD_S=8), "tRRD_L must be >= tRRD_S"),
    (dict(tRFC=10000), "tREFI must be > tRFC"),
    (dict(tXYZ=3), "unknown timing 'tXYZ'"),
])
def test_inconsistent_or_unknown_overrides_are_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        DDR4Spec.preset("DDR4_2400R_8Gb_x8").with_timings(**kw)


def test_bad_types_and_names():
    spec = DDR4Spec.preset("DDR4_2400R_8Gb_x8")
    with pytest.raises(ValueError, match="unknown DDR4 preset 'DDR5_X'.*DDR4_2400R_8Gb_x8"):
        DDR4Spec.preset("DDR5_X")
    with pytest.raises(TypeError, match="tCCD_L must be an int"):
        spec.with_timings(tCCD_L=6.5)
    with pytest.raises(ValueError, match="scheduler"):
        MemorySystem(spec, scheduler="lifo")
    with pytest.raises(ValueError, match="page_policy"):
        MemorySystem(spec, page_policy="half")
    with pytest.raises(ValueError, match="power of two"):
        MemorySystem(spec, channels=3)
    with pytest.raises(ValueError, match="unknown field 'xx'"):
        MemorySystem(spec, mapping="ro:xx:co")
    with pytest.raises(ValueError, match="lacks field 'bg'"):
        MemorySystem(spec, mapping="ro:ba:co")
    with pytest.raises(ValueError, match="appears twice"):
        MemorySystem(spec, mapping="ro:bg:ba:co:bg")
    with pytest.raises(ValueError, match="write_low < write_high"):
        MemorySystem(spec, write_high=4, write_low=4)


def test_bad_requests_name_the_problem(tmp_path):
    system = MemorySystem(DDR4Spec.preset("DDR4_2400R_8Gb_x8"))
    cap = system.capacity_bytes
    with pytest.raises(ValueError, match=f"request 1 is beyond the capacity of {hex(cap)}"):
        simulate(system, reads_at_zero([0, cap]))
    with pytest.raises(ValueError, match="non-decreasing: request 1"):
        simulate(system, (np.array([5, 4]), np.zeros(2, bool), np.zeros(2, np.uint64)))
    with pytest.raises(ValueError, match="one length"):
        simulate(system, (np.array([0, 1]), np.zeros(3, bool), np.zeros(2, np.uint64)))
    with pytest.raises(ValueError, match="non-negative"):
        simulate(system, (np.array([0]), np.zeros(1, bool), np.array([-64])))
    with pytest.raises(TypeError, match="integers"):
        simulate(system, (np.array([0]), np.zeros(1, bool), np.array([1.5])))
    with pytest.raises(FileNotFoundError):
        simulate(system, str(tmp_path / "missing.trace"))
    for body, line, what in [("0 R 0x40\n5 X 0x80\n", 2, "R or W"), ("# c\n\n0 R 0x40\n7 W zz\n", 4, "hex address"),
                             ("abc R 0x0\n", 1, "arrival cycle"), ("0 R 0x40 9\n", 1, "trailing"),
                             ("9 R 0x40\n3 R 0x80\n", 2, "non-decreasing")]:
        path = tmp_path / "bad.trace"
        path.write_text(body)
        with pytest.raises(ValueError, match=f"bad.trace:{line}: .*{what}"):
            simulate(system, path)


def test_trace_file_and_arrays_give_the_same_run(tmp_path):
    rng = np.random.default_rng(7)
    n = 500
    arrival = np.sort(rng.integers(0, 4000, n))
    is_write = rng.random(n) < 0.4
    address = rng.integers(0, 2**24, n).astype(np.uint64) * 64
    path = tmp_path / "t.trace"
    path.write_text("".join(f"{a} {'W' if w else 'R'} {hex(x)}\n" for a, w, x in zip(arrival, is_write, address)))
    parsed = read_trace(path)
    assert (parsed[0] == arrival).all() and (parsed[1] == is_write).all() and (parsed[2] == address).all()
    system = MemorySystem(DDR4Spec.preset("DDR4_2400R_8Gb_x8"))
    a = run_checked(system, path)
    b = run_checked(system, {"arrival": arrival, "is_write": is_write, "address": address})
    assert a.cycles == b.cycles and (a.command_log == b.command_log).all()


@pytest.mark.parametrize("channels", [1, 2])
def test_sequential_reads_reach_90_percent_of_peak_with_the_interleaved_mapping(channels):
    spec = DDR4Spec.preset("DDR4_2400R_8Gb_x8")
    n = 20000 * channels
    good = run_checked(MemorySystem(spec, channels=channels), reads_at_zero(np.arange(n) * 64))
    assert good.bandwidth_fraction >= 0.90
    assert good.peak_bandwidth_GBps == pytest.approx(channels * 64 / (4 * 0.833))
    # the same stream with bank groups above the columns stays in one bank group for 128 bursts and
    # paces at tCCD_L there (4/6 of peak), overlapping the next bank group only at the seams
    slow = run_checked(MemorySystem(spec, channels=channels, mapping="ch:ro:ra:ba:bg:co"),
                       reads_at_zero(np.arange(n) * 64))
    assert slow.bandwidth_fraction < 0.8 < good.bandwidth_fraction


def test_write_drain_waits_for_the_high_watermark():
    spec = DDR4Spec.preset("DDR4_2400R_8Gb_x8")
    n_w, n_r = 12, 60
    arrival = np.zeros(n_w + n_r, np.int64)
    is_write = np.r_[np.ones(n_w, bool), np.zeros(n_r, bool)]
    address = (np.arange(n_w + n_r) * 64 * 97).astype(np.uint64)
    lazy = run_checked(MemorySystem(spec, write_queue=16, write_high=14, write_low=2), (arrival, is_write, address))
    log = lazy.command_log
    assert cycles_of(log, "WR").min() > cycles_of(log, "RD").max()  # below the watermark: reads first
    eager = run_checked(MemorySystem(spec, write_queue=16, write_high=8, write_low=2), (arrival, is_write, address))
    log = eager.command_log
    assert cycles_of(log, "WR").min() < cycles_of(log, "RD").max()  # above it: writes drain at once


def test_frfcfs_serves_row_hits_first_and_fcfs_does_not():
    spec = DDR4Spec.preset("DDR4_2400R_8Gb_x8")
    # alternate two rows of one bank: FR-FCFS groups the hits, FCFS ping-pongs
    row_stride = 1 << 23  # row bits above 'ba:co:bg' (6 + 7 + 2 + 2 + 2 ... ) -> check by decoding
    system = MemorySystem(spec, scheduler="frfcfs")
    rows = system.decode([0, row_stride])[:, 4]
    assert rows[0] != rows[1]
    address = np.array([(i % 2) * row_stride + (i // 2) * 64 * 4 for i in range(32)], np.uint64)
    fr = run_checked(system, reads_at_zero(address))
    fc = run_checked(MemorySystem(spec, scheduler="fcfs"), reads_at_zero(address))
    assert fr.row_hits > fc.row_hits and fr.cycles < fc.cycles
    assert fc.row_conflicts >= 30 and fr.row_conflicts <= 2


def test_cli_simulate_prints_json(tmp_path, capsys):
    path = tmp_path / "t.trace"
    path.write_text("".join(f"{i * 3} {'W' if i % 3 == 0 else 'R'} {hex(i * 64)}\n" for i in range(300)))
    assert cli.main(["dram", "simulate", "--preset", "DDR4_3200_8Gb_x8", "--trace", str(path), "--json",
                     "--check", "--timing", "tCCD_L=9"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["reads"] == 200 and d["writes"] == 100 and d["violations"] == []
    assert cli.main(["dram", "simulate", "--trace", str(path)]) == 0
    assert "bandwidth" in capsys.readouterr().out
    assert cli.main(["dram", "simulate", "--preset", "nope", "--trace", str(path)]) == 2
    assert "unknown DDR4 preset" in capsys.readouterr().err


def test_empty_request_list_and_result_dict():
    system = MemorySystem(DDR4Spec.preset("DDR4_2400R_8Gb_x4"), ranks=2)
    r = simulate(system, (np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0, np.uint64)), command_log=True)
    assert r.cycles == 0 and r.reads == 0 and len(r.command_log) == 0 and r.bandwidth_GBps == 0
    assert r.bankgroup_utilisation.shape == (1, 2, 4)
    d = run_checked(system, reads_at_zero([0, 64, 128])).to_dict()
    assert json.loads(json.dumps(d))["reads"] == 3 and "read_latencies" not in d
