#!/bin/bash
# Session 11's GPU round (branch sampler12), from the tree root after `pip install --no-build-isolation .`:
# the sampler switch tests (session 11's FULL_LOADS / VEC_LOADS / FLAT_BINS / WARP_REDUX / STATS_RANGE /
# KEPT_SUM, and session 9's),
# then graph-replay timings of the default against each session 11 switch and all of them at B = 1, 8, 64 (bit for bit
# against every switch off), B = 64 once more, and with NCU=1 (default) ncu's per-kernel time and instruction counts
# at B = 64 for the default and all of them. About 2 minutes on an H200; the tables last. (Written while the switches
# were off by default, as "+name" variants; since they are on by default the probe's s11 variants are "-name",
# each one off, and "-s11", all six off: the ncu line below then profiles the default and -s11.)
cd "$(dirname "$0")/../.."
date -u +%H:%M:%S
timeout 80 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_sampler_gpu_session11.py \
  tests/test_sampler_gpu_switches.py > /tmp/s12t.log 2>&1
echo "pytest rc=$? (124: timed out)"
grep -E "passed|failed|FAILED|Error" /tmp/s12t.log | tail -8
SAMPLER_SWITCH_VARIANTS=s11 timeout 60 python3 bench/probes/sampler_switches.py > /tmp/s12_table.txt 2>&1
SAMPLER_SWITCH_VARIANTS=s11 SAMPLER_SWITCH_BATCHES=64 timeout 40 python3 bench/probes/sampler_switches.py \
  > /tmp/s12_table64.txt 2>&1
if [ "${NCU:-1}" = 1 ] && command -v ncu > /dev/null; then
  rm -f /tmp/s12ncu.csv
  SAMPLER_SWITCH_VARIANTS=s11 SAMPLER_NCU_VARIANTS=default,-s11 timeout 45 ncu --csv --print-units base \
    --cache-control none --clock-control none \
    --metrics gpu__time_duration.sum,dram__bytes_read.sum,lts__t_sector_hit_rate.pct,sm__warps_active.avg.pct_of_peak_sustained_active,sm__throughput.avg.pct_of_peak_sustained_elapsed,sm__inst_issued.avg.pct_of_peak_sustained_active,smsp__inst_executed.sum \
    -k regex:'stats_kernel|topp_bins|sample_kernel' --log-file /tmp/s12ncu.csv \
    python3 bench/probes/sampler_switches.py ncu > /dev/null 2>&1
  python3 bench/probes/sampler_switches.py ncu-table /tmp/s12ncu.csv 2>&1 | tail -15
fi
echo "B = 64 again:"; tail -4 /tmp/s12_table64.txt
grep -E "H200|H100|bit for bit|MISMATCH" /tmp/s12_table.txt
tail -8 /tmp/s12_table.txt
date -u +%H:%M:%S
