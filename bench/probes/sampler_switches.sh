#!/bin/bash
# One GPU call for session 9's switches of the ReSET decode step (RESET_NATIVE_SAMPLER_SAMPLE_PICKS / _LEAN /
# _SUB_BINS / _LEAN_STATS; docs/sampler.md, CUDA details), from the repository root after `pip install
# --no-build-isolation .`: builds the trace probe (bench/probes/sampler_batch.cu with -DRESET_NATIVE_SAMPLER_TRACE)
# in the background, runs the switches' GPU tests, row 0's phase trace at B = 1 / 8 / 64 with every switch off
# ("old") and with the defaults, ncu of the three kernels at B = 64 (old / default; NCU=0
# skips it), and last the timing table of bench/probes/sampler_switches.py (graph replays, every variant against
# old in the same process, bit for bit).
cd "$(dirname "$0")/../.."
FLAGS="-std=c++17 -O3 -arch=sm_90 -Icuda -Icpp/include -Icpp/src"
SRC="bench/probes/sampler_batch.cu cpp/src/sampler/state.cpp cpp/src/sampler/device_workspace.cpp"
rm -f /tmp/s10t
(nvcc $FLAGS -DRESET_NATIVE_SAMPLER_TRACE -o /tmp/s10t.tmp $SRC > /tmp/s10t.log 2>&1 && mv /tmp/s10t.tmp /tmp/s10t) &
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
timeout ${TEST_TIMEOUT:-100} python3 -m pytest -q -m gpu -p no:cacheprovider --tb=line -rf \
  ${TESTS:-tests/test_sampler_gpu_switches.py} 2>&1 | tail -6
timeout 90 python3 bench/probes/sampler_switches.py > /tmp/s10_table.txt 2>&1
wait
if [ -x /tmp/s10t ]; then
  echo "== trace, every switch off (old)"
  RESET_NATIVE_SAMPLER_SAMPLE_PICKS=0 RESET_NATIVE_SAMPLER_LEAN=0 \
    RESET_NATIVE_SAMPLER_SUB_BINS=0 RESET_NATIVE_SAMPLER_LEAN_STATS=0 timeout 30 /tmp/s10t trace 2>&1 |
    grep -v "^trace B\|^$"
  echo "== trace, defaults"
  timeout 30 /tmp/s10t trace 2>&1 |
    grep -v "^trace B\|^$"
else
  tail -5 /tmp/s10t.log
fi
if [ "${NCU:-1}" = 1 ] && command -v ncu > /dev/null; then
  rm -f /tmp/s10ncu.csv
  timeout 70 ncu --csv --print-units base --cache-control none --clock-control none \
    --metrics gpu__time_duration.sum,dram__bytes_read.sum,lts__t_sector_hit_rate.pct,sm__warps_active.avg.pct_of_peak_sustained_active,sm__throughput.avg.pct_of_peak_sustained_elapsed,sm__inst_issued.avg.pct_of_peak_sustained_active,smsp__inst_executed.sum \
    -k regex:'stats_kernel|topp_bins|sample_kernel' --log-file /tmp/s10ncu.csv python3 bench/probes/sampler_switches.py ncu > /dev/null 2>&1
  python3 bench/probes/sampler_switches.py ncu-table /tmp/s10ncu.csv 2>&1 | tail -22
fi
cat /tmp/s10_table.txt
