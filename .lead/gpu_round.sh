#!/bin/bash
# w4a4cluster39 (session 21), from the tree root after the wheel is installed (<= 120 s; writes only under $OUT and
# /tmp). Two opt-in forms of the W4A4 cluster kernel (RESET_NATIVE_GEMV_W4A4_CLUSTER=C), switch
# RESET_NATIVE_GEMV_W4A4_CLUSTER_FORM = amax | compact | both (NOTES-w4a4cluster39.md):
#   amax: the in-kernel amax split over the cluster (each CTA 1/C of x, the maxima exchanged with st.async);
#   compact: the peers' quantized shares copied as E2M1 codes + fp16 block scales (10 instead of 32 bytes per unit).
#   T. tests/test_nvfp4_gpu_w4a4_cluster_forms.py: every form gives the plain kernel's bits (must pass before A counts).
#   A2 / A4. gemv_env_sweep of the form switch (unset,amax,compact,both) with RESET_NATIVE_GEMV_W4A4_CLUSTER=2, then
#      =4, on the rows the two-team kernel runs (8B gate_up, 32B gate_up, 8B q/k/v, 32B q/k/v, 8B o; M = 16, 12, 8;
#      the down and 32B o rows split K, where neither switch acts). "same bits" must be True on every row.
# Worst case ~114 s (every step at its timeout); expected ~70 s. Tables last.
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/w4a4cluster39_out}
mkdir -p "$OUT"
export PYTHONDONTWRITEBYTECODE=1  # nothing written outside $OUT and /tmp
SECONDS=0
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
date -u +"device clock %H:%M:%S UTC"
unset RESET_NATIVE_GEMV_16_FORM RESET_NATIVE_GEMV_KSPLIT RESET_NATIVE_GEMV_SPLIT_AMAX RESET_NATIVE_GEMV_TEAMS \
  RESET_NATIVE_GEMV_BD RESET_NATIVE_GEMV_W4A4_CLUSTER RESET_NATIVE_GEMV_W4A4_CLUSTER_FORM RESET_NATIVE_GEMV_RING
timeout ${TEST_TIMEOUT:-60} python3 -m pytest -q -m gpu -p no:cacheprovider --tb=short -rfs \
  tests/test_nvfp4_gpu_w4a4_cluster_forms.py > "$OUT/tests.txt" 2>&1
echo "T rc $? at ${SECONDS} s: $(tail -1 "$OUT/tests.txt")"
grep -E "^(FAILED|ERROR)|Error" "$OUT/tests.txt" | head -8
ROWS=""  # by layer (its weights made once), the large rows first
for layer in 8b:gate_up 32b:gate_up 8b:qkv 32b:qkv 8b:o; do
  for m in 16 12 8; do ROWS="$ROWS,$layer:$m"; done
done
ROWS=${ROWS#,}
SWEEP="python3 bench/probes/gemv_env_sweep.py --act nvfp4 --reps 3 --env RESET_NATIVE_GEMV_W4A4_CLUSTER_FORM"
for c in 2 4; do
  RESET_NATIVE_GEMV_W4A4_CLUSTER=$c timeout 26 $SWEEP --values unset,amax,compact,both --rows "$ROWS" \
    > "$OUT/a_cluster$c.txt" 2>&1
  echo "A$c rc $? at ${SECONDS} s"
done
date -u +"device clock %H:%M:%S UTC"
for c in 2 4; do
  echo "== A$c: W4A4 dynamic scale, RESET_NATIVE_GEMV_W4A4_CLUSTER=$c: RESET_NATIVE_GEMV_W4A4_CLUSTER_FORM" \
    "unset,amax,compact,both (same bits must be True)"
  cat "$OUT/a_cluster$c.txt"
done
