"""Host-side model of the 16-bit NVFP4 GEMV's routing (cuda/nvfp4/gemv_launch.cuh dispatch_tokens, gemv_split.cuh
choose_ksplit) for A16 calls with bf16/fp16 x on the fast path (K % 1024 == 0, aligned weights), without the ring:
which instance (MINB, SPLIT, TEAMS) and how many K slices a shape gets with kForm16RedPad's shared memory counted
(the default since session 19) and without it (RESET_NATIVE_GEMV_16_FORM=nopad, the routing of sessions 16-18).
No GPU: the constants are the headers' and an H200's (132 SMs, 227 KiB opt-in per block). Its two-team rule is
session 10's (RESET_NATIVE_GEMV_TEAMS=measured since session 19 helper teams27); gemv_teams_routing.py models the
default rule (kTeamsDefault).

  python3 bench/probes/gemv16_pad_routing.py            # Qwen3 layers at M = 3..16, the tests' shapes, the window
  python3 bench/probes/gemv16_pad_routing.py --check    # sizes and slices, to diff with the A16 lines of
                                                        # gemv16_pad_routing_check.cu
"""
from __future__ import annotations

import math
import sys

K_CHUNK = 1024
ROW_BYTES = (K_CHUNK + 32) * 2  # kTokStride u16 per staged token row
WARPS = 8
WHOLE_LIMIT = 110 * 1024  # kWholeSmemLimit (x fits next to a second CTA)
WHOLE_LIMIT_THREE = 72 * 1024  # kWholeSmemLimitThree
SPLIT_MIN_WHOLE = 96 * 1024  # kSplitMinWholeBytes
TEAMS_MIN_TOK, TEAMS_MAX_TOK, TEAMS_MAX_K, TEAMS_MAX_TILES_PER_SM = 4, 8, 5120, 12
H200_SMS, H200_OPTIN = 132, 227 * 1024
RED_PAD = 2  # kRedPad floats per reduction row


