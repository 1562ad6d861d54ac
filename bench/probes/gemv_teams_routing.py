"""Host-side model of the NVFP4 GEMV's whole routing for bf16 x at M = 1..16 on the fast path without the ring (gemv.cu
make_plan / ksplit_for, gemv_dispatch.cuh dispatch_mode, gemv_bd_split.cuh bd_split_slices, gemv_split.cuh
choose_ksplit, gemv_bd_kernel.cuh try_bd, gemv_launch.cuh dispatch_tokens), A16 ("bf16") and W4A4 ("nvfp4"), under
each RESET_NATIVE_GEMV_TEAMS value: unset (the default rule, kTeamsDefault since session 19 helper teams27), "2" (two
teams wherever x fits whole), "measured" (session 10's rule, kTeamsMeasured, the default before) and "1" (never).
kForm16RedPad is counted on every eligible instance: A16 16-bit x and W4A4 (both defaults since session 19;
--w4a4-nopad models W4A4 without it; route(..., a16_pad=False, w4a4_pad=False) models RESET_NATIVE_GEMV_16_FORM=nopad,
which routes without the pad). fp16 x routes as bf16 x; fp32 x never takes two teams by a rule, the general path (K
% 1024 != 0) never: neither is modelled. No GPU: an H200's 132 SMs, 227 KiB opt-in.

  python3 bench/probes/gemv_teams_routing.py              # Qwen3 layers, M = 1..16: rows whose instance moves
  python3 bench/probes/gemv_teams_routing.py --all        # every row
  python3 bench/probes/gemv_teams_routing.py --rows ENV   # "layer:M,..." of the rows ENV moves against unset
  python3 bench/probes/gemv_teams_routing.py --check      # the header quantities, to diff with
                                                          # gemv_teams_routing_check.cu
  python3 bench/probes/gemv_teams_routing.py --bd-rule w4a4bd [--shapes N:K,...]
      # W4A4 rows (Qwen3 layers, or these shapes) whose instance RESET_NATIVE_GEMV_BD=w4a4bd / w4a4k moves against the
      # default (w4a4kt since session 21), M = 1..16
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gemv16_pad_routing import (H200_OPTIN, H200_SMS, K_CHUNK, QWEN3, SPLIT_MIN_WHOLE, WHOLE_LIMIT,  # noqa: E402
                                WHOLE_LIMIT_THREE, pad_bytes, smem_bytes, split_smem_bytes,
                                three_ctas_balance_better)
from gemv16_w4a4_pad_routing import w4a4_few_tiles_slices  # noqa: E402

# gemv_launch.cuh TeamsRule: per mode (A16, W4A4) min tokens, max tokens, max K, max row tiles per SM
NO_LIMIT = 1 << 30  # kTeamsNoLimit
TEAMS_MEASURED = ((4, 8, 5120, 12), (1, 0, 5120, 12))
TEAMS_DEFAULT = ((2, 16, NO_LIMIT, 12), (2, 16, NO_LIMIT, NO_LIMIT))
SPLIT_MIN_CHUNKS_BD = 20  # kSplitMinChunksBd
BD_MAX_K_ONE, BD_MAX_K_TWO = 16384, 12288  # kBdMaxKOneToken, kBdMaxKTwoTokens
BD_TILE_EPI, BD_REDUCE, BD_MAX_RATIO, BD_MAX_SLICES, BD_EVEN_SLACK = 0.5, 4.0, 0.9, 16, 1.05
ENVS = (None, "2", "measured", "1")
# RESET_NATIVE_GEMV_BD's W4A4 two-token rules (gemv_bd_w4a4_rule.cuh): None (unset) = "w4a4kt", the default since
# session 21; "w4a4bd" = none (the block-diagonal kernel at every K, as before)
BD_W4A4_RULES = (None, "w4a4kt", "w4a4k", "w4a4bd")
BD_W4A4_RULE_MAX_K, BD_W4A4_RULE_SHORT_K, BD_W4A4_RULE_MAX_TILES_PER_SLOT = 12288, 6144, 3


def bd_smem(k, m, tokens):
    """BdSmem(k, m, tokens).total (no fused extras)."""
    kpad = -(-k // K_CHUNK) * K_CHUNK
    row = kpad * 2 + 16
    return m * row + 4 * 16 + m * (kpad // 16) * 4 + 2 * 8 * 16 * tokens * 4


def bd_w4a4_rule_declines(n, k, m, bd_rule, sms=H200_SMS, teams=True):
    """gemv_bd_w4a4_rule.cuh bd_w4a4_rule_declines: the W4A4 two-token calls bd_rule gives to the 16-bit kernel (teams:
    that kernel would take two teams, teams_here)."""
    assert bd_rule in BD_W4A4_RULES
    bd_rule = bd_rule or "w4a4kt"
    if m != 2 or not teams or bd_rule == "w4a4bd":
        return False
    if k >= BD_W4A4_RULE_MAX_K:
        return True
    tiles, slots = (n + 15) // 16, 2 * sms
    short_k = k <= BD_W4A4_RULE_SHORT_K
    return bd_rule == "w4a4kt" and short_k and slots < tiles <= BD_W4A4_RULE_MAX_TILES_PER_SLOT * slots


def bd_chosen(k, m, w4a4, n=0, bd_rule=None, sms=H200_SMS, env=None):
    """bd_chosen (n, bd_rule: RESET_NATIVE_GEMV_BD's W4A4 two-token rule, None = the default; env:
    RESET_NATIVE_GEMV_TEAMS)."""
    if w4a4 and bd_w4a4_rule_declines(n, k, m, bd_rule, sms, teams_here(n, k, m, True, env, sms)):
        return False
    return m <= 2 and (w4a4 or k < (BD_MAX_K_ONE if m == 1 else BD_MAX_K_TWO))


def bd_split_slices(n, k, m, w4a4, sms=H200_SMS):
    """bd_split_slices for bf16 x on the fast path without the ring, no switches."""
    if w4a4 or m > 2:
        return 1
    nchunks, ntiles, slots = k // K_CHUNK, (n + 15) // 16, 2 * sms

    def fits(s):
        return bd_smem(-(-nchunks // s) * K_CHUNK, m, m) <= WHOLE_LIMIT

    if ntiles < slots:
        return 1

    def cost(s):
        per_slice = min(slots // s, ntiles)
        rounds = -(-ntiles // per_slice)
        return rounds * (-(-nchunks // s) + BD_TILE_EPI) + (BD_REDUCE if s > 1 else 0.0)

    cands = [s for s in range(2, min(nchunks, BD_MAX_SLICES, slots) + 1) if fits(s)]
    best = 1
    for s in cands:
        if cost(s) < cost(best):
            best = s
    if best == 1 or cost(best) > BD_MAX_RATIO * cost(1):
        return 1
    even = 0
    for s in cands:
        if nchunks % s == 0 and cost(s) <= BD_EVEN_SLACK * cost(best) and (even == 0 or cost(s) < cost(even)):
            even = s
    return even if even > 0 and cost(even) <= BD_MAX_RATIO * cost(1) else best


def choose_ksplit(n, k, m, w4a4, pad, sms=H200_SMS, bd_off=False, bd_rule=None, env=None):
    """choose_ksplit for bf16 x (A16 or W4A4), no override; pad: the split kernel's form has kForm16RedPad; bd_off:
    RESET_NATIVE_GEMV_BD=0; bd_rule: its W4A4 two-token rule; env: RESET_NATIVE_GEMV_TEAMS."""
    nt = 2 if m > 8 else 1
    nchunks = k // K_CHUNK

    def fits(s):
        return split_smem_bytes(k, m, nt, s) + pad_bytes(1, pad) <= WHOLE_LIMIT

    bd = not bd_off and bd_chosen(k, m, w4a4, n, bd_rule, sms, env) and bd_smem(k, m, m) <= WHOLE_LIMIT
    if nchunks < 8 or (nchunks < SPLIT_MIN_CHUNKS_BD if bd else split_smem_bytes(k, m, nt, 1) <= SPLIT_MIN_WHOLE):
        s = w4a4_few_tiles_slices(n, m, nchunks, sms) if w4a4 else 1
        return s if s > 1 and fits(s) else 1
    two = (nchunks + 1) // 2
    if fits(two):
        return two
    return nchunks if fits(nchunks) else 1


def teams_where_two_ctas_fit(n, k, m, w4a4, rule, sms=H200_SMS):
    lo, hi, max_k, max_tiles = rule[1] if w4a4 else rule[0]
    return lo <= m <= hi and k <= max_k and (n + 15) // 16 <= max_tiles * sms


def teams_here(n, k, m, w4a4, env, sms=H200_SMS):
    """gemv_launch.cuh teams_here (bf16 x): two teams where two CTAs per SM would fit, under RESET_NATIVE_GEMV_TEAMS."""
    rule = TEAMS_MEASURED if env == "measured" else TEAMS_DEFAULT
    return env == "2" or (env != "1" and teams_where_two_ctas_fit(n, k, m, w4a4, rule, sms))


def route(act, n, k, m, env=None, w4a4_pad=True, sms=H200_SMS, optin=H200_OPTIN, a16_pad=True, bd_off=False,
          bd_rule=None):
    """The kernel a bf16-x call runs: ('bd',) / ('bd-split', s) / ('split', s) (16-bit, two CTAs per SM) /
    (MINB, TEAMS) of the unsplit 16-bit kernel / ('chunked',). env: RESET_NATIVE_GEMV_TEAMS (None: unset); bd_off:
    RESET_NATIVE_GEMV_BD=0 (no block-diagonal kernel, no block-diagonal split); bd_rule: RESET_NATIVE_GEMV_BD=w4a4kt /
    w4a4k / w4a4bd (None: unset, the default w4a4kt)."""
    assert k % K_CHUNK == 0 and 1 <= m <= 16 and env in ENVS
    w4a4 = act == "nvfp4"
    pad = w4a4_pad if w4a4 else a16_pad
    s = 1 if bd_off else bd_split_slices(n, k, m, w4a4, sms)
    if s > 1:
        return ("bd-split", s)
    s = choose_ksplit(n, k, m, w4a4, pad, sms, bd_off, bd_rule, env)
    if s > 1:
        return ("split", s)
    if not bd_off and bd_chosen(k, m, w4a4, n, bd_rule, sms, env) and bd_smem(k, m, m) <= WHOLE_LIMIT:
        return ("bd",)
    nt = 2 if m > 8 else 1
    whole = smem_bytes(k, m, nt)
    teams2 = smem_bytes(k, m, nt, 2) + pad_bytes(2, pad)
    if teams_here(n, k, m, w4a4, env, sms) and teams2 <= optin:
        return (1, 2)
    if not w4a4 and nt == 1 and whole <= WHOLE_LIMIT_THREE and three_ctas_balance_better((n + 15) // 16, sms):
        return (3, 1)
    if whole + pad_bytes(1, pad) <= WHOLE_LIMIT:
        return (2, 1)
    if whole + pad_bytes(1, pad) <= optin:
        return (1, 2) if env != "1" and teams2 <= optin else (1, 1)
    return ("chunked",)


def name(inst):
    """MINB=.. TEAMS=.. / split s / bd for a table cell."""
    if isinstance(inst[0], int):
        return f"{inst[0]}cta" if inst[1] == 1 else "teams"
    return inst[0] + (f"/{inst[1]}" if len(inst) > 1 else "")


def layers():
    for model, rows in QWEN3.items():
        for lname, n, k in rows:
            yield f"{model}:{lname}", n, k


def moved_rows(act, env, base=None, w4a4_pad=True):
    """(layer, n, k, m, base instance, env instance) of the Qwen3 rows whose instance env changes against base."""
    out = []
    for layer, n, k in layers():
        for m in range(1, 17):
            a, b = route(act, n, k, m, base, w4a4_pad), route(act, n, k, m, env, w4a4_pad)
            if a != b:
                out.append((layer, n, k, m, a, b))
    return out


def check_lines(w4a4_pad=True):
    """What gemv_teams_routing_check.cu prints from the headers (w4a4_pad: the W4A4 split kernel has the pad, as with
    gemv25's default; False: as before it, --check --w4a4-nopad)."""
    shapes = [(6144, 4096), (4096, 4096), (24576, 4096), (4096, 12288), (10240, 5120), (5120, 8192), (51200, 5120),
              (5120, 25600), (200, 4096), (8, 4096), (16 * 12 * H200_SMS, 4096), (16 * 12 * H200_SMS + 16, 4096)]
    for act in ("bf16", "nvfp4"):
        w4a4 = act == "nvfp4"
        for n, k in shapes:
            for m in range(1, 17):
                nt = 2 if m > 8 else 1
                tw = [int(teams_where_two_ctas_fit(n, k, m, w4a4, r)) for r in (TEAMS_MEASURED, TEAMS_DEFAULT)]
                print(f"{act} {n} {k} {m} bds={bd_split_slices(n, k, m, w4a4)} "
                      f"ks={choose_ksplit(n, k, m, w4a4, w4a4_pad or not w4a4)} bd={int(bd_chosen(k, m, w4a4, n))} "
                      f"bdsmem={bd_smem(k, m, m)} measured={tw[0]} default={tw[1]} "
                      f"three={int(three_ctas_balance_better((n + 15) // 16, H200_SMS))} "
                      f"whole={smem_bytes(k, m, nt)}")


def bd_rule_rows(bd_rule, shapes=None):
    """(label, n, k, m, default instance, bd_rule's instance) of the W4A4 rows (Qwen3 layers, or shapes [(n, k)])
    whose instance bd_rule moves, M = 1..16."""
    rows = list(layers()) if shapes is None else [(f"{n}x{k}", n, k) for n, k in shapes]
    out = []
    for label, n, k in rows:
        for m in range(1, 17):
            a, b = route("nvfp4", n, k, m), route("nvfp4", n, k, m, bd_rule=bd_rule)
            if a != b:
                out.append((label, n, k, m, a, b))
    return out


def main():
    args = sys.argv[1:]
    if "--bd-rule" in args:
        rule = args[args.index("--bd-rule") + 1]
        shapes = None
        if "--shapes" in args:
            shapes = [tuple(int(v) for v in s.split(":")) for s in args[args.index("--shapes") + 1].split(",")]
        for label, n, k, m, a, b in bd_rule_rows(rule, shapes):
            print(f"nvfp4 {label:11s} [{n},{k}] M={m:2d}: {name(a)} -> {name(b)}")
        return None
    if "--check" in args:
        return check_lines("--w4a4-nopad" not in args)
    if "--rows" in args:  # the sweep's --rows value: layer:M of the rows whose instance the value moves (either act)
        env = args[args.index("--rows") + 1]
        act = args[args.index("--act") + 1] if "--act" in args else "bf16"
        print(",".join(f"{r[0]}:{r[3]}" for r in moved_rows(act, env)))
        return None
    show_all = "--all" in args
    for act in ("bf16", "nvfp4"):
        print(f"# act {act}: Qwen3 layers, M = 1..16; instance under RESET_NATIVE_GEMV_TEAMS = unset | 2 | measured | 1 "
              f"(3cta/2cta/1cta: MINB, TEAMS = 1; teams: MINB = 1, TEAMS = 2; split/s, bd, bd-split/s)")
        for layer, n, k in layers():
            for m in range(1, 17):
                cells = [route(act, n, k, m, env) for env in ENVS]
                flag = ("  MOVES(2)" if cells[1] != cells[0] else "") + \
                    ("  DEFAULT-MOVED" if cells[2] != cells[0] else "")
                if show_all or flag:
                    print(f"{act:5s} {layer:11s} [{n},{k}] M={m:2d}: " + " | ".join(f"{name(c):9s}" for c in cells)
                          + flag)
        for env in ("2", "measured"):
            rows = moved_rows(act, env)
            print(f"# {act}: {len(rows)} rows differ under {env}: " + ",".join(f"{r[0]}:{r[3]}" for r in rows))
    return None


if __name__ == "__main__":
    main()
