#!/bin/bash
# Same-machine A/B of the whole small-M NVFP4 GEMV (dispatch_mode) against a baseline commit: builds
# bench/probes/gemv_bits_probe.cu for several x dtype / activation combinations against the baseline's cuda/
# (bench/probes/base_tree.sh) and this tree's, runs baseline, this tree, baseline again, and prints whether
# every output is bit-identical plus a time table (baseline = the better of its two runs).
# Usage: bash bench/probes/gemv_probe.sh [base_ref] [name@file@sed-expression[@xdt:w4a4] ...]
#                                                  [name@env@VAR=value[,VAR=value][@xdt:w4a4] ...]
# A variant (extra argument) is this tree with the sed expression applied to cuda/nvfp4/<file>, built for one
# combination (default 2:1 = bf16 x W4A4: block-diagonal kernel at M <= 2, fp16-A 16-bit kernel above), or this
# tree's build of that combination run with the environment variables given ("env"), timed against the same
# baseline; its bits are compared with the baseline's too. Bits are checked for every combination of COMBOS, times
# taken for TIME_COMBOS at the M of PROBE_MS (environment overrides; defaults below). ~2-3 min on a 16-core H200 host.
set -e
cd "$(dirname "$0")/../.."
BASE=${1:-main}
shift || true
T=$(mktemp -d)
bash bench/probes/base_tree.sh "$BASE" "$T/base"
FLAGS="-std=c++17 -O3 -arch=sm_90 -Icpp/include --expt-relaxed-constexpr"
COMBOS=${COMBOS:-"2:0 1:0 0:0 2:1 0:1"}  # x dtype (0 f32, 1 f16, 2 bf16) : W4A4
TIME_COMBOS=${TIME_COMBOS:-"2:0 2:1"}
export PROBE_MS=${PROBE_MS:-"1,2,4,8,16"}
ms_for() { case " $TIME_COMBOS " in *" $1 "*) echo "$PROBE_MS" ;; *) echo "" ;; esac; }
build() {  # tree include-dir combo
  # quantize.cu: launch_amax, which the W4A4 launchers reference (the probe passes a static activation scale)
  nvcc $FLAGS -I"$2" -DPROBE_XDT=${3%:*} -DPROBE_W4A4=${3#*:} -o "$T/p_$1_${3/:/_}" bench/probes/gemv_bits_probe.cu \
    "$2/nvfp4/quantize.cu"
}
for c in $COMBOS; do build base "$T/base/cuda" $c & build new cuda $c & done
VNAMES=""
for v in "$@"; do
  IFS=@ read -r name file expr combo <<< "$v"
  combo=${combo:-2:1}
  if [ "$file" = env ]; then
    echo "$expr" > "$T/v_$name.env"
    VNAMES="$VNAMES $name"
    echo "$combo" > "$T/v_$name.combo"
    continue
  fi
  mkdir -p "$T/v_$name"
  cp -r cuda "$T/v_$name/cuda"
  sed -i "$expr" "$T/v_$name/cuda/nvfp4/$file"
  if cmp -s "cuda/nvfp4/$file" "$T/v_$name/cuda/nvfp4/$file"; then echo "variant $name: sed changed nothing"; continue; fi
  build "v$name" "$T/v_$name/cuda" $combo &
  VNAMES="$VNAMES $name"
  echo "$combo" > "$T/v_$name.combo"
done
wait
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader || true
for c in $COMBOS; do
  PROBE_MS=$(ms_for $c) "$T/p_base_${c/:/_}" >> "$T/base1.txt"
  PROBE_MS=$(ms_for $c) "$T/p_new_${c/:/_}" >> "$T/new.txt"
done
for name in $VNAMES; do
  c=$(cat "$T/v_$name.combo")
  if [ -f "$T/v_$name.env" ]; then
    env $(tr , ' ' < "$T/v_$name.env") "$T/p_new_${c/:/_}" > "$T/v_$name.txt"
  else
    "$T/p_v${name}_${c/:/_}" > "$T/v_$name.txt"
  fi
done
for c in $COMBOS; do PROBE_MS=$(ms_for $c) "$T/p_base_${c/:/_}" >> "$T/base2.txt"; done
python3 - "$T" $VNAMES <<'PY'
import re, sys
T, vnames = sys.argv[1], sys.argv[2:]
def load(p):
    bits, times = [], {}
    for ln in open(p):
        if ln.startswith("time "):
            f = ln.split()
            times[(f"{'f32 f16 bf16'.split()[int(f[2])]}{' W4A4' if f[4] == '1' else ''}", f[5], int(f[7]))] = float(f[8])
        elif ln.startswith("xdt "):
            bits.append(ln)
    return bits, times
b1, t1 = load(f"{T}/base1.txt")
n, tn = load(f"{T}/new.txt")
b2, t2 = load(f"{T}/base2.txt")
bad = [a for a in n if " ok " not in a]
if b1 != b2:
    print(f"WARNING: the two baseline runs differ in {sum(x != y for x, y in zip(b1, b2))} cases")
print(f"bit identity: {len(n)} cases (M = 1..16, fast and general path, split K where chosen): "
      + ("all identical" if b1 == n else f"{sum(x != y for x, y in zip(b1, n))} DIFFERENT") + (f"; errors: {bad[:3]}" if bad else ""))
for x, y in [(x, y) for x, y in zip(b1, n) if x != y][:8]:
    print("  base:", x.strip(), " new:", y.strip().split()[-1])
ms = sorted({k[2] for k in tn})
print("times (us): base = better of two baseline runs; ratio = new / base; M16/M1 base -> new")
for combo in dict.fromkeys(k[0] for k in tn):
    print(f"  {combo:11}" + "".join(f"  M={m:<2} base/new/ratio" for m in ms) + "  M16/M1")
    for layer in dict.fromkeys(k[1] for k in tn if k[0] == combo):
        row = []
        for m in ms:
            k = (combo, layer, m)
            row.append(f"  {min(t1[k], t2[k]):6.2f} {tn[k]:6.2f} {tn[k] / min(t1[k], t2[k]):5.3f}")
        r16 = ""
        if 1 in ms and 16 in ms:
            b = lambda m: min(t1[(combo, layer, m)], t2[(combo, layer, m)])
            r16 = f"  {b(16) / b(1):4.2f} -> {tn[(combo, layer, 16)] / tn[(combo, layer, 1)]:4.2f}"
        print(f"  {layer:11}" + "".join(row) + r16)
for name in vnames:
    bv, tv = load(f"{T}/v_{name}.txt")
    if not tv:
        print(f"variant {name}: no times")
        continue
    combo = next(iter(tv))[0]
    bbase = [x for x in b1 if x.split()[1] == next(iter(bv)).split()[1] and x.split()[3] == next(iter(bv)).split()[3]]
    same = sum(x == y for x, y in zip(bbase, bv))
    print(f"variant {name} ({combo}; bits {same}/{len(bv)} as base), us and ratio to base per layer at M = "
          + " ".join(str(m) for m in ms) + ":")
    for layer in dict.fromkeys(k[1] for k in tv):
        print(f"  {layer:11}" + "".join(f"  {tv[k]:6.2f} {tv[k] / min(t1[k], t2[k]):5.3f}" for k in tv if k[1] == layer))
PY
