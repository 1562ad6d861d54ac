#!/bin/bash
# w4a4bd36 (session 20), from the tree root after the wheel is installed (<= 100 s; writes only under $OUT and /tmp).
# RESET_NATIVE_GEMV_BD's opt-in W4A4 rules (cuda/nvfp4/gemv_bd_w4a4_rule.cuh): at M = 2, "w4a4k" gives K >= 12288 to
# the 16-bit kernel with two teams (Qwen3-8B down), "w4a4kt" also K <= 6144 with 1..3 row tiles per CTA slot (8B and
# 32B q/k/v). Default routing and SASS unchanged.
#   T. tests/test_nvfp4_gpu_bd_w4a4_rule.py (routing under every value from profiler kernel names; fp64 bound).
#   A. W4A4 dynamic scale, 8 Qwen3 layers at M = 2 and 1: unset | w4a4kt | 0 (the 16-bit kernel), two copies.
#      Expect w4a4kt = 0 on 8B down, 8B q/k/v, 32B q/k/v at M = 2 (~15.4 / 9.2 / 14.7 us), = unset elsewhere;
#      "same bits" False on those rows (another summation order) and on the M = 1 rows where 0 changes the kernel.
#   B. synthetic N:K at M = 2, unset (block-diagonal) | 0 (two teams), two copies: the K axis at 256 row tiles
#      (one per slot: 4096 x 6144..16384), 32B o's 320 tiles at K = 4096 / 8192 / 12288 (does its loss follow the
#      tile count or K?), the tiles axis at K = 4096 (265, 528, 792, 1056 tiles) and 528 tiles at K = 5120 / 8192.
#   C. as A at M = 2 with a static activation scale (--act-gs: no amax at all).
#   D. M = 1 under RESET_NATIVE_GEMV_BD=0: the 16-bit kernel's two CTAs per SM (TEAMS unset: each CTA quantizes all of
#      x, as the block-diagonal kernel does) vs two teams (TEAMS=2: once per SM); compare with A's M = 1 unset column.
# Tables last.
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-/tmp/w4a4bd36_out}
mkdir -p "$OUT"
export PYTHONDONTWRITEBYTECODE=1  # nothing written outside $OUT and /tmp
SECONDS=0
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
date -u +"device clock %H:%M:%S UTC"
unset RESET_NATIVE_GEMV_16_FORM RESET_NATIVE_GEMV_KSPLIT RESET_NATIVE_GEMV_SPLIT_AMAX RESET_NATIVE_GEMV_TEAMS \
  RESET_NATIVE_GEMV_BD RESET_NATIVE_GEMV_RING
timeout 26 python3 -m pytest -q -p no:cacheprovider -x tests/test_nvfp4_gpu_bd_w4a4_rule.py > "$OUT/t_tests.txt" 2>&1
echo "T rc $? at ${SECONDS} s"
SW="python3 bench/probes/gemv_env_sweep.py --act nvfp4 --reps 5 --env RESET_NATIVE_GEMV_BD"
timeout 30 $SW --values unset,w4a4kt,0,unset,w4a4kt,0 --ms 2,1 --layers 8b,32b > "$OUT/a_layers.txt" 2>&1
echo "A rc $? at ${SECONDS} s"
SHAPES="4096:6144,4096:8192,4096:10240,4096:12288,4096:16384,5120:4096,5120:8192,5120:12288"
SHAPES="$SHAPES,4240:4096,8448:4096,12672:4096,16896:4096,8448:5120,8448:8192"
timeout 16 $SW --values unset,0,unset,0 --ms 2 --shapes "$SHAPES" > "$OUT/b_shapes.txt" 2>&1
echo "B rc $? at ${SECONDS} s"
timeout 12 $SW --act-gs 0.0013 --values unset,w4a4kt,0,unset,w4a4kt,0 --ms 2 --layers 8b,32b > "$OUT/c_static.txt" 2>&1
echo "C rc $? at ${SECONDS} s"
RESET_NATIVE_GEMV_BD=0 timeout 10 python3 bench/probes/gemv_env_sweep.py --act nvfp4 --reps 5 \
  --env RESET_NATIVE_GEMV_TEAMS --values unset,2,unset,2 --ms 1 --layers 8b,32b > "$OUT/d_m1_teams.txt" 2>&1
echo "D rc $? at ${SECONDS} s"
date -u +"device clock %H:%M:%S UTC"
echo "== T: tests/test_nvfp4_gpu_bd_w4a4_rule.py (last lines)"
tail -n 15 "$OUT/t_tests.txt"
echo "== A: W4A4 dynamic scale, unset | w4a4kt | 0 (x2), M = 2 then 1"
cat "$OUT/a_layers.txt"
echo "== B: synthetic N:K at M = 2, unset (block-diagonal) | 0 (two teams) (x2)"
cat "$OUT/b_shapes.txt"
echo "== C: W4A4 static activation scale 0.0013 at M = 2, unset | w4a4kt | 0 (x2)"
cat "$OUT/c_static.txt"
echo "== D: M = 1 with RESET_NATIVE_GEMV_BD=0: TEAMS unset (two CTAs per SM) | 2 (two teams) (x2)"
cat "$OUT/d_m1_teams.txt"
echo "total ${SECONDS} s"
