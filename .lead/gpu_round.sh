#!/bin/bash
# GPU round for branch gemv21 (the lean split K form of the block-diagonal GEMV, RESET_NATIVE_GEMV_BD_LEAN_SPLIT).
# Run from the tree root after `pip install --no-build-isolation .`; ~40-100 s; writes only under $OUT (or /tmp).
set -u
OUT=${OUT:-/tmp/gemv21_round}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
echo "== CPU cursor model of the lean split walk"
$PY bench/probes/bd_lean_split_cursor_model.py 2>&1 | tee "$OUT/cursor_model.txt"
# (the default instances' SASS is identical to main de86c81's: cb split M = 1, 2 and the lean / cb M = 1 ones)
echo "== GPU tests: the lean split form vs the cb split (bits, fp64 bound)"
timeout 80 $PY -m pytest -m gpu -q tests/test_nvfp4_gpu_bd_lean_split.py 2>&1 | tail -15 | tee "$OUT/tests_lean_split.txt"
echo "== A/B at M = 1 (unsplit / cb split / lean split; 32B down at the rule's 5 slices, 8B down at 3, 32B o at 2)"
timeout 60 $PY bench/probes/gemv_lean_split_ab.py --rounds 3 --reps 5 2>&1 | tee "$OUT/ab.txt"
