#!/bin/bash
# Where each block-diagonal GEMV instance of bench/probes/sass_bd_instances.cu waits for its weight loads
# (bench/probes/sass_sb_waits.py), or of every kernel in the given .cu files. Needs nvcc and cuobjdump; ~10 s per file.
# Usage: bash bench/probes/sass_sb_waits.sh [cuda/nvfp4/gemv_bf16_fused.cu ...]
set -e
cd "$(dirname "$0")/../.."
OUT=${OUT_DIR:-/tmp/sass_sb_waits}
mkdir -p "$OUT"
CUOBJDUMP=${CUOBJDUMP:-$(command -v cuobjdump || echo /tmp/nvd/x/nvidia/cu13/bin/cuobjdump)}
FLAGS="-std=c++17 -O3 -arch=sm_90 -Icpp/include -Icuda --expt-relaxed-constexpr -cubin"
FILES=("$@")
[ ${#FILES[@]} -eq 0 ] && FILES=(bench/probes/sass_bd_instances.cu)
for f in "${FILES[@]}"; do
  b=$(basename "$f" .cu)
  nvcc $FLAGS -o "$OUT/$b.cubin" "$f"
  "$CUOBJDUMP" -sass "$OUT/$b.cubin" > "$OUT/$b.sass"
  echo "== $f"
  python3 bench/probes/sass_sb_waits.py "$OUT/$b.sass"
done
