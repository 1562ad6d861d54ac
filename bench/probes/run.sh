#!/usr/bin/env bash
# Micro-probes behind design decisions of the NVFP4 GEMV (bench/RESULTS.md, sessions 3 and 5). On the GPU machine,
# from the repository root:  bash bench/probes/run.sh
#   hbm_read_patterns   read-only kernels streaming Qwen3-8B gate_up's packed bytes with the GEMV's access
#                       pattern vs a tile-contiguous one, 2-4 CTAs/SM, 2-6 loads in flight
#   hbm_read_bulk_copy  the same bytes (+ scales) through a cp.async.bulk (TMA) ring into shared memory
#   hbm_read_ring_variants  session 5: feeding a shared-memory ring from the row-major weights (32 1-D bulk
#                       copies per step vs one, per-thread cp.async) against the GEMV's register pipeline
#   mma_accumulation    error of mma.sync m16n8k32 e4m3 and m16n8k16 f16 against fp64 (and, in the SASS,
#                       that sm_90 lowers the e4m3 MMA to conversions + fp16 HMMA)
set -e
out=${OUT:-/tmp}
for p in hbm_read_patterns hbm_read_bulk_copy hbm_read_ring_variants mma_accumulation; do
  nvcc -std=c++17 -O3 -arch=sm_90 -o "$out/$p" "bench/probes/$p.cu"
  echo "== $p"; "$out/$p"
done
