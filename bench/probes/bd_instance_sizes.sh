#!/bin/bash
# Registers, spills and SASS bytes of every block-diagonal NVFP4 GEMV instance (gemv_bd_kernel) of the given
# translation units, one row each: template arguments XDT (0 f32, 1 f16, 2 bf16), W4A4, TOK, FAST, MINB, RING, PRO,
# SILU, SMALL, then the numbers, and each TU's compile time.
# Usage: bash bench/probes/bd_instance_sizes.sh [tu ...]   (default: the bf16 fused and W4A4 units and f32 W4A4;
# needs nvcc and cuobjdump; ~15-60 s per unit on 2 cores)
set -e
cd "$(dirname "$0")/../.."
OUT=${OUT_DIR:-/tmp/bd_instance_sizes}
mkdir -p "$OUT"
CUOBJDUMP=${CUOBJDUMP:-$(command -v cuobjdump || echo /tmp/nvd/x/nvidia/cu13/bin/cuobjdump)}
FLAGS="-std=c++17 -O3 -arch=sm_90 -Icpp/include -Icuda --expt-relaxed-constexpr -cubin -Xptxas -v"
TUS=${*:-"gemv_bf16_fused gemv_bf16_w4a4 gemv_f32_w4a4"}
for tu in $TUS; do
  start=$(date +%s.%N)
  nvcc $FLAGS -o "$OUT/$tu.cubin" "cuda/nvfp4/$tu.cu" > "$OUT/$tu.ptxas" 2>&1
  end=$(date +%s.%N)
  "$CUOBJDUMP" -sass "$OUT/$tu.cubin" > "$OUT/$tu.sass"
  printf '# %s: compiled in %.1f s\n' "$tu" "$(echo "$end - $start" | bc)"
  python3 - "$OUT/$tu.ptxas" "$OUT/$tu.sass" <<'PY'
import re, sys
ptx, sass = open(sys.argv[1]).read(), open(sys.argv[2]).read()
name_re = r"_ZN12reset_native10nvfp4_cuda6detail14gemv_bd_kernelI(\S*?)EEvNS1_10GemvParamsENS1_8RingMapsE"
sizes, cur = {}, None
for ln in sass.splitlines():
    m = re.search(r"Function : (\S+)", ln)
    if m:
        cur = m.group(1)
        sizes[cur] = 0
    elif cur and re.search(r"/\*[0-9a-f]{4,}\*/", ln):
        sizes[cur] += 16
print(f"{'XDT W4A4 TOK FAST MINB RING PRO SILU SMALL':44s} {'regs':>5s} {'spill st/ld':>12s} {'SASS bytes':>11s}")
rows = []
for m in re.finditer(r"Function properties for (" + name_re + r")\n\s*(\d+) bytes stack frame, (\d+) bytes spill stores, "
                     r"(\d+) bytes spill loads\n.*?Used (\d+) registers", ptx):
    full, args, stack, sst, sld, regs = m.groups()
    vals = [("1" if v == "b1" else "0" if v == "b0" else v[1:]) for v in re.findall(r"L[ib]\d+|Lb[01]|b[01]|i\d+", args.replace("Li", "i").replace("Lb", "b"))]
    rows.append((" ".join(f"{v:>4s}" for v in vals), regs, f"{sst}/{sld}", sizes.get(full, 0)))
for a, r, s, b in sorted(set(rows)):
    print(f"{a:44s} {r:>5s} {s:>12s} {b:>11d}")
PY
done
