"""Independent timing checker for DRAM command logs (reset_native.dram.check_timing).

It shares no code with the C++ simulator: it replays the log pair by pair and tests each pair of
commands against the constraints of SPEC-gradpim section 2, written out again here from the spec text,
plus bank-state legality, one command per clock, data-bus overlap, the tFAW window and the refresh
interval. Slow but plain on purpose: it is the referee.
"""
from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

COMMANDS = ["ACT", "PRE", "PREA", "RD", "RDA", "WR", "WRA", "REF",
            "PIM0", "PIM1", "PIM2", "PIM3", "PIM4", "PIM5", "PIM6", "PIM7"]
READS = ("RD", "RDA")
WRITES = ("WR", "WRA")
COLUMNS = READS + WRITES


@dataclass(frozen=True)
class Violation:
    """One broken rule: `second` came too early after `first` (or is illegal on its own)."""
    rule: str
    first_command: Optional[str]
    first_cycle: Optional[int]
    second_command: str
    second_cycle: int
    required: Optional[int]   # minimum distance in clocks, where the rule has one
    detail: str
    first_index: Optional[int] = None
    second_index: Optional[int] = None

    def __str__(self) -> str:
        if self.first_command is None:
            return f"{self.rule}: {self.second_command}@{self.second_cycle}: {self.detail}"
        return (f"{self.rule}: {self.first_command}@{self.first_cycle} -> {self.second_command}@{self.second_cycle}"
                f" ({self.detail})")


# Relation of two commands' addresses on one channel, most specific first.
SAME_BANK, SAME_GROUP, SAME_RANK, OTHER_RANK = "bank", "bankgroup", "rank", "other_rank"


def violations_text(violations: List["Violation"], note: str = "", limit: int = 20) -> str:
    """The CLI's summary of a check: a count line (plus an optional note), then the first ``limit`` violations."""
    lines = [f"timing check    {len(violations)} violations" + (f" ({note})" if note else "")]
    lines += ["  " + str(v) for v in violations[:limit]]
    return "\n".join(lines)


def _pair_rules(t: Dict[str, int]) -> Dict[Tuple[str, str, str], List[Tuple[str, int]]]:
    """(first, second, relation) -> [(rule name, minimum cycles from first to second)]."""
    burst = t["BL"] // 2
    write_end = t["CWL"] + burst
    rules: Dict[Tuple[str, str, str], List[Tuple[str, int]]] = defaultdict(list)

    def add(firsts, seconds, relations, name, gap):
        for a in firsts:
            for b in seconds:
                for rel in relations:
                    rules[(a, b, rel)].append((name, gap))

    bank = (SAME_BANK,)
    group = (SAME_BANK, SAME_GROUP)
    rank = (SAME_BANK, SAME_GROUP, SAME_RANK)
    other_group = (SAME_RANK,)
    # same bank
    add(["ACT"], COLUMNS, bank, "tRCD", t["tRCD"])
    add(["ACT"], ["PRE"], bank, "tRAS", t["tRAS"])
    add(["ACT"], ["ACT"], bank, "tRC", t["tRC"])
    add(["PRE"], ["ACT"], bank, "tRP", t["tRP"])
    add(["RD"], ["PRE"], bank, "tRTP", t["tRTP"])
    add(["WR"], ["PRE"], bank, "tWR", write_end + t["tWR"])
    add(["RDA"], ["ACT"], bank, "tRTP+tRP", t["tRTP"] + t["tRP"])
    add(["WRA"], ["ACT"], bank, "tWR+tRP", write_end + t["tWR"] + t["tRP"])
    # column to column, ACT to ACT, write to read: long within a bank group, short across
    add(READS, READS, group, "tCCD_L", t["tCCD_L"])
    add(WRITES, WRITES, group, "tCCD_L", t["tCCD_L"])
    add(READS, READS, other_group, "tCCD_S", t["tCCD_S"])
    add(WRITES, WRITES, other_group, "tCCD_S", t["tCCD_S"])
    add(["ACT"], ["ACT"], group, "tRRD_L", t["tRRD_L"])
    add(["ACT"], ["ACT"], other_group, "tRRD_S", t["tRRD_S"])
    add(WRITES, READS, group, "tWTR_L", write_end + t["tWTR_L"])
    add(WRITES, READS, other_group, "tWTR_S", write_end + t["tWTR_S"])
    add(READS, WRITES, rank, "RD_to_WR", t["CL"] + burst + 2 - t["CWL"])
    # precharge-all and refresh within the rank
    add(["ACT"], ["PREA"], rank, "tRAS", t["tRAS"])
    add(["RD"], ["PREA"], rank, "tRTP", t["tRTP"])
    add(["WR"], ["PREA"], rank, "tWR", write_end + t["tWR"])
    add(["PREA"], ["ACT"], rank, "tRP", t["tRP"])
    add(["PRE", "PREA"], ["REF"], rank, "tRP", t["tRP"])
    add(["RDA"], ["REF"], rank, "tRTP+tRP", t["tRTP"] + t["tRP"])
    add(["WRA"], ["REF"], rank, "tWR+tRP", write_end + t["tWR"] + t["tRP"])
    add(["ACT"], ["REF"], rank, "tRAS+tRP", t["tRAS"] + t["tRP"])
    # rank to rank
    o = (OTHER_RANK,)
    add(READS, READS, o, "tRTRS", burst + t["tRTRS"])
    add(WRITES, WRITES, o, "tRTRS", burst + t["tRTRS"])
    add(READS, WRITES, o, "tRTRS", t["CL"] + burst + t["tRTRS"] - t["CWL"])
    add(WRITES, READS, o, "tRTRS", t["CWL"] + burst + t["tRTRS"] - t["CL"])
    return rules


