#!/bin/bash
# Nsight Compute profile of one medium-M GEMM shape (session 30, bench/RESULTS.md "Session 30", call 2): speed of
# light, scheduler and warp-state sections, the source counters, and per-instruction stall ratios, tensor-pipe, L2 and
# DRAM use, of the second launch of the kernel. From the tree root after `pip install --no-build-isolation .` on a GPU
# machine with ncu (locked clocks, ncu's default):
#   bash bench/probes/mid_ncu.sh ws128c2 24576x4096x128 [kernel regex, default gemm_ws_kernel]
set -e
cd "$(dirname "$0")/../.."
SHAPE=${1:?shape (RESET_NATIVE_GEMM_MID value, e.g. ws128c2)}
CALL=${2:?NxKxM (e.g. 24576x4096x128)}
KERNEL=${3:-gemm_ws_kernel}
M=""
for s in barrier long_scoreboard wait math_pipe_throttle short_scoreboard sleeping membar lg_throttle mio_throttle \
    dispatch_stall selected not_selected no_instruction misc branch_resolving drain imc_miss tex_throttle; do
  M="$M,smsp__average_warps_issue_stalled_${s}_per_issue_active.ratio"
done
M="${M#,},sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_elapsed,lts__t_sectors_srcunit_tex_op_read.sum"
M="$M,lts__throughput.avg.pct_of_peak_sustained_elapsed,dram__throughput.avg.pct_of_peak_sustained_elapsed"
RESET_NATIVE_GEMM_MID=$SHAPE ncu --kernel-name "regex:$KERNEL" --launch-skip 1 --launch-count 1 \
  --section SpeedOfLight --section SchedulerStats --section WarpStateStats --section SourceCounters --metrics "$M" \
  python3 bench/ncu_nvfp4_gemv.py "$CALL"
