#!/bin/bash
# w4a4splitdef43 (session 21 prep), from the tree root after the wheel is installed (<= 114 s of timeouts; writes
# only under $OUT and /tmp). W4A4 split K in clusters by default from M = 8 (C = 4 with <= 8 K slices and the
# in-kernel amax at 4 within 50 MiB, else 2; RESET_NATIVE_GEMV_W4A4_SPLIT_CLUSTER=1 off, =2..8 forced). Host-only:
# the SASS of gemv_bf16_w4a4.cu is identical to main's.
#   T. The test files whose expectations changed or that pin the plain kernel, 393 tests "gpu and not slow", as three
#      pytest processes side by side (correctness only; the timing runs after them): all must pass. Each is stopped
#      by SIGINT at its timeout (pytest then prints its summary).
#   A. unset (the rule) vs 1 (plain split) on the split rows, dynamic scale; session 21 call 7 expects unset ~ the
#      C = 4 column on 8B down / 32B o at M = 8, 16 and ~ C = 2 on 32B down; M = 4 level; "same bits" True.
#   B. unset vs forced 2 and 4 on the rows that separate them (unset should match 2 on 32B down, 4 elsewhere).
# Tables last.
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-/tmp/w4a4splitdef43_out}
mkdir -p "$OUT"
export PYTHONDONTWRITEBYTECODE=1  # nothing written outside $OUT and /tmp
SECONDS=0
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
date -u +"device clock %H:%M:%S UTC"
unset RESET_NATIVE_GEMV_16_FORM RESET_NATIVE_GEMV_KSPLIT RESET_NATIVE_GEMV_SPLIT_AMAX RESET_NATIVE_GEMV_TEAMS \
  RESET_NATIVE_GEMV_BD RESET_NATIVE_GEMV_W4A4_CLUSTER RESET_NATIVE_GEMV_W4A4_CLUSTER_FORM RESET_NATIVE_GEMV_RING \
  RESET_NATIVE_GEMV_W4A4_SPLIT_CLUSTER
PYTEST=(python3 -m pytest -q -m "gpu and not slow" -p no:cacheprovider --tb=short -rfEs)
timeout -s INT -k 4 74 "${PYTEST[@]}" tests/test_nvfp4_gpu_w4a4_split_cluster_rule.py \
  tests/test_nvfp4_gpu_w4a4_split_cluster.py > "$OUT/t1_split_cluster.txt" 2>&1 &
timeout -s INT -k 4 74 "${PYTEST[@]}" tests/test_nvfp4_gpu_w4a4_quantfast.py tests/test_nvfp4_gpu_form16.py \
  tests/test_nvfp4_gpu_form16_pad.py > "$OUT/t2_quantfast_form16.txt" 2>&1 &
timeout -s INT -k 4 74 "${PYTEST[@]}" tests/test_nvfp4_gpu_form16_head.py tests/test_nvfp4_gpu_form16_w4a4_pad.py \
  tests/test_nvfp4_gpu_w4a4_cluster.py > "$OUT/t3_head_pad_cluster.txt" 2>&1 &
timeout -s INT -k 4 74 "${PYTEST[@]}" tests/test_nvfp4_gpu_w4a4_cluster_forms.py > "$OUT/t4_cluster_forms.txt" 2>&1 &
wait
for f in "$OUT"/t[1234]_*.txt; do echo "T $(basename "$f"): $(tail -n 1 "$f")"; done
echo "T done at ${SECONDS} s"
ROWS=8b:down:4,8b:down:8,8b:down:16,32b:down:8,32b:down:16,32b:o:8,32b:o:16
timeout 22 python3 bench/probes/gemv_env_sweep.py --act nvfp4 --reps 3 --env RESET_NATIVE_GEMV_W4A4_SPLIT_CLUSTER \
  --values unset,1 --rows "$ROWS" > "$OUT/a_rule_vs_plain.txt" 2>&1
echo "A rc $? at ${SECONDS} s"
timeout 14 python3 bench/probes/gemv_env_sweep.py --act nvfp4 --reps 3 --env RESET_NATIVE_GEMV_W4A4_SPLIT_CLUSTER \
  --values unset,2,4 --rows 8b:down:16,32b:down:8,32b:down:16,32b:o:16 > "$OUT/b_rule_vs_sizes.txt" 2>&1
echo "B rc $? at ${SECONDS} s"
grep -hE "passed|failed|error" "$OUT"/t[1234]_*.txt | tail -n 12
echo "== A: unset (the rule) vs 1 (plain split), W4A4 dynamic scale"
cat "$OUT/a_rule_vs_plain.txt"
echo "== B: unset vs clusters of 2 and 4"
cat "$OUT/b_rule_vs_sizes.txt"
