"""CPU model of the block-diagonal GEMV's lean split K cursor (gemv_bd_kernel.cuh kTileGroup, launched by
gemv_bd_split.cuh where bd_lean_split_form fits: one token, every slice exactly kDepth = 4 or 5 chunks, n % 16 == 0):
CTA b takes slice b % ks and tiles b // ks, + ctas, ...; its first kDepth steps go through the cb fetch cursor
(row_pointers, the stride step of next_fetch_tile), then each group of kDepth steps (one tile) loads the next group's
chunks d at immediate offsets d * 512 / d * 64 from pointers rebuilt from the fetch tile's row f_row0 (uniform) and one
32-bit per-thread offset o_w (its scale offset o_w >> 3), predicated off in the last group. Checked against the address
every step must read (tile s // kDepth, chunk c_base + s % kDepth of row cta * 16 + tile * stride + g + 8 hr, the
thread's K offset kwarp) for the FP4 bytes and the scale bytes, over CTA slot counts, slice counts, lanes and warps;
plus the partial sums' 32-bit index against the 64-bit one.

  python3 bench/probes/bd_lean_split_cursor_model.py
"""
import itertools


def fits(n, k, ks):
    """bd_lean_split_form at one token: 0 (cb), else kDepth."""
    nchunks = k // 1024
    if ks < 2 or nchunks % ks or n % 16 or ks * n >= 2**31:
        return 0
    per = nchunks // ks
    return per if per in (4, 5) else 0


def check(n, k, ks, slots, warp, t, g):
    kd = fits(n, k, ks)
    assert kd
    half_k, sixteenth_k, rows = k // 2, k // 16, 16
    all_chunks = k // 1024
    ntiles = (n + 15) // 16
    per_slice = max(1, min(slots // ks, ntiles))
    grid = per_slice * ks
    kwarp = warp * 128 + t * 32
    for b in range(grid):
        slice_, cta, ctas = b % ks, b // ks, grid // ks
        c_base = slice_ * all_chunks // ks
        nchunks = (slice_ + 1) * all_chunks // ks - c_base
        assert nchunks == kd
        stride = ctas * rows
        kslice = c_base * 1024 + kwarp
        my_units = (ntiles - cta + ctas - 1) // ctas
        steps = my_units * nchunks
        for hr in (0, 1):
            row = [cta * rows + (s // kd) * stride + g + 8 * hr for s in range(steps)]
            want_w = [row[s] * half_k + (c_base + s % kd) * 512 + kwarp // 2 for s in range(steps)]
            want_s = [row[s] * sixteenth_k + (c_base + s % kd) * 64 + kwarp // 16 for s in range(steps)]
            got_w, got_s = [], []
            # prefetch: the cb cursor (fetch, then next_fetch_tile's stride step: no tile ends past n)
            f_row0, f_c = cta * rows, 0
            f_w = min(f_row0 + g + 8 * hr, n - 1) * half_k + kslice // 2
            f_s = min(f_row0 + g + 8 * hr, n - 1) * sixteenth_k + kslice // 16
            for d in range(kd):
                if d < steps:
                    got_w.append(f_w + f_c * 512)
                    got_s.append(f_s + f_c * 64)
                    f_c += 1
                    if f_c == nchunks:
                        f_c, f_row0 = 0, f_row0 + stride
                        f_w, f_s = f_w + stride * half_k, f_s + stride * sixteenth_k
            # the group loop
            o_w = (g * half_k + kslice // 2) & 0xFFFFFFFF
            assert o_w == g * half_k + kslice // 2 and o_w % 8 == 0
            for step in range(0, steps, kd):
                more = step + kd < steps
                cw = f_row0 * half_k + o_w + 8 * half_k * hr
                cs = f_row0 * sixteenth_k + (o_w >> 3) + 8 * sixteenth_k * hr
                if more:
                    got_w += [cw + d * 512 for d in range(kd)]
                    got_s += [cs + d * 64 for d in range(kd)]
                f_row0 += stride
            assert got_w == want_w and got_s == want_s, (n, k, ks, slots, warp, t, g, b, hr)
            assert all(r < n for r in row)
        for tok_row in range(min(n, 16)):  # the partial sums' index (tok 0)
            assert (slice_ * 1 + 0) * n + tok_row < 2**31


cases = 0
for n, k, ks, slots in itertools.product([16, 528, 2064, 4096, 5120, 8192, 16384], [8192, 10240, 12288, 20480, 25600],
                                         [2, 3, 4, 5], [264, 7, 33]):
    if not fits(n, k, ks):
        continue
    for warp, t, g in [(0, 0, 0), (7, 3, 7), (3, 1, 4)]:
        check(n, k, ks, slots, warp, t, g)
        cases += 1
print(f"lean split cursor model: {cases} cases, every step at its address (FP4 and scale bytes)")
