#!/usr/bin/env bash
# compute-sanitizer over the CUDA kernels of an installed CUDA build of reset_native, on small shapes: memcheck
# (out-of-bounds and misaligned device memory accesses) and racecheck (shared-memory hazards between barriers). Usage (repo root, on the GPU machine):
#   bash bench/run_sanitizers.sh            # everything, ~3 minutes on an H200 (session 15)
#   PART=nvfp4|sampler bash bench/run_sanitizers.sh
# Why test selections and not whole files: under the sanitizer every kernel runs instrumented and the whole GPU
# suite would take hours. The selections reach every kernel form the switches select (gemv: the block-diagonal
# register variants, its K split, the W4A4 and fused RMSNorm / SiLU forms, the 16-bit kernel's forms 0 / 2 / 13 /
# rule including split K with 8 and 16 token columns, two teams, the weight ring, the lean M = 1 step; sampler: every
# session-14 and session-15 switch (the cells of CELL_MASSES, on by default) at B = 1, 3, 8, 9, 64 over the four
# configs, boundary-bin cases, strided views, graph replays; racecheck on the ungrouped (B = 1) and grouped (B = 9)
# passes; session 16's PRE_WARP and session 17's OWNER_DRAW). Prints one line per run and "sanitizers: N failed" last;
# exit status 1 if any run failed.
set -o pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-bench/out}
PART=${PART:-all}
mkdir -p "$OUT"
t0=$(date +%s)
failed=0
summary=()

# run <name> <tool> <timeout s> <command...>: the sanitizer's last lines go to $OUT/sanitize_<name>.log.
run() {
  local name=$1 tool=$2 limit=$3
  shift 3
  timeout "$limit" compute-sanitizer --tool "$tool" --error-exitcode 1 "$@" > "$OUT/sanitize_$name.log" 2>&1
  local rc=$?
  [ $rc -ne 0 ] && failed=$((failed + 1))
  local last
  last=$(grep -E "passed|failed|ERROR SUMMARY|RACECHECK SUMMARY|cases" "$OUT/sanitize_$name.log" | tail -2 | tr '\n' ' ')
  summary+=("$name ($tool): rc $rc, $(($(date +%s) - t0)) s: $last")
  echo "${summary[-1]}"
}

PYTEST=(python3 -m pytest -q -p no:cacheprovider -x)
GEMV_TESTS=(tests/test_nvfp4_gpu_form16.py tests/test_nvfp4_gpu_bd_small.py tests/test_nvfp4_gpu_bd_split.py
            tests/test_fused_gemv.py)
# (The 16-bit forms are swept by check_nvfp4_gpu.py: test_forms_same_bits_and_fp64 reads kernel names through the torch
# profiler, which records nothing under the sanitizer, so it skips there.)
GEMV_K="forms_unaligned or (small_variants_same_bits and dtype0)"
GEMV_K+=" or (w4a4_forms_give and dtype0 and 1-136) or weight_ring_gives"
GEMV_K+=" or (forced_slices and dtype0 and (200-8192 or 136-5120)) or split_with_bias"
GEMV_K+=" or (fused_small_forms_give and dtype0 and (96-4096 or 1056-7168)) or (silu_mul_epilogue_is_bit and dtype0 and 48-4096)"
SAMPLER_K="do_not_change_the_step and (1-151936 or 9-151936) and reset_top_p"

