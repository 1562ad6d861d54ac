#!/bin/bash
# Same-machine comparison of the block-diagonal GEMV against a baseline commit (default: main; round 1 of
# session 6 used d66e0a5): builds bench/probes/bd_gemv_probe.cu against this tree's cuda/ and against the
# baseline's (bench/probes/base_tree.sh),
# runs both (baseline first, then this tree, then the baseline again) and prints times, ratios and whether the
# outputs are bit-identical; bench/probes/gemv_bits_probe.cu adds a bit-identity sweep of the whole small-M GEMV
# (4 x dtype / activation combinations, M = 1..16). Usage: bash bench/probes/bd_probe.sh [base_commit]
# [name@file@sed-expression ...]   (~2 minutes on a 16-core H200 host: parallel nvcc builds, then ~30 s of runs)
# Each extra argument times a variant of this tree: a copy of cuda/ with the sed expression applied to
# cuda/nvfp4/<file>, e.g. depth5@gemv_bd_kernel.cuh@'s/(TOK > 2 ? 3 : 4)/(TOK > 2 ? 3 : 5)/'.
set -e
cd "$(dirname "$0")/../.."
BASE=${1:-main}
shift || true
T=$(mktemp -d)
bash bench/probes/base_tree.sh "$BASE" "$T/base"
FLAGS="-std=c++17 -O3 -arch=sm_90 -Icpp/include --expt-relaxed-constexpr"
COMBOS="2:0 1:0 2:1 0:1"  # x dtype (0 f32, 1 f16, 2 bf16) : W4A4
for tree in base new; do
  inc="$T/base/cuda"; [ $tree = new ] && inc=cuda
  nvcc $FLAGS -I"$inc" -o "$T/probe_$tree" bench/probes/bd_gemv_probe.cu &
  for c in $COMBOS; do
    nvcc $FLAGS -I"$inc" -DPROBE_XDT=${c%:*} -DPROBE_W4A4=${c#*:} -o "$T/bits_${tree}_${c/:/_}" \
      bench/probes/gemv_bits_probe.cu &
  done
done
VNAMES=""
for v in "$@"; do
  IFS=@ read -r name file expr <<< "$v"
  mkdir -p "$T/v_$name"
  cp -r cuda "$T/v_$name/cuda"
  sed -i "$expr" "$T/v_$name/cuda/nvfp4/$file"
  if cmp -s cuda/nvfp4/$file "$T/v_$name/cuda/nvfp4/$file"; then echo "variant $name: sed changed nothing"; continue; fi
  nvcc $FLAGS -I"$T/v_$name/cuda" -o "$T/probe_v_$name" bench/probes/bd_gemv_probe.cu &
  VNAMES="$VNAMES $name"
done
wait
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader || true
for c in $COMBOS; do
  "$T/bits_base_${c/:/_}" >> "$T/bits_base.txt"
  "$T/bits_new_${c/:/_}" >> "$T/bits_new.txt"
done
echo "bit identity (dispatch_mode, $(wc -l < "$T/bits_new.txt") cases, M = 1..16, fast and general path):"
if diff "$T/bits_base.txt" "$T/bits_new.txt" > "$T/bits.diff"; then echo "  all outputs identical"; else
  echo "  DIFFERENT outputs:"; head -20 "$T/bits.diff"; fi
grep -v " ok " "$T/bits_new.txt" | head -5 || true
"$T/probe_base" > "$T/base1.txt"
"$T/probe_new" > "$T/new.txt"
"$T/probe_base" > "$T/base2.txt"
for name in $VNAMES; do
  "$T/probe_v_$name" > "$T/v_$name.txt"
  echo "--- variant $name vs baseline"
  python3 - "$T/base1.txt" "$T/v_$name.txt" "$T/base2.txt" <<'PY'
import re, sys
def rows(p):
    return {(m.group(1).strip(), m.group(2)): (float(m.group(3)), m.group(5)) for m in
            (re.match(r"(.{12}) M=(\d)\s+([\d.]+) us\s+([\d.]+) TB/s\s+out (\w+)", ln) for ln in open(p)) if m}
b1, v, b2 = rows(sys.argv[1]), rows(sys.argv[2]), rows(sys.argv[3])
print("  " + "  ".join(f"{k[0]} M={k[1]} {v[k][0]:.2f}/{min(b1[k][0], b2[k][0]):.2f}" + ("" if v[k][1] == b1[k][1] else " DIFF")
                       for k in v))
s8 = [k for k in v if k[1] == "1" and k[0].startswith("8b")]
print(f"  Qwen3-8B sum M=1: {sum(v[k][0] for k in s8):.2f} us vs base {sum(min(b1[k][0], b2[k][0]) for k in s8):.2f}")
PY
done
python3 - "$T/base1.txt" "$T/new.txt" "$T/base2.txt" <<'PY'
import re, sys
def rows(p):
    out = {}
    for ln in open(p):
        m = re.match(r"(.{12}) M=(\d)\s+([\d.]+) us\s+([\d.]+) TB/s\s+out (\w+)", ln)
        if m:
            out[(m.group(1).strip(), m.group(2))] = (float(m.group(3)), float(m.group(4)), m.group(5))
    return out
b1, new, b2 = rows(sys.argv[1]), rows(sys.argv[2]), rows(sys.argv[3])
print(f"{'layer':12} M   base us   new us  new/base  new TB/s  bits")
sb = sn = 0.0
for key in b1:
    tb = min(b1[key][0], b2.get(key, b1[key])[0])
    tn, bw, h = new[key]
    if key[1] == "1" and key[0].startswith("8b"):
        sb += tb; sn += tn
    same = "same" if h == b1[key][2] == b2.get(key, b1[key])[2] else "DIFFERENT"
    print(f"{key[0]:12} {key[1]} {tb:8.2f} {tn:8.2f}   {tn / tb:6.3f}   {bw:6.3f}   {same}")
print(f"Qwen3-8B layer sum M=1: base {sb:.2f} us (best of two runs), new {sn:.2f} us, ratio {sn / sb:.3f}")
PY