def smem_bytes(k, m, nt, teams=1):
    """smem_bytes<16-bit x, A16, NT, WHOLE = true, TEAMS>: staged x, one zero row, 2 * TEAMS reduction buffers."""
    nchunks = -(-k // K_CHUNK)
    return (nchunks * m + 1) * ROW_BYTES + 2 * teams * WARPS * 16 * 8 * nt * 4


def pad_bytes(teams, pad):
    """red_pad_bytes of an eligible instance (fast, whole x, no ring, MINB != 3) when its form has the pad."""
    return 2 * teams * WARPS * 16 * RED_PAD * 4 if pad else 0


def split_smem_bytes(k, m, nt, s):
    """split_smem_bytes: smem_bytes of the largest slice (ceil(chunks / s) chunks), without the pad."""
    slice_chunks = -(-(-(-k // K_CHUNK)) // s)
    return smem_bytes(slice_chunks * K_CHUNK, m, nt)


def choose_ksplit(k, m, pad):
    """choose_ksplit for A16 16-bit x (no W4A4 branch), m >= 3 (no block-diagonal kernel), no override."""
    nt = 2 if m > 8 else 1
    nchunks = k // K_CHUNK

    def fits(s):
        return split_smem_bytes(k, m, nt, s) + pad_bytes(1, pad) <= WHOLE_LIMIT

    if nchunks < 8 or split_smem_bytes(k, m, nt, 1) <= SPLIT_MIN_WHOLE:
        return 1
    two = (nchunks + 1) // 2
    if fits(two):
        return two
    return nchunks if fits(nchunks) else 1


def three_ctas_balance_better(ntiles, sms):
    def balance(per_sm):
        rounds = ntiles / (sms * per_sm)
        return rounds / math.ceil(rounds)

    return balance(3) > balance(2) + 1e-9


def route(n, k, m, pad, teams_env=None, sms=H200_SMS, optin=H200_OPTIN):
    """(MINB, SPLIT, TEAMS, ksplit) of the 16-bit kernel, or ('chunked', ...), and the bytes the launch asks for."""
    assert k % K_CHUNK == 0 and 3 <= m <= 16
    nt = 2 if m > 8 else 1
    s = choose_ksplit(k, m, pad)
    if s > 1:
        return (2, 1, 1, s), split_smem_bytes(k, m, nt, s) + pad_bytes(1, pad)
    ntiles = (n + 15) // 16
    whole = smem_bytes(k, m, nt)
    teams2 = smem_bytes(k, m, nt, 2) + pad_bytes(2, pad)
    teams_where = TEAMS_MIN_TOK <= m <= TEAMS_MAX_TOK and k <= TEAMS_MAX_K and ntiles <= TEAMS_MAX_TILES_PER_SM * sms
    teams_here = teams_env == "2" or (teams_env is None and teams_where)
    if teams_here and teams2 <= optin:
        return (1, 0, 2, 1), teams2
    if nt == 1 and whole <= WHOLE_LIMIT_THREE and three_ctas_balance_better(ntiles, sms):
        return (3, 0, 1, 1), whole
    if whole + pad_bytes(1, pad) <= WHOLE_LIMIT:
        return (2, 0, 1, 1), whole + pad_bytes(1, pad)
    if whole + pad_bytes(1, pad) <= optin:
        if teams_env != "1" and teams2 <= optin:
            return (1, 0, 2, 1), teams2
        return (1, 0, 1, 1), whole + pad_bytes(1, pad)
    return ("chunked", 0, 1, 1), None


QWEN3 = {
    "8b": [("qkv", 6144, 4096), ("o", 4096, 4096), ("gate_up", 24576, 4096), ("down", 4096, 12288)],
    "32b": [("qkv", 10240, 5120), ("o", 5120, 8192), ("gate_up", 51200, 5120), ("down", 5120, 25600)],
}

# (n, k, m, teams env) of the GPU tests that assert the 16-bit kernel's instance (tests/test_nvfp4_gpu_form16*.py,
# test_nvfp4_gpu_teams_rule.py, test_nvfp4_cuda_split.py, test_nvfp4_cuda_teams.py), at m >= 3.
TEST_SHAPES = [
    (200, 4096, 3, None), (200, 2048, 12, None), (200, 4096, 4, None), (8, 4096, 5, None), (200, 4096, 16, None),
    (200, 8192, 6, None), (200, 9216, 16, None), (200, 9216, 5, None), (200, 4096, 16, "1"), (6144, 4096, 3, None),
    (199, 4096, 16, None), (4097, 5120, 11, None), (199, 12288, 16, None), (1000, 5120, 16, None),
    (200, 4096, 8, None), (136, 5120, 6, None), (200, 4096, 9, None), (72, 6144, 7, None), (24576, 4096, 16, None),
    (6144, 4096, 4, None), (4096, 4096, 8, None), (10240, 5120, 6, None), (6144, 4096, 8, None),
    (16 * 12 * H200_SMS, 4096, 8, None), (16 * 12 * H200_SMS + 16, 4096, 8, None), (6144, 4096, 9, None),
    (5120, 8192, 4, None), (64, 12288, 16, None), (64, 12288, 4, None), (64, 12288, 3, None), (200, 8192, 16, None),
    (8, 4096, 16, None), (24, 4096, 16, None), (136, 5120, 12, None), (200, 6144, 16, None), (200, 6144, 16, "1"),
]


def changes(shapes):
    out = []
    for n, k, m, teams in shapes:
        a, b = route(n, k, m, False, teams), route(n, k, m, True, teams)
        out.append((n, k, m, teams, a, b))
    return out


def window():
    """Every (K chunks, m) on the fast path whose instance changes with the pad, for n large and small (any K up to
    64 chunks, m = 3..16, teams unset and '1')."""
    found = []
    for nchunks in range(1, 65):
        for m in range(3, 17):
            for n in (64, 200, 4096, 51200):
                for teams in (None, "1", "2"):
                    a, b = route(n, nchunks * K_CHUNK, m, False, teams), route(n, nchunks * K_CHUNK, m, True, teams)
                    if a[0] != b[0]:
                        found.append((n, nchunks * K_CHUNK, m, teams, a, b))
    return found


def check_lines():
    """The A16 lines bench/probes/gemv16_pad_routing_check.cu prints from the headers' functions (diff them)."""
    shapes = [(6144, 4096), (4096, 4096), (24576, 4096), (4096, 12288), (10240, 5120), (5120, 8192), (51200, 5120),
              (5120, 25600), (200, 2048), (200, 6144), (200, 8192), (200, 9216), (64, 12288)]
    for n, k in shapes:
        for m in range(3, 17):
            for pad in (False, True):
                nt = 2 if m > 8 else 1
                ks = choose_ksplit(k, m, pad)
                whole = smem_bytes(k, m, nt)
                print(f"{n} {k} {m} {'pad' if pad else 'nopad'} ks={ks} "
                      f"split={split_smem_bytes(k, m, nt, ks) + pad_bytes(1, pad)} two={whole + pad_bytes(1, pad)} "
                      f"one={whole + pad_bytes(1, pad)} teams={smem_bytes(k, m, nt, 2) + pad_bytes(2, pad)} "
                      f"three={whole}")


def main():
    if "--check" in sys.argv:
        return check_lines()
    print("# Qwen3 layers, M = 3..16: instance (MINB, SPLIT, TEAMS, ksplit) and launch bytes, nopad -> pad")
    for model, layers in QWEN3.items():
        for name, n, k in layers:
            for m in range(3, 17):
                (a, sa), (b, sb) = route(n, k, m, False), route(n, k, m, True)
                flag = "" if a == b else "  CHANGED"
                print(f"{model:3s} {name:8s} [{n},{k}] M={m:2d}: {a} {sa} -> {b} {sb}{flag}")
    print("# test shapes")
    for n, k, m, teams, (a, sa), (b, sb) in changes(TEST_SHAPES):
        flag = "" if a == b else "  CHANGED"
        print(f"[{n},{k}] M={m:2d} teams={teams}: {a} {sa} -> {b} {sb}{flag}")
    print("# every fast-path (K <= 64 chunks, M = 3..16) shape whose instance changes")
    for row in window():
        print(row)
    # The largest fast-path K whose x is staged whole at M = 16 (one CTA per SM; no split below 8 chunks).
    best = max(c for c in range(1, 65) if route(200, c * K_CHUNK, 16, True)[0][1] == 0
               and route(200, c * K_CHUNK, 16, True)[0][0] != "chunked")
    print(f"# largest whole-x K at M = 16 (fast path): {best * K_CHUNK}: {route(200, best * K_CHUNK, 16, True)}, "
          f"teams=1: {route(200, best * K_CHUNK, 16, True, '1')}, opt-in {H200_OPTIN}")


if __name__ == "__main__":
    main()
