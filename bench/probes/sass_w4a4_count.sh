#!/bin/bash
# Static SASS and registers of the W4A4 16-bit GEMV instances in three forms (w4a4old, + fast quantizer, the default):
# bench/probes/sass_w4a4_instances.cu compiled with -DGEMV16_FORM=2048 / 6144 / 14336, counted by sass_w4a4_count.py.
# Needs nvcc and cuobjdump (no GPU); ~1 minute.   bash bench/probes/sass_w4a4_count.sh [out_dir]
set -e
cd "$(dirname "$0")/../.."
OUT=${1:-/tmp/sass_w4a4}
mkdir -p "$OUT"
CUOBJDUMP=${CUOBJDUMP:-$(command -v cuobjdump || echo /tmp/nvd/x/nvidia/cu13/bin/cuobjdump)}
FLAGS="-std=c++17 -O3 -arch=sm_90 -Icpp/include -Icuda --expt-relaxed-constexpr -cubin -Xptxas -v"
for form in 2048 6144 14336; do
  nvcc $FLAGS -DGEMV16_FORM=$form -o "$OUT/w4a4_$form.cubin" bench/probes/sass_w4a4_instances.cu \
    > "$OUT/ptxas_$form.txt" 2>&1
  "$CUOBJDUMP" -sass "$OUT/w4a4_$form.cubin" > "$OUT/w4a4_$form.sass"
  echo "== FORM $form: registers per kernel (ptxas order): $(grep -oE "Used [0-9]+" "$OUT/ptxas_$form.txt" \
    | cut -d' ' -f2 | paste -sd' '); kernels with spills: $(grep -cE "[1-9][0-9]* bytes spill" "$OUT/ptxas_$form.txt")"
  python3 bench/probes/sass_w4a4_count.py "$OUT/w4a4_$form.sass"
done
