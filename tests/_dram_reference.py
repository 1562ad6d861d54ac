"""A cycle-by-cycle reference of one DRAM channel controller, written from the documented behaviour
(docs/dram.md "Controller") and the timing-rule table, for equivalence tests of the C++ model.

It is deliberately naive: it visits EVERY clock, recomputes every bank's candidate from its queue
each clock, and keeps a plain earliest-cycle table per (bank, command) raised rule by rule at each
issue. The C++ controller skips idle clocks, caches candidates and picks branch-free; any decision or
statistic on which the two disagree is a bug in one of them. Slow: small traces only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np

from reset_native import _core
from reset_native.dram import COMMANDS, MemorySystem

_dram = _core.dram
RANK_COMMANDS = ("PREA", "REF")


@dataclass
class ChannelRun:
    log: List[Tuple[int, str, int, int, int, int, int]] = field(default_factory=list)
    latency: Dict[int, int] = field(default_factory=dict)  # request position -> read latency
    commands: Dict[str, int] = field(default_factory=lambda: {c: 0 for c in COMMANDS[:8]})
    reads: int = 0
    writes: int = 0
    row_hits: int = 0
    row_misses: int = 0
    row_conflicts: int = 0
    last_cycle: int = 0


def run_channel(system: MemorySystem, requests) -> ChannelRun:
    """requests: (position, arrival, is_write, (rank, bankgroup, bank, row, column)) in arrival order."""
    t_ = system.spec.timings
    o = system.spec.organisation
    ranks, bgs, bpg = system.ranks, o.bankgroups, o.banks_per_group
    banks = ranks * bgs * bpg
    flat = lambda r, g, b: (r * bgs + g) * bpg + b  # noqa: E731
    where = [(b // (bgs * bpg), (b // bpg) % bgs) for b in range(banks)]  # flat bank -> (rank, group)
    rules = _dram.timing_rules(system.spec._d)  # (prev, next, scope, latency, window, name)
    ready = [dict.fromkeys(COMMANDS[:8], 0) for _ in range(banks)]  # bank commands, per bank
    rank_ready = [dict.fromkeys(COMMANDS[:8], 0) for _ in range(ranks)]  # rank commands, per rank
    acts: List[List[int]] = [[] for _ in range(ranks)]
    open_row = [-1] * banks
    queues = {False: [[] for _ in range(banks)], True: [[] for _ in range(banks)]}
    queued = {False: 0, True: 0}
    depth = {False: system.read_queue, True: system.write_queue}
    next_refresh = [t_["tREFI"]] * ranks
    pending = [False] * ranks
    cols_since_act = [0] * banks
    after_conflict = [False] * banks
    closed_page = system.page_policy == "closed"
    run = ChannelRun()

    def earliest(cmd, rank, bank):
        return rank_ready[rank][cmd] if cmd in RANK_COMMANDS else ready[bank][cmd]

    def issue(cmd, t, rank, group, bank, row, column):
        fb = flat(rank, group, bank)
        for prev, nxt, scope, latency, window, _name in rules:
            if prev != cmd:
                continue
            if window > 1:  # tFAW: the next ACT waits for the window-th most recent ACT + latency
                if cmd == "ACT":
                    acts[rank].append(t)
                    if len(acts[rank]) >= window:
                        gate = acts[rank][-window] + latency
                        for b in range(banks):
                            if where[b][0] == rank:
                                ready[b][nxt] = max(ready[b][nxt], gate)
                        rank_ready[rank][nxt] = max(rank_ready[rank][nxt], gate)
                continue
            for b in range(banks):
                r, g = where[b]
                hit = {"bank": b == fb, "bankgroup": r == rank and g == group,
                       "rank": r == rank, "other_ranks": r != rank}[scope]
                if hit:
                    ready[b][nxt] = max(ready[b][nxt], t + latency)
            for r in range(ranks):
                if (scope == "rank" and r == rank) or (scope == "other_ranks" and r != rank):
                    rank_ready[r][nxt] = max(rank_ready[r][nxt], t + latency)
        if cmd == "ACT":
            open_row[fb] = row
        elif cmd in ("PRE", "RDA", "WRA"):
            open_row[fb] = -1
        elif cmd == "PREA":
            for b in range(banks):
                if where[b][0] == rank:
                    open_row[b] = -1
        run.commands[cmd] += 1
        run.last_cycle = max(run.last_cycle, t + 1)
        rank_cmd = cmd in RANK_COMMANDS
        run.log.append((t, cmd, rank, 0 if rank_cmd else group, 0 if rank_cmd else bank,
                        -1 if rank_cmd else row, column if cmd in ("RD", "RDA", "WR", "WRA") else -1))

    def candidate(b, writes, oldest_only):
        q = queues[writes][b]
        row = open_row[b]
        slot = 0
        if not oldest_only:
            slot = next((k for k, e in enumerate(q) if e[3][3] == row), 0)
        e = q[slot]
        r, g, bk, rw, col = e[3]
        if row == rw:
            cmd = ("WRA" if closed_page else "WR") if writes else ("RDA" if closed_page else "RD")
            return cmd, slot, (r, g, bk, rw, col)
        if row >= 0:
            return "PRE", slot, (r, g, bk, row, 0)
        return "ACT", slot, (r, g, bk, rw, col)

    def serve(b, writes, cmd, slot, addr, t):
        issue(cmd, t, *addr)
        if cmd == "PRE":
            after_conflict[b] = True
            return
        if cmd == "ACT":
            cols_since_act[b] = 0
            return
        if cols_since_act[b] == 0:
            if after_conflict[b]:
                run.row_conflicts += 1
            else:
                run.row_misses += 1
        else:
            run.row_hits += 1
        cols_since_act[b] += 1
        after_conflict[b] = False
        pos, arrival, _, _ = queues[writes][b].pop(slot)
        queued[writes] -= 1
        if writes:
            run.writes += 1
            run.last_cycle = max(run.last_cycle, t + t_["CWL"] + t_["BL"] // 2)
        else:
            run.reads += 1
            done = t + t_["CL"] + t_["BL"] // 2
            run.latency[pos] = done - arrival
            run.last_cycle = max(run.last_cycle, done)

    nxt, seq, draining, t = 0, 0, False, 0
    while True:
        while nxt < len(requests):  # admit in order while the request's queue has room
            pos, arrival, w, addr = requests[nxt]
            if arrival > t or queued[w] >= depth[w]:
                break
            queues[w][flat(*addr[:3])].append((pos, arrival, seq, addr))
            seq += 1
            queued[w] += 1
            nxt += 1
        if queued[False] == 0 and queued[True] == 0 and nxt == len(requests):
            break
        if not draining and queued[True] >= system.write_high:
            draining = True
        if draining and queued[True] <= system.write_low:
            draining = False
        writes = draining or (queued[False] == 0 and queued[True] > 0)
        done = False
        if system.refresh:  # a due rank closes its banks with one PREA, then refreshes; its requests wait
            for rk in range(ranks):
                if not pending[rk] and t >= next_refresh[rk]:
                    pending[rk] = True
                if not pending[rk]:
                    continue
                cmd = "PREA" if any(open_row[b] >= 0 for b in range(banks) if where[b][0] == rk) else "REF"
                if earliest(cmd, rk, 0) <= t:
                    issue(cmd, t, rk, 0, 0, -1, -1)
                    if cmd == "REF":
                        pending[rk] = False
                        next_refresh[rk] += t_["tREFI"]
                    done = True
                    break
        if not done:
            options = []
            if system.scheduler == "fcfs":
                heads = [(q[0][2], b) for b, q in enumerate(queues[writes]) if q and not pending[where[b][0]]]
                if heads:
                    b = min(heads)[1]
                    options = [(b,) + candidate(b, writes, True)]
            else:
                options = [(b,) + candidate(b, writes, False) for b, q in enumerate(queues[writes])
                           if q and not pending[where[b][0]]]
            ready_now = [(cmd not in ("ACT", "PRE"), -queues[writes][b][slot][2], b, cmd, slot, addr)
                         for b, cmd, slot, addr in options if earliest(cmd, addr[0], flat(*addr[:3])) <= t]
            if ready_now:  # row hits first, then the oldest
                _, _, b, cmd, slot, addr = max(ready_now)
                serve(b, writes, cmd, slot, addr, t)
        t += 1
    return run


def simulate_reference(system: MemorySystem, requests):
    """Every channel of `system` run through run_channel; returns (cycles, log as a structured array
    sorted by cycle then channel, read latencies with -1 for writes, summed stats dict)."""
    arrival, is_write, address = (np.asarray(x) for x in requests)
    decoded = system.decode(address)
    per_channel = [[] for _ in range(system.channels)]
    for i in range(arrival.size):
        ch, rank, group, bank, row, column = (int(v) for v in decoded[i])
        per_channel[ch].append((i, int(arrival[i]), bool(is_write[i]), (rank, group, bank, row, column)))
    latency = np.full(arrival.size, -1, np.int64)
    entries, stats, cycles = [], dict.fromkeys(("reads", "writes", "row_hits", "row_misses", "row_conflicts"), 0), 0
    commands = dict.fromkeys(COMMANDS[:8], 0)
    for ch, reqs in enumerate(per_channel):
        run = run_channel(system, reqs)
        for pos, lat in run.latency.items():
            latency[pos] = lat
        for k in stats:
            stats[k] += getattr(run, k)
        for k in commands:
            commands[k] += run.commands[k]
        cycles = max(cycles, run.last_cycle)
        entries += [(t, COMMANDS.index(c), ch, r, g, b, row, col) for t, c, r, g, b, row, col in run.log]
    entries.sort(key=lambda e: (e[0], e[2]))
    stats["commands"] = commands
    return cycles, entries, latency, stats
