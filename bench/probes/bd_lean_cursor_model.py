"""CPU model of the block-diagonal GEMV's kSmallLean weight cursor (gemv_bd_kernel.cuh: the kDepth prefetched steps
through fetch / next_fetch_tile, then the group loop's pointers cw advanced by kDepth chunks or by wrap_w to the next
tile) against the address every step must read (tile s // nchunks of the CTA, chunk s % nchunks, rows clamped at
n - 1), for one thread's rows g and g + 8 over shapes with partial tiles, CTAs walking 1..many tiles, kDepth 4 and 5.
Session 17 wrote it after round 3's build read wrong rows from a CTA's third tile on (wrap_w short by kDepth chunks):
with that constant the model fails at once, with the fix it passes every case.

  python3 bench/probes/bd_lean_cursor_model.py
"""
import itertools


def check(n, k, ctas, kd, g, hr):
    nchunks, half_k, rows = k // 1024, k // 2, 16
    stride = ctas * rows
    tile_w = stride * half_k

    def rowstart(row0):
        return min(row0 + g + 8 * hr, n - 1) * half_k

    units = (n + 15) // 16
    for cta in range(min(ctas, units)):
        my_units = (units - cta + ctas - 1) // ctas
        steps = my_units * nchunks
        want = [rowstart(cta * rows + (s // nchunks) * stride) + (s % nchunks) * 512 for s in range(steps)]
        got = []
        f_row0, f_c = cta * rows, 0
        f_w = rowstart(f_row0)

        def next_tile():
            nonlocal f_c, f_row0, f_w
            f_c = 0
            f_row0 += stride
            f_w = f_w + tile_w if f_row0 + rows <= n else rowstart(f_row0)

        for d in range(kd):
            if d < steps:
                got.append(f_w + f_c * 512)
                f_c += 1
                if f_c == nchunks:
                    next_tile()
        cw = f_w + f_c * 512
        wrap = tile_w - (nchunks - kd) * 512
        for step in range(0, steps, kd):
            more = step + kd < steps
            if more:
                got += [cw + d * 512 for d in range(kd)]
            f_c += kd
            if f_c == nchunks:
                f_c = 0
                f_row0 += stride
                if f_row0 + rows <= n:
                    cw += wrap
                else:
                    f_w = rowstart(f_row0)
                    cw = f_w
            else:
                cw += kd * 512
        assert got == want, (n, k, ctas, kd, cta, g, hr)


cases = 0
SHAPES_N = [16, 200, 4104, 12296, 24576, 9000, 3000]
SHAPES_K = [4096, 8192, 12288, 16384, 5120, 10240, 20480]
for n, k, ctas, kd in itertools.product(SHAPES_N, SHAPES_K, [264, 7, 33], [4, 5]):
    if (k // 1024) % kd:
        continue
    for g, hr in [(0, 0), (7, 1), (3, 0)]:
        check(n, k, ctas, kd, g, hr)
        cases += 1
print(f"cursor model: {cases} cases, every step at its address")
