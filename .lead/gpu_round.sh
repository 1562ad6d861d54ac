#!/bin/bash
# w4a4def38 (session 21), from the tree root after the wheel is installed (<= 148 s of timeouts; writes only under
# $OUT and /tmp). Makes two measured W4A4 forms the default:
#   clusters: the W4A4 two-team kernel in clusters of 2 from M = 8 (RESET_NATIVE_GEMV_W4A4_CLUSTER=1: off);
#   two tokens: RESET_NATIVE_GEMV_BD's w4a4kt rule for 16-bit x (RESET_NATIVE_GEMV_BD=w4a4bd: the old routing).
#   T. The GPU test files whose expectations changed (bd_w4a4_rule, w4a4_cluster, w4a4_quantfast, form16_w4a4_pad,
#      form16_head, bd_small's W4A4 forms, test_nvfp4_cuda's ring test at W4A4 M = 2), then the ones that touch W4A4
#      routing unchanged (teams_default, w4a4_split_rule, teams_rule, cuda_teams); all must pass. Stopped by SIGINT at
#      its timeout (pytest then prints its summary: the tests it did not reach are not failures).
#   A. W4A4 dynamic scale, RESET_NATIVE_GEMV_W4A4_CLUSTER unset | 1 at M = 4, 8, 12, 16: unset must match round 1's
#      C = 2 column at M >= 8 and 1 below; "same bits" True on every row.
#   B. RESET_NATIVE_GEMV_BD unset | w4a4bd at M = 1, 2: unset = round 1's w4a4kt (8B down ~15.5, 8B q/k/v ~9.2, 32B
#      q/k/v ~14.8 us at M = 2); "same bits" False exactly on those three M = 2 rows (another kernel), True elsewhere.
# Tables last.
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-/tmp/w4a4def38_out}
mkdir -p "$OUT"
export PYTHONDONTWRITEBYTECODE=1  # nothing written outside $OUT and /tmp
SECONDS=0
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
date -u +"device clock %H:%M:%S UTC"
unset RESET_NATIVE_GEMV_16_FORM RESET_NATIVE_GEMV_KSPLIT RESET_NATIVE_GEMV_SPLIT_AMAX RESET_NATIVE_GEMV_TEAMS \
  RESET_NATIVE_GEMV_BD RESET_NATIVE_GEMV_W4A4_CLUSTER RESET_NATIVE_GEMV_RING
RING="tests/test_nvfp4_cuda.py::test_gemv_weight_ring_same_bits_as_register_loads"
timeout -s INT -k 4 95 python3 -m pytest -q -m "gpu and not slow" -p no:cacheprovider --tb=short -rfEs \
  tests/test_nvfp4_gpu_bd_w4a4_rule.py tests/test_nvfp4_gpu_w4a4_cluster.py tests/test_nvfp4_gpu_w4a4_quantfast.py \
  tests/test_nvfp4_gpu_form16_w4a4_pad.py tests/test_nvfp4_gpu_form16_head.py \
  tests/test_nvfp4_gpu_bd_small.py::test_w4a4_forms_give_the_same_bits \
  "$RING[dtype3-nvfp4-2-256-1024]" "$RING[dtype3-nvfp4-2-200-2048]" "$RING[dtype3-nvfp4-2-4096-4096]" \
  "$RING[dtype3-nvfp4-2-40-8192]" "$RING[dtype3-nvfp4-2-6136-2048]" \
  tests/test_nvfp4_gpu_teams_default.py tests/test_nvfp4_gpu_w4a4_split_rule.py tests/test_nvfp4_gpu_teams_rule.py \
  tests/test_nvfp4_cuda_teams.py > "$OUT/t_tests.txt" 2>&1
echo "T rc $? at ${SECONDS} s: $(tail -n 1 "$OUT/t_tests.txt")"
SW="python3 bench/probes/gemv_env_sweep.py --act nvfp4 --reps 3 --layers 8b,32b"
timeout 27 $SW --env RESET_NATIVE_GEMV_W4A4_CLUSTER --values unset,1 --ms 4,8,12,16 > "$OUT/a_cluster.txt" 2>&1
echo "A rc $? at ${SECONDS} s"
timeout 20 $SW --env RESET_NATIVE_GEMV_BD --values unset,w4a4bd --ms 1,2 > "$OUT/b_bd.txt" 2>&1
echo "B rc $? at ${SECONDS} s"
date -u +"device clock %H:%M:%S UTC"
echo "== T: tests (failures, errors and skips, then the summary)"
grep -E "^(FAILED|ERROR|SKIPPED)|Error|error" "$OUT/t_tests.txt" | head -n 30
tail -n 3 "$OUT/t_tests.txt"
echo "== A: W4A4 dynamic scale, RESET_NATIVE_GEMV_W4A4_CLUSTER unset (clusters of 2 from M = 8) | 1 (none)"
cat "$OUT/a_cluster.txt"
echo "== B: W4A4 dynamic scale, RESET_NATIVE_GEMV_BD unset (w4a4kt) | w4a4bd (block-diagonal at every K)"
cat "$OUT/b_bd.txt"
echo "total ${SECONDS} s"
