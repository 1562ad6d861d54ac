#!/bin/bash
# One GPU call for session 10's work on the ReSET decode step (docs/sampler.md, CUDA details), from the repository
# root after `pip install --no-build-isolation .`: builds the trace probe (bench/probes/sampler_batch.cu with
# -DRESET_NATIVE_SAMPLER_TRACE) in the background, runs the GPU tests of RESET_NATIVE_SAMPLER_LEAN_DRAW, the
# timing table of bench/probes/sampler_switches.py (graph replays, every variant against "old" in the same process,
# bit for bit) at SAMPLER_SWITCH_BATCHES, its chunks-per-block sweep at GROUPING_BATCHES, row 0's phase trace at
# B = 1 and 8 with the defaults and with LEAN_DRAW off, and with NCU=1 ncu of the three kernels at B = 64 with the
# defaults. TESTS / TEST_TIMEOUT override the tests below. (Round 1 of the session ran this script's first form,
# bench/probes/sampler_warm.sh at commit 05dc847, for the since removed WARM_TAIL / WARM_BINS switches; round 2
# ran it at commit 33a2e0a, with the since removed HIST_SPLIT.)
cd "$(dirname "$0")/../.."
FLAGS="-std=c++17 -O3 -arch=sm_90 -Icuda -Icpp/include -Icpp/src"
SRC="bench/probes/sampler_batch.cu cpp/src/sampler/state.cpp cpp/src/sampler/device_workspace.cpp"
rm -f /tmp/s11t
(nvcc $FLAGS -DRESET_NATIVE_SAMPLER_TRACE -o /tmp/s11t.tmp $SRC > /tmp/s11t.log 2>&1 && mv /tmp/s11t.tmp /tmp/s11t) &
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
date -u +%H:%M:%S
timeout ${TEST_TIMEOUT:-80} python3 -m pytest -q -m gpu -p no:cacheprovider --tb=line -rf \
  ${TESTS:-tests/test_sampler_gpu_session10.py} 2>&1 | tail -6
SAMPLER_SWITCH_BATCHES=${SAMPLER_SWITCH_BATCHES:-1,4,8,64} timeout 80 python3 bench/probes/sampler_switches.py \
  > /tmp/s11_table.txt 2>&1
SAMPLER_SWITCH_VARIANTS=grouping SAMPLER_SWITCH_BATCHES=${GROUPING_BATCHES:-1,8,64} timeout 70 \
  python3 bench/probes/sampler_switches.py > /tmp/s11_grouping.txt 2>&1
wait
if [ -x /tmp/s11t ]; then
  for variant in defaults lean_draw_off; do
    echo "== trace, $variant"
    if [ $variant = lean_draw_off ]; then export RESET_NATIVE_SAMPLER_LEAN_DRAW=0; fi
    timeout 30 /tmp/s11t trace 2>&1 | grep -A3 "^trace B=[18] " | grep -v "^trace B\|^--"
  done
  unset RESET_NATIVE_SAMPLER_LEAN_DRAW
else
  tail -5 /tmp/s11t.log
fi
cat /tmp/s11_table.txt
tail -9 /tmp/s11_grouping.txt
if [ "${NCU:-0}" = 1 ] && command -v ncu > /dev/null; then
  rm -f /tmp/s11ncu.csv
  SAMPLER_NCU_VARIANTS=default timeout 50 ncu --csv --print-units base --cache-control none --clock-control none \
    --metrics gpu__time_duration.sum,dram__bytes_read.sum,lts__t_sector_hit_rate.pct,sm__warps_active.avg.pct_of_peak_sustained_active,sm__throughput.avg.pct_of_peak_sustained_elapsed,sm__inst_issued.avg.pct_of_peak_sustained_active,smsp__inst_executed.sum \
    -k regex:'stats_kernel|topp_bins|sample_kernel' --log-file /tmp/s11ncu.csv \
    python3 bench/probes/sampler_switches.py ncu > /dev/null 2>&1
  python3 bench/probes/sampler_switches.py ncu-table /tmp/s11ncu.csv 2>&1 | tail -9
fi
date -u +%H:%M:%S
