#!/usr/bin/env bash
# ncu of the NVFP4 GEMV at the real clocks (--clock-control none; ncu's default base clocks make the kernel look
# issue-bound): one cold launch per shape (bench/ncu_nvfp4_gemv.py launches each twice; --launch-skip 1 reads the
# second), DRAM and L2 traffic, pipe and issue utilisation, and the warp stall reasons per issued instruction.
# Session 39 (bench/RESULTS.md, call B) ran it on the one-token and 16-token kernels. On the GPU machine, repo root:
#   OUT=/tmp/ncu bash bench/probes/gemv_ncu_stalls.sh 24576x4096x1 24576x4096x16 51200x5120x16
set -euo pipefail
OUT=${OUT:-bench/out}
mkdir -p "$OUT"
S=smsp__average_warps_issue_stalled
M="sm__cycles_elapsed.avg.per_second,gpu__time_duration.sum,dram__bytes_read.sum,\
dram__throughput.avg.pct_of_peak_sustained_elapsed,lts__t_sectors_srcunit_tex_op_read.sum,\
lts__throughput.avg.pct_of_peak_sustained_elapsed,l1tex__throughput.avg.pct_of_peak_sustained_active,\
smsp__issue_active.avg.pct_of_peak_sustained_active,smsp__inst_executed.sum,sm__warps_active.avg.pct_of_peak_sustained_active,\
sm__pipe_fma_cycles_active.avg.pct_of_peak_sustained_active,sm__pipe_alu_cycles_active.avg.pct_of_peak_sustained_active,\
sm__inst_executed_pipe_lsu.avg.pct_of_peak_sustained_active,sm__pipe_tensor_cycles_active.avg.pct_of_peak_sustained_active,\
launch__shared_mem_config_size,launch__shared_mem_per_block_dynamic"
for r in long_scoreboard math_pipe_throttle wait barrier not_selected selected short_scoreboard dispatch_stall \
         no_instruction lg_throttle mio_throttle branch_resolving membar sleeping; do
  M+=",${S}_${r}_per_issue_active.ratio"
done
for shape in "${@:-24576x4096x16}"; do
  ncu --clock-control none --kernel-name regex:"gemv_kernel|gemv_bd" --launch-skip 1 --launch-count 1 \
    --metrics "$M" --csv python3 bench/ncu_nvfp4_gemv.py "$shape" 2>&1 | grep -v "^==PROF==" > "$OUT/ncu_$shape.csv"
  echo "== $shape: $OUT/ncu_$shape.csv"
done
