#!/bin/bash
# gemv23 (session 18 prep, for session 19's first GPU round) from the tree root after `pip install --no-build-isolation
# .` (<= 150 s; writes only under $OUT and /tmp): kForm16RedPad as the default of the 16-bit GEMV, its shared memory
# counted by the routing. The GPU tests of the forms (the default has the pad, "nopad" not, the same bits; the largest
# whole-x K at M = 16; the two shapes whose instance the pad moves; the routing tests of teams and split K), then an
# A/B of the one routing change on the Qwen3 layers (8B q/k/v, o, gate_up at M = 11: two CTAs per SM with nopad, two
# teams with the pad), and last the A/B table `--values unset,nopad,unset,nopad --ms 4,8,16` (every row "same bits").
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gemv23_out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
date -u +"device clock %H:%M:%S UTC"
python3 bench/probes/gemv16_pad_routing.py > "$OUT/routing_model.txt" 2>&1
grep CHANGED "$OUT/routing_model.txt"
timeout ${TEST_TIMEOUT:-50} python3 -m pytest -q -m gpu -p no:cacheprovider --tb=short -rf \
  tests/test_nvfp4_gpu_form16_pad.py tests/test_nvfp4_gpu_form16_s16.py \
  "tests/test_nvfp4_gpu_teams_rule.py::test_rule_kernel_choice" \
  "tests/test_nvfp4_cuda_split.py::test_which_calls_split" \
  tests/test_nvfp4_gpu_form16.py > "$OUT/tests.txt" 2>&1
echo "tests (rc $?): $(tail -1 "$OUT/tests.txt")"
grep -E "^(FAILED|ERROR)|Error|assert" "$OUT/tests.txt" | head -8
date -u +"device clock %H:%M:%S UTC"
echo "== M = 11 on the 8B layers (q/k/v, o, gate_up: the routing change; down is split K either way)"
timeout 28 python3 bench/probes/gemv_env_sweep.py --env RESET_NATIVE_GEMV_16_FORM --values unset,nopad,unset,nopad \
  --ms 11 --layers 8b --reps 3 > "$OUT/sweep_m11.txt" 2>&1
cat "$OUT/sweep_m11.txt" | tail -8
timeout 70 python3 bench/probes/gemv_env_sweep.py --env RESET_NATIVE_GEMV_16_FORM --values unset,nopad,unset,nopad \
  --ms 4,8,16 --reps 5 > "$OUT/sweep.txt" 2>&1
date -u +"device clock %H:%M:%S UTC"
cat "$OUT/sweep.txt"
