#!/bin/bash
# Does a source change leave the machine code alone? Compiles the given translation units (default: the three W4A4
# GEMV ones) at git revision BASE (default HEAD~1) and in the working tree with the same flags (-arch=sm_90 -cubin
# -Xptxas -v), then compares per kernel (sass_same.py): SASS without addresses and encodings, and ptxas's registers
# and spills. Needs nvcc and cuobjdump, no GPU; about 70 s per unit and side.
#   bash bench/probes/sass_same.sh [BASE] [unit ...]      e.g. bash bench/probes/sass_same.sh HEAD~1 gemv_f16_a16
set -e
cd "$(dirname "$0")/../.."
BASE=${1:-HEAD~1}
shift || true
UNITS=${*:-gemv_bf16_w4a4 gemv_f16_w4a4 gemv_f32_w4a4}
OUT=${OUT_DIR:-/tmp/sass_same}
CUOBJDUMP=${CUOBJDUMP:-$(command -v cuobjdump || echo /tmp/nvd/x/nvidia/cu13/bin/cuobjdump)}
FLAGS="-std=c++17 -O3 -arch=sm_90 -Icpp/include -Icuda -Icpp/src --expt-relaxed-constexpr -cubin -Xptxas -v"
rm -rf "$OUT" && mkdir -p "$OUT/base_tree" "$OUT/base" "$OUT/tree"
git archive "$BASE" cuda cpp | tar -x -C "$OUT/base_tree"
for unit in $UNITS; do
  for side in base tree; do
    src=.
    [ $side = base ] && src="$OUT/base_tree"
    (cd "$src" && nvcc $FLAGS -o "$OUT/$side/$unit.cubin" "cuda/nvfp4/$unit.cu") > "$OUT/$side/$unit.ptxas.txt" 2>&1
    "$CUOBJDUMP" -sass "$OUT/$side/$unit.cubin" > "$OUT/$side/$unit.sass"
  done
  echo "== $unit (cubins $(cmp -s "$OUT/base/$unit.cubin" "$OUT/tree/$unit.cubin" && echo identical || echo differ))"
  python3 bench/probes/sass_same.py "$OUT/base/$unit" "$OUT/tree/$unit"
done
