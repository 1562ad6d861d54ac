#!/bin/bash
# cluster45 (session 23), from the tree root after the wheel is installed (<= 110 s; writes only under $OUT and /tmp).
# gemv_kernel.cuh: stage_cluster and stage_cluster_compact merged into one lambda (the same PTX and SASS for every
# instance: NOTES-cluster45.md), so no new tests; the existing GPU tests of the cluster staging (two-team clusters,
# every cluster form, the cluster band, split K in clusters and its rule), 220 tests, as three pytest processes side
# by side, each stopped by SIGINT at 100 s (pytest then prints its summary). All must pass. Summary last.
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-/tmp/cluster45_out}
mkdir -p "$OUT"
export PYTHONDONTWRITEBYTECODE=1  # nothing written outside $OUT and /tmp
SECONDS=0
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
date -u +"device clock %H:%M:%S UTC"
PYTEST=(python3 -m pytest -q -p no:cacheprovider -m gpu --tb=short -rfEs)
timeout -s INT -k 5 100 "${PYTEST[@]}" tests/test_nvfp4_gpu_w4a4_split_cluster.py \
  tests/test_nvfp4_gpu_w4a4_split_cluster_rule.py > "$OUT/t1_split_cluster.txt" 2>&1 &
timeout -s INT -k 5 100 "${PYTEST[@]}" tests/test_nvfp4_gpu_w4a4_cluster.py \
  tests/test_nvfp4_gpu_w4a4_cluster_band.py > "$OUT/t2_cluster_band.txt" 2>&1 &
timeout -s INT -k 5 100 "${PYTEST[@]}" tests/test_nvfp4_gpu_w4a4_cluster_forms.py > "$OUT/t3_cluster_forms.txt" 2>&1 &
wait
grep -hE "^(FAILED|ERROR)" "$OUT"/t[123]_*.txt | head -n 20
echo "== cluster45 summary (expected 220 passed in all, 0 failed)"
for f in "$OUT"/t[123]_*.txt; do echo "$(basename "$f"): $(tail -n 1 "$f")"; done
echo "done at ${SECONDS} s"
