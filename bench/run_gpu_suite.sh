#!/usr/bin/env bash
# One device call for everything on the GPU: build, every gpu-marked test, the GPU benchmarks (NVFP4 GEMV,
# ReSET sampler, end-to-end decode and its per-kernel profile), then compute-sanitizer on the NVFP4 sweep.
# Usage (repo root, on the GPU machine): bash bench/run_gpu_suite.sh [bench_nvfp4_gpu.py args...]
# Logs go to $OUT (default bench/out); a short summary is printed last. About 9 minutes on an H100/H200.
# SKIP_TESTS=1 skips the tests and the sanitizer; SKIP_E2E=1 skips the end-to-end benchmark and profile.
set -o pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-bench/out}
mkdir -p "$OUT"
t0=$(date +%s)
stamp() { echo "== $1: $(($(date +%s) - t0)) s"; }
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,memory.used --format=csv | tee "$OUT/gpu.txt"
RESET_NATIVE_CUDA=ON CMAKE_BUILD_PARALLEL_LEVEL=16 python3 -m pip install --no-build-isolation --no-deps -q . \
  > "$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
stamp build
python3 -c "import reset_native as r; print(r.build_info()); print('has_cuda:', r.has_cuda())" |
  tee "$OUT/build_info.txt"
if [ -z "$SKIP_TESTS" ]; then
  timeout 420 python3 -m pytest -q -p no:cacheprovider -m gpu tests > "$OUT/pytest_gpu.log" 2>&1
  echo "gpu tests rc=$?: $(tail -1 "$OUT/pytest_gpu.log")"
  stamp tests
fi
timeout 300 python3 bench/bench_nvfp4_gpu.py "$@" 2> "$OUT/bench_nvfp4_progress.log" > "$OUT/bench_nvfp4.log"
stamp bench_nvfp4
timeout 120 python3 bench/bench_sampler.py --device cuda --quick > "$OUT/bench_sampler.log" 2>&1
stamp bench_sampler
if [ -z "$SKIP_E2E" ]; then
  timeout 300 python3 bench/bench_e2e.py --repeats 1 --new-tokens 96 --json "$OUT/bench_e2e.json" \
    > "$OUT/bench_e2e.log" 2>&1
  stamp bench_e2e
  timeout 150 python3 bench/bench_e2e.py --profile --batch 1 > "$OUT/e2e_profile.log" 2>&1
  stamp e2e_profile
fi
if [ -z "$SKIP_TESTS" ]; then
  timeout 240 compute-sanitizer --tool memcheck --error-exitcode 1 python3 bench/check_nvfp4_gpu.py \
    > "$OUT/sanitizer.log" 2>&1
  echo "sanitizer rc=$?: $(tail -2 "$OUT/sanitizer.log" | tr '\n' ' ')"
  stamp sanitizer
fi
echo "---- summary"
[ -z "$SKIP_TESTS" ] && grep -E "passed|failed|error" "$OUT/pytest_gpu.log" | tail -3
tail -3 "$OUT/bench_nvfp4.log"
grep -E "^\| cuda" "$OUT/bench_sampler.log"
[ -z "$SKIP_E2E" ] && grep -E "^ +[0-9]+ +[0-9.]+ " "$OUT/bench_e2e.log"
[ -z "$SKIP_E2E" ] && grep -E "GPU kernel time per decode step" "$OUT/e2e_profile.log"
stamp all
