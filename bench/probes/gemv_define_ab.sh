#!/usr/bin/env bash
# A/B of build-time defines of the NVFP4 GEMV (#define defaults in cuda/nvfp4/gemv_kernel.cuh, e.g.
# RESET_NATIVE_GEMV_TEAM_SLOTS_NT2, RESET_NATIVE_GEMV_TWO_CTA_SLOTS): builds the
# package as it is (installed as usual) and, at the same time, one copy of the tree per variant with that define set
# (installed with pip --target under $WORK), checks that every build gives the same bits
# (bench/probes/gemv_bits_dump.py), then times ROWS in every build, alternating, ROUNDS times
# (bench/probes/gemv_env_sweep.py with a variable nothing reads: one column per build).
# On the GPU machine, from the repository root:
#   VARIANTS="RESET_NATIVE_GEMV_TEAM_SLOTS_NT1=2 RESET_NATIVE_GEMV_TWO_CTA_SLOTS=2" \
#     ROWS=8b:gate_up:16,32b:gate_up:4 bash bench/probes/gemv_define_ab.sh
#   DEF=RESET_NATIVE_GEMV_TEAM_SLOTS_NT2 VAL=3 ROWS=... bash bench/probes/gemv_define_ab.sh   (one variant)
# Optional: ACT (default bf16; nvfp4: W4A4 rows; "bf16 nvfp4": both, each round), ROUNDS (default 2), WORK (default /tmp/gemv_define_ab), JOBS (build jobs per
# build, default 16 / number of builds: the builds run at once).
set -euo pipefail
: "${ROWS:?ROWS=model:layer:M,...}"
VARIANTS=${VARIANTS:-${DEF:+$DEF=${VAL:?VAL=the value of DEF}}}
: "${VARIANTS:?VARIANTS=\"NAME=VALUE ...\" (or DEF= and VAL=)}"
read -r -a variants <<< "$VARIANTS"
ACT=${ACT:-bf16}
ROUNDS=${ROUNDS:-2}
WORK=${WORK:-/tmp/gemv_define_ab}
JOBS=${JOBS:-$(( 16 / (${#variants[@]} + 1) > 0 ? 16 / (${#variants[@]} + 1) : 1 ))}
for v in "${variants[@]}"; do
  grep -q "^#define ${v%%=*} " cuda/nvfp4/gemv_kernel.cuh || { echo "no '#define ${v%%=*}' in gemv_kernel.cuh"; exit 2; }
done
rm -rf "$WORK" && mkdir -p "$WORK"
pids=()
for i in "${!variants[@]}"; do
  v=${variants[$i]} dir=$WORK/v$i
  mkdir -p "$dir/src"
  cp -r CMakeLists.txt pyproject.toml README.md cpp cuda python cmake third_party "$dir/src/"
  sed -i "s/^#define ${v%%=*} .*$/#define ${v%%=*} ${v#*=}/" "$dir/src/cuda/nvfp4/gemv_kernel.cuh"
  (cd "$dir/src" && RESET_NATIVE_CUDA=ON CMAKE_BUILD_PARALLEL_LEVEL=$JOBS python3 -m pip install \
    --no-build-isolation --no-deps -q --target "$dir/pkg" . > "$dir/build.log" 2>&1) &
  pids+=($!)
done
RESET_NATIVE_CUDA=ON CMAKE_BUILD_PARALLEL_LEVEL=$JOBS python3 -m pip install --no-build-isolation --no-deps -q . \
  > "$WORK/build_main.log" 2>&1 || { tail -30 "$WORK/build_main.log"; exit 1; }
for i in "${!variants[@]}"; do
  wait "${pids[$i]}" || { echo "build of ${variants[$i]} failed"; tail -30 "$WORK/v$i/build.log"; exit 1; }
done
echo "builds done: $SECONDS s"
python3 bench/probes/gemv_bits_dump.py "$WORK/bits_main.pt"
for i in "${!variants[@]}"; do
  echo -n "${variants[$i]}: "
  PYTHONPATH="$WORK/v$i/pkg" python3 bench/probes/gemv_bits_dump.py "$WORK/v$i/bits.pt" "$WORK/bits_main.pt"
done
for round in $(seq "$ROUNDS"); do
  for build in main "${!variants[@]}"; do
    path="" name=main
    [ "$build" != main ] && path="$WORK/v$build/pkg" name=${variants[$build]}
    for act in $ACT; do
      echo "== round $round, build: $name, activations: $act"
      PYTHONPATH="$path" python3 bench/probes/gemv_env_sweep.py --act "$act" --env RESET_NATIVE_GEMV_AB_NONE \
        --values unset --reps 3 --rows "$ROWS" | grep -v "^#"
    done
  done
done
