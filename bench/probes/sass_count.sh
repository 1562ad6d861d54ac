#!/bin/bash
# Static SASS count of one weight step of the block-diagonal NVFP4 GEMV instances in
# bench/probes/sass_bd_instances.cu (and, with --all, of every kernel in gemv_bf16_a16.cu / gemv_f16_a16.cu).
# Usage: bash bench/probes/sass_count.sh [--all] [out_dir]   (needs nvcc and cuobjdump; ~10 s, ~60 s with --all)
set -e
cd "$(dirname "$0")/../.."
ALL=0
if [ "$1" = "--all" ]; then ALL=1; shift; fi
OUT=${1:-/tmp/sass_count}
mkdir -p "$OUT"
CUOBJDUMP=${CUOBJDUMP:-$(command -v cuobjdump || echo /tmp/nvd/x/nvidia/cu13/bin/cuobjdump)}
FLAGS="-std=c++17 -O3 -arch=sm_90 -Icpp/include -Icuda --expt-relaxed-constexpr -cubin"
nvcc $FLAGS -Xptxas -v -o "$OUT/bd.cubin" bench/probes/sass_bd_instances.cu 2>&1 | grep -A1 "gemv_bd_kernel" | grep -o "Used [0-9]* registers" || true
"$CUOBJDUMP" -sass "$OUT/bd.cubin" > "$OUT/bd.sass"
python3 bench/probes/sass_step_count.py "$OUT/bd.sass" gemv_bd_kernel
if [ $ALL = 1 ]; then
  for tu in gemv_bf16_a16 gemv_f16_a16; do
    nvcc $FLAGS -o "$OUT/$tu.cubin" cuda/nvfp4/$tu.cu
    "$CUOBJDUMP" -sass "$OUT/$tu.cubin" > "$OUT/$tu.sass"
    python3 bench/probes/sass_step_count.py "$OUT/$tu.sass" gemv_kernel
  done
fi
