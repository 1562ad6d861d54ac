#!/bin/bash
# sampler20 (session 18) GPU round, from the tree root after `pip install --no-build-isolation .` (<= 150 s; writes only
# under $OUT and /tmp): builds the trace probe (bench/probes/sampler_batch.cu, -DRESET_NATIVE_SAMPLER_TRACE) in the
# background, runs tests/test_sampler_gpu_session18.py (EARLY_SCAN bit for bit against off), row 0's phase trace with
# the default and with RESET_NATIVE_SAMPLER_EARLY_SCAN=1, and last the probe's table (SAMPLER_SWITCH_VARIANTS=s20:
# default, EARLY_SCAN forced off and on, each twice in turns, B = 1, 8, 64; every variant bit for bit against old).
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/sampler20_out}
mkdir -p "$OUT"
FLAGS="-std=c++17 -O3 -arch=sm_90 -Icuda -Icpp/include -Icpp/src"
SRC="bench/probes/sampler_batch.cu cpp/src/sampler/state.cpp cpp/src/sampler/device_workspace.cpp"
rm -f /tmp/s20t
(nvcc $FLAGS -DRESET_NATIVE_SAMPLER_TRACE -o /tmp/s20t.tmp $SRC > /tmp/s20t.log 2>&1 && mv /tmp/s20t.tmp /tmp/s20t) &
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
date -u +"device clock %H:%M:%S UTC"
timeout ${TEST_TIMEOUT:-65} python3 -m pytest -q -m gpu -p no:cacheprovider --tb=short -rf -x \
  tests/test_sampler_gpu_session18.py > "$OUT/tests.txt" 2>&1
echo "tests: $(tail -1 "$OUT/tests.txt")"
grep -E "^(FAILED|ERROR)|Error|assert" "$OUT/tests.txt" | head -8
SAMPLER_SWITCH_VARIANTS=s20 SAMPLER_SWITCH_BATCHES=1,8,64 SAMPLER_SWITCH_OUT="$OUT" timeout 52 \
  python3 bench/probes/sampler_switches.py > "$OUT/probe.txt" 2>&1
wait
if [ -x /tmp/s20t ]; then
  echo "== trace B = 1, default"
  timeout 10 /tmp/s20t trace > "$OUT/trace_default.txt" 2>&1
  head -7 "$OUT/trace_default.txt"
  echo "== trace B = 1, EARLY_SCAN=1 (sample marks: 5 sub-bins, 6 threshold and sure scan, 8 chunk, 9 token)"
  RESET_NATIVE_SAMPLER_EARLY_SCAN=1 timeout 10 /tmp/s20t trace > "$OUT/trace_early.txt" 2>&1
  head -7 "$OUT/trace_early.txt"
else
  echo "no trace probe:"; tail -5 /tmp/s20t.log
fi
date -u +"device clock %H:%M:%S UTC"
cat "$OUT/probe.txt"
