"""Shared helpers for the DRAM tests (no tests here): run a simulation and always referee it with check_timing."""
import numpy as np

from reset_native.dram import COMMAND_LOG_DTYPE, COMMANDS, MemorySystem, check_timing, simulate

BURST = 64


def run_checked(system: MemorySystem, requests):
    """simulate() with the command log, asserting the independent checker finds nothing."""
    result = simulate(system, requests, command_log=True)
    violations = check_timing(result.command_log, system.spec, refresh=system.refresh, end_cycle=result.cycles)
    assert violations == [], "\n".join(map(str, violations[:10]))
    return result


def cycles_of(log, command, **where):
    m = log["command"] == COMMANDS.index(command)
    for key, value in where.items():
        m &= log[key] == value
    return log["cycle"][m]


def reads_at_zero(addresses):
    a = np.asarray(addresses, dtype=np.uint64)
    return np.zeros(a.size, np.int64), np.zeros(a.size, bool), a


def make_log(entries):
    """entries: (cycle, command, rank, bankgroup, bank, row, column) tuples on channel 0."""
    log = np.zeros(len(entries), dtype=COMMAND_LOG_DTYPE)
    for i, (cycle, cmd, rank, bg, bank, row, col) in enumerate(entries):
        log[i] = (cycle, COMMANDS.index(cmd), 0, rank, bg, bank, row, col)
    return log
