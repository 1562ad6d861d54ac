#!/bin/bash
# w4a4x29 (session 19 prep, for session 20's first GPU round), from the tree root after `pip install
# --no-build-isolation .` (<= 150 s; writes only under $OUT and /tmp). Why is W4A4 (x quantized in the GEMV) so much
# slower than W4A16 from M = 2, and does the first fix work? NOTES-w4a4x29.md: the x quantization (~55 instructions
# per element, all of x in every CTA / SM before its first MMA) is the main cost, the in-kernel amax (one 16-byte load
# in flight per thread) or the amax pre-kernel the second. Runs:
#   T. tests/test_nvfp4_gpu_w4a4_quantfast.py: RESET_NATIVE_GEMV_16_FORM=w4a4q / w4a4qa give the default's bits.
#   A. unset,w4a4q,w4a4qa,unset on Qwen3 W4A4 rows (dynamic scale; "same bits" must be True on every row).
#   S. the same with a static activation scale (no amax anywhere): unset,w4a4q.
#   K. split vs unsplit now that two teams are the default: RESET_NATIVE_GEMV_KSPLIT unset,1 under the default and
#      under w4a4qa ("same bits" False is expected: another summation order; both are within the fp64 bound).
#   P. the split kernel's amax source under w4a4qa: RESET_NATIVE_GEMV_SPLIT_AMAX unset,1,0 (1 = every CTA, wide).
#   B. M = 2 under w4a4q: the block-diagonal kernel (unset; each of 2 CTAs per SM quantizes all of x) vs
#      RESET_NATIVE_GEMV_BD=0 (two teams: once per SM; never measured for W4A4).
#   N. if time is left: ncu warp stalls by phase ("before loop" = x staging) on 24576x4096x16 (8B gate_up, two teams),
#      W4A4, default then w4a4q (bench/probes/gemv16_stall_where.sh with GEMV_ACT=nvfp4).
# Tables last.
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/w4a4x29_out}
mkdir -p "$OUT"
export PYTHONDONTWRITEBYTECODE=1  # nothing written outside $OUT and /tmp
SECONDS=0
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
date -u +"device clock %H:%M:%S UTC"
unset RESET_NATIVE_GEMV_16_FORM RESET_NATIVE_GEMV_KSPLIT RESET_NATIVE_GEMV_SPLIT_AMAX RESET_NATIVE_GEMV_TEAMS \
  RESET_NATIVE_GEMV_BD
timeout ${TEST_TIMEOUT:-55} python3 -m pytest -q -m gpu -p no:cacheprovider --tb=short -rfs \
  tests/test_nvfp4_gpu_w4a4_quantfast.py > "$OUT/tests.txt" 2>&1
echo "T rc $? at ${SECONDS} s: $(tail -1 "$OUT/tests.txt")"
grep -E "^(FAILED|ERROR)|Error" "$OUT/tests.txt" | head -8
SWEEP="python3 bench/probes/gemv_env_sweep.py --act nvfp4 --reps 3"
ROWS_A="8b:qkv:4,8b:qkv:16,8b:o:16,8b:gate_up:4,8b:gate_up:16,8b:down:2,8b:down:16,32b:qkv:16"
ROWS_A="$ROWS_A,32b:gate_up:16,32b:down:1,32b:down:16"
timeout 30 $SWEEP --env RESET_NATIVE_GEMV_16_FORM --values unset,w4a4q,w4a4qa,unset --rows "$ROWS_A" \
  > "$OUT/a_forms.txt" 2>&1
echo "A rc $? at ${SECONDS} s"
timeout 11 $SWEEP --act-gs 0.0013 --env RESET_NATIVE_GEMV_16_FORM --values unset,w4a4q \
  --rows 8b:qkv:16,8b:gate_up:16,8b:down:16,32b:gate_up:16 > "$OUT/s_static.txt" 2>&1
