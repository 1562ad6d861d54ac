#!/bin/bash
# One GPU call for the grouped stats / sample passes of the ReSET decode step (bench/probes/sampler_batch.cu),
# from the repository root after `pip install --no-build-isolation .`: builds the probe three times in the
# background (this tree; the baseline's kernels, git ref BASE_REF or SAMPLER_BASE (default main), from
# bench/probes/base_tree.sh: from git or from bench/probes/probe_base.patch; the trace marks), runs the GPU tests,
# then row 0's phase trace and ncu per kernel at B = 1 / 8 / 64, the baseline's times and this tree's times, with
# the comparison of their outputs.
# TESTS="..." replaces the test files (TEST_TIMEOUT=s limits them); NCU=0 skips ncu; SWEEPS=1 adds main's
# grouping and the grouping sweeps.
cd "$(dirname "$0")/../.."
BASE_REF=${BASE_REF:-${SAMPLER_BASE:-main}}
FLAGS="-std=c++17 -O3 -arch=sm_90 -Icuda -Icpp/include -Icpp/src"
SRC="bench/probes/sampler_batch.cu cpp/src/sampler/state.cpp cpp/src/sampler/device_workspace.cpp"
rm -f /tmp/s8b /tmp/s8m /tmp/s8t /tmp/sampler_batch_main_outputs.bin
(nvcc $FLAGS -o /tmp/s8b.tmp $SRC > /tmp/s8b.log 2>&1 && mv /tmp/s8b.tmp /tmp/s8b) &
(nvcc $FLAGS -DRESET_NATIVE_SAMPLER_TRACE -o /tmp/s8t.tmp $SRC > /tmp/s8t.log 2>&1 && mv /tmp/s8t.tmp /tmp/s8t) &
rm -rf /tmp/s8base
(bash bench/probes/base_tree.sh "$BASE_REF" /tmp/s8base > /tmp/s8m.log 2>&1 &&
  nvcc ${FLAGS/-Icuda/-I/tmp/s8base/cuda} -o /tmp/s8m.tmp $SRC >> /tmp/s8m.log 2>&1 && mv /tmp/s8m.tmp /tmp/s8m) &
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
TESTS=${TESTS:-"tests/test_sampler_gpu_grouped.py tests/test_sampler_gpu_combine.py tests/test_sampler_gpu_batches.py \
  tests/test_sampler_gpu_paths.py tests/test_sampler_gpu_resident.py tests/test_sampler_gpu.py tests/test_sampler_gpu_row_combine.py"}
timeout ${TEST_TIMEOUT:-200} python3 -m pytest -q -m gpu -p no:cacheprovider --tb=line -rf $TESTS 2>&1 | tail -4
wait
[ -x /tmp/s8b ] && [ -x /tmp/s8m ] && [ -x /tmp/s8t ] || tail -5 /tmp/s8b.log /tmp/s8m.log /tmp/s8t.log
head -1 /tmp/s8m.log
[ -x /tmp/s8m ] || echo "no baseline build: $(tail -3 /tmp/s8m.log)"
timeout 30 /tmp/s8t trace
if [ "${NCU:-1}" = 1 ] && command -v ncu > /dev/null; then
  timeout 90 ncu --csv --print-units base --cache-control none --clock-control none \
    --metrics gpu__time_duration.sum,dram__bytes_read.sum,lts__t_sector_hit_rate.pct,sm__warps_active.avg.pct_of_peak_sustained_active,sm__throughput.avg.pct_of_peak_sustained_elapsed,sm__inst_issued.avg.pct_of_peak_sustained_active,smsp__inst_executed.sum \
    -k regex:'stats_kernel|topp_bins|sample_kernel' --log-file /tmp/s8ncu.csv /tmp/s8b ncu > /dev/null 2>&1
  python3 bench/probes/ncu_sampler.py /tmp/s8ncu.csv 2>&1 | tail -18
  timeout 60 ncu --csv --print-units base --cache-control none --clock-control none \
    --metrics gpu__time_duration.sum,dram__bytes_read.sum,lts__t_sector_hit_rate.pct,sm__warps_active.avg.pct_of_peak_sustained_active,sm__throughput.avg.pct_of_peak_sustained_elapsed,sm__inst_issued.avg.pct_of_peak_sustained_active,smsp__inst_executed.sum \
    -k regex:'stats_kernel|topp_bins|sample_kernel' --log-file /tmp/s8ncum.csv /tmp/s8m ncu > /dev/null 2>&1
  python3 bench/probes/ncu_sampler.py /tmp/s8ncum.csv MAIN 64:def 2>&1 | tail -4
fi
timeout 40 /tmp/s8m baseline
timeout 120 /tmp/s8b
echo "sampler_batch exit $?"
