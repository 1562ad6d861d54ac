"""GradPIM: optimizer updates inside DDR4 bank groups (reset_native.pim).

    cfg = GradPIMConfig("DDR4_2400R_8Gb_x8", optimizer="momentum", lr=0.01)
    cmp = compare_update(cfg, 25_600_000)          # host baseline vs PIM, same memory model
    print(cmp.summary())                           # speedup, bytes, physical bound
    w, v, copy = apply_update(cfg, weights, grads, state=momentum_buffer)   # functional model
    it = training_iteration("resnet50", cfg, npu=NPUModel(peak_flops=8e12))

The timing engine is the DDR4 model of reset_native.dram extended with per-bank-group units (C++,
reset_native/pim/*.hpp); the command log of a PIM run passes reset_native.dram.check_timing with the
PIM rules (pim_check_rules). See docs/gradpim.md for every modelling decision.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core
from ._pim_networks import NETWORKS, Network, NPUModel, IterationResult, get_network
from ._pim_rules import OPEN_ROW_COMMANDS, PIM_COMMAND_NAMES, pim_check_rules
from ._dram_check import violations_text
from .dram import COMMAND_LOG_DTYPE, COMMANDS, DDR4Spec, check_timing
from .dram import _positive_int as _int  # an int >= minimum (TypeError / ValueError otherwise)

__all__ = ["GradPIMConfig", "UpdateResult", "Comparison", "simulate_update", "compare_update", "physical_bound",
           "apply_update", "layout", "locate", "check_pim_timing", "pim_check_rules", "training_iteration",
           "NPUModel", "Network", "NETWORKS", "IterationResult", "OPTIMIZERS", "DTYPES", "round_to", "register_cli"]

_pim = _core.pim

OPTIMIZERS = ("sgd", "momentum", "nesterov", "sgd_wd", "momentum_wd", "adam")
DTYPES = ("fp32", "fp16", "bf16")
LAYOUTS = ("banks", "rows")
_NP_DTYPES = {"fp32": np.float32, "fp16": np.float16}
_STATES = {"sgd": 0, "sgd_wd": 0, "momentum": 1, "nesterov": 1, "momentum_wd": 1, "adam": 2}


def _real(name: str, value) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(float(value)):
        raise ValueError(f"{name} must be finite, got {value}")
    return float(value)


def _choice(name: str, value, allowed: Sequence[str]) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; expected one of {', '.join(allowed)}")
    return value


@dataclass
class GradPIMConfig:
    """Memory system + GradPIM unit + optimizer. Timing knobs left None take the spec-derived default
    (docs/gradpim.md): write_to_read = BL/2 + tWTR_L, write_recovery = BL/2 + tWR, host_cross_group = tCCD_S."""
    spec: Union[DDR4Spec, str] = "DDR4_2400R_8Gb_x8"
    channels: int = 1
    ranks: int = 1
    registers_per_unit: int = 16
    optimizer: str = "momentum"
    weight_dtype: str = "fp32"
    grad_dtype: str = "fp16"
    state_dtype: str = "fp32"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    step: int = 1
    weight_copy: bool = True          # also produce the low-precision weight copy for the next forward pass
    copy_dtype: str = "fp16"
    layout: str = "banks"             # "banks": one bank per operand stream; "rows": one bank, a row per stream
    write_to_read: Optional[int] = None
    write_recovery: Optional[int] = None
    cross_group: int = 1              # unit command -> unit command in another bank group (1: command bus only)
    host_cross_group: Optional[int] = None
    sfu_passes: int = 2               # datapath passes of Adam's m / (sqrt(v) + eps) per register
    io_pJ_per_bit: float = 5.0
    alu_pJ_per_byte: float = 0.5
    host_tile: int = 512
    host_interleaved: bool = True     # False: the host reads the PIM layout (a chunk in one bank group)
    max_simulated_params: int = 1 << 20  # larger updates: two cycle-accurate slices, extrapolated linearly

    def __post_init__(self):
        if isinstance(self.spec, str):
            self.spec = DDR4Spec.preset(self.spec)
        if not isinstance(self.spec, DDR4Spec):
            raise TypeError(f"spec must be a DDR4Spec or a preset name, got {type(self.spec).__name__}")
        for name in ("channels", "ranks", "registers_per_unit", "step", "cross_group", "sfu_passes", "host_tile",
                     "max_simulated_params"):
            setattr(self, name, _int(name, getattr(self, name)))
        for name in ("channels", "ranks"):
            v = getattr(self, name)
            if v & (v - 1):
                raise ValueError(f"{name} must be a power of two, got {v}")
        self.optimizer = _choice("optimizer", self.optimizer, OPTIMIZERS)
        for name in ("weight_dtype", "grad_dtype", "state_dtype", "copy_dtype"):
            _choice(name, getattr(self, name), DTYPES)
        self.layout = _choice("layout", self.layout, LAYOUTS)
        for name in ("lr", "momentum", "weight_decay", "beta1", "beta2", "eps", "io_pJ_per_bit", "alu_pJ_per_byte"):
            setattr(self, name, _real(name, getattr(self, name)))
        for name in ("write_to_read", "write_recovery", "host_cross_group"):
            v = getattr(self, name)
            if v is not None:
                setattr(self, name, _int(name, v))
        for name in ("weight_copy", "host_interleaved"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"{name} must be a bool, got {type(getattr(self, name)).__name__}")
        _pim.layout(self._d(), 1)  # the C++ side validates the rest (registers for the optimizer, ...)

    def _d(self) -> Dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("spec", "max_simulated_params")}
        d["spec"] = self.spec._d
        for name in ("write_to_read", "write_recovery", "host_cross_group"):
            if d[name] is None:
                d[name] = -1
        d["weight_copy"] = bool(d["weight_copy"])
        d["host_interleaved"] = bool(d["host_interleaved"])
        return d

    def replace(self, **changes) -> "GradPIMConfig":
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d.update(changes)
        return GradPIMConfig(**d)

    @property
    def resolved_timing(self) -> Dict[str, int]:
        t = self.spec.timings
        return dict(write_to_read=self.write_to_read if self.write_to_read is not None else t["BL"] // 2 + t["tWTR_L"],
                    write_recovery=self.write_recovery if self.write_recovery is not None else t["BL"] // 2 + t["tWR"],
                    cross_group=self.cross_group,
                    host_cross_group=self.host_cross_group if self.host_cross_group is not None else t["tCCD_S"])


@dataclass
class UpdateResult:
    mode: str
    n_params: int
    cycles: float
    time_ns: float
    external_bytes: float            # over the DQ bus
    bytes_per_param: float
    internal_column_ops: float       # unit column accesses (PIM_LD / PIM_MAC / PIM_ST)
    commands: Dict[str, float]
    command_bus_utilisation: float
    data_bus_utilisation: float
    energy_nJ: float
    energy_breakdown_nJ: Dict[str, float]
    simulated_params: int            # simulated cycle by cycle (the rest extrapolated linearly)
    extrapolated: bool
    speedup: Optional[float] = None  # host time / this time, set by compare_update
    command_log: Optional[np.ndarray] = field(default=None, repr=False)

    def to_dict(self) -> Dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "command_log"}
        d["commands"] = dict(self.commands)
        d["energy_breakdown_nJ"] = dict(self.energy_breakdown_nJ)
        return d


@dataclass
class Comparison:
    host: UpdateResult
    pim: UpdateResult
    speedup: float                 # host time / PIM time
    traffic_reduction: float       # host external bytes / PIM external bytes (inf when PIM moves none)
    energy_ratio: float            # host energy / PIM energy
    bound: Dict[str, float]        # see physical_bound

    def summary(self) -> str:
        h, p, b = self.host, self.pim, self.bound
        return "\n".join([
            f"params          {h.n_params} ({'extrapolated from ' + str(h.simulated_params) if h.extrapolated else 'all simulated'})",
            f"host            {h.cycles:.0f} cycles, {h.time_ns / 1e3:.1f} us, {h.bytes_per_param:.1f} B/param over the bus, "
            f"{h.energy_nJ / 1e3:.1f} uJ",
            f"pim             {p.cycles:.0f} cycles, {p.time_ns / 1e3:.1f} us, {p.bytes_per_param:.1f} B/param over the bus, "
            f"{p.internal_column_ops:.0f} unit column ops, command bus {100 * p.command_bus_utilisation:.1f}%, "
            f"{p.energy_nJ / 1e3:.1f} uJ",
            f"speedup         {self.speedup:.3f}x (bound {b['speedup_bound']:.3f}x: fraction {self.speedup / b['speedup_bound']:.3f})",
            f"energy          {self.energy_ratio:.2f}x less with PIM",
        ])


def _layout_dict(config: GradPIMConfig, n_params: int = 1) -> Dict[str, Any]:
    return dict(_pim.layout(config._d(), int(n_params)))


def layout(config: GradPIMConfig, n_params: int = 1) -> Dict[str, Any]:
    """The data layout: column bytes per device, elements per step and chunk, where each stream lives
    (bank, first column, columns per step, dtype), rows needed per bank for n_params."""
    _check_config(config)
    return _layout_dict(config, _int("n_params", n_params))


def locate(config: GradPIMConfig, elements, stream: str = "weight") -> np.ndarray:
    """(n, 8) int64: channel, rank, bankgroup, bank, row, column, device, first byte in the device's
    share of the column access, for each element index of `stream` (weight, grad, state1, state2, copy)."""
    _check_config(config)
    e = np.asarray(elements)
    if e.dtype.kind not in "iu":
        raise TypeError(f"elements must be integers, got dtype {e.dtype}")
    return _pim.locate(config._d(), e.astype(np.int64).ravel(), stream)


def _check_config(config) -> None:
    if not isinstance(config, GradPIMConfig):
        raise TypeError(f"config must be a GradPIMConfig, got {type(config).__name__}")


def _energy(config: GradPIMConfig, raw: Dict[str, Any], cycles: float) -> Tuple[float, Dict[str, float]]:
    """IDD-based estimate (pJ = mA * V * ns) from command counts; see docs/gradpim.md."""
    s = config.spec
    t, i, o = s.timings, s.idd, s.organisation
    tck, vdd, dev = s.tCK_ns, i["VDD"], o.devices_per_rank
    burst_ns = t["BL"] // 2 * tck
    c = raw["commands"]
    n = {name: float(c[k]) for k, name in enumerate(COMMANDS)}
    act = (i["IDD0"] * t["tRC"] - (i["IDD3N"] * t["tRAS"] + i["IDD2N"] * (t["tRC"] - t["tRAS"]))) * tck * vdd * dev
    rd = (i["IDD4R"] - i["IDD3N"]) * burst_ns * vdd * dev
    wr = (i["IDD4W"] - i["IDD3N"]) * burst_ns * vdd * dev
    io = 64 * 8 * config.io_pJ_per_bit
    alu = 64 * config.alu_pJ_per_byte
    ref = (i["IDD5B"] - i["IDD3N"]) * t["tRFC"] * tck * vdd * dev
    parts = {
        "background": i["IDD3N"] * cycles * tck * vdd * dev * config.ranks * config.channels,
        "activate": act * n["ACT"],
        "read_write_core": rd * (n["RD"] + n["RDA"]) + wr * (n["WR"] + n["WRA"]),
        "io": io * (n["RD"] + n["RDA"] + n["WR"] + n["WRA"]),
        "pim_column": rd * (n["PIM0"] + n["PIM1"]) + wr * n["PIM2"],
        "pim_alu": alu * (n["PIM1"] + n["PIM3"]),
        "refresh": ref * n["REF"],
    }
    parts = {k: v / 1000.0 for k, v in parts.items()}  # nJ
    return sum(parts.values()), parts


def _run(config: GradPIMConfig, n: int, mode: str, log: bool) -> Dict[str, Any]:
    return dict(_pim.simulate(config._d(), int(n), mode, bool(log)))


def _slice(config: GradPIMConfig, n: int) -> int:
    """Whole rounds of chunks over every bank group, about max_simulated_params / 2 parameters."""
    lay = _layout_dict(config, n)
    rnd = lay["chunk_elements"] * lay["units"]
    return max(rnd, -(-(config.max_simulated_params // 2) // rnd) * rnd)


def _scaled(config: GradPIMConfig, n: int, mode: str) -> Tuple[Dict[str, Any], int]:
    """Two cycle-accurate slices of n1 and 2*n1 parameters (whole rounds of chunks over every bank
    group, many refresh intervals), extrapolated linearly to n: steady state, start-up counted once."""
    n1 = _slice(config, n)
    a, b = _run(config, n1, mode, False), _run(config, 2 * n1, mode, False)
    k = (n - 2 * n1) / n1

    def ext(x, y):
        return y + (y - x) * k
    out = {"cycles": ext(a["cycles"], b["cycles"]), "external_bytes": ext(a["external_bytes"], b["external_bytes"]),
           "internal_column_ops": ext(a["internal_column_ops"], b["internal_column_ops"]),
           "data_bus_cycles": ext(a["data_bus_cycles"], b["data_bus_cycles"]),
           "commands": [ext(x, y) for x, y in zip(a["commands"], b["commands"])]}
    return out, 3 * n1


def simulate_update(config: GradPIMConfig, n_params: int, mode: str = "pim", *,
                    command_log: bool = False) -> UpdateResult:
    """One optimizer update of n_params parameters on the PIM units (mode="pim") or streamed by the host
    over the bank-group-interleaved bus (mode="host"). Updates larger than config.max_simulated_params
    are extrapolated from two cycle-accurate slices (command_log then needs a smaller n_params)."""
    _check_config(config)
    n = _int("n_params", n_params)
    mode = _choice("mode", mode, ("pim", "host"))
    _pim.check_fits(config._d(), n)
    if n <= config.max_simulated_params or 2 * _slice(config, n) >= n:
        raw, simulated, extrapolated = _run(config, n, mode, command_log), n, False
    else:
        if command_log:
            raise ValueError(f"command_log needs n_params <= max_simulated_params ({config.max_simulated_params}), "
                             f"got {n}")
        raw, simulated = _scaled(config, n, mode)
        extrapolated = True
    return _result(config, n, mode, raw, simulated, extrapolated)


def _result(config, n, mode, raw, simulated, extrapolated) -> UpdateResult:
    cycles = float(raw["cycles"])
    time_ns = cycles * config.spec.tCK_ns
    counts = raw["commands"]
    commands = {PIM_COMMAND_NAMES.get(name, name): float(counts[k]) for k, name in enumerate(COMMANDS)
                if k < 8 or name in PIM_COMMAND_NAMES}
    energy, parts = _energy(config, raw, cycles)
    log = None
    if "log" in raw:
        src = raw["log"]
        log = np.zeros(len(src["cycle"]), dtype=COMMAND_LOG_DTYPE)
        for name in COMMAND_LOG_DTYPE.names:
            log[name] = src[name]
    busy = cycles * config.channels
    return UpdateResult(
        mode=mode, n_params=n, cycles=cycles, time_ns=time_ns, external_bytes=float(raw["external_bytes"]),
        bytes_per_param=float(raw["external_bytes"]) / n, internal_column_ops=float(raw["internal_column_ops"]),
        commands=commands, command_bus_utilisation=float(sum(counts)) / busy if busy else 0.0,
        data_bus_utilisation=float(raw["data_bus_cycles"]) / busy if busy else 0.0, energy_nJ=energy,
        energy_breakdown_nJ=parts, simulated_params=int(simulated), extrapolated=extrapolated, command_log=log)


def physical_bound(config: GradPIMConfig, host: UpdateResult, pim: UpdateResult) -> Dict[str, float]:
    """SPEC section 3: PIM cannot beat N_bankgroups * ranks * tCCD_S / tCCD_L times the host's ideal
    bus-bound time (its bytes at the peak data rate), nor one command per clock per channel."""
    t = config.spec.timings
    o = config.spec.organisation
    host_ideal = host.external_bytes / 64 * (t["BL"] // 2) / config.channels
    factor = o.bankgroups * config.ranks * t["tCCD_S"] / t["tCCD_L"]
    command_floor = sum(pim.commands.values()) / config.channels
    floor = max(host_ideal / factor, command_floor)
    return {"host_ideal_cycles": host_ideal, "bankgroup_factor": factor,
            "pim_floor_bankgroups_cycles": host_ideal / factor, "pim_floor_command_bus_cycles": command_floor,
            "pim_floor_cycles": floor, "speedup_bound": host.cycles / floor,
            "ideal_speedup": factor, "host_fraction_of_peak": host_ideal / host.cycles if host.cycles else 0.0}


def compare_update(config: GradPIMConfig, n_params: int) -> Comparison:
    """Host baseline and PIM on the same memory system; speedup = host time / PIM time."""
    host = simulate_update(config, n_params, "host")
    pim = simulate_update(config, n_params, "pim")
    pim.speedup = host.cycles / pim.cycles
    host.speedup = 1.0
    return Comparison(host=host, pim=pim, speedup=pim.speedup,
                      traffic_reduction=host.external_bytes / pim.external_bytes if pim.external_bytes else math.inf,
                      energy_ratio=host.energy_nJ / pim.energy_nJ, bound=physical_bound(config, host, pim))


def check_pim_timing(config: GradPIMConfig, command_log: np.ndarray, **kwargs) -> list:
    """reset_native.dram.check_timing extended with the unit's rules (independently re-typed)."""
    _check_config(config)
    rules = pim_check_rules(config.spec.timings, **config.resolved_timing)
    return check_timing(command_log, config.spec, extra_rules=rules, open_row_commands=OPEN_ROW_COMMANDS, **kwargs)


