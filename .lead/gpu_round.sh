#!/bin/bash
# w4a4cluster35 (session 20 prep, for session 21's first GPU round), from the tree root after `pip install
# --no-build-isolation .` (<= 120 s; writes only under $OUT and /tmp). Does quantizing x once per cluster of SMs
# (RESET_NATIVE_GEMV_W4A4_CLUSTER=C: the W4A4 two-team kernel in clusters of C CTAs, each quantizing 1/C of x and
# copying the rest from its peers' shared memory, DSMEM) close the W4A4 - W4A16 gap at M = 8..16?
# NOTES-w4a4cluster35.md has the design and the cost model: it pays iff the DSMEM copy (D below) is much cheaper than
# the quantization it saves.
#   D. bench/probes/dsmem_copy_probe.cu: clusters that fit at the kernel's footprint, the copy's cycles and B/clk/SM.
#   T. tests/test_nvfp4_gpu_w4a4_cluster.py: the cluster kernel gives the default's bits (must pass before A counts).
#   A. RESET_NATIVE_GEMV_W4A4_CLUSTER unset,2,4 on the Qwen3 rows the two-team kernel runs (M = 16, 12, 8; the down
#      and 32B o rows split K: the switch leaves them alone); "same bits" must be True on every row.
#   S. the same, static activation scale (no amax): unset,2 at M = 16. (The target, W4A16 at M = 16, session 20's
#      final call: 8B q/k/v 10.4, o 8.0, gate_up 24.6, 32B q/k/v 18.1, gate_up 70.3 us.)
# Worst case 119 s (every step at its timeout); expected ~75 s.
# Tables last.
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/w4a4cluster35_out}
mkdir -p "$OUT"
export PYTHONDONTWRITEBYTECODE=1  # nothing written outside $OUT and /tmp
SECONDS=0
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
date -u +"device clock %H:%M:%S UTC"
unset RESET_NATIVE_GEMV_16_FORM RESET_NATIVE_GEMV_KSPLIT RESET_NATIVE_GEMV_SPLIT_AMAX RESET_NATIVE_GEMV_TEAMS \
  RESET_NATIVE_GEMV_BD RESET_NATIVE_GEMV_W4A4_CLUSTER RESET_NATIVE_GEMV_RING
timeout 20 nvcc -std=c++17 -O3 -arch=sm_90 -Icuda -o /tmp/w4a4cluster35_dsmem_probe bench/probes/dsmem_copy_probe.cu \
  > "$OUT/d_build.txt" 2>&1 && timeout 5 /tmp/w4a4cluster35_dsmem_probe > "$OUT/d_dsmem.txt" 2>&1
echo "D rc $? at ${SECONDS} s"
timeout ${TEST_TIMEOUT:-45} python3 -m pytest -q -m gpu -p no:cacheprovider --tb=short -rfs \
  tests/test_nvfp4_gpu_w4a4_cluster.py > "$OUT/tests.txt" 2>&1
echo "T rc $? at ${SECONDS} s: $(tail -1 "$OUT/tests.txt")"
grep -E "^(FAILED|ERROR)|Error" "$OUT/tests.txt" | head -8
SWEEP="python3 bench/probes/gemv_env_sweep.py --act nvfp4 --reps 3"
ROWS=""
for m in 16 12 8; do
  for layer in 8b:qkv 8b:o 8b:gate_up 32b:qkv 32b:gate_up; do ROWS="$ROWS,$layer:$m"; done
done
ROWS=${ROWS#,}
ROWS16="8b:qkv:16,8b:o:16,8b:gate_up:16,32b:qkv:16,32b:gate_up:16"
timeout 37 $SWEEP --env RESET_NATIVE_GEMV_W4A4_CLUSTER --values unset,2,4 --rows "$ROWS" > "$OUT/a_cluster.txt" 2>&1
echo "A rc $? at ${SECONDS} s"
timeout 12 $SWEEP --act-gs 0.0013 --env RESET_NATIVE_GEMV_W4A4_CLUSTER --values unset,2 --rows "$ROWS16" \
  > "$OUT/s_static.txt" 2>&1
echo "S rc $? at ${SECONDS} s"
date -u +"device clock %H:%M:%S UTC"
echo "== D: DSMEM copy probe (clusters = cudaOccupancyMaxActiveClusters at 512 threads, 200 KB; B/clk/SM of the copy)"
cat "$OUT/d_build.txt" "$OUT/d_dsmem.txt"
echo "== S: W4A4 static activation scale 0.0013: RESET_NATIVE_GEMV_W4A4_CLUSTER unset,2"
cat "$OUT/s_static.txt"
echo "== A: W4A4 dynamic scale: RESET_NATIVE_GEMV_W4A4_CLUSTER unset,2,4 (same bits must be True)"
cat "$OUT/a_cluster.txt"