if [ "$PART" != sampler ]; then
  run gemv_sweep memcheck 300 python3 bench/check_nvfp4_gpu.py --gemv-kernels
  run gemv_forms memcheck 420 "${PYTEST[@]}" "${GEMV_TESTS[@]}" -k "$GEMV_K"
  run gemv_race racecheck 300 python3 bench/check_nvfp4_gpu.py --gemv-kernels
  # the prefill route's kernels: dequantize (aligned and odd views) and W4A4's quantize_values (torch.compile cases
  # left out: the sanitizer makes their compilation take minutes)
  run prefill memcheck 300 "${PYTEST[@]}" -m gpu tests/test_nvfp4_cuda_prefill.py tests/test_nvfp4_cuda_prefill_w4a4.py \
    -k "not compile"
  # the medium-M GEMM (mma.sync and, in sm_90a builds, the warp-specialised kernel of the rule and the pipelined and
  # serial wgmma loops; split K's workspace and finish kernel)
  run mid memcheck 300 "${PYTEST[@]}" -m gpu tests/test_nvfp4_cuda_mid.py \
    -k "(fp64 and not wgmma) or (wgmma and dtype0 and (wg64 or wg128g4 or ws32c4 or ws64c2 or ws128c2 or ws64c3)) or poison or deterministic"
  run mid_race racecheck 300 "${PYTEST[@]}" -m gpu tests/test_nvfp4_cuda_mid.py -k "poison or deterministic"
  # stream-K (its pieces and flags in the workspace, the spin-waits across CTAs): poison, graph replays, a chain of calls
  # under each PDL mode, the workspace layout
  run mid_streamk memcheck 300 "${PYTEST[@]}" -m gpu tests/test_nvfp4_cuda_mid_streamk.py \
    -k "poison or graph or chain or workspace"
  # split K's in-kernel fixup (tags after the partial sums, the last CTA per walker group adds the slices)
  run split_fixup memcheck 300 "${PYTEST[@]}" -m gpu tests/test_nvfp4_cuda_split_fixup.py -k "garbage or graph or dtype1"
  # the two-team kernel's walker orders (team-major by default, CTA-major): partial rounds, one tile, W4A4 clusters
  run team_order memcheck 300 "${PYTEST[@]}" -m gpu tests/test_nvfp4_gpu_team_order.py \
    -k "same_bits and dtype0 and (200 or 8-4096 or 8-1024 or nvfp4-8448-4096-16)"
  # one reduction buffer per team where two pass the 196 KB carve-out: its bounds, and the second team barrier per tile
  # that keeps a tile's sums from being overwritten while the team still reads the last tile's
  run red_one memcheck 300 "${PYTEST[@]}" -m gpu tests/test_nvfp4_gpu_red_one.py -k "same_bits and (dtype0 or dtype2) or compact"
  run red_one_race racecheck 300 "${PYTEST[@]}" -m gpu tests/test_nvfp4_gpu_red_one.py -k "same_bits and dtype0"
fi
if [ "$PART" != nvfp4 ]; then
  run sampler_steps memcheck 420 "${PYTEST[@]}" tests/test_sampler_gpu_session14.py
  run sampler_cells memcheck 420 "${PYTEST[@]}" tests/test_sampler_gpu_session15.py
  run sampler_race racecheck 300 "${PYTEST[@]}" tests/test_sampler_gpu_session14.py -k "$SAMPLER_K"
  run sampler_cells_race racecheck 300 "${PYTEST[@]}" tests/test_sampler_gpu_session15.py -k "$SAMPLER_K"
  # session 16: warp 1 fills the stats pass's RowPre while warp 0 combines (PRE_WARP, on), over paragraph runs
  run sampler_pre_race racecheck 300 "${PYTEST[@]}" tests/test_sampler_gpu_session16.py \
    -k "$SAMPLER_K or (paragraphs and 1-151936 and 32-10)"
  # session 17: the quantile chunk's warp draws with no barrier after the chunks' scan (OWNER_DRAW, on from B = 2)
  run sampler_owner memcheck 300 "${PYTEST[@]}" tests/test_sampler_gpu_session17.py -k "do_not_change_the_step or partial_last"
  run sampler_owner_race racecheck 300 "${PYTEST[@]}" tests/test_sampler_gpu_session17.py -k "$SAMPLER_K or partial_last"
  # session 18: the draw's chunk scan inside the threshold's barriers (EARLY_SCAN), the sub-bins filled before barrier 1
  EARLY_K="does_not_change_the_step and (1-151936 or 9-151936) and reset_top_p"
  run sampler_early memcheck 300 "${PYTEST[@]}" tests/test_sampler_gpu_session18.py \
    -k "(does_not_change_the_step and reset_top_p) or (crowded and 40)"
  run sampler_early_race racecheck 300 "${PYTEST[@]}" tests/test_sampler_gpu_session18.py \
    -k "$EARLY_K or (crowded and 151936 and 40)"
fi
printf '%s\n' "${summary[@]}"
echo "sanitizers: $failed failed, $(($(date +%s) - t0)) s"
[ $failed -eq 0 ]
