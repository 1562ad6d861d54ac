#!/bin/bash
# Warp-stall samples per SASS instruction of the 16-bit NVFP4 GEMV (session 18, helper gemv22), from the tree root after
# `pip install --no-build-isolation .` on a GPU machine with ncu: one launch of each shape (NxKxM, default the two-team
# kernel at 24576x4096x16), --section SourceCounters, summed by bench/probes/gemv16_stall_where.py. Forms as
# RESET_NATIVE_GEMV_16_FORM values via FORM= (default: the rule). ~25-40 s per shape; reports and CSVs go to $OUT.
#   FORM=acc bash bench/probes/gemv16_stall_where.sh [24576x4096x16 ...]
set -e
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/gemv16_stall}
mkdir -p "$OUT"
if [ -n "${FORM:-}" ]; then pre="env RESET_NATIVE_GEMV_16_FORM=$FORM"; else pre="env -u RESET_NATIVE_GEMV_16_FORM"; fi
for shape in "${@:-24576x4096x16}"; do
  $pre ncu --cache-control all --clock-control none -k regex:gemv_kernel --launch-skip 1 --launch-count 1 \
    --section SourceCounters -f -o "$OUT/src_$shape" python3 bench/ncu_nvfp4_gemv.py "$shape" > /dev/null
  ncu --import "$OUT/src_$shape.ncu-rep" --page source --csv --print-source sass > "$OUT/src_$shape.csv"
  echo "== $shape (form ${FORM:-rule})"
  python3 bench/probes/gemv16_stall_where.py "$OUT/src_$shape.csv" --top ${TOP:-22}
done
