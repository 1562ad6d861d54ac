#!/bin/bash
# Same-machine comparison of the block-diagonal GEMV against a baseline commit (default: main at d66e0a5, the
# branch point of gemv7): builds bench/probes/bd_gemv_probe.cu against this tree's cuda/ and against the
# baseline's (from git when the tree has its history, else by reverse-applying bench/probes/bd_probe_base.patch),
# runs both (baseline first, then this tree, then the baseline again) and prints times, ratios and whether the
# outputs are bit-identical. Usage: bash bench/probes/bd_probe.sh [base_commit]   (~1 minute on an H200 host)
set -e
cd "$(dirname "$0")/../.."
BASE=${1:-d66e0a5}
T=$(mktemp -d)
mkdir -p "$T/base"
cp -r cuda "$T/base/cuda"
if git rev-parse -q --verify "$BASE^{commit}" >/dev/null 2>&1; then
  for f in $(git diff --name-only "$BASE" -- cuda); do
    if git cat-file -e "$BASE:$f" 2>/dev/null; then git show "$BASE:$f" > "$T/base/$f"; else rm -f "$T/base/$f"; fi
  done
  echo "baseline: $BASE (git)"
else
  patch -s -R -p1 -d "$T/base" < bench/probes/bd_probe_base.patch
  echo "baseline: reverse of bench/probes/bd_probe_base.patch"
fi
FLAGS="-std=c++17 -O3 -arch=sm_90 -Icpp/include --expt-relaxed-constexpr"
nvcc $FLAGS -I"$T/base/cuda" -o "$T/probe_base" bench/probes/bd_gemv_probe.cu &
nvcc $FLAGS -Icuda -o "$T/probe_new" bench/probes/bd_gemv_probe.cu &
wait
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader || true
"$T/probe_base" > "$T/base1.txt"
"$T/probe_new" > "$T/new.txt"
"$T/probe_base" > "$T/base2.txt"
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
