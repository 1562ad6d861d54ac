#!/bin/bash
# sampler22 (session 19) round 2, measurement only (no kernel of the package changes; the new trace marks are in
# -DRESET_NATIVE_SAMPLER_TRACE builds alone). From the tree root after main's wheel is installed; <= 130 s; writes
# only under $OUT and /tmp. Builds the trace probe (bench/probes/sampler_batch.cu) in the background, runs the probe
# table (SAMPLER_SWITCH_VARIANTS=s22: default twice, bins 2 / 3 chunks per block, SAMPLE_PICKS off, PREP_BLOCK off;
# every variant bit for bit against old), then row 0's trace at B = 1 / 8 / 64 (bins marks 7: every warp's adds
# done, 8: the flush's atomics performed in L2) and the trace-bins mode (each bins block times its add again after
# the flush, and the same weights and bins without shared memory), and prints the probe's table last.
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/sampler22_out}
mkdir -p "$OUT"
FLAGS="-std=c++17 -O3 -arch=sm_90 -Icuda -Icpp/include -Icpp/src"
SRC="bench/probes/sampler_batch.cu cpp/src/sampler/state.cpp cpp/src/sampler/device_workspace.cpp"
rm -f /tmp/s22t
(nvcc $FLAGS -DRESET_NATIVE_SAMPLER_TRACE -o /tmp/s22t.tmp $SRC > /tmp/s22t.log 2>&1 && mv /tmp/s22t.tmp /tmp/s22t) &
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
date -u +"device clock %H:%M:%S UTC"
SAMPLER_SWITCH_VARIANTS=s22 SAMPLER_SWITCH_BATCHES=1,8,64 SAMPLER_SWITCH_OUT="$OUT" timeout 60 \
  python3 bench/probes/sampler_switches.py > "$OUT/probe.txt" 2>&1
echo "probe exit $?"
wait
if [ -x /tmp/s22t ]; then
  echo "== trace, default (B = 8 and 64 in \$OUT/trace_default.txt)"
  timeout 12 /tmp/s22t trace > "$OUT/trace_default.txt" 2>&1
  head -7 "$OUT/trace_default.txt"
  echo "== trace-bins (each bins block repeats its add after its flush; later marks late by the repeats)"
  timeout 10 /tmp/s22t trace-bins > "$OUT/trace_bins.txt" 2>&1
  grep -E "trace B=|bins|^  stats last block, cycles" "$OUT/trace_bins.txt" | head -10
else
  echo "no trace probe:"; tail -5 /tmp/s22t.log
fi
date -u +"device clock %H:%M:%S UTC"
cat "$OUT/probe.txt"
