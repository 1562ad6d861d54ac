"""Host-side model of the 16-bit NVFP4 GEMV's routing for W4A4 (bf16 / fp16 x) on the fast path without the ring, with
kForm16RedPad (unset: the default since session 19 helper gemv25; its 2 KB per team counted, as the launch asks for
it) and without it (RESET_NATIVE_GEMV_16_FORM=nopad: FORM 0, the routing through session 18). Extends
gemv16_pad_routing.py (A16, 16-bit x); the differences: W4A4 splits K by 4 from 4 tokens when there are fewer than 4
row tiles per SM and at least 8 K chunks or fewer row tiles than SMs (choose_ksplit; since session 20), and has
neither the three-CTA kernel nor two teams where two CTAs fit (session 10's rule, RESET_NATIVE_GEMV_TEAMS=measured
since session 19 helper teams27, whose default takes two teams there at 2..16 tokens: gemv_teams_routing.py). Also
models, as a what-if, fp32 x at A16 (three staged bf16 parts: 3x the rows), which the pad leaves out because of what
it would do to its routing. No GPU: an H200's 132 SMs, 227 KiB opt-in.

  python3 bench/probes/gemv16_w4a4_pad_routing.py          # Qwen3 layers at M = 3..16, the tests' shapes, the window
  python3 bench/probes/gemv16_w4a4_pad_routing.py --check  # W4A4 sizes and slices, to diff with the "w4a4"
                                                           # lines of gemv16_pad_routing_check.cu
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gemv16_pad_routing import (H200_OPTIN, H200_SMS, K_CHUNK, QWEN3, ROW_BYTES, SPLIT_MIN_WHOLE,  # noqa: E402
                                WARPS, WHOLE_LIMIT, pad_bytes)

SPLIT_W4A4_MIN_TOKENS, SPLIT_W4A4_SLICES = 4, 4  # kSplitW4A4MinTokens, kSplitW4A4Slices
SPLIT_W4A4_MIN_CHUNKS = 8  # kSplitW4A4MinChunks (or fewer row tiles than SMs; since session 20)
MODES = ("w4a4", "f32")  # W4A4 with bf16 / fp16 x (x staged as fp16 values); what-if: A16 with fp32 x (3 bf16 parts)


def smem_bytes(mode, k, m, nt, teams=1):
    """smem_bytes<XDT, W4A4, NT, WHOLE = true, TEAMS>: kSplits copies of (staged x + one zero row), the buffers."""
    splits = 3 if mode == "f32" else 1
    nchunks = -(-k // K_CHUNK)
    return splits * (nchunks * m + 1) * ROW_BYTES + 2 * teams * WARPS * 16 * 8 * nt * 4


def split_smem_bytes(mode, k, m, nt, s):
    slice_chunks = -(-(-(-k // K_CHUNK)) // s)
    return smem_bytes(mode, slice_chunks * K_CHUNK, m, nt)


def w4a4_few_tiles_slices(n, m, nchunks, sms=H200_SMS):
    """choose_ksplit's W4A4 split where A16 would not: kSplitW4A4Slices slices (at most one per chunk) from
    kSplitW4A4MinTokens tokens, with fewer than 4 row tiles per SM and at least kSplitW4A4MinChunks K chunks or fewer
    row tiles than SMs (since session 20); 1 = no split. The caller checks that the slices fit."""
    ntiles = (n + 15) // 16
    few_tiles = ntiles < 4 * sms and (nchunks >= SPLIT_W4A4_MIN_CHUNKS or ntiles < sms)
    if m >= SPLIT_W4A4_MIN_TOKENS and few_tiles and nchunks >= 2:
        return min(nchunks, SPLIT_W4A4_SLICES)
    return 1


def choose_ksplit(mode, n, k, m, pad, sms=H200_SMS):
    """choose_ksplit for m >= 3 (no block-diagonal kernel), no override."""
    nt = 2 if m > 8 else 1
    nchunks = k // K_CHUNK

    def fits(s):
        return split_smem_bytes(mode, k, m, nt, s) + pad_bytes(1, pad) <= WHOLE_LIMIT

    if nchunks < 8 or split_smem_bytes(mode, k, m, nt, 1) <= SPLIT_MIN_WHOLE:
        s = w4a4_few_tiles_slices(n, m, nchunks, sms) if mode == "w4a4" else 1
        return s if s > 1 and fits(s) else 1
    two = (nchunks + 1) // 2
    if fits(two):
        return two
    return nchunks if fits(nchunks) else 1


def route(mode, n, k, m, pad, teams_env=None, sms=H200_SMS, optin=H200_OPTIN):
    """(MINB, SPLIT, TEAMS, ksplit) of the 16-bit kernel, or ('chunked', ...), and the bytes the launch asks for."""
    assert k % K_CHUNK == 0 and 3 <= m <= 16
    nt = 2 if m > 8 else 1
    s = choose_ksplit(mode, n, k, m, pad, sms)
    if s > 1:
        return (2, 1, 1, s), split_smem_bytes(mode, k, m, nt, s) + pad_bytes(1, pad)
    whole = smem_bytes(mode, k, m, nt)
    teams2 = smem_bytes(mode, k, m, nt, 2) + pad_bytes(2, pad)
    if teams_env == "2" and teams2 <= optin:
        return (1, 0, 2, 1), teams2
    if whole + pad_bytes(1, pad) <= WHOLE_LIMIT:
        return (2, 0, 1, 1), whole + pad_bytes(1, pad)
    if whole + pad_bytes(1, pad) <= optin:
        if teams_env != "1" and teams2 <= optin:
            return (1, 0, 2, 1), teams2
        return (1, 0, 1, 1), whole + pad_bytes(1, pad)
    return ("chunked", 0, 1, 1), None


# (mode, n, k, m, teams env) of tests/test_nvfp4_gpu_form16_w4a4_pad.py, and the instance it expects with the pad
# (unset; 132 SMs).
TEST_SHAPES = [
    ("w4a4", 200, 4096, 3, None, (2, 0, 1)),
    ("w4a4", 200, 1024, 16, None, (2, 0, 1)),
    ("w4a4", 8448, 4096, 8, None, (2, 0, 1)),
    ("w4a4", 8448, 4096, 16, None, (1, 0, 2)),
    ("w4a4", 8448, 4096, 16, "1", (1, 0, 1)),
    ("w4a4", 200, 4096, 5, None, (2, 1, 1)),
    ("w4a4", 200, 12288, 16, None, (2, 1, 1)),
    ("w4a4", 8448, 4096, 11, None, (1, 0, 2)),  # moves: two CTAs without the pad (nopad)
    ("w4a4", 8448, 6144, 8, None, (1, 0, 2)),  # moves: two CTAs without the pad (nopad)
    ("w4a4", 8448, 4096, 11, "1", (1, 0, 1)),  # moves: two CTAs without the pad (nopad)
]


MOVED = {(8448, 4096, 11), (8448, 6144, 8)}  # two CTAs per SM without the pad (the tests' nopad instance)


def window(mode):
    """Every (K chunks, m, n class, teams env) on the fast path whose instance changes with the pad."""
    found = []
    for nchunks in range(1, 65):
        for m in range(3, 17):
            for n in (64, 200, 4096, 8448, 51200):
                for teams in (None, "1", "2"):
                    k = nchunks * K_CHUNK
                    a, b = route(mode, n, k, m, False, teams), route(mode, n, k, m, True, teams)
                    if a[0] != b[0]:
                        found.append((n, k, m, teams, a, b))
    return found


def check_lines():
    """The "w4a4" lines gemv16_pad_routing_check.cu prints from the headers' functions (diff them)."""
    shapes = [(6144, 4096), (4096, 4096), (24576, 4096), (4096, 12288), (10240, 5120), (5120, 8192), (51200, 5120),
              (5120, 25600), (200, 1024), (200, 2048), (200, 4096), (8448, 4096), (200, 12288)]
    for mode in ("w4a4",):
        for n, k in shapes:
            for m in range(3, 17):
                for pad in (False, True):
                    nt = 2 if m > 8 else 1
                    ks = choose_ksplit(mode, n, k, m, pad)
                    whole = smem_bytes(mode, k, m, nt)
                    print(f"{mode} {n} {k} {m} {'unset' if pad else 'nopad'} ks={ks} "
                          f"split={split_smem_bytes(mode, k, m, nt, ks) + pad_bytes(1, pad)} "
                          f"two={whole + pad_bytes(1, pad)} one={whole + pad_bytes(1, pad)} "
                          f"teams={smem_bytes(mode, k, m, nt, 2) + pad_bytes(2, pad)}")


