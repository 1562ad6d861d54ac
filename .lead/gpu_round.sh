#!/bin/bash
# dedup44 (session 23), from the tree root after the wheel is installed (<= ~110 s; writes only under $OUT and /tmp).
# The branch moved shared test setups into tests/sampler_gpu_helpers.py and tests/sampler_switch_suite.py (same
# parameters, seeds, inputs and assertions; collect-only output of every file identical), so every GPU test file it
# changed runs once: `python3 -m pytest -q -p no:cacheprovider -m gpu <files>` as four parallel processes over disjoint
# sets of the 14 files (1130 tests), each stopped by SIGINT at 100 s (pytest then prints its summary). All must pass.
# Expected ~40-80 s (earlier rounds: session15/16/17 files 20-28 s each alone). Summary last.
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-/tmp/dedup44_out}
mkdir -p "$OUT"
export PYTHONDONTWRITEBYTECODE=1  # nothing written outside $OUT and /tmp
SECONDS=0
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
date -u +"device clock %H:%M:%S UTC"
PYTEST=(python3 -m pytest -q -p no:cacheprovider -m gpu --tb=short -rfEs)
T=tests/test_sampler_gpu
timeout -s INT -k 5 100 "${PYTEST[@]}" ${T}_session18.py ${T}_session11.py ${T}_eager_route.py ${T}.py \
  > "$OUT/g1.txt" 2>&1 &
timeout -s INT -k 5 100 "${PYTEST[@]}" ${T}_resident.py ${T}_bins_add.py ${T}_switches.py > "$OUT/g2.txt" 2>&1 &
timeout -s INT -k 5 100 "${PYTEST[@]}" ${T}_paths.py ${T}_session16.py ${T}_session13.py > "$OUT/g3.txt" 2>&1 &
timeout -s INT -k 5 100 "${PYTEST[@]}" ${T}_session17.py ${T}_session15.py ${T}_fast_finish.py ${T}_session14.py \
  > "$OUT/g4.txt" 2>&1 &
wait
echo "done at ${SECONDS} s"
grep -hE "^(FAILED|ERROR)" "$OUT"/g[1-4].txt | head -n 30
echo "== dedup44: changed sampler GPU test files (expected 264 + 274 + 285 + 307 = 1130 passed)"
for f in "$OUT"/g[1-4].txt; do echo "$(basename "$f"): $(tail -n 1 "$f")"; done