echo "S rc $? at ${SECONDS} s"
ROWS_K="8b:qkv:4,8b:qkv:16,8b:o:8,8b:o:16,8b:down:8,32b:o:8"
timeout 12 $SWEEP --env RESET_NATIVE_GEMV_KSPLIT --values unset,1 --rows "$ROWS_K" > "$OUT/k_default.txt" 2>&1
echo "K default rc $? at ${SECONDS} s"
RESET_NATIVE_GEMV_16_FORM=w4a4qa timeout 12 $SWEEP --env RESET_NATIVE_GEMV_KSPLIT --values unset,1 --rows "$ROWS_K" \
  > "$OUT/k_w4a4qa.txt" 2>&1
echo "K w4a4qa rc $? at ${SECONDS} s"
RESET_NATIVE_GEMV_16_FORM=w4a4qa timeout 11 $SWEEP --env RESET_NATIVE_GEMV_SPLIT_AMAX --values unset,1,0 \
  --rows 8b:qkv:16,8b:o:16,8b:down:8,32b:o:8 > "$OUT/p_amax.txt" 2>&1
echo "P rc $? at ${SECONDS} s"
RESET_NATIVE_GEMV_16_FORM=w4a4q timeout 10 $SWEEP --env RESET_NATIVE_GEMV_BD --values unset,0 \
  --rows 8b:qkv:2,8b:gate_up:2,8b:down:2,32b:o:2 > "$OUT/b_bd.txt" 2>&1
echo "B rc $? at ${SECONDS} s"
LEFT=$((146 - SECONDS))
if [ "$LEFT" -ge 24 ]; then
  GEMV_ACT=nvfp4 OUT="$OUT/stall_default" TOP=6 timeout $((LEFT / 2)) bash bench/probes/gemv16_stall_where.sh \
    24576x4096x16 > "$OUT/stall_default.txt" 2>&1
  echo "N default rc $? at ${SECONDS} s"
  LEFT=$((146 - SECONDS))
  if [ "$LEFT" -ge 12 ]; then
    GEMV_ACT=nvfp4 FORM=w4a4q OUT="$OUT/stall_w4a4q" TOP=6 timeout "$LEFT" bash bench/probes/gemv16_stall_where.sh \
      24576x4096x16 > "$OUT/stall_w4a4q.txt" 2>&1
    echo "N w4a4q rc $? at ${SECONDS} s"
  fi
else
  echo "N skipped (no time left): GEMV_ACT=nvfp4 [FORM=w4a4q] bash bench/probes/gemv16_stall_where.sh 24576x4096x16"
fi
date -u +"device clock %H:%M:%S UTC"
for f in stall_default stall_w4a4q; do
  [ -f "$OUT/$f.txt" ] && { echo "== N: ncu warp stalls by phase, W4A4 24576x4096x16 ($f; full: $OUT/$f.txt)"; \
    grep -E "^(== launch|phase|before loop|loop steps|tile epilogue|after loop)" "$OUT/$f.txt" | head -8; }
done
echo "== B: M = 2 under w4a4q: unset = block-diagonal kernel, 0 = the 16-bit kernel (two teams; same bits False ok)"
cat "$OUT/b_bd.txt"
echo "== P: split kernel's amax source under w4a4qa (unset = the 32 MB rule, 1 = every CTA (wide), 0 = pre-kernel)"
cat "$OUT/p_amax.txt"
echo "== K: RESET_NATIVE_GEMV_KSPLIT unset,1 under the default form (same bits False expected)"
cat "$OUT/k_default.txt"
echo "== K: the same under w4a4qa"
cat "$OUT/k_w4a4qa.txt"
echo "== S: static activation scale 0.0013 (no amax): unset,w4a4q"
cat "$OUT/s_static.txt"
echo "== A: dynamic scale: unset (pad) / w4a4q (+ fast quantizer) / w4a4qa (+ wide amax) / unset (same bits: True)"
cat "$OUT/a_forms.txt"
echo "total ${SECONDS} s"
