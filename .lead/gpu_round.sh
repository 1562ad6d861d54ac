#!/bin/bash
# w4a4splitcl42 (session 21), from the tree root after the wheel is installed (<= 118 s of timeouts; writes only under
# $OUT and /tmp). The W4A4 split-K kernel in clusters (opt-in RESET_NATIVE_GEMV_W4A4_SPLIT_CLUSTER=C: a cluster's CTAs
# share one K slice, quantize 1/C of it each with the compact exchange, and read 1/C of x each for the amax). Default
# SASS of every existing kernel identical to main's.
#   T. tests/test_nvfp4_gpu_w4a4_split_cluster.py (63 tests: same bits as the plain split kernel on the Qwen3 split
#      rows at M = 4, 8, 16, bf16 / fp16 / fp32 x, static / dynamic scale, C = 2, 3, 4, amax sources, partial tiles,
#      forced slices, unaligned x, special values, graph replay, the switch's scope) and the cluster-forms file's
#      switch test (the shared reference helpers): all must pass. Stopped by SIGINT at its timeout (pytest then
#      prints its summary).
#   A. W4A4 dynamic scale, RESET_NATIVE_GEMV_W4A4_SPLIT_CLUSTER unset | 2 | 4 | 8 on the split rows: the model
#      (NOTES-w4a4splitcl42.md) expects C = 4 to gain ~2-8 us (8B down M = 16 31.5 -> ~24.5, 32B o M = 16 29.7 ->
#      ~22), 32B o M = 4 level; "same bits" True on every row.
#   B. The same at M = 16 with the static activation scale 0.0013 (the quantization share alone: ~3-5 us at C = 4).
#   C. C = 4, RESET_NATIVE_GEMV_SPLIT_AMAX unset | 1 on 32B down M = 8 / 16 (the inline limit sends C = 4 to the
#      pre-kernel at 50.8 / 101.6 MiB of amax reads: does the cluster's inline amax win there anyway?).
# Tables last.
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-/tmp/w4a4splitcl42_out}
mkdir -p "$OUT"
export PYTHONDONTWRITEBYTECODE=1  # nothing written outside $OUT and /tmp
SECONDS=0
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
date -u +"device clock %H:%M:%S UTC"
unset RESET_NATIVE_GEMV_16_FORM RESET_NATIVE_GEMV_KSPLIT RESET_NATIVE_GEMV_SPLIT_AMAX RESET_NATIVE_GEMV_TEAMS \
  RESET_NATIVE_GEMV_BD RESET_NATIVE_GEMV_W4A4_CLUSTER RESET_NATIVE_GEMV_W4A4_CLUSTER_FORM RESET_NATIVE_GEMV_RING \
  RESET_NATIVE_GEMV_W4A4_SPLIT_CLUSTER
timeout -s INT -k 4 66 python3 -m pytest -q -m "gpu and not slow" -p no:cacheprovider --tb=short -rfEs \
  tests/test_nvfp4_gpu_w4a4_split_cluster.py \
  tests/test_nvfp4_gpu_w4a4_cluster_forms.py::test_form_switch_needs_clusters \
  > "$OUT/t_tests.txt" 2>&1
echo "T rc $? at ${SECONDS} s: $(tail -n 1 "$OUT/t_tests.txt")"
ROWS=8b:down:4,8b:down:8,8b:down:16,32b:down:8,32b:down:16,32b:o:8,32b:o:16
timeout 24 python3 bench/probes/gemv_env_sweep.py --act nvfp4 --reps 3 --env RESET_NATIVE_GEMV_W4A4_SPLIT_CLUSTER \
  --values unset,2,4,8 --rows "$ROWS" > "$OUT/a_dynamic.txt" 2>&1
echo "A rc $? at ${SECONDS} s"
timeout 12 python3 bench/probes/gemv_env_sweep.py --act nvfp4 --act-gs 0.0013 --reps 3 \
  --env RESET_NATIVE_GEMV_W4A4_SPLIT_CLUSTER --values unset,2,4,8 --rows 8b:down:16,32b:down:16,32b:o:16 \
  > "$OUT/b_static.txt" 2>&1
echo "B rc $? at ${SECONDS} s"
RESET_NATIVE_GEMV_W4A4_SPLIT_CLUSTER=4 timeout 10 python3 bench/probes/gemv_env_sweep.py --act nvfp4 --reps 3 \
  --env RESET_NATIVE_GEMV_SPLIT_AMAX --values unset,1 --rows 32b:down:8,32b:down:16 > "$OUT/c_amax.txt" 2>&1
echo "C rc $? at ${SECONDS} s"
date -u +"device clock %H:%M:%S UTC"
echo "== T: tests (failures, errors and skips, then the summary)"
grep -E "^(FAILED|ERROR|SKIPPED)|Error|error" "$OUT/t_tests.txt" | head -n 30
tail -n 3 "$OUT/t_tests.txt"
echo "== A: W4A4 dynamic scale, RESET_NATIVE_GEMV_W4A4_SPLIT_CLUSTER unset (plain split) | 2 | 4 | 8"
cat "$OUT/a_dynamic.txt"
echo "== B: W4A4 static scale 0.0013, the same switch"
cat "$OUT/b_static.txt"
echo "== C: C = 4, RESET_NATIVE_GEMV_SPLIT_AMAX unset (rule: pre-kernel past 50 MiB) | 1 (cluster_amax inline)"
cat "$OUT/c_amax.txt"
echo "total ${SECONDS} s"
