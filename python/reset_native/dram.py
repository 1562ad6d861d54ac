"""DDR4 cycle-level memory model with bank groups (reset_native.dram).

    spec = DDR4Spec.preset("DDR4_2400R_8Gb_x8").with_timings(tCCD_L=7)
    print(spec.table())
    system = MemorySystem(spec, channels=1, ranks=1, scheduler="frfcfs", page_policy="open")
    result = simulate(system, "trace.txt", command_log=True)     # or (arrival, is_write, address) arrays
    assert check_timing(result.command_log, spec) == []

The timing engine, controller and frontends are C++ (reset_native/dram/*.hpp); check_timing is an
independent Python replay. See docs/dram.md.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core
from ._dram_check import COMMANDS, Violation, check_log, violations_text

__all__ = ["DDR4Spec", "Organisation", "MemorySystem", "Result", "Violation", "simulate", "check_timing",
           "read_trace", "COMMANDS", "COMMAND_LOG_DTYPE", "MAPPINGS", "DEFAULT_MAPPING", "register_cli"]

_dram = _core.dram

#: Named address mappings (fields from most to least significant bit; the 6 lowest bits are the
#: byte offset inside a 64-byte burst).
MAPPINGS = {
    "bg_interleaved": "ro:ra:ba:co:bg:ch",      # consecutive bursts: channel, then bank group
    "row_rank_bank_bankgroup_column": "ch:ro:ra:ba:bg:co",
    "row_rank_bankgroup_bank_column": "ch:ro:ra:bg:ba:co",
}
DEFAULT_MAPPING = "bg_interleaved"

COMMAND_LOG_DTYPE = np.dtype([("cycle", np.int64), ("command", np.uint8), ("channel", np.uint8),
                              ("rank", np.uint8), ("bankgroup", np.uint8), ("bank", np.uint8),
                              ("row", np.int32), ("column", np.int32)])


class _Table(str):
    """A str that shows itself as a table at the prompt."""

    def __repr__(self) -> str:
        return str(self)


@dataclass(frozen=True)
class Organisation:
    channels: int
    ranks: int
    bankgroups: int
    banks_per_group: int
    rows: int
    columns: int
    device_width: int
    bus_width: int = 64

    @property
    def banks(self) -> int:
        """Banks per rank."""
        return self.bankgroups * self.banks_per_group

    @property
    def devices_per_rank(self) -> int:
        return self.bus_width // self.device_width

    @property
    def capacity_bytes(self) -> int:
        return (self.channels * self.ranks * self.banks * self.rows * self.columns * self.bus_width) // 8


class DDR4Spec:
    """Timings (clock cycles), organisation and IDD currents of one DDR4 part. Immutable."""

    def __init__(self, data: Dict[str, Any]):
        self._d = _dram.validate_spec(dict(data))

    @classmethod
    def preset(cls, name: str) -> "DDR4Spec":
        if not isinstance(name, str):
            raise TypeError(f"preset name must be a str, got {type(name).__name__}")
        return cls(_dram.preset(name))

    @staticmethod
    def preset_names() -> List[str]:
        return list(_dram.preset_names())

    def with_timings(self, **overrides: int) -> "DDR4Spec":
        """A copy with the given timings replaced (clock cycles), validated as a whole."""
        known = self.timings
        d = dict(self._d)
        timings = dict(known)
        for key, value in overrides.items():
            if key not in known:
                raise ValueError(f"unknown timing '{key}'; known timings: {', '.join(known)}")
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"timing {key} must be an int (clock cycles), got {type(value).__name__}")
            timings[key] = int(value)
        d["timings"] = timings
        return DDR4Spec(d)

    @property
    def name(self) -> str:
        return self._d["name"]

    @property
    def tCK_ns(self) -> float:
        return float(self._d["tCK_ns"])

    @property
    def timings(self) -> Dict[str, int]:
        return dict(self._d["timings"])

    @property
    def idd(self) -> Dict[str, float]:
        return dict(self._d["idd"])

    @property
    def organisation(self) -> Organisation:
        """Organisation of one channel with one rank (MemorySystem.organisation has the system's)."""
        return Organisation(channels=1, ranks=1, **self._d["organisation"])

    def __getattr__(self, item: str):
        d = self.__dict__.get("_d")
        if d is not None and item in d["timings"]:
            return d["timings"][item]
        raise AttributeError(item)

    def to_dict(self) -> Dict[str, Any]:
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in self._d.items()}

    def table(self) -> str:
        """Every value of the spec as a printable table."""
        lines = [f"{self.name}  (tCK = {self.tCK_ns} ns)", f"{'timing':8s} {'clk':>6s} {'ns':>9s}  meaning"]
        for key, value in self._d["timings"].items():
            ns = value * self.tCK_ns if key != "BL" else float("nan")
            lines.append(f"{key:8s} {value:6d} {ns:9.2f}  {self._d['meanings'][key]}")
        o = self.organisation
        lines.append("organisation: " + ", ".join(f"{k}={v}" for k, v in self._d["organisation"].items())
                     + f", devices_per_rank={o.devices_per_rank}")
        lines.append("currents (mA/device): " + ", ".join(f"{k}={v}" for k, v in self._d["idd"].items()))
        return _Table("\n".join(lines))

    def __repr__(self) -> str:
        return f"DDR4Spec({self.name!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, DDR4Spec) and self._d == other._d