def main():
    if "--check" in sys.argv:
        return check_lines()
    for mode in MODES:
        what = "what-if (no pad there): " if mode == "f32" else ""
        print(f"# {what}{mode}: Qwen3 layers, M = 3..16: instance (MINB, SPLIT, TEAMS, ksplit) and launch bytes, "
              "without (nopad) -> with the pad (unset)")
        for model, layers in QWEN3.items():
            for name, n, k in layers:
                for m in range(3, 17):
                    (a, sa), (b, sb) = route(mode, n, k, m, False), route(mode, n, k, m, True)
                    flag = "" if a == b else "  CHANGED"
                    print(f"{mode} {model:3s} {name:8s} [{n},{k}] M={m:2d}: {a} {sa} -> {b} {sb}{flag}")
    print("# test shapes (expected instance with the pad; without it too, but where the pad moves the shape)")
    for mode, n, k, m, teams, want in TEST_SHAPES:
        (a, sa), (b, sb) = route(mode, n, k, m, False, teams), route(mode, n, k, m, True, teams)
        ok = b[:3] == want and a[:3] == ((2, 0, 1) if (n, k, m) in MOVED else want)
        print(f"{mode} [{n},{k}] M={m:2d} teams={teams}: {a} {sa} -> {b} {sb}{'' if a == b else '  CHANGED'}"
              f"{'' if ok else '  TEST EXPECTS ' + str(want)}")
    for mode in MODES:
        rows = window(mode)
        what = "what-if (no pad there): " if mode == "f32" else ""
        km = sorted({(r[1], r[2]) for r in rows})
        print(f"# {what}{mode}: every fast-path (K <= 64 chunks, M = 3..16) (n, K, M, teams) whose instance changes: "
              f"{len(rows)}, {len(km)} (K, M): {km[:8]}{' ...' if len(km) > 8 else ''}")
        for row in rows[:12]:
            print(mode, row)


if __name__ == "__main__":
    main()
