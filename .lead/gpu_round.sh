#!/bin/bash
# GPU round for branch gemv22 (issue 4: what the M = 16 loop of the 16-bit NVFP4 GEMV waits on). Run from the tree
# root after `pip install --no-build-isolation .`; ~100-140 s; writes only under $OUT (or /tmp).
#  1. tests of session 18's forms (RESET_NATIVE_GEMV_16_FORM = head: the rule's bits; acc / acchead: fp64 bound,
#     determinism, graph replay);
#  2. ncu warp-stall samples per SASS instruction of the default two-team kernel at 24576x4096x16 (where it waits);
#  3. A/B: unset / head / acc / acchead / unset at M = 8, 16 on the Qwen3 layers ("same bits" is False by design
#     wherever acc runs: compare unset with head for the bits).
set -u
OUT=${OUT:-/tmp/gemv22_round}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
echo "== GPU tests: head refill (bits = rule), split accumulators (fp64 bound, determinism, graph replay)"
timeout 40 $PY -m pytest -m gpu -q tests/test_nvfp4_gpu_form16_s18.py 2>&1 | tail -6 | tee "$OUT/tests_s18.txt"
echo "== ncu: warp-stall samples by instruction, default form, 24576x4096x16 (two teams)"
OUT=$OUT/ncu TOP=20 timeout 50 bash bench/probes/gemv16_stall_where.sh 24576x4096x16 2>&1 | tail -32
echo "== A/B at M = 8, 16 (us per call)"
timeout 60 $PY bench/probes/gemv_env_sweep.py --env RESET_NATIVE_GEMV_16_FORM --values unset,head,acc,acchead,unset \
  --ms 8,16 --reps 5 2>&1 | tee "$OUT/ab.txt"