def _relation(a, b) -> str:
    if a[0] != b[0]:
        return OTHER_RANK
    if a[1] != b[1]:
        return SAME_RANK
    return SAME_BANK if a[2] == b[2] else SAME_GROUP


def check_log(log: np.ndarray, timings: Dict[str, int], *, refresh: bool = True,
              end_cycle: Optional[int] = None, extra_rules=(), open_row_commands=()) -> List[Violation]:
    t = dict(timings)
    needs_open_row = set(COLUMNS) | set(open_row_commands)
    order = np.argsort(log["cycle"], kind="stable")
    rows = [(int(log["cycle"][i]), COMMANDS[int(log["command"][i])], int(log["channel"][i]), int(log["rank"][i]),
             int(log["bankgroup"][i]), int(log["bank"][i]), int(log["row"][i]), int(i)) for i in order]
    rules = _pair_rules(t)
    for first, second, relation, gap, name in extra_rules:
        if relation not in (SAME_BANK, SAME_GROUP, SAME_RANK, OTHER_RANK):
            raise ValueError(f"extra rule {name}: relation must be one of bank, bankgroup, rank, other_rank "
                             f"(bankgroup = same group, other bank; rank = same rank, other group), got {relation!r}")
        rules[(first, second, relation)].append((name, int(gap)))
    window = max(gap for lst in rules.values() for _, gap in lst)
    out: List[Violation] = []

    def flag(rule, first, second, required, detail):
        out.append(Violation(rule, first[1] if first else None, first[0] if first else None, second[1], second[0],
                             required, detail, first[7] if first else None, second[7]))

    by_channel: Dict[int, list] = defaultdict(list)
    for r in rows:
        by_channel[r[2]].append(r)
    burst = t["BL"] // 2
    for channel_rows in by_channel.values():
        open_rows: Dict[Tuple[int, int, int], int] = {}
        recent: deque = deque()
        acts: Dict[int, list] = defaultdict(list)
        refs: Dict[int, list] = defaultdict(list)
        bursts = []  # (start, end, rank, row tuple) of data on the DQ bus
        prev = None
        for r in channel_rows:
            cycle, cmd, _, rank, bg, bk, row, _ = r
            if prev is not None and prev[0] == cycle:
                flag("command_bus", prev, r, 1, "two commands in one clock on one channel")
            prev = r
            # bank state
            key = (rank, bg, bk)
            if cmd == "ACT":
                if key in open_rows:
                    flag("bank_state", None, r, None, f"ACT to bank {key} whose row {open_rows[key]} is open")
                open_rows[key] = row
            elif cmd in needs_open_row:
                if open_rows.get(key) != row:
                    flag("bank_state", None, r, None,
                         f"{cmd} to row {row} of bank {key} but open row is {open_rows.get(key)}")
                if cmd in ("RDA", "WRA"):
                    open_rows.pop(key, None)
                if cmd in COLUMNS:  # PIM column commands move no data on the DQ bus
                    start = cycle + (t["CL"] if cmd in READS else t["CWL"])
                    bursts.append((start, start + burst, rank, r))
            elif cmd == "PRE":
                open_rows.pop(key, None)
            elif cmd == "PREA":
                for k in [k for k in open_rows if k[0] == rank]:
                    del open_rows[k]
            elif cmd == "REF":
                still = [k for k in open_rows if k[0] == rank]
                if still:
                    flag("bank_state", None, r, None, f"REF with banks {still} open")
            # pairwise distances within the longest plain rule
            while recent and recent[0][0] < cycle - window:
                recent.popleft()
            for p in recent:
                rel = _relation((p[3], p[4], p[5]), (rank, bg, bk))
                for name, gap in rules.get((p[1], cmd, rel), ()):
                    if cycle - p[0] < gap:
                        flag(name, p, r, gap, f"{rel}: needs {gap} clocks, got {cycle - p[0]}")
            recent.append(r)
            # tRFC after REF, tFAW over the last four ACTs of the rank
            if cmd in ("ACT", "REF") and refs[rank]:
                last = refs[rank][-1]
                if cycle - last[0] < t["tRFC"]:
                    flag("tRFC", last, r, t["tRFC"], f"needs {t['tRFC']} clocks, got {cycle - last[0]}")
            if cmd == "ACT":
                a = acts[rank]
                if len(a) >= 4 and cycle - a[-4][0] < t["tFAW"]:
                    flag("tFAW", a[-4], r, t["tFAW"], f"5 ACTs within {cycle - a[-4][0]} < tFAW clocks")
                a.append(r)
            if cmd == "REF":
                refs[rank].append(r)
        # data bus: bursts may not overlap; a rank switch needs tRTRS idle clocks in between
        bursts.sort(key=lambda b: b[0])
        for x, y in zip(bursts, bursts[1:]):
            need = x[1] + (t["tRTRS"] if x[2] != y[2] else 0)
            if y[0] < need:
                flag("data_bus", x[3], y[3], None, f"burst at {y[0]} overlaps the one ending {x[1]}")
        if refresh and channel_rows:
            end = end_cycle if end_cycle is not None else channel_rows[-1][0]
            ranks_seen = {r[3] for r in channel_rows}
            for rank in ranks_seen:
                times = [0] + [r[0] for r in refs[rank]]
                due = end // t["tREFI"]
                if len(refs[rank]) < due - 8:  # DDR4 lets a controller postpone up to 8 REFs
                    flag("tREFI", None, channel_rows[-1], t["tREFI"],
                         f"rank {rank}: {len(refs[rank])} REFs by cycle {end}, {due} were due")
                for (a, b) in zip(times, times[1:]):
                    if b - a > 9 * t["tREFI"]:
                        flag("tREFI", None, channel_rows[-1], t["tREFI"], f"rank {rank}: no REF from {a} to {b}")
    return out
