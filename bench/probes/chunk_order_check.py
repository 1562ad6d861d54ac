"""CPU replica of ChunkOrder's formulas (cuda/sampler/decode_step_row.cuh, RESET_NATIVE_SAMPLER_RECENT_FIRST): every pass's
visits are a permutation of the chunks. python3 bench/probes/chunk_order_check.py (prints "bad 0")."""
def inv(d): return 0 if d == 0 else ((1 << 32) + d - 1) // d
def div_small(n, iv): return ((n * iv) >> 32) & 0xFFFFFFFF
def order(chunks, sp, bp, pp):
    per = lambda p: (chunks + p - 1) // p
    fs = lambda p: chunks - (per(p) - 1) * p
    return dict(chunks=chunks, sp=sp, sper=per(sp), r0=fs(sp), iv=inv(per(sp)), iv1=inv(per(sp) - 1),
                bper=per(bp), by0=fs(bp), pper=per(pp), py0=fs(pp))
def stats_at(o, n):
    if n < o['r0'] * o['sper']:
        r = div_small(n, o['iv']); j = n - r * o['sper']
    else:
        m = n - o['r0'] * o['sper']; q = div_small(m, o['iv1']); r = o['r0'] + q; j = m - q * (o['sper'] - 1)
    return r + j * o['sp']
def vpos(part, per, y0, k): return part * per - (part - y0 if part > y0 else 0) + k
bad = 0
for chunks in list(range(1, 140)) + [300, 1000, 65535]:
    for sp in sorted({chunks, (chunks+1)//2, (chunks+2)//3, (chunks+3)//4, (chunks+4)//5, 1, 2, max(1, chunks//7)}):
        o = order(chunks, sp, sp, sp)
        # stats order = the (part, k) order of the stats grouping
        want = [p + k * sp for p in range(sp) for k in range(o['sper']) if p + k * sp < chunks]
        got = [stats_at(o, n) for n in range(chunks)]
        if got != want: bad += 1; print("stats", chunks, sp, got[:10], want[:10]); break
        for bp in sorted({chunks, (chunks+1)//2, (chunks+3)//4, (chunks+5)//6, 1}):
            o = order(chunks, sp, bp, bp)
            for per, y0, rev in ((o['bper'], o['by0'], True), (o['pper'], o['py0'], False)):
                vis = [(p, k) for p in range(bp) for k in range(per) if p + k * bp < chunks]
                pos = [vpos(p, per, y0, k) for p, k in vis]
                if sorted(pos) != list(range(chunks)): bad += 1; print("pos", chunks, bp, pos); break
                ch = [stats_at(o, chunks - 1 - q if rev else q) for q in pos]
                if sorted(ch) != list(range(chunks)): bad += 1; print("perm", chunks, sp, bp)
print("bad", bad)
o = order(75, 38, 19, 19)
print("B=64 stats order", [stats_at(o, n) for n in range(12)])
print("bins block 0..2", [[stats_at(o, 74 - vpos(p, o['bper'], o['by0'], k)) for k in range(4)] for p in range(3)])
print("sample block 0..2", [[stats_at(o, vpos(p, o['pper'], o['py0'], k)) for k in range(4)] for p in range(3)])
