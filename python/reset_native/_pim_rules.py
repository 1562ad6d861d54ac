"""The GradPIM timing rules re-typed for the independent checker (reset_native.dram.check_timing).

Written from docs/gradpim.md section "Timing of the unit commands", not derived from the C++ table, so
a PIM run's command log is refereed by code that shares nothing with the simulator that made it.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

PIM_COMMAND_NAMES = {"PIM0": "PIM_LD", "PIM1": "PIM_MAC", "PIM2": "PIM_ST", "PIM3": "PIM_ALU"}
OPEN_ROW_COMMANDS = ("PIM0", "PIM1", "PIM2")
_READS = ("PIM0", "PIM1")
_STORE = ("PIM2",)
_UNIT = ("PIM0", "PIM1", "PIM2", "PIM3")
_COLUMNS = ("PIM0", "PIM1", "PIM2")
_HOST = ("RD", "RDA", "WR", "WRA")


def pim_check_rules(timings: Dict[str, int], write_to_read: int, write_recovery: int, cross_group: int,
                    host_cross_group: int) -> List[Tuple[str, str, str, int, str]]:
    """(first, second, relation, min_gap, name) rows for check_timing(extra_rules=...)."""
    t = timings
    out: List[Tuple[str, str, str, int, str]] = []

    def add(firsts, seconds, relations, gap, name):
        out.extend((a, b, rel, int(gap), name) for a in firsts for b in seconds for rel in relations)

    in_group = ("bank", "bankgroup")
    in_rank = ("bank", "bankgroup", "rank")
    add(["ACT"], _COLUMNS, ("bank",), t["tRCD"], "pim_tRCD")
    add(_UNIT, _UNIT, in_group, t["tCCD_L"], "pim_tCCD_L")
    add(_STORE, _READS, in_group, write_to_read, "pim_tWTR_L")
    if cross_group > 1:
        add(_UNIT, _UNIT, ("rank",), cross_group, "pim_cross_group")
    add(_READS, ["PRE"], ("bank",), t["tRTP"], "pim_tRTP")
    add(_STORE, ["PRE"], ("bank",), write_recovery, "pim_tWR")
    add(_READS, ["PREA"], in_rank, t["tRTP"], "pim_tRTP")
    add(_STORE, ["PREA"], in_rank, write_recovery, "pim_tWR")
    add(_COLUMNS, _HOST, in_group, t["tCCD_L"], "pim_host_tCCD_L")
    add(_HOST, _COLUMNS, in_group, t["tCCD_L"], "pim_host_tCCD_L")
    add(_COLUMNS, _HOST, ("rank",), host_cross_group, "pim_host_tCCD_S")
    add(_HOST, _COLUMNS, ("rank",), host_cross_group, "pim_host_tCCD_S")
    add(["WR", "WRA"], _READS, in_group, t["CWL"] + t["BL"] // 2 + t["tWTR_L"], "pim_host_tWTR_L")
    add(_STORE, ["RD", "RDA"], in_group, write_to_read, "pim_tWTR_L")
    return out
