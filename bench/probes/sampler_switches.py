"""Times the switches of the CUDA decode step's kernels path (session 9: RESET_NATIVE_SAMPLER_SAMPLE_PICKS / _LEAN /
_SUB_BINS / _LEAN_STATS; session 10: _LEAN_DRAW; read at every call, so at every graph
capture; docs/sampler.md, CUDA details) in one build, and checks every variant's outputs bit for bit against "old"
(every switch off).

    python3 bench/probes/sampler_switches.py            # timing table (graph replays) + bit-for-bit check
    python3 bench/probes/sampler_switches.py ncu        # two B = 64 steps per variant (SAMPLER_NCU_VARIANTS,
                                                        # default "old,default") for ncu
    python3 bench/probes/sampler_switches.py ncu-table LOG.csv   # the per-kernel table of that ncu run
    python3 bench/probes/sampler_switches.py kernels    # the top-p bins kernel each variant launches (torch profiler,
                                                        # one B = 1 ReSET top-p step per variant)

Variants: old (all off), default (the switches unset: LEAN, SUB_BINS, LEAN_STATS and LEAN_DRAW on, SAMPLE_PICKS
where rows x chunks <= SMs; the sample pass 4 chunks per block from B = 64), the default with LEAN_DRAW off, and the
default with 2 chunks per sample block (sa2: the grouping before session 10 at B = 64; at B = 1 and 8, where the
default is a block per chunk, it only shows what grouping costs there).
SAMPLER_SWITCH_VARIANTS=grouping64 times more chunks-per-block values at B = 64 (SAMPLER_SWITCH_BATCHES=64);
SAMPLER_SWITCH_FRESH=1 copies fresh logits into place at the start of every step (the copy timed with it);
SAMPLER_SWITCH_CHECK=0 skips the bit-for-bit check.
SAMPLER_SWITCH_VARIANTS=s25 times the default against RESET_NATIVE_SAMPLER_FAST_FINISH=1 and =single (session 21's
opt-in: the stats pass's last block, its combine and finish), the default and =1 twice, in turns;
=s24 times the default (since session 20 the bins pass's one-reduction adds, the carry form)
against RESET_NATIVE_SAMPLER_BINS_ADD=split (the two halves before it), each twice in turns; =s23 the default against
=carry (session 19's opt-in; since session 20 the default: two copies of one form);
=s22 times the default (twice) against the bins pass at 2 / 3 chunks per block, SAMPLE_PICKS
off and PREP_BLOCK off (measurement only: host-side choices of sessions 7-9 re-measured on today's kernels);
=s20 times the default against session 18's EARLY_SCAN forced off and on, each twice in turns;
=s18 times the default (session 17's OWNER_DRAW on from B = 2) against OWNER_DRAW off and on,
each twice in turns;
=s17 times session 16's default (PRE_WARP on) against PRE_WARP off (both twice),
with a third config that feeds a paragraph boundary every step; =s16 times session 15's CELL_MASSES (on by default) off against the default;
=s15 times session 14's defaults (PREP_FIRST, COMBINE_LOADS) each off and the opt-in SAMPLE_OCC6, =s15g the B = 64 groupings; =s11 times session 11's switches (FULL_LOADS, VEC_LOADS, FLAT_BINS,
WARP_REDUX, STATS_RANGE, KEPT_SUM; on by default since its round 1) each off and all of them off (-s11) against the
default; =s9 times the session 9 variants instead (the default with one of LEAN, SUB_BINS or LEAN_STATS off), =grouping
the chunks per block of the three passes around their defaults (each pass alone, and stats and sample together).
V = 151936 fp32 N(0, 3^2) logits (as bench/bench_sampler.py), B = 1, 8, 64 (SAMPLER_SWITCH_BATCHES); the bench's
ReSET config with top-p 0.95 and a fixed T = 0.6 without top-p.
One step per CUDA graph; every variant's graph is built first, then the variants are replayed in turns (series of
`REPEATS` replays), and the best series counts. Prints a table; writes JSON to bench/out/sampler_switches.json (or into
the folder SAMPLER_SWITCH_OUT names).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

from reset_native.sampler import ReSETConfig, ReSETState, decode_step

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_sampler import graph_of  # noqa: E402  (one CUDA graph of fn: its replay callable)

VOCAB = 151936
SWITCHES = ("RESET_NATIVE_SAMPLER_SAMPLE_PICKS", "RESET_NATIVE_SAMPLER_LEAN", "RESET_NATIVE_SAMPLER_SUB_BINS",
            "RESET_NATIVE_SAMPLER_LEAN_STATS", "RESET_NATIVE_SAMPLER_LEAN_DRAW")
# Session 11's switches (per-logit work of the passes; off by default).
S11 = ("RESET_NATIVE_SAMPLER_FULL_LOADS", "RESET_NATIVE_SAMPLER_VEC_LOADS", "RESET_NATIVE_SAMPLER_FLAT_BINS",
       "RESET_NATIVE_SAMPLER_WARP_REDUX", "RESET_NATIVE_SAMPLER_STATS_RANGE", "RESET_NATIVE_SAMPLER_KEPT_SUM")
# Session 13's switches (when the loads of the logits and of the row combine's parts are issued; PHASED_LOADS on by
# default since the session's round 1, the others off while measured).
S13 = ("RESET_NATIVE_SAMPLER_PHASED_LOADS", "RESET_NATIVE_SAMPLER_COMBINE_LOADS")
# Session 14's switches: PREP_FIRST (the grouped stats pass's part 0 prepares the slot; on by default since round 1)
# and SAMPLE_OCC6 (opt-in). (EARLY_WEIGHTS, also session 14's, was removed in session 15: level twice.)
S14 = ("RESET_NATIVE_SAMPLER_PREP_FIRST", "RESET_NATIVE_SAMPLER_SAMPLE_OCC6")
# Session 15's switch: CELL_MASSES (the sample pass's kept masses as 128-logit cells, the draw through them; on by
# default since the session's round 1). (CELL_SCAN, the draw's segment by a warp's scan, was measured and removed.)
S15 = ("RESET_NATIVE_SAMPLER_CELL_MASSES",)
# Session 16's switch (branch sampler17): PRE_WARP (the stats pass's last block loads the prepared slot with warp 1;
# on by default since the session's round 2). (WARP_DRAW and PICK_LEAN, measured in round 1, and PREP_STAGED, the
# preparing thread's window sum with its loads ahead of the adds, measured in the final call, were removed.)
S16 = ("RESET_NATIVE_SAMPLER_PRE_WARP",)
# Session 17's switch (branch sampler18; on by default where rows x chunks > SMs: B >= 2 here): OWNER_DRAW (the draw's
# segment and token by the warp of the quantile's chunk, no barrier after the chunks' scan). (SEG_PREFETCH, WARP_STAR
# and DEFER_CANDS, measured in the session's rounds, were removed.)
S17 = ("RESET_NATIVE_SAMPLER_OWNER_DRAW",)
# Session 18's switch (branch sampler20; opt-in): EARLY_SCAN (the draw's chunk scan inside the counted threshold's
# barriers, the boundary sub-bin's kept candidates added after it by a loop; decode_step_early_scan.cuh). (SAMPLE_WIDE,
# measured with it in round 2, was removed.)
S18 = ("RESET_NATIVE_SAMPLER_EARLY_SCAN",)
# Session 19 (sampler22, measurement only): host-side choices of the B = 1 bins pass and the stats pass's preparer,
# last measured sessions 7-9, before most of today's kernels: the bins pass's chunks per block and whether the sample
# pass picks the boundary bin (SAMPLE_PICKS, in SWITCHES), and the extra preparing block.
S22 = ("RESET_NATIVE_SAMPLER_PREP_BLOCK",)
# Session 19 (sampler23, opt-in; the default since session 20, sampler24): the top-p bins pass's add form
# (RESET_NATIVE_SAMPLER_BINS_ADD unset or =carry: one 32-bit shared reduction per logit and a count of wraps,
# topp_bins_add_carry; =split: the two halves before session 20, topp_bins_add_flat).
S23 = ("RESET_NATIVE_SAMPLER_BINS_ADD",)
# Session 21 (sampler25, opt-in): the stats pass's last block in its fast form (RESET_NATIVE_SAMPLER_FAST_FINISH=1: the
# row max from its key, the cached parts rescaled without branches, 1 / T precomputed beside the combine; =single: only
# the block-per-chunk pass, B <= 8 here).
S25 = ("RESET_NATIVE_SAMPLER_FAST_FINISH",)
# name -> {switch: "0" / "1"}; a switch not named is left unset (its default).
if os.environ.get("SAMPLER_SWITCH_VARIANTS") == "s25":
    # The default against FAST_FINISH=1 and =single, in turns, the default and =1 twice (the copies show the probe's
    # noise in the same run; at B <= 8 =single runs the same kernels as =1: a third copy there).
    VARIANTS = {"old": {name: "0" for name in SWITCHES + S11 + S13 + S14 + S15 + S16 + S17 + S18}, "default": {},
                "fast": {S25[0]: "1"}, "single": {S25[0]: "single"}, "default_b": {}, "fast_b": {S25[0]: "1"}}
elif os.environ.get("SAMPLER_SWITCH_VARIANTS") == "s24":
    # Session 20 (sampler24): the default (the carry form) against split (the form before it), each twice in turns
    # (the copies show the probe's noise in the same run).
    VARIANTS = {"old": {name: "0" for name in SWITCHES + S11 + S13 + S14 + S15 + S16 + S17 + S18}, "default": {},
                "split": {S23[0]: "split"}, "default_b": {}, "split_b": {S23[0]: "split"}}
elif os.environ.get("SAMPLER_SWITCH_VARIANTS") == "s23":
    # The default against the carry form, each twice in turns (the copies show the probe's noise in the same run).
    VARIANTS = {"old": {name: "0" for name in SWITCHES + S11 + S13 + S14 + S15 + S16 + S17 + S18}, "default": {},
                "carry": {S23[0]: "carry"}, "default_b": {}, "carry_b": {S23[0]: "carry"}}
elif os.environ.get("SAMPLER_SWITCH_VARIANTS") == "s22":
    # The default twice (the copies show the noise), the bins pass 2 and 3 chunks per block (B = 1: 38 / 25 blocks,
    # fewer flush atomics per bin; B = 8 runs its default, 2, under bi2), the bins pass's last block picking the bin
    # (B = 8 and 64 run their default, picks off), and chunk 0's block preparing the slot (B <= 8; B = 64 runs its
    # default).
    VARIANTS = {"old": {name: "0" for name in SWITCHES + S11 + S13 + S14 + S15 + S16 + S17 + S18}, "default": {},
                "bi2": {"RESET_NATIVE_SAMPLER_BIN_CHUNKS": "2"}, "bi3": {"RESET_NATIVE_SAMPLER_BIN_CHUNKS": "3"},
                "-picks": {SWITCHES[0]: "0"}, "-prepblk": {S22[0]: "0"}, "default_b": {}}
elif os.environ.get("SAMPLER_SWITCH_VARIANTS") == "s20":
    # Session 18 (branch sampler20): the default against EARLY_SCAN forced off and on, each twice in turns (the copies
    # show the probe's noise in the same run; the default is one of the two, whichever the build makes it).
    VARIANTS = {"old": {name: "0" for name in SWITCHES + S11 + S13 + S14 + S15 + S16 + S17 + S18}, "default": {},
                "-early": {S18[0]: "0"}, "+early": {S18[0]: "1"}, "-early_b": {S18[0]: "0"}, "+early_b": {S18[0]: "1"}}
elif os.environ.get("SAMPLER_SWITCH_VARIANTS") == "s18":
    # Session 17 (branch sampler18): the default (OWNER_DRAW on from B = 2) against OWNER_DRAW off and on, each twice in
    # turns (the copies show the probe's noise in the same run: at B = 1 two copies of one build differed by up to
    # ~0.5 us).
    VARIANTS = {"old": {name: "0" for name in SWITCHES + S11 + S13 + S14 + S15 + S16 + S17}, "default": {},
                "-owner": {S17[0]: "0"}, "+owner": {S17[0]: "1"}, "default_b": {}, "-owner_b": {S17[0]: "0"},
                "+owner_b": {S17[0]: "1"}}
elif os.environ.get("SAMPLER_SWITCH_VARIANTS") == "s17":
    # Session 16 (branch sampler17): the default (PRE_WARP on) against it off (session 15's defaults), both twice in
    # turns (the copies show the probe's noise in the same run); a third config feeds a paragraph boundary every
    # step, so the step means always come from the window (the case of PREP_STAGED, removed after the final call).
    VARIANTS = {"old": {name: "0" for name in SWITCHES + S11 + S13 + S14 + S15 + S16}, "default": {},
                "-pre": {S16[0]: "0"}, "default_b": {}, "-pre_b": {S16[0]: "0"}}
elif os.environ.get("SAMPLER_SWITCH_VARIANTS") == "s16":
    # Session 15 (branch sampler16): the default (CELL_MASSES on) against it off (session 14's defaults).
    VARIANTS = {"old": {name: "0" for name in SWITCHES + S11 + S13 + S14 + S15}, "default": {},
                "-cells": {S15[0]: "0"}}
elif os.environ.get("SAMPLER_SWITCH_VARIANTS") == "s15":
    # The defaults of session 14 (PREP_FIRST and COMBINE_LOADS on) against each of them off and both off (session 13's
    # defaults), and the opt-in SAMPLE_OCC6.
    VARIANTS = {"old": {name: "0" for name in SWITCHES + S11 + S13 + S14}, "default": {},
                "-prep": {S14[0]: "0"}, "-combine": {S13[1]: "0"}, "s13": {S14[0]: "0", S13[1]: "0"},
                "+occ6": {S14[1]: "1"}}
elif os.environ.get("SAMPLER_SWITCH_VARIANTS") == "s15g":
    # Chunks per block at B = 64 (defaults stats 2, bins 4, sample 4), never run with the phased loads.
    VARIANTS = {"old": {name: "0" for name in SWITCHES + S11 + S13 + S14}, "default": {},
                **{f"{p}{n}": {f"RESET_NATIVE_SAMPLER_{v}_CHUNKS": str(n)}
                   for p, v, ns in (("st", "STATS", (3, 4)), ("bi", "BIN", (3, 6)), ("sa", "SAMPLE", (3, 6)))
                   for n in ns}}
elif os.environ.get("SAMPLER_SWITCH_VARIANTS") == "s13":
    # The default without PHASED_LOADS, and with COMBINE_LOADS.
    VARIANTS = {"old": {name: "0" for name in SWITCHES + S11 + S13}, "default": {},
                "-phased": {S13[0]: "0"}, "+combine": {S13[1]: "1"}}
elif os.environ.get("SAMPLER_SWITCH_VARIANTS") == "s13g":
    # Chunks per block at B = 64 with the phased loads (stN / biN / saN; defaults stats 2, bins 4, sample 4), and the
    # default without them.
    VARIANTS = {"old": {name: "0" for name in SWITCHES + S11 + S13}, "default": {}, "-phased": {S13[0]: "0"},
                **{f"{p}{n}": {f"RESET_NATIVE_SAMPLER_{v}_CHUNKS": str(n)}
                   for p, v, ns in (("st", "STATS", (3, 4)), ("bi", "BIN", (3, 6)), ("sa", "SAMPLE", (3, 6)))
                   for n in ns}}
elif os.environ.get("SAMPLER_SWITCH_VARIANTS") == "s11":
    # Session 11's switches (on by default since its round 1): the default with each of them off, and with all of
    # them off (-s11: session 10's default). old: every switch off.
    VARIANTS = {"old": {name: "0" for name in SWITCHES + S11}, "default": {},
                **{"-" + n.split("SAMPLER_")[1].lower(): {n: "0"} for n in S11},
                "-s11": {n: "0" for n in S11}}
elif os.environ.get("SAMPLER_SWITCH_VARIANTS") == "s9":
    VARIANTS = {"old": {name: "0" for name in SWITCHES}, "default": {},
                "-lean": {"RESET_NATIVE_SAMPLER_LEAN": "0"}, "-sub_bins": {"RESET_NATIVE_SAMPLER_SUB_BINS": "0"},
                "-lean_stats": {"RESET_NATIVE_SAMPLER_LEAN_STATS": "0"}}
elif os.environ.get("SAMPLER_SWITCH_VARIANTS") == "grouping":
    # Chunks per block of the stats / bins / sample passes (RESET_NATIVE_SAMPLER_STATS_CHUNKS / _BIN_CHUNKS /
    # _SAMPLE_CHUNKS) around the defaults (stats and sample 2 from B = 9, bins 4 from B = 64).
    VARIANTS = {"old": {name: "0" for name in SWITCHES}, "default": {},
                **{f"{p}{n}": {f"RESET_NATIVE_SAMPLER_{v}_CHUNKS": str(n)}
                   for p, v, ns in (("st", "STATS", (2, 4)), ("bi", "BIN", (2, 3)), ("sa", "SAMPLE", (2, 3, 4)))
                   for n in ns},
                **{f"st{n}sa{n}": {"RESET_NATIVE_SAMPLER_STATS_CHUNKS": str(n),
                                   "RESET_NATIVE_SAMPLER_SAMPLE_CHUNKS": str(n)} for n in (3, 4)}}
elif os.environ.get("SAMPLER_SWITCH_VARIANTS") == "grouping64":
    # Session 12: chunks per block at B = 64 beyond the values measured before (defaults there: stats 2, bins 4,
    # sample 4; a pass of 5 blocks per SM covers 132 x 5 = 660 blocks per wave).
    VARIANTS = {"old": {name: "0" for name in SWITCHES}, "default": {},
                **{f"{p}{n}": {f"RESET_NATIVE_SAMPLER_{v}_CHUNKS": str(n)}
                   for p, v, ns in (("st", "STATS", (3, 4, 5)), ("bi", "BIN", (5, 6)), ("sa", "SAMPLE", (3, 5, 6, 8)))
                   for n in ns}}
else:
    VARIANTS = {"old": {name: "0" for name in SWITCHES + S11}, "default": {},
                "-lean_draw": {"RESET_NATIVE_SAMPLER_LEAN_DRAW": "0"},
                "sa2": {"RESET_NATIVE_SAMPLER_SAMPLE_CHUNKS": "2"}}
CONFIGS = {"reset top-p": ReSETConfig(t_low=0.1, tau0=0.5505, t_high=1.0, window=32, top_p=0.95),
           "fixed T": ReSETConfig.fixed(0.6)}
# The token fed as the last one at every step, per config (default -1: none; s17's paragraph config: token 11, a
# double newline, so every step is a paragraph boundary and the step means come from the window of 32).
LAST = {}
if os.environ.get("SAMPLER_SWITCH_VARIANTS") == "s17":
    CONFIGS["reset top-p, paragraphs"] = ReSETConfig(t_low=0.1, tau0=0.5505, t_high=1.0, window=32, top_p=0.95,
                                                     double_newline_ids=(11,))
    LAST["reset top-p, paragraphs"] = 11
GROUPINGS = tuple(f"RESET_NATIVE_SAMPLER_{v}_CHUNKS" for v in ("STATS", "BIN", "SAMPLE"))
REPEATS, SERIES = 200, 5
BATCHES = tuple(int(b) for b in os.environ.get("SAMPLER_SWITCH_BATCHES", "1,8,64").split(","))
FRESH = os.environ.get("SAMPLER_SWITCH_FRESH") == "1"
CHECK = os.environ.get("SAMPLER_SWITCH_CHECK", "1") == "1"  # the bit-for-bit check before the timings


def set_variant(name):
    for env in SWITCHES + S11 + S13 + S14 + S15 + S16 + S17 + S18 + S22 + S23 + S25 + GROUPINGS:
        if env in VARIANTS[name]:
            os.environ[env] = VARIANTS[name][env]
        else:
            os.environ.pop(env, None)


def logits_for(rows, step=0):
    gen = torch.Generator(device="cpu").manual_seed(1000 * step + rows)
    return (torch.randn(rows, VOCAB, generator=gen) * 3).cuda()


def outputs(config, rows, variant, fixed_last=None):
    """Tokens, temperatures and entropies of 3 steps from a fresh state, as one tensor of bits."""
    set_variant(variant)
    state = ReSETState(config, rows, VOCAB, device="cuda", seed=3)
    last = torch.full((rows,), -1 if fixed_last is None else fixed_last, device="cuda")
    out = []
    for step in range(3):
        o = decode_step(state, logits_for(rows, step), last)
        out += [o.tokens.view(torch.int32), o.temperatures.view(torch.int32), o.entropies.view(torch.int32)]
        last = o.tokens if fixed_last is None else last
    state.check_errors()
    return torch.cat(out).cpu()


def replay_us(replay, repeats):
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        replay()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) * 1e3 / repeats


def time_variants(config, rows, fixed_last=None):
    """Best-of-SERIES graph-replay time (us) per variant, the variants replayed in turns. SAMPLER_SWITCH_FRESH=1: each
    graph first copies the logits from a second buffer (fresh logits every step, written just before the step as a
    model's LM head would; the copy's time is in every variant's)."""
    z = logits_for(rows)
    source = logits_for(rows, 7) if FRESH else None
    last = torch.full((rows,), -1 if fixed_last is None else fixed_last, device="cuda")

    def step(state):
        if FRESH:
            z.copy_(source)
        return decode_step(state, z, last)

    graphs = {}
    for name in VARIANTS:
        set_variant(name)
        state = ReSETState(config, rows, VOCAB, device="cuda", seed=0)
        graphs[name] = (graph_of(lambda s=state: step(s), 1), state)
    for replay, _ in graphs.values():
        for _ in range(20):
            replay()
    torch.cuda.synchronize()
    best = {name: float("inf") for name in VARIANTS}
    for _ in range(SERIES):
        for name, (replay, _) in graphs.items():
            best[name] = min(best[name], replay_us(replay, REPEATS))
    return best


def run_ncu():
    for variant in os.environ.get("SAMPLER_NCU_VARIANTS", "old,default").split(","):
        set_variant(variant)
        state = ReSETState(CONFIGS["reset top-p"], 64, VOCAB, device="cuda", seed=0)
        z, last = logits_for(64), torch.full((64,), -1, device="cuda")
        for _ in range(2):
            decode_step(state, z, last)
        torch.cuda.synchronize()
    print("ncu steps done (2 steps per variant at B = 64)")


NCU_METRICS = {"gpu__time_duration.sum": "us", "smsp__inst_executed.sum": "Minst",
               "sm__inst_issued.avg.pct_of_peak_sustained_active": "issue%",
               "sm__warps_active.avg.pct_of_peak_sustained_active": "occ%",
               "sm__throughput.avg.pct_of_peak_sustained_elapsed": "sm%", "lts__t_sector_hit_rate.pct": "L2hit%",
               "dram__bytes_read.sum": "dramMB"}


# With --section WarpStateStats: warps stalled per issued instruction, by reason (the largest; "long_sb": waiting on
# global loads' scoreboard).
NCU_STALLS = {"long_scoreboard": "long_sb", "short_scoreboard": "shrt_sb", "wait": "wait", "barrier": "barrier",
              "math_pipe_throttle": "math", "mio_throttle": "mio", "lg_throttle": "lg_thr", "not_selected": "not_sel",
              "selected": "select", "branch_resolving": "branch", "no_instruction": "no_inst", "membar": "membar",
              "dispatch_stall": "dispatch"}


def ncu_table(path):
    """Per kernel launch of `ncu ... sampler_switches.py ncu` (CSV, --print-units base): the metrics above, and the
    stall reasons where the log has them."""
    import csv
    import re
    with open(path) as f:
        lines = [line for line in f if line.startswith('"')]
    reader = csv.DictReader(lines)
    name_key = next((k for k in reader.fieldnames or () if k in ("Kernel Name", "Function Name", "Name")), None)
    if name_key is None or "ID" not in reader.fieldnames:
        print("ncu CSV not understood:", reader.fieldnames)
        return
    kernels = {}
    for row in reader:
        found = re.search(r"(stats_kernel|topp_bins_kernel|sample_kernel)(<[^>]*>|I[^E]*E)?", row[name_key])
        name = found.group(0)[:32] if found else row[name_key][:32]
        entry = kernels.setdefault(row["ID"], (name, row.get("Grid Size", ""), {}))
        text = row["Metric Value"].replace(",", "")
        entry[2][row["Metric Name"]] = float(text) if text not in ("", "n/a") else float("nan")
    print("ncu, B = 64, reset top-p: two steps per variant (SAMPLER_NCU_VARIANTS), in launch order")
    found = sorted({k for _, _, m in kernels.values() for k in m
                    if re.fullmatch(r"smsp__average_warps?_issue_stalled_\w+_per_issue_active\.ratio", k)})
    reason = {k: re.search(r"stalled_(\w+)_per_issue", k).group(1) for k in found}
    stalls = {k: NCU_STALLS[reason[k]] for k in found if reason[k] in NCU_STALLS}  # the reasons named above
    print(f"{'kernel':32} {'grid':>12} " + " ".join(f"{v:>7}" for v in NCU_METRICS.values()) +
          "".join(f" {v:>7}" for v in stalls.values()))
    scale = {"us": 1e-3, "Minst": 1e-6, "dramMB": 1e-6}
    for name, grid, m in kernels.values():
        print(f"{name:32} {grid:>12} " + " ".join(
            f"{m.get(k, float('nan')) * scale.get(v, 1):7.1f}" for k, v in NCU_METRICS.items()) +
            "".join(f" {m.get(k, float('nan')):7.2f}" for k in stalls))


def bins_kernels():
    """The top-p bins kernel (its template arguments: dtype, lean, phased, carry) of one B = 1 ReSET top-p step per
    variant, from the torch profiler's kernel rows (as bench_e2e.py --profile; after a warm step).
    SAMPLER_SWITCH_KERNEL names another kernel (e.g. stats_kernel: dtype, grouped, phased, fast) and
    SAMPLER_SWITCH_KERNEL_ROWS the batches (comma-separated, default 1)."""
    kernel = os.environ.get("SAMPLER_SWITCH_KERNEL", "topp_bins_kernel")
    for rows in (int(r) for r in os.environ.get("SAMPLER_SWITCH_KERNEL_ROWS", "1").split(",")):
        print(f"B = {rows}:")
        kernels_of(kernel, rows)


def kernels_of(kernel, rows):
    from torch.profiler import ProfilerActivity, profile
    for name in VARIANTS:
        set_variant(name)
        state = ReSETState(CONFIGS["reset top-p"], rows, VOCAB, device="cuda", seed=0)
        z, last = logits_for(rows), torch.full((rows,), -1, device="cuda")
        decode_step(state, z, last)
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            decode_step(state, z, last)
            torch.cuda.synchronize()
        seen = sorted({e.key for e in prof.key_averages() if kernel in e.key})
        shown = [n[n.index(kernel):].split("(")[0] for n in seen]
        print(f"{name:10} {', '.join(shown) or 'no ' + kernel + ' seen'}")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "kernels":
        bins_kernels()
        return
    if len(sys.argv) > 1 and sys.argv[1] == "ncu":
        run_ncu()
        return
    if len(sys.argv) > 2 and sys.argv[1] == "ncu-table":
        ncu_table(sys.argv[2])
        return
    print(f"{torch.cuda.get_device_name()}; us per step, CUDA-graph replays, best of {SERIES} x {REPEATS}" +
          ("; each step copies fresh logits in first" if FRESH else ""))
    checked = mismatched = 0
    for rows in BATCHES if CHECK else ():
        for cname, config in CONFIGS.items():
            want = outputs(config, rows, "old", LAST.get(cname))
            for name in VARIANTS:
                if name == "old":
                    continue
                checked += 1
                if not torch.equal(outputs(config, rows, name, LAST.get(cname)), want):
                    mismatched += 1
                    print(f"  MISMATCH: B={rows} {cname} {name}")
    print(f"bit for bit against old (tokens, temperatures, entropies; 3 steps; B = {BATCHES} x 2 configs): "
          f"{checked} checked, {mismatched} mismatched")
    results = []
    others = [n for n in VARIANTS if n not in ("old", "default")]
    header = "| B | config | " + " | ".join(VARIANTS) + " | default - old | " + " | ".join(
        f"{n} - default" for n in others) + " |"
    lines = [header, "|" + "---|" * (len(VARIANTS) + 3 + len(others))]
    for rows in BATCHES:
        for cname, config in CONFIGS.items():
            best = time_variants(config, rows, LAST.get(cname))
            results.append({"batch": rows, "config": cname, **{f"{k}_us": v for k, v in best.items()}})
            lines.append(f"| {rows} | {cname} | " + " | ".join(f"{best[n]:.2f}" for n in VARIANTS) +
                         f" | {best['default'] - best['old']:+.2f} | " +
                         " | ".join(f"{best[n] - best['default']:+.2f}" for n in others) + " |")
    for name in SWITCHES + S11 + S13 + S14 + S15 + S16 + S17 + S18 + S22 + S23 + S25 + GROUPINGS:
        os.environ.pop(name, None)
    out = Path(os.environ.get("SAMPLER_SWITCH_OUT", Path(__file__).resolve().parents[1] / "out"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "sampler_switches.json").write_text(json.dumps(
        {"device": torch.cuda.get_device_name(), "checked": checked, "mismatched": mismatched, "results": results},
        indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
