#!/bin/bash
# w4a4split31 (session 20), from the tree root after the wheel is installed (<= 40 s; writes only under $OUT and /tmp).
# The W4A4 few-row-tiles split K (gemv_split.cuh choose_ksplit) now needs 8 K chunks or fewer row tiles than SMs:
# Qwen3-8B q/k/v and o (K = 4096) at M >= 4 run two teams instead of split K by 4; 32B o (K = 8192) keeps the split.
#   S. RESET_NATIVE_GEMV_KSPLIT unset,4,unset,4 (W4A4, dynamic scale): unset = the new rule, 4 = the old rule's
#      split by 4. Rows 1-12 the rule moves (expect unset faster at M = 4..8, about level at 12..16; "same bits" False:
#      another summation order), rows 13-14 it keeps (unset = 4 there: "same bits" True, times level).
# Table last.
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-/tmp/w4a4split31_out}
mkdir -p "$OUT"
export PYTHONDONTWRITEBYTECODE=1  # nothing written outside $OUT and /tmp
SECONDS=0
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
date -u +"device clock %H:%M:%S UTC"
unset RESET_NATIVE_GEMV_16_FORM RESET_NATIVE_GEMV_KSPLIT RESET_NATIVE_GEMV_SPLIT_AMAX RESET_NATIVE_GEMV_TEAMS \
  RESET_NATIVE_GEMV_BD RESET_NATIVE_GEMV_RING
ROWS="8b:qkv:4,8b:qkv:5,8b:qkv:6,8b:qkv:8,8b:qkv:12,8b:qkv:16,8b:o:4,8b:o:5,8b:o:6,8b:o:8,8b:o:12,8b:o:16"
ROWS="$ROWS,32b:o:4,32b:o:8"
timeout 36 python3 bench/probes/gemv_env_sweep.py --act nvfp4 --reps 3 --env RESET_NATIVE_GEMV_KSPLIT \
  --values unset,4,unset,4 --rows "$ROWS" > "$OUT/s_split.txt" 2>&1
echo "S rc $? at ${SECONDS} s"
date -u +"device clock %H:%M:%S UTC"
echo "== S: W4A4 split rule (unset = new: rows 1-12 two teams, 13-14 split by 4) vs KSPLIT=4 (the old rule's split)"
cat "$OUT/s_split.txt"
echo "total ${SECONDS} s"