# ------------------------------------------------------------------ functional model
def _as_dtype_values(name: str, a, dtype: str, n: Optional[int]) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype.kind != "f":
        raise TypeError(f"{name} must be a floating-point array, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} must have {n} elements like weights, got {arr.shape[0]}")
    return round_to(arr.astype(np.float32), dtype)


def round_to(x: np.ndarray, dtype: str) -> np.ndarray:
    """float32 array rounded (nearest-even) to fp32 / fp16 / bf16 values, kept as float32."""
    x = np.asarray(x, dtype=np.float32)
    if dtype == "fp32":
        return x.copy()
    if dtype == "fp16":
        with np.errstate(over="ignore"):
            return x.astype(np.float16).astype(np.float32)
    u = x.view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000).astype(np.uint32).view(np.float32)
    return np.where(np.isnan(x), x, r)


def apply_update(config: GradPIMConfig, weights, grads, state=None, state2=None, *, engine: str = "program"):
    """Runs the unit's program on data: returns (weights, state, state2, copy) as float32 arrays holding
    values of their stored dtype (state/state2/copy None where the optimizer has none). Inputs are
    first rounded to their configured dtypes. momentum-type optimizers use `state` (zeros if None);
    Adam uses state (m) and state2 (v).

    engine="program" evaluates the per-step program element by element (fast); engine="commands" lays
    the arrays out in a byte-level DRAM image and executes every unit command of every chunk's sequence
    (the layout, byte lanes, batching and stores the timing run uses): both give identical results."""
    _check_config(config)
    engine = _choice("engine", engine, ("program", "commands"))
    w = _as_dtype_values("weights", weights, config.weight_dtype, None)
    n = w.shape[0]
    g = _as_dtype_values("grads", grads, config.grad_dtype, n)
    states = _STATES[config.optimizer]
    s1 = _as_dtype_values("state", state, config.state_dtype, n) if state is not None else (
        np.zeros(n, np.float32) if states >= 1 else None)
    s2 = _as_dtype_values("state2", state2, config.state_dtype, n) if state2 is not None else (
        np.zeros(n, np.float32) if states >= 2 else None)
    copy = np.zeros(n, np.float32) if config.weight_copy else None
    if engine == "commands" and w.shape[0] == 0:
        raise ValueError("weights must hold at least one element")
    _pim.apply_update(config._d(), w, g, s1 if states >= 1 else None, s2 if states >= 2 else None, copy,
                      engine == "commands")
    return w, (s1 if states >= 1 else None), (s2 if states >= 2 else None), copy


