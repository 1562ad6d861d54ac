#!/bin/bash
# Warp-stall samples per SASS instruction of the 16-bit NVFP4 GEMV (session 18, helper gemv22), from the tree root after
# `pip install --no-build-isolation .` on a GPU machine with ncu: one launch of each shape (NxKxM, bf16 x, W4A16; default
# the two-team kernel at 24576x4096x16; the first shape's second launch, the others' first: ncu flushes the caches
# before each anyway), one ncu process, --section SourceCounters, summed by phase
# (prologue, the loop's steps, the tile epilogue) by bench/probes/gemv16_stall_where.py. Forms as
# RESET_NATIVE_GEMV_16_FORM values via FORM= (default: the rule). ~25-45 s; the report and CSV go to $OUT.
#   FORM=... TOP=12 bash bench/probes/gemv16_stall_where.sh [24576x4096x16 4096x12288x16 ...]
set -e
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/gemv16_stall}
mkdir -p "$OUT"
if [ -n "${FORM:-}" ]; then pre="env RESET_NATIVE_GEMV_16_FORM=$FORM"; else pre="env -u RESET_NATIVE_GEMV_16_FORM"; fi
shapes=("${@:-24576x4096x16}")
n=${#shapes[@]}
# launches (bench/ncu_nvfp4_gemv.py calls each shape twice): A A B B C C ...: skip the first, profile up to the last
# shape's first launch, report A's second and every other shape's first
count=$((n > 1 ? 2 * n - 2 : 1))
$pre ncu --cache-control all --clock-control none -k regex:gemv_kernel --launch-skip 1 --launch-count $count \
  --section SourceCounters -f -o "$OUT/src" python3 bench/ncu_nvfp4_gemv.py "${shapes[@]}" > /dev/null
ncu --import "$OUT/src.ncu-rep" --page source --csv --print-source sass > "$OUT/src.csv"
blocks=0
for ((j = 1; j < n; ++j)); do blocks="$blocks,$((2 * j - 1))"; done
echo "== shapes ${shapes[*]} (form ${FORM:-rule})"
python3 bench/probes/gemv16_stall_where.py "$OUT/src.csv" --top "${TOP:-12}" --blocks "$blocks"
