#!/bin/bash
# GPU round for branch gemv21 (the lean split K form of the block-diagonal GEMV, RESET_NATIVE_GEMV_BD_LEAN_SPLIT).
# Run from the tree root after `pip install --no-build-isolation .`; ~60-120 s; writes only under $OUT (or /tmp).
set -u
OUT=${OUT:-/tmp/gemv21_round}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
echo "== CPU cursor model of the lean split walk"
$PY bench/probes/bd_lean_split_cursor_model.py 2>&1 | tee "$OUT/cursor_model.txt"
echo "== GPU tests: the lean split form vs the cb split (bits, fp64 bound), then the existing split tests"
timeout 70 $PY -m pytest -m gpu -q -x tests/test_nvfp4_gpu_bd_lean_split.py 2>&1 | tail -15 | tee "$OUT/tests_lean_split.txt"
timeout 30 $PY -m pytest -m gpu -q tests/test_nvfp4_gpu_bd_split.py 2>&1 | tail -3 | tee "$OUT/tests_split.txt"
echo "== A/B at M = 1 (unsplit / cb split / lean split; 32B down at the rule's 5 slices, 8B down at 3, 32B o at 2)"
timeout 60 $PY bench/probes/gemv_lean_split_ab.py --rounds 3 --reps 5 2>&1 | tee "$OUT/ab.txt"