def training_iteration(network: Union[str, Network], config: GradPIMConfig, npu: Optional[NPUModel] = None,
                       batch_size: Optional[int] = None) -> IterationResult:
    """Forward + backward on a roofline NPU (its DRAM traffic at the bandwidth the same memory model
    measured for a streaming access) plus the update phase, host vs PIM."""
    from ._pim_networks import iteration
    _check_config(config)
    net = get_network(network)
    if npu is None:
        npu = NPUModel()
    if not isinstance(npu, NPUModel):
        raise TypeError(f"npu must be an NPUModel, got {type(npu).__name__}")
    bs = net.batch_size if batch_size is None else _int("batch_size", batch_size)
    return iteration(net, config, npu, bs, compare_update(config, net.params))


# ------------------------------------------------------------------ CLI
def _cmd_simulate(args) -> int:
    import json
    cfg = GradPIMConfig(args.preset, channels=args.channels, ranks=args.ranks, registers_per_unit=args.registers,
                        optimizer=args.optimizer, layout=args.layout)
    if args.network:
        res = training_iteration(args.network, cfg)
        print(json.dumps(res.to_dict(), indent=2) if args.json else res.summary())
        return 0
    n = args.n_params
    cmp = compare_update(cfg, n)
    violations = []
    if args.check:
        small = min(n, cfg.max_simulated_params)
        r = simulate_update(cfg, small, "pim", command_log=True)
        violations = check_pim_timing(cfg, r.command_log)
    if args.json:
        d = {"host": cmp.host.to_dict(), "pim": cmp.pim.to_dict(), "speedup": cmp.speedup, "bound": cmp.bound}
        if args.check:
            d["violations"] = [str(v) for v in violations]
        print(json.dumps(d, indent=2))
    else:
        print(f"{cfg.spec.name}, {cfg.channels} channel(s), {cfg.ranks} rank(s), {cfg.optimizer}, "
              f"{cfg.registers_per_unit} registers/unit")
        print(cmp.summary())
        if args.check:
            print(violations_text(violations, f"PIM log of {min(n, cfg.max_simulated_params)} params"))
    return 1 if violations else 0


