"""The C++ controller (idle-clock skipping, cached candidates, branch-free choice) makes exactly the
decisions of a naive clock-by-clock reference (tests/_dram_reference.py): same command log, same
per-request latencies, same statistics, on traces that exercise every policy knob. Also: the
read-latency summary equals numpy's mean / percentile / max."""
import numpy as np
import pytest

from reset_native.dram import COMMAND_LOG_DTYPE, DDR4Spec, MemorySystem, simulate
from reset_native.dram import _latency_stats

from _dram_reference import simulate_reference
from test_dram_helpers import run_checked


def trace(system, kind, n, seed, write_fraction=0.3, gap=0.0):
    rng = np.random.default_rng(seed)
    bursts = system.capacity_bytes // 64
    if kind == "random":
        b = rng.integers(0, bursts, n)
    elif kind == "sequential":
        b = np.arange(n) % bursts
    elif kind == "groups":  # default mapping: 2 rows of 2 banks in bank groups 0 and 1, any column
        b = (rng.integers(0, 2, n) << 11 | rng.integers(0, 2, n) << 9 | rng.integers(0, 128, n) << 2
             | rng.integers(0, 2, n)) % bursts
    else:  # "hot": a few rows of a few banks: row hits, misses and conflicts all common
        b = (rng.integers(0, 4, n) * (bursts // 4) + rng.integers(0, 2048, n)) % bursts
    arrival = np.zeros(n, np.int64) if gap == 0 else np.cumsum(rng.exponential(gap, n)).astype(np.int64)
    return arrival, rng.random(n) < write_fraction, b.astype(np.uint64) * np.uint64(64)


def assert_same_as_reference(system, requests):
    r = run_checked(system, requests)  # the timing referee too
    cycles, entries, latency, stats = simulate_reference(system, requests)
    expected_log = np.array(entries, dtype=COMMAND_LOG_DTYPE)
    assert r.command_log.size == expected_log.size
    diff = np.flatnonzero(r.command_log != expected_log)
    assert diff.size == 0, f"first difference at log entry {diff[0]}: {r.command_log[diff[0]]} vs {expected_log[diff[0]]}"
    np.testing.assert_array_equal(r.read_latencies, latency)
    assert r.cycles == cycles
    assert r.commands == stats["commands"]
    assert (r.reads, r.writes, r.row_hits, r.row_misses, r.row_conflicts) == (
        stats["reads"], stats["writes"], stats["row_hits"], stats["row_misses"], stats["row_conflicts"])


CASES = [  # preset, kind, system options, trace options
    ("DDR4_2400R_8Gb_x8", "random", {}, {}),
    ("DDR4_2400R_8Gb_x8", "sequential", {"refresh": False}, {}),
    ("DDR4_2400R_8Gb_x8", "hot", {}, {"write_fraction": 0.5}),
    ("DDR4_2400R_8Gb_x8", "hot", {"scheduler": "fcfs"}, {}),
    ("DDR4_2400R_8Gb_x8", "random", {"page_policy": "closed"}, {"gap": 6.0}),
    ("DDR4_2400R_8Gb_x8", "hot", {"ranks": 2, "mapping": "ro:ra:ba:bg:co"}, {"gap": 3.0}),
    ("DDR4_2400R_8Gb_x8", "random", {"ranks": 2, "channels": 2, "scheduler": "fcfs", "page_policy": "closed"}, {}),
    ("DDR4_2400R_8Gb_x8", "hot", {"read_queue": 6, "write_queue": 10, "write_high": 7, "write_low": 2},
     {"write_fraction": 0.6, "gap": 4.0}),
    ("DDR4_3200_8Gb_x8", "random", {}, {"gap": 10.0}),
    ("DDR4_2400R_8Gb_x16", "hot", {"ranks": 4, "mapping": "ro:ra:ba:bg:co"}, {}),
    ("DDR4_2400R_8Gb_x4", "sequential", {"page_policy": "closed"}, {"write_fraction": 0.5}),
]


@pytest.mark.parametrize("preset,kind,options,trace_options", CASES,
                         ids=[f"{c[0][5:9]}-{c[1]}-{i}" for i, c in enumerate(CASES)])
def test_controller_matches_the_clock_by_clock_reference(preset, kind, options, trace_options):
    system = MemorySystem(DDR4Spec.preset(preset), **options)
    assert_same_as_reference(system, trace(system, kind, 400, seed=len(kind) + len(options), **trace_options))


@pytest.mark.parametrize("ranks", [1, 2])
def test_refresh_heavy_traffic_matches_the_reference(ranks):
    # tREFI of 700 clocks: dozens of refreshes interrupt queued traffic, some with banks open (PREA first).
    spec = DDR4Spec.preset("DDR4_2400R_8Gb_x8").with_timings(tREFI=700, tRFC=200)
    system = MemorySystem(spec, ranks=ranks, mapping="ro:ra:ba:bg:co")
    r = simulate(system, trace(system, "hot", 500, seed=ranks, gap=12.0), command_log=True)
    assert r.commands["REF"] >= 8 and r.commands["PREA"] >= 2
    assert_same_as_reference(system, trace(system, "hot", 500, seed=ranks, gap=12.0))


# The device applies each command's rules as whole per-scope latency arrays; these traces make single
# rules bind: back-to-back column commands within and across two bank groups (tCCD_L / tCCD_S), reads
# and writes mixed in the same rows with frequent mode switches (tWTR_L / tWTR_S, RD_to_WR), row
# conflicts in few banks (tRAS, tRTP, tWR, tRP, tRC, tRRD, tFAW), and refresh landing on open rows.
STRESS = [  # preset, kind, system options, trace options, timing overrides
    ("DDR4_2400R_8Gb_x8", "groups", {"write_high": 6, "write_low": 2}, {"write_fraction": 0.5}, {}),
    ("DDR4_3200_8Gb_x8", "groups", {"read_queue": 8, "write_queue": 8, "write_high": 4, "write_low": 1},
     {"write_fraction": 0.4, "gap": 2.0}, {"tWTR_L": 12, "tCCD_L": 9}),
    ("DDR4_2400R_8Gb_x16", "hot", {"page_policy": "closed"}, {"write_fraction": 0.5}, {"tFAW": 40}),
    ("DDR4_2400R_8Gb_x8", "groups", {"ranks": 2, "mapping": "ro:ba:co:ra:bg"}, {"write_fraction": 0.3},
     {"tREFI": 600, "tRFC": 150}),
]


@pytest.mark.parametrize("preset,kind,options,trace_options,timings", STRESS,
                         ids=[f"{c[0][5:9]}-{c[1]}-{i}" for i, c in enumerate(STRESS)])
def test_rule_stressing_traffic_matches_the_reference(preset, kind, options, trace_options, timings):
    spec = DDR4Spec.preset(preset)
    if timings:
        spec = spec.with_timings(**timings)
    system = MemorySystem(spec, **options)
    requests = trace(system, kind, 400, seed=11, **trace_options)
    r = simulate(system, requests)
    assert r.reads > 100 and r.writes > 60
    if kind == "groups":  # row hits dominate: column pacing and turnarounds decide much of the timing
        assert r.row_hits > r.row_misses + r.row_conflicts
    assert_same_as_reference(system, requests)


def test_latency_summary_equals_numpy():
    rng = np.random.default_rng(7)
    for trial in range(400):
        n = int(rng.integers(1, 300)) if trial % 4 else int(rng.integers(1, 4))
        lat = rng.integers(0, int(rng.choice([2, 50, 10**6, 10**13])), n).astype(np.int64)
        lat[rng.random(n) < rng.random()] = -1  # writes
        reads = lat[lat >= 0]
        avg, pct, top = _latency_stats(lat, reads.size)
        if reads.size == 0:
            assert (avg, top) == (0.0, 0) and not pct.any()
            continue
        np.testing.assert_array_equal(pct, np.percentile(reads, [50, 95, 99]))
        assert avg == float(reads.mean()) and top == int(reads.max())
    # A sum beyond 2**53: the mean falls back to numpy's own (pairwise float) summation.
    big = np.full(1000, 2**52 + 12345, np.int64)
    big[::3] = -1
    avg, pct, top = _latency_stats(big, int((big >= 0).sum()))
    assert avg == float(big[big >= 0].mean()) and top == 2**52 + 12345


def test_latency_summary_of_many_latencies_equals_numpy():
    # Above 65536 entries the C++ side selects through a histogram of the values: check it on spread,
    # skewed (most values in one bucket), constant and 62-bit data, writes interleaved at random.
    rng = np.random.default_rng(8)
    n = 150_000
    for data in (rng.integers(0, 10**6, n), np.where(rng.random(n) < 0.01, rng.integers(0, 10**8, n), 64),
                 np.full(n, 7), rng.integers(0, 2**62, n)):
        lat = data.astype(np.int64)
        lat[rng.random(n) < 0.3] = -1
        reads = lat[lat >= 0]
        avg, pct, top = _latency_stats(lat, reads.size)
        np.testing.assert_array_equal(pct, np.percentile(reads, [50, 95, 99]))
        assert top == int(reads.max())
        assert avg == float(reads.mean())  # exact sum / count, or numpy's own mean past 2**53


def test_latency_summary_rejects_inconsistent_counts():
    lat = np.array([5, -1, 7], np.int64)  # two reads
    with pytest.raises(ValueError, match="not below the count of reads 2"):  # C++ refuses a rank past the end
        _latency_stats(lat, 3)
    with pytest.raises(RuntimeError, match="internal error: 2 read latencies for 1 reads"):
        _latency_stats(lat, 1)
