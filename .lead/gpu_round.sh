#!/bin/bash
# gemv24 (session 18 prep, for session 19's first GPU round) from the tree root after `pip install --no-build-isolation
# .` (<= 150 s; writes only under $OUT and /tmp): RESET_NATIVE_GEMV_16_FORM=w4a4pad, kForm16RedPad (the A16 default's
# padded reduction rows) opted in on the W4A4 instances, counted by the routing. The routing model's one change on the
# Qwen3 layers, the GPU tests (w4a4pad gives unset's bits on every W4A4 instance, bf16/fp16/fp32 x, static and dynamic
# scale, bias and residual, the two shapes it moves, graph replay; A16 and the other kernels unchanged), then an A/B of
# the routing change (8B gate_up at M = 11: two CTAs per SM unset, two teams with the pad), and last the A/B table
# `--act nvfp4 --values unset,w4a4pad,unset,w4a4pad --ms 8,16` (every row "same bits True").
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gemv24_out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
date -u +"device clock %H:%M:%S UTC"
python3 bench/probes/gemv16_w4a4_pad_routing.py > "$OUT/routing_model.txt" 2>&1
grep -E "^w4a4 .*CHANGED" "$OUT/routing_model.txt"
timeout ${TEST_TIMEOUT:-45} python3 -m pytest -q -m gpu -p no:cacheprovider --tb=short -rf \
  tests/test_nvfp4_gpu_form16_w4a4_pad.py \
  "tests/test_nvfp4_gpu_form16_pad.py::test_other_modes_and_old_forms_have_no_pad" > "$OUT/tests.txt" 2>&1
echo "tests (rc $?): $(tail -1 "$OUT/tests.txt")"
grep -E "^(FAILED|ERROR)|Error|assert" "$OUT/tests.txt" | head -8
date -u +"device clock %H:%M:%S UTC"
echo "== W4A4, M = 11 on the 8B layers (gate_up: the routing change; q/k/v, o, down split K either way)"
timeout 20 python3 bench/probes/gemv_env_sweep.py --act nvfp4 --env RESET_NATIVE_GEMV_16_FORM \
  --values unset,w4a4pad,unset,w4a4pad --ms 11 --layers 8b --reps 3 > "$OUT/sweep_m11.txt" 2>&1
tail -5 "$OUT/sweep_m11.txt"
timeout 75 python3 bench/probes/gemv_env_sweep.py --act nvfp4 --env RESET_NATIVE_GEMV_16_FORM \
  --values unset,w4a4pad,unset,w4a4pad --ms 8,16 --reps 5 > "$OUT/sweep.txt" 2>&1
date -u +"device clock %H:%M:%S UTC"
cat "$OUT/sweep.txt"
