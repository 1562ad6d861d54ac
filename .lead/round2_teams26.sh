#!/bin/bash
# teams26 (session 19 round 2) from main's tree root with main's wheel installed (<= 170 s; writes only under $OUT and
# /tmp): where should two teams (TEAMS = 2, one CTA per SM) replace two / three CTAs per SM beyond today's rule?
# RESET_NATIVE_GEMV_TEAMS = unset (the measured rule) vs 2 (two teams wherever x fits whole) on exactly the Qwen3 rows
# whose instance "2" moves (bench/probes/gemv_teams_routing.py, W4A4 with the pad): bf16 (A16) first M = 3 and 9..10,
# then the rest; nvfp4 (W4A4) first M = 4..12 (8B gate_up M = 11, 12: controls, two teams either way with the pad),
# then M = 3. Reps 3, values unset,2,unset,2 ("same bits" must be True on every row). Then the opt-in rule "wide"
# vs unset on two rows if the sweeps ended early (on every row "wide" moves it runs the instance "2" runs, elsewhere
# unset's: the tests check that), the GPU tests of "wide" (tests/test_nvfp4_gpu_teams_wide.py), the tables last.
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/teams26_out}
mkdir -p "$OUT"
SECONDS=0
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
python3 bench/probes/gemv_teams_routing.py > "$OUT/teams_routing_model.txt" 2>&1
grep "^# .*rows move" "$OUT/teams_routing_model.txt"
SWEEP="python3 bench/probes/gemv_env_sweep.py --env RESET_NATIVE_GEMV_TEAMS --reps 3"
BF16_ROWS="8b:qkv:3,8b:qkv:9,8b:qkv:10,8b:o:3,8b:o:9,8b:o:10,8b:gate_up:3,8b:gate_up:9,8b:gate_up:10,8b:down:3"
BF16_ROWS="$BF16_ROWS,32b:qkv:3,32b:o:3,32b:gate_up:3,8b:down:2,32b:o:4,32b:o:5"
BF16_ROWS="$BF16_ROWS,32b:gate_up:4,32b:gate_up:5,32b:gate_up:6,32b:gate_up:7,32b:gate_up:8"
FP4_ROWS="8b:gate_up:4,8b:gate_up:5,8b:gate_up:6,8b:gate_up:7,8b:gate_up:8,8b:gate_up:9,8b:gate_up:10"
FP4_ROWS="$FP4_ROWS,8b:gate_up:11,8b:gate_up:12,32b:qkv:4,32b:qkv:5,32b:qkv:6,32b:qkv:7,32b:qkv:8"
FP4_ROWS="$FP4_ROWS,32b:gate_up:4,32b:gate_up:5,32b:gate_up:6,32b:gate_up:7,32b:gate_up:8"
FP4_ROWS="$FP4_ROWS,8b:gate_up:3,8b:qkv:3,8b:o:3,8b:down:3,32b:qkv:3,32b:o:3,32b:gate_up:3"
timeout 56 $SWEEP --values unset,2,unset,2 --act bf16 --rows "$BF16_ROWS" > "$OUT/teams_bf16.txt" 2>&1
echo "bf16 sweep rc $? at ${SECONDS} s"
timeout 62 $SWEEP --values unset,2,unset,2 --act nvfp4 --rows "$FP4_ROWS" > "$OUT/teams_nvfp4.txt" 2>&1
echo "nvfp4 sweep rc $? at ${SECONDS} s"
if [ "$SECONDS" -le 100 ]; then
  timeout 15 $SWEEP --values unset,wide --act nvfp4 --rows "8b:gate_up:6,32b:gate_up:6" \
    > "$OUT/teams_wide_nvfp4.txt" 2>&1
  echo "wide sweep rc $? at ${SECONDS} s"
fi
LEFT=$((166 - SECONDS))
if [ "$LEFT" -ge 15 ]; then
  timeout "$LEFT" python3 -m pytest -q -m gpu -p no:cacheprovider --tb=short -rf tests/test_nvfp4_gpu_teams_wide.py \
    > "$OUT/tests_teams_wide.txt" 2>&1
  echo "tests (rc $?, ${SECONDS} s): $(tail -1 "$OUT/tests_teams_wide.txt")"
  grep -E "^(FAILED|ERROR)" "$OUT/tests_teams_wide.txt" | head -6
else
  echo "tests skipped (no time left): run tests/test_nvfp4_gpu_teams_wide.py with the GPU suite"
fi
echo "== RESET_NATIVE_GEMV_TEAMS unset,2,unset,2: A16 bf16 x (the rows 2 moves: $OUT/teams_routing_model.txt)"
cat "$OUT/teams_bf16.txt"
echo "== the same, W4A4 (--act nvfp4)"
cat "$OUT/teams_nvfp4.txt"
[ -f "$OUT/teams_wide_nvfp4.txt" ] && { echo "== unset,wide (W4A4: 8B gate_up moves, 32B gate_up not)"; \
  cat "$OUT/teams_wide_nvfp4.txt"; }
echo "total ${SECONDS} s"
