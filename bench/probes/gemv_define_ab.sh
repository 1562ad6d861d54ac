#!/usr/bin/env bash
# A/B of a build-time define of the NVFP4 GEMV (one of the #define defaults in cuda/nvfp4/gemv_kernel.cuh, e.g.
# RESET_NATIVE_GEMV_TEAM_SLOTS_NT2, RESET_NATIVE_GEMV_LATE_TILE_WRITE, RESET_NATIVE_GEMV_TWO_CTA_SLOTS): builds the
# package as it is (installed as usual) and a copy of the tree with DEF set to VAL (installed with pip --target
# under $WORK), checks that both builds give the same bits (bench/probes/gemv_bits_dump.py), then times ROWS in both,
# alternating, ROUNDS times (bench/probes/gemv_env_sweep.py with a variable nothing reads: one column per build).
# On the GPU machine, from the repository root (session 37's calls 5 and 8 ran it by hand):
#   DEF=RESET_NATIVE_GEMV_TEAM_SLOTS_NT2 VAL=3 ROWS=8b:gate_up:16,32b:gate_up:16 bash bench/probes/gemv_define_ab.sh
# Optional: ACT=nvfp4 (W4A4 rows), ROUNDS (default 2), WORK (default /tmp/gemv_define_ab), JOBS (build jobs per
# build, default 8: the two builds run at once).
set -euo pipefail
: "${DEF:?DEF=the define}" "${VAL:?VAL=its value}" "${ROWS:?ROWS=model:layer:M,...}"
ACT=${ACT:-bf16}
ROUNDS=${ROUNDS:-2}
WORK=${WORK:-/tmp/gemv_define_ab}
JOBS=${JOBS:-8}
grep -q "^#define $DEF " cuda/nvfp4/gemv_kernel.cuh || { echo "no '#define $DEF' in cuda/nvfp4/gemv_kernel.cuh"; exit 2; }
rm -rf "$WORK" && mkdir -p "$WORK/src"
cp -r CMakeLists.txt pyproject.toml README.md cpp cuda python cmake third_party "$WORK/src/"
sed -i "s/^#define $DEF .*$/#define $DEF $VAL/" "$WORK/src/cuda/nvfp4/gemv_kernel.cuh"
(cd "$WORK/src" && RESET_NATIVE_CUDA=ON CMAKE_BUILD_PARALLEL_LEVEL=$JOBS python3 -m pip install --no-build-isolation \
  --no-deps -q --target "$WORK/pkg" . > "$WORK/build.log" 2>&1) &
copy=$!
RESET_NATIVE_CUDA=ON CMAKE_BUILD_PARALLEL_LEVEL=$JOBS python3 -m pip install --no-build-isolation --no-deps -q . \
  > "$WORK/build_main.log" 2>&1 || { tail -30 "$WORK/build_main.log"; exit 1; }
wait $copy || { tail -30 "$WORK/build.log"; exit 1; }
python3 bench/probes/gemv_bits_dump.py "$WORK/bits_main.pt"
PYTHONPATH="$WORK/pkg" python3 bench/probes/gemv_bits_dump.py "$WORK/bits_def.pt" "$WORK/bits_main.pt"
for round in $(seq "$ROUNDS"); do
  for build in main "$DEF=$VAL"; do
    echo "== round $round, build: $build"
    path=""; [ "$build" != main ] && path="$WORK/pkg"
    PYTHONPATH="$path" python3 bench/probes/gemv_env_sweep.py --act "$ACT" --env RESET_NATIVE_GEMV_AB_NONE \
      --values unset --reps 3 --rows "$ROWS" | grep -v "^#"
  done
done