def _cmd_report(args) -> int:
    from ._pim_report import write_report
    path = write_report(args.out, quick=args.quick)
    print(f"wrote {path}")
    return 0


def register_cli(subparsers) -> None:
    p = subparsers.add_parser("pim", help="GradPIM: optimizer updates inside DDR4 bank groups")
    sub = p.add_subparsers(dest="pim_command", metavar="pim_command", required=True)
    s = sub.add_parser("simulate", help="host baseline vs PIM for one update (or one training iteration)")
    s.add_argument("--preset", default="DDR4_2400R_8Gb_x8")
    s.add_argument("--optimizer", default="momentum", choices=list(OPTIMIZERS))
    s.add_argument("--n-params", type=int, default=1_000_000)
    s.add_argument("--network", default=None, help=f"a built-in network ({', '.join(NETWORKS)}): whole iteration")
    s.add_argument("--channels", type=int, default=1)
    s.add_argument("--ranks", type=int, default=1)
    s.add_argument("--registers", type=int, default=16)
    s.add_argument("--layout", default="banks", choices=list(LAYOUTS))
    s.add_argument("--check", action="store_true", help="check the PIM command log with the independent checker")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_simulate)
    r = sub.add_parser("report", help="write the case study (Markdown table + PNG figures) to a folder")
    r.add_argument("--out", required=True)
    r.add_argument("--quick", action="store_true", help="smaller sweeps (for tests)")
    r.set_defaults(func=_cmd_report)
