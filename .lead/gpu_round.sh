#!/bin/bash
# sampler24 (session 20): the bins pass's carry adds as the default against RESET_NATIVE_SAMPLER_BINS_ADD=split (the
# two-halves form before it). From the tree root with the wheel installed; about 25-35 s; no pytest; writes only
# under $OUT and /tmp.
# 1. Which top-p bins kernel each variant launches (torch profiler, one B = 1 ReSET top-p step each): the default
#    must show topp_bins_kernel<0, true, true, true> (dtype, lean, phased, carry), split <0, true, true, false>.
# 2. The probe, SAMPLER_SWITCH_VARIANTS=s24: old, default, split, default_b, split_b in turns (one-step graph replays,
#    best of 5 x 200), B = 1, 8, 64, ReSET top-p and fixed T (no bins pass: noise only); every variant checked bit for
#    bit against old (tokens, temperatures, entropies, 3 steps). Its table is printed last.
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-/tmp/sampler24_out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
date -u +"device clock %H:%M:%S UTC"
echo "== bins kernel per variant (B = 1, ReSET top-p)"
SAMPLER_SWITCH_VARIANTS=s24 timeout 12 python3 bench/probes/sampler_switches.py kernels > "$OUT/kernels.txt" 2>&1
echo "kernels exit $?"
grep -E "^(old|default|split)" "$OUT/kernels.txt" || tail -4 "$OUT/kernels.txt"
SAMPLER_SWITCH_VARIANTS=s24 SAMPLER_SWITCH_BATCHES=1,8,64 SAMPLER_SWITCH_OUT="$OUT" timeout 30 \
  python3 bench/probes/sampler_switches.py > "$OUT/probe.txt" 2>&1
echo "probe exit $?"
date -u +"device clock %H:%M:%S UTC"
cat "$OUT/probe.txt"
