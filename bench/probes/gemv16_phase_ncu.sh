#!/bin/bash
# Nsight Compute of the 16-bit NVFP4 GEMV at M = 16 (session 14, helper gemv17), from the tree root after
# `pip install --no-build-isolation .` on a GPU machine with ncu. With forms as arguments (RESET_NATIVE_GEMV_16_FORM
# values; "unset" = the rule): per form time, executed warp instructions and stall reasons of 24576x4096x16 (two teams)
# and 4096x12288x16 (split K), cold single launches. Always: the executed count of every SASS instruction of the
# default form at 24576x4096x16, summed by phase (bench/probes/gemv16_phases.py). CSVs go to $OUT (default
# /tmp/gemv16_phase). ~15 s plus ~10 s per form; GEMV16_SOURCE=0 skips the per-instruction part.
#   bash bench/probes/gemv16_phase_ncu.sh [unset 13 ...]
set -e
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/gemv16_phase}
mkdir -p "$OUT"
S=smsp__average_warps_issue_stalled
METRICS=gpu__time_duration.sum,smsp__inst_executed.sum,${S}_long_scoreboard_per_issue_active.ratio,${S}_wait_per_issue_active.ratio,${S}_math_pipe_throttle_per_issue_active.ratio,${S}_not_selected_per_issue_active.ratio,${S}_short_scoreboard_per_issue_active.ratio,${S}_barrier_per_issue_active.ratio,${S}_mio_throttle_per_issue_active.ratio,${S}_lg_throttle_per_issue_active.ratio,${S}_no_instruction_per_issue_active.ratio
NCU="ncu --csv --print-units base --cache-control all --clock-control none -k regex:gemv_kernel"
for form in "$@"; do
  if [ "$form" = unset ]; then pre="env -u RESET_NATIVE_GEMV_16_FORM"; else pre="env RESET_NATIVE_GEMV_16_FORM=$form"; fi
  $pre $NCU --metrics "$METRICS" --log-file "$OUT/m_$form.csv" python3 bench/ncu_nvfp4_gemv.py 24576x4096x16 \
    4096x12288x16 > /dev/null
done
if [ $# -gt 0 ]; then
  python3 bench/probes/gemv16_phases.py --metrics $(for form in "$@"; do echo "$OUT/m_$form.csv"; done)
fi
[ "${GEMV16_SOURCE:-1}" = 0 ] && exit 0  # the forms' table only
env -u RESET_NATIVE_GEMV_16_FORM ncu --cache-control all --clock-control none -k regex:gemv_kernel --launch-skip 1 \
  --launch-count 1 --section SourceCounters -f -o "$OUT/src" python3 bench/ncu_nvfp4_gemv.py 24576x4096x16 > /dev/null
ncu --import "$OUT/src.ncu-rep" --page source --csv --print-source sass > "$OUT/src_sass.csv"
python3 bench/probes/gemv16_phases.py "$OUT/src_sass.csv" --kib 49152
