#!/bin/bash
# sampler23 (session 19) final call: the top-p bins pass's carry adds (RESET_NATIVE_SAMPLER_BINS_ADD=carry, opt-in).
# From main's tree root with main's wheel installed; <= 60 s; no pytest; writes only under $OUT and /tmp.
# 1. The probe, SAMPLER_SWITCH_VARIANTS=s23: default, carry, default_b, carry_b in turns (graph replays, best of
#    5 x 200), B = 1, 8, 64, every variant checked bit for bit against old. Its table is printed last.
# 2. bench/probes/bins_add_forms.cu (built in the background while the probe runs, run after it): the add forms
#    alone, 75 blocks, warm repeats of one chunk's add (median cycles: default / carry / match) for five logit
#    distributions, and whether every block's bin sums equal the default's.
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/sampler23_out}
mkdir -p "$OUT"
rm -f /tmp/s23_forms
(nvcc -std=c++17 -O3 -arch=sm_90 -o /tmp/s23_forms.tmp bench/probes/bins_add_forms.cu > /tmp/s23_forms.log 2>&1 &&
  mv /tmp/s23_forms.tmp /tmp/s23_forms) &
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
date -u +"device clock %H:%M:%S UTC"
SAMPLER_SWITCH_VARIANTS=s23 SAMPLER_SWITCH_BATCHES=1,8,64 SAMPLER_SWITCH_OUT="$OUT" timeout 45 \
  python3 bench/probes/sampler_switches.py > "$OUT/probe.txt" 2>&1
echo "probe exit $?"
wait
if [ -x /tmp/s23_forms ]; then
  echo "== bins add forms (cycles per warm repeat of one chunk's add; same: bin sums equal the default's)"
  timeout 8 /tmp/s23_forms > "$OUT/bins_add_forms.txt" 2>&1
  cat "$OUT/bins_add_forms.txt"
else
  echo "no forms probe:"; tail -3 /tmp/s23_forms.log
fi
date -u +"device clock %H:%M:%S UTC"
cat "$OUT/probe.txt"
