#!/bin/bash
# w4a4x30 (session 20), from the tree root after the wheel is installed (<= 60 s; writes only under $OUT and /tmp).
# The W4A4 default is now session 19 helper w4a4x29's w4a4qa (fast x quantizer + wide in-kernel amax, the same bits);
# RESET_NATIVE_GEMV_16_FORM=w4a4old runs session 19's W4A4 forms (and its 32 MiB split-K amax rule). Runs:
#   A. RESET_NATIVE_GEMV_16_FORM unset,w4a4old,unset,w4a4old on the 8 Qwen3 layers at M = 1, 2, 4, 8, 16 (W4A4,
#      dynamic scale). "same bits" must be True on every row; expect unset 8-27% faster (round 1: w4a4qa vs unset).
#   P. RESET_NATIVE_GEMV_SPLIT_AMAX unset,0,1 on split-K rows: first the rows the new 50 MiB rule moves inline
#      (unset = 1 there; expect unset < 0), then rows beyond it (unset = 0 there: does 1 win further out?).
#   K. (extra data for the W4A4 split rule, if time is left) RESET_NATIVE_GEMV_KSPLIT unset,1 under the new default on
#      the W4A4 split rows of round 1's K table ("same bits" False expected: another summation order).
# Tables last.
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/w4a4x30_out}
mkdir -p "$OUT"
export PYTHONDONTWRITEBYTECODE=1  # nothing written outside $OUT and /tmp
SECONDS=0
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
date -u +"device clock %H:%M:%S UTC"
unset RESET_NATIVE_GEMV_16_FORM RESET_NATIVE_GEMV_KSPLIT RESET_NATIVE_GEMV_SPLIT_AMAX RESET_NATIVE_GEMV_TEAMS \
  RESET_NATIVE_GEMV_BD RESET_NATIVE_GEMV_RING
SWEEP="python3 bench/probes/gemv_env_sweep.py --act nvfp4 --reps 3"
timeout 38 $SWEEP --env RESET_NATIVE_GEMV_16_FORM --values unset,w4a4old,unset,w4a4old --ms 1,2,4,8,16 \
  --layers 8b,32b > "$OUT/a_forms.txt" 2>&1
echo "A rc $? at ${SECONDS} s"
ROWS_P="8b:qkv:16,8b:o:16,8b:down:6,8b:down:8,32b:o:8,32b:o:10,32b:o:12,32b:down:3"
ROWS_P="$ROWS_P,8b:down:12,8b:down:16,32b:o:16,32b:down:4,32b:down:8,32b:down:16"
timeout $((57 - SECONDS)) $SWEEP --env RESET_NATIVE_GEMV_SPLIT_AMAX --values unset,0,1 --rows "$ROWS_P" \
  > "$OUT/p_amax.txt" 2>&1
echo "P rc $? at ${SECONDS} s"
if [ "$SECONDS" -le 46 ]; then
  timeout $((58 - SECONDS)) $SWEEP --env RESET_NATIVE_GEMV_KSPLIT --values unset,1 \
    --rows 8b:qkv:4,8b:qkv:8,8b:qkv:16,8b:o:4,8b:o:8,8b:o:16,8b:down:8,32b:o:4,32b:o:8 > "$OUT/k_split.txt" 2>&1
  echo "K rc $? at ${SECONDS} s"
fi
date -u +"device clock %H:%M:%S UTC"
if [ -f "$OUT/k_split.txt" ]; then
  echo "== K: W4A4 split K (unset = the rule: split) vs RESET_NATIVE_GEMV_KSPLIT=1 (same bits False expected)"
  cat "$OUT/k_split.txt"
fi
echo "== P: split-K amax source (unset = the rule: every CTA up to 50 MiB of grid x |x|; 0 = pre-kernel; 1 = every CTA)"
echo "   rows 1-8 the rule now takes inline (33-49.5 MiB; 32b down 3: 38 MiB), rows 9-14 beyond 50 MiB (pre-kernel)"
cat "$OUT/p_amax.txt"
echo "== A: W4A4 default (unset: fast quantizer + wide amax) vs w4a4old (session 19); same bits must be True"
cat "$OUT/a_forms.txt"
echo "total ${SECONDS} s"
