#!/bin/bash
# Session 12's GPU round 2 (branch sampler13), from the tree root after `pip install --no-build-isolation .`: the
# L2 hint switch tests (RESET_NATIVE_SAMPLER_L2_KEEP / _L2_FIRST / _L2_RELEASE, bit for bit against none),
# graph-replay timings of the default against the hints at B = 1, 8, 64 (bit for bit against every switch off), at
# B = 64 with fresh logits copied in before every step, more chunks-per-block values at B = 64 (grouping64), and
# with NCU=1 (default) ncu's per-kernel time, L2 hit rate and DRAM bytes at B = 64 for the default, keep75 and
# first50 (one pass per kernel: the kernels run in step order, so each one meets the L2 the previous one left).
# About 2 minutes on an H200; the tables last.
# (Round 1 ran this script's first form at commit 66e115e, with BINS_FLAG / PLAN_FLAG / L2_PREFETCH, since removed.)
cd "$(dirname "$0")/../.."
date -u +%H:%M:%S
timeout 60 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_sampler_gpu_session12.py > /tmp/s13t.log 2>&1
echo "pytest rc=$? (124: timed out)"
grep -E "passed|failed|FAILED|Error" /tmp/s13t.log | tail -8
SAMPLER_SWITCH_VARIANTS=s12 timeout 60 python3 bench/probes/sampler_switches.py > /tmp/s13_table.txt 2>&1
SAMPLER_SWITCH_VARIANTS=s12 SAMPLER_SWITCH_BATCHES=64 SAMPLER_SWITCH_FRESH=1 SAMPLER_SWITCH_CHECK=0 timeout 30 \
  python3 bench/probes/sampler_switches.py > /tmp/s13_fresh.txt 2>&1
SAMPLER_SWITCH_VARIANTS=grouping64 SAMPLER_SWITCH_BATCHES=64 timeout 40 \
  python3 bench/probes/sampler_switches.py > /tmp/s13_group.txt 2>&1
if [ "${NCU:-1}" = 1 ] && command -v ncu > /dev/null; then
  rm -f /tmp/s13ncu.csv
  SAMPLER_SWITCH_VARIANTS=s12 SAMPLER_NCU_VARIANTS=default,keep75,first50 timeout 40 ncu --csv --print-units base \
    --cache-control none --clock-control none \
    --metrics gpu__time_duration.sum,dram__bytes_read.sum,lts__t_sector_hit_rate.pct \
    -k regex:'stats_kernel|topp_bins|sample_kernel' --log-file /tmp/s13ncu.csv \
    python3 bench/probes/sampler_switches.py ncu > /dev/null 2>&1
  echo "ncu rc=$?"
  python3 bench/probes/sampler_switches.py ncu-table /tmp/s13ncu.csv 2>&1 | tail -20 | \
    sed -E 's/ +nan +nan +nan +nan//'
fi
echo "B = 64, more chunks per block:"; grep -E "MISMATCH|bit for bit" /tmp/s13_group.txt; tail -2 /tmp/s13_group.txt
echo "B = 64, fresh logits copied in each step:"; tail -2 /tmp/s13_fresh.txt
grep -E "H200|H100|bit for bit|MISMATCH|Error|error" /tmp/s13_table.txt | head -12
tail -6 /tmp/s13_table.txt
date -u +%H:%M:%S
