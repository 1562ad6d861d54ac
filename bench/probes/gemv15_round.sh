#!/bin/bash
# Session 12, helper gemv15: its GPU round (from the tree root, after `pip install --no-build-isolation .`): the
# head-wait fused kernels' GPU tests (and the model-path fusion test), the timing table
# (bench/probes/fused_head_wait.py) and the ncu table (bench/probes/fused_prologue_ncu.sh, when ncu is on PATH).
# About 2 minutes. (Rounds 1 and 2 ran this script at commits 8ada32c and 8fd1620, with the forms measured then;
# bench/RESULTS.md, session 12 gemv15.)
cd "$(dirname "$0")/../.."
export OUT=${OUT:-/tmp/gemv15_out}
mkdir -p "$OUT"
echo "== tests"
python3 -m pytest -q --tb=line -p no:cacheprovider tests/test_fused_gemv_head_wait.py tests/test_fused_gemv.py \
  tests/test_nvfp4_gpu_bd_small.py -k "head_wait or small_forms or small_variants or model_outputs" 2>&1 | tail -12
echo "== timing"
python3 bench/probes/fused_head_wait.py --ms 1,2 --reps 10 2>&1 | tail -40
if command -v ncu > /dev/null; then
  echo "== ncu"
  bash bench/probes/fused_prologue_ncu.sh 2>&1 | tail -12
fi
