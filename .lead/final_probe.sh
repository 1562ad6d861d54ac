#!/bin/bash
# sampler20 (session 18) final call, from the merged main's root after the build (<= 60 s; no pytest; writes only under
# $OUT and /tmp): the probe's table (SAMPLER_SWITCH_VARIANTS=s20: the default against RESET_NATIVE_SAMPLER_EARLY_SCAN
# forced off and on, each twice in turns, B = 1, 8, 64, ReSET top-p and fixed T; every variant bit for bit against old).
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/sampler20_final}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
date -u +"device clock %H:%M:%S UTC"
SAMPLER_SWITCH_VARIANTS=s20 SAMPLER_SWITCH_BATCHES=1,8,64 SAMPLER_SWITCH_OUT="$OUT" timeout 55 \
  python3 bench/probes/sampler_switches.py > "$OUT/probe.txt" 2>&1
echo "probe exit: $?"
date -u +"device clock %H:%M:%S UTC"
cat "$OUT/probe.txt"
