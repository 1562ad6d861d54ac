#!/bin/bash
# gemv25 (session 19 round 2) from the tree root after installing main's wheel (<= 60 s; writes only under $OUT and
# /tmp): kForm16RedPad is the default on the W4A4 instances too (RESET_NATIVE_GEMV_16_FORM=nopad drops it everywhere).
# 1. GPU tests (<= 35 s; TEST_TIMEOUT / SWEEP_TIMEOUT override the two limits): the W4A4 pad tests (default = pad,
#    nopad the reference: same bits, the two moved shapes, graph replay, the switch values), the A16 pad file (its
#    W4A4 assertion now expects the pad) and the one W4A4 form assertion of test_nvfp4_gpu_form16.py. 70 tests.
# 2. W4A4 at M = 4 (never measured with the pad; 8 token columns, 4-way conflicts without it): unset vs nopad on the
#    Qwen3 layers (<= 22 s). Expect level to slightly faster, "same bits True" on every row, no instance change.
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gemv25_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
date -u +"device clock %H:%M:%S UTC"
timeout ${TEST_TIMEOUT:-35} python3 -m pytest -q -m gpu -p no:cacheprovider --tb=short -rf \
  tests/test_nvfp4_gpu_form16_w4a4_pad.py tests/test_nvfp4_gpu_form16_pad.py \
  "tests/test_nvfp4_gpu_form16.py::test_unknown_values_and_other_modes_keep_their_kernels" > "$OUT/tests.txt" 2>&1
echo "tests (rc $?): $(tail -1 "$OUT/tests.txt")"
grep -E "^(FAILED|ERROR)" "$OUT/tests.txt" | head -6
date -u +"device clock %H:%M:%S UTC"
timeout ${SWEEP_TIMEOUT:-22} python3 bench/probes/gemv_env_sweep.py --act nvfp4 --env RESET_NATIVE_GEMV_16_FORM \
  --values unset,nopad --ms 4 --reps 3 > "$OUT/sweep_m4.txt" 2>&1
echo "sweep (rc $?)"
date -u +"device clock %H:%M:%S UTC"
cat "$OUT/sweep_m4.txt"
