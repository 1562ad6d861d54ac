#!/bin/bash
# w4a4rule40 (session 21), from the tree root after the wheel is installed (<= 108 s of timeouts; writes only under
# $OUT and /tmp). The W4A4 cluster rule: at M >= 8 clusters of 4 with both cluster forms where 2 x SMs < row tiles <=
# 5 x SMs (8B and 32B q/k/v), else clusters of 2 without a form (host-only change: kernel SASS identical to main's).
#   T. The new tests (test_nvfp4_gpu_w4a4_cluster_band.py: band edges 264 / 265 / 660 / 661 tiles at M = 8, 16, the
#      Qwen3 rows, M = 7, the switches) and the files whose expectations changed, restricted to the tests that reach
#      the two-team kernel at M >= 8 or whose helpers changed (-k); all must pass. ~150 tests, stopped by SIGINT at
#      its timeout (pytest then prints its summary).
#   A. W4A4 dynamic scale, RESET_NATIVE_GEMV_W4A4_CLUSTER unset (the new rule) | 2 (main's default) at M = 8, 12, 16:
#      q/k/v rows should gain ~1.3-2.9 us (8B q/k/v M = 8 level), o and gate_up rows level (both run C = 2 there);
#      "same bits" True on every row.
# Tables last.
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-/tmp/w4a4rule40_out}
mkdir -p "$OUT"
export PYTHONDONTWRITEBYTECODE=1  # nothing written outside $OUT and /tmp
SECONDS=0
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
date -u +"device clock %H:%M:%S UTC"
unset RESET_NATIVE_GEMV_16_FORM RESET_NATIVE_GEMV_KSPLIT RESET_NATIVE_GEMV_SPLIT_AMAX RESET_NATIVE_GEMV_TEAMS \
  RESET_NATIVE_GEMV_BD RESET_NATIVE_GEMV_W4A4_CLUSTER RESET_NATIVE_GEMV_W4A4_CLUSTER_FORM RESET_NATIVE_GEMV_RING
timeout -s INT -k 4 78 python3 -m pytest -q -m "gpu and not slow" -p no:cacheprovider --tb=short -rfEs \
  -k "cluster or 8448 or split_amax or unaligned" \
  tests/test_nvfp4_gpu_w4a4_cluster_band.py tests/test_nvfp4_gpu_w4a4_cluster.py \
  tests/test_nvfp4_gpu_w4a4_cluster_forms.py::test_form_switch_needs_clusters \
  tests/test_nvfp4_gpu_w4a4_quantfast.py tests/test_nvfp4_gpu_form16_w4a4_pad.py tests/test_nvfp4_gpu_form16_head.py \
  > "$OUT/t_tests.txt" 2>&1
echo "T rc $? at ${SECONDS} s: $(tail -n 1 "$OUT/t_tests.txt")"
timeout 25 python3 bench/probes/gemv_env_sweep.py --act nvfp4 --reps 3 --env RESET_NATIVE_GEMV_W4A4_CLUSTER \
  --values unset,2 --ms 8,12,16 --layers 8b,32b > "$OUT/a_cluster.txt" 2>&1
echo "A rc $? at ${SECONDS} s"
date -u +"device clock %H:%M:%S UTC"
echo "== T: tests (failures, errors and skips, then the summary)"
grep -E "^(FAILED|ERROR|SKIPPED)|Error|error" "$OUT/t_tests.txt" | head -n 30
tail -n 3 "$OUT/t_tests.txt"
echo "== A: W4A4 dynamic scale, RESET_NATIVE_GEMV_W4A4_CLUSTER unset (C = 4 + both in the band, else 2) | 2 (main)"
cat "$OUT/a_cluster.txt"
echo "total ${SECONDS} s"
