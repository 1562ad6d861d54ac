#!/bin/bash
# One GPU call for session 10's switches of the ReSET decode step (RESET_NATIVE_SAMPLER_WARM_TAIL / _WARM_BINS /
# _LEAN_DRAW;
# docs/sampler.md, CUDA details), from the repository root after `pip install --no-build-isolation .`: builds the
# trace probe (bench/probes/sampler_batch.cu with -DRESET_NATIVE_SAMPLER_TRACE) in the background, runs the
# switches' GPU tests, the timing table of bench/probes/sampler_switches.py (graph replays, every variant against
# "old" in the same process, bit for bit), row 0's phase trace at B = 1 and 8 with the defaults and with all three
# switches on, the chunks-per-block sweep of sampler_switches.py at B = 64 (GROUPING_BATCHES), and with NCU=1 ncu
# of the three kernels at B = 64 with the defaults. TESTS / TEST_TIMEOUT / SAMPLER_SWITCH_BATCHES override the
# defaults below.
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
SAMPLER_SWITCH_VARIANTS=grouping SAMPLER_SWITCH_BATCHES=${GROUPING_BATCHES:-64} timeout 60 \
  python3 bench/probes/sampler_switches.py > /tmp/s11_grouping.txt 2>&1
wait
if [ -x /tmp/s11t ]; then
  for variant in defaults all3; do
    echo "== trace, $variant"
    if [ $variant = all3 ]; then
      export RESET_NATIVE_SAMPLER_WARM_TAIL=1 RESET_NATIVE_SAMPLER_WARM_BINS=1 RESET_NATIVE_SAMPLER_LEAN_DRAW=1
    fi
    timeout 30 /tmp/s11t trace 2>&1 | grep -A3 "^trace B=[18] " | grep -v "^trace B\|^--"
  done
  unset RESET_NATIVE_SAMPLER_WARM_TAIL RESET_NATIVE_SAMPLER_WARM_BINS RESET_NATIVE_SAMPLER_LEAN_DRAW
else
  tail -5 /tmp/s11t.log
fi
cat /tmp/s11_table.txt
tail -6 /tmp/s11_grouping.txt
if [ "${NCU:-0}" = 1 ] && command -v ncu > /dev/null; then
  rm -f /tmp/s11ncu.csv
  SAMPLER_NCU_VARIANTS=default timeout 50 ncu --csv --print-units base --cache-control none --clock-control none \
    --metrics gpu__time_duration.sum,dram__bytes_read.sum,lts__t_sector_hit_rate.pct,sm__warps_active.avg.pct_of_peak_sustained_active,sm__throughput.avg.pct_of_peak_sustained_elapsed,sm__inst_issued.avg.pct_of_peak_sustained_active,smsp__inst_executed.sum \
    -k regex:'stats_kernel|topp_bins|sample_kernel' --log-file /tmp/s11ncu.csv \
    python3 bench/probes/sampler_switches.py ncu > /dev/null 2>&1
  python3 bench/probes/sampler_switches.py ncu-table /tmp/s11ncu.csv 2>&1 | tail -9
fi
date -u +%H:%M:%S