def _positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


class MemorySystem:
    """Channels x ranks of one DDR4 part behind one controller per channel."""

    def __init__(self, spec: DDR4Spec, channels: int = 1, ranks: int = 1, mapping: str = DEFAULT_MAPPING,
                 scheduler: str = "frfcfs", page_policy: str = "open", *, read_queue: int = 32,
                 write_queue: int = 32, write_high: Optional[int] = None, write_low: Optional[int] = None,
                 refresh: bool = True):
        if not isinstance(spec, DDR4Spec):
            raise TypeError(f"spec must be a DDR4Spec, got {type(spec).__name__}")
        self.spec = spec
        self.channels = _positive_int("channels", channels)
        self.ranks = _positive_int("ranks", ranks)
        if not isinstance(mapping, str):
            raise TypeError(f"mapping must be a str, got {type(mapping).__name__}")
        self.mapping = MAPPINGS.get(mapping, mapping)
        if scheduler not in ("frfcfs", "fcfs"):
            raise ValueError(f"scheduler must be 'frfcfs' or 'fcfs', got {scheduler!r}")
        if page_policy not in ("open", "closed"):
            raise ValueError(f"page_policy must be 'open' or 'closed', got {page_policy!r}")
        self.scheduler, self.page_policy = scheduler, page_policy
        self.read_queue = _positive_int("read_queue", read_queue)
        self.write_queue = _positive_int("write_queue", write_queue)
        self.write_high = _positive_int("write_high", write_high if write_high is not None
                                        else max(1, (3 * self.write_queue) // 4))
        self.write_low = _positive_int("write_low", write_low if write_low is not None else self.write_queue // 4, 0)
        self.refresh = bool(refresh)
        # Validates channels/ranks powers of two and the mapping string (ValueError otherwise).
        self.capacity_bytes = int(_dram.capacity(spec._d, self.channels, self.ranks, self.mapping))
        if not 1 <= self.write_high <= self.write_queue or not 0 <= self.write_low < self.write_high:
            raise ValueError(f"need 0 <= write_low < write_high <= write_queue, got write_low={self.write_low}, "
                             f"write_high={self.write_high}, write_queue={self.write_queue}")

    @property
    def organisation(self) -> Organisation:
        o = self.spec._d["organisation"]
        return Organisation(channels=self.channels, ranks=self.ranks, **o)

    @property
    def peak_bandwidth_GBps(self) -> float:
        t = self.spec.timings
        return self.channels * 64 / (t["BL"] // 2 * self.spec.tCK_ns)

    def decode(self, addresses) -> np.ndarray:
        """(n, 6) int64 array of channel, rank, bankgroup, bank, row, column (burst index in the row)."""
        return _dram.map_addresses(self.spec._d, self.channels, self.ranks, self.mapping,
                                   _addresses(addresses, "addresses"))

    def __repr__(self) -> str:
        return (f"MemorySystem({self.spec.name}, channels={self.channels}, ranks={self.ranks}, "
                f"mapping={self.mapping!r}, scheduler={self.scheduler!r}, page_policy={self.page_policy!r})")


@dataclass
class Result:
    cycles: int
    time_ns: float
    reads: int
    writes: int
    commands: Dict[str, int]
    row_hits: int
    row_misses: int
    row_conflicts: int
    bandwidth_GBps: float
    peak_bandwidth_GBps: float
    bandwidth_fraction: float
    read_latency_avg: float
    read_latency_p50: float
    read_latency_p95: float
    read_latency_p99: float
    read_latency_max: int
    bankgroup_utilisation: np.ndarray      # [channel, rank, bankgroup]: column cmds * tCCD_L / cycles
    command_bus_utilisation: float
    data_bus_utilisation: float
    read_latencies: np.ndarray = field(repr=False)   # per request (cycles), -1 for writes
    command_log: Optional[np.ndarray] = field(default=None, repr=False)

    def to_dict(self) -> Dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("read_latencies", "command_log")}
        d["commands"] = dict(self.commands)
        d["bankgroup_utilisation"] = self.bankgroup_utilisation.tolist()
        return d

    def summary(self) -> str:
        c = ", ".join(f"{k}={v}" for k, v in self.commands.items() if v)
        return "\n".join([
            f"cycles          {self.cycles} ({self.time_ns / 1000:.3f} us)",
            f"requests        {self.reads} reads, {self.writes} writes",
            f"commands        {c}",
            f"rows            {self.row_hits} hits, {self.row_misses} misses, {self.row_conflicts} conflicts",
            f"bandwidth       {self.bandwidth_GBps:.2f} GB/s = {100 * self.bandwidth_fraction:.1f}% of "
            f"{self.peak_bandwidth_GBps:.2f}",
            f"read latency    avg {self.read_latency_avg:.1f}, p50 {self.read_latency_p50:.0f}, "
            f"p95 {self.read_latency_p95:.0f}, p99 {self.read_latency_p99:.0f}, max {self.read_latency_max} cycles",
            f"bus utilisation command {100 * self.command_bus_utilisation:.1f}%, "
            f"data {100 * self.data_bus_utilisation:.1f}%",
        ])


def _addresses(values, name: str) -> np.ndarray:
    a = np.asarray(values)
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {a.shape}")
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers, got dtype {a.dtype}")
    if a.dtype.kind == "i" and a.size and a.min() < 0:
        raise ValueError(f"{name} must be non-negative, got {int(a.min())} at index {int(a.argmin())}")
    return a.astype(np.uint64, copy=False)


def read_trace(path: Union[str, os.PathLike]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parses a trace file into (arrival int64, is_write bool, address uint64) arrays."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"trace file not found: {path}")
    arrival, is_write, address = _dram.read_trace(path)
    return arrival, is_write.astype(bool), address


def _requests(requests) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    if isinstance(requests, (str, os.PathLike)):
        return read_trace(requests)
    if isinstance(requests, dict):
        try:
            requests = (requests["arrival"], requests["is_write"], requests["address"])
        except KeyError as exc:
            raise ValueError(f"requests dict needs keys arrival, is_write, address; missing {exc}") from None
    if not isinstance(requests, (tuple, list)) or len(requests) != 3:
        raise TypeError("requests must be a trace file path or a tuple (arrival_cycles, is_write, addresses)")
    arrival = np.asarray(requests[0])
    is_write = np.asarray(requests[1])
    address = _addresses(requests[2], "addresses")
    if arrival.ndim != 1 or arrival.dtype.kind not in "iu":
        raise TypeError(f"arrival cycles must be a 1-D integer array, got dtype {arrival.dtype}, shape {arrival.shape}")
    if is_write.ndim != 1 or is_write.dtype.kind not in "biu":
        raise TypeError(f"is_write must be a 1-D bool array, got dtype {is_write.dtype}")
    if is_write.dtype.kind != "b" and is_write.size and not np.isin(is_write, (0, 1)).all():
        raise ValueError("is_write must hold only 0/1 (or bools)")
    if not (arrival.shape == is_write.shape == address.shape):
        raise ValueError(f"arrival, is_write and addresses must have one length, got {arrival.shape[0]}, "
                         f"{is_write.shape[0]}, {address.shape[0]}")
    return arrival.astype(np.int64, copy=False), is_write.astype(np.uint8), address


def simulate(system: MemorySystem, requests, *, command_log: bool = False) -> Result:
    """Runs the requests through the memory system; see Result for what comes back."""
    if not isinstance(system, MemorySystem):
        raise TypeError(f"system must be a MemorySystem, got {type(system).__name__}")
    arrival, is_write, address = _requests(requests)
    raw = _dram.simulate(system.spec._d, system.channels, system.ranks, system.mapping, system.scheduler,
                         system.page_policy, system.read_queue, system.write_queue, system.write_high,
                         system.write_low, system.refresh, arrival, is_write.astype(np.uint8), address,
                         bool(command_log))
    return _result(system, raw)


_PERCENTILES = (50, 95, 99)


def _latency_stats(lat: np.ndarray, reads: int) -> Tuple[float, np.ndarray, int]:
    """Mean, p50/p95/p99 and max of the read latencies (lat < 0: writes), equal to what
    ``rl.mean()``, ``np.percentile(rl, [50, 95, 99])`` and ``rl.max()`` give for ``rl = lat[lat >= 0]``,
    without sorting or copying: the C++ side selects the few order statistics the percentiles need,
    and the interpolation below repeats numpy's 'linear' method operation by operation."""
    if reads == 0:
        return 0.0, np.zeros(3), 0
    q = np.true_divide(np.asanyarray(_PERCENTILES), 100)
    virtual = (reads - 1) * q
    previous = np.floor(virtual)
    following = previous + 1
    above = virtual >= reads - 1
    previous[above] = -1  # numpy's marker for "the largest"
    following[above] = -1
    previous = previous.astype(np.intp)
    following = following.astype(np.intp)
    ranks = [int(i) % reads for i in np.concatenate((previous, following))]
    count, total, lat_max, values = _dram.latency_summary(lat, ranks)
    if count != reads:
        raise RuntimeError(f"internal error: {count} read latencies for {reads} reads")
    a = np.asarray(values[:3], dtype=np.int64)
    b = np.asarray(values[3:], dtype=np.int64)
    gamma = np.asanyarray(virtual - previous, dtype=virtual.dtype)
    diff = b - a
    pct = np.add(a, diff * gamma)
    np.subtract(b, diff * (1 - gamma), out=pct, where=gamma >= 0.5, casting="unsafe", dtype=pct.dtype)
    # numpy's mean of int64 sums in float64 pairwise: exact (hence equal to total / count) below 2**53.
    avg = total / count if total is not None and total < 2**53 else float(lat[lat >= 0].mean())
    return avg, pct, int(lat_max)


def _result(system: MemorySystem, raw: Dict[str, Any]) -> Result:
    spec = system.spec
    t = spec.timings
    cycles = int(raw["cycles"])
    chans = raw["channels"]
    counts = np.sum([c["commands"] for c in chans], axis=0) if chans else np.zeros(len(COMMANDS))
    commands = {name: int(counts[i]) for i, name in enumerate(COMMANDS[:8])}
    reads = sum(int(c["reads"]) for c in chans)
    writes = sum(int(c["writes"]) for c in chans)
    time_ns = cycles * spec.tCK_ns
    bw = (reads + writes) * 64 / time_ns if cycles else 0.0
    peak = system.peak_bandwidth_GBps
    lat = raw["read_latency"]
    avg, pct, lat_max = _latency_stats(lat, reads)
    o = spec.organisation
    util = np.array([c["column_per_bankgroup"] for c in chans], dtype=np.float64).reshape(
        system.channels, system.ranks, o.bankgroups)
    util = util * t["tCCD_L"] / cycles if cycles else util
    log = None
    if "log" in raw:
        src = raw["log"]
        log = np.zeros(len(src["cycle"]), dtype=COMMAND_LOG_DTYPE)
        for name in COMMAND_LOG_DTYPE.names:
            log[name] = src[name]
    total_cmds = int(counts.sum())
    data_cycles = sum(int(c["data_bus_cycles"]) for c in chans)
    return Result(
        cycles=cycles, time_ns=time_ns, reads=reads, writes=writes, commands=commands,
        row_hits=sum(int(c["row_hits"]) for c in chans), row_misses=sum(int(c["row_misses"]) for c in chans),
        row_conflicts=sum(int(c["row_conflicts"]) for c in chans), bandwidth_GBps=bw, peak_bandwidth_GBps=peak,
        bandwidth_fraction=bw / peak if peak else 0.0, read_latency_avg=avg,
        read_latency_p50=float(pct[0]), read_latency_p95=float(pct[1]), read_latency_p99=float(pct[2]),
        read_latency_max=lat_max, bankgroup_utilisation=util,
        command_bus_utilisation=total_cmds / (cycles * system.channels) if cycles else 0.0,
        data_bus_utilisation=data_cycles / (cycles * system.channels) if cycles else 0.0,
        read_latencies=lat, command_log=log)


def check_timing(command_log: np.ndarray, spec: DDR4Spec, *, refresh: bool = True,
                 end_cycle: Optional[int] = None, extra_rules: Sequence[tuple] = (),
                 open_row_commands: Sequence[str] = ()) -> List[Violation]:
    """Every rule the command log breaks (empty list: the log is legal), found by an independent
    pairwise replay of SPEC-gradpim section 2. refresh=False skips the REF-interval check (for runs
    made with refresh off); end_cycle is the end of the run for that check (default: last command).

    Extension for PIM models: extra_rules are (first, second, relation, min_gap, name) tuples with
    command names from COMMANDS (e.g. "PIM0") and relation one of "bank", "bankgroup" (same group,
    other bank), "rank" (same rank, other group), "other_rank"; open_row_commands names commands that
    must target the open row (checked like RD/WR, but they put nothing on the data bus)."""
    if not isinstance(spec, DDR4Spec):
        raise TypeError(f"spec must be a DDR4Spec, got {type(spec).__name__}")
    log = np.asarray(command_log)
    if log.dtype.names is None or not set(COMMAND_LOG_DTYPE.names) <= set(log.dtype.names):
        raise TypeError(f"command_log must be a structured array with fields {COMMAND_LOG_DTYPE.names}")
    return check_log(log, spec.timings, refresh=refresh, end_cycle=end_cycle, extra_rules=extra_rules,
                     open_row_commands=open_row_commands)


# ------------------------------------------------------------------ CLI
def _cmd_simulate(args) -> int:
    import json

    spec = DDR4Spec.preset(args.preset)
    if args.timing:
        overrides = {}
        for item in args.timing:
            key, _, value = item.partition("=")
            try:
                overrides[key] = int(value)
            except ValueError:
                raise ValueError(f"--timing expects NAME=CLOCKS, got {item!r}") from None
        spec = spec.with_timings(**overrides)
    system = MemorySystem(spec, channels=args.channels, ranks=args.ranks, mapping=args.mapping,
                          scheduler=args.scheduler, page_policy=args.page_policy)
    result = simulate(system, args.trace, command_log=args.check)
    violations = check_timing(result.command_log, spec) if args.check else []
    if args.json:
        d = result.to_dict()
        d["system"] = repr(system)
        if args.check:
            d["violations"] = [str(v) for v in violations]
        print(json.dumps(d, indent=2))
    else:
        print(repr(system))
        print(result.summary())
        if args.check:
            print(violations_text(violations))
    return 1 if violations else 0


def _cmd_table(args) -> int:
    print(DDR4Spec.preset(args.preset).table())
    return 0


def register_cli(subparsers) -> None:
    p = subparsers.add_parser("dram", help="DDR4 cycle-level memory model")
    sub = p.add_subparsers(dest="dram_command", metavar="dram_command", required=True)
    s = sub.add_parser("simulate", help="run a trace file through a DDR4 memory system")
    s.add_argument("--preset", default="DDR4_2400R_8Gb_x8", help="DDR4 preset (see `dram table`)")
    s.add_argument("--trace", required=True, help="lines '<arrival_cycle> <R|W> <hex address>'")
    s.add_argument("--channels", type=int, default=1)
    s.add_argument("--ranks", type=int, default=1)
    s.add_argument("--mapping", default=DEFAULT_MAPPING, help="name or string like ro:ra:bg:ba:co")
    s.add_argument("--scheduler", default="frfcfs", choices=["frfcfs", "fcfs"])
    s.add_argument("--page-policy", default="open", choices=["open", "closed"])
    s.add_argument("--timing", action="append", metavar="NAME=CLOCKS", help="override a timing (repeatable)")
    s.add_argument("--check", action="store_true", help="also run the independent timing checker")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=_cmd_simulate)
    t = sub.add_parser("table", help="print every value of a preset")
    t.add_argument("--preset", default="DDR4_2400R_8Gb_x8")
    t.set_defaults(func=_cmd_table)
