#!/usr/bin/env bash
# One device call for the NVFP4 CUDA work: build, GPU tests, compute-sanitizer sweep, benchmark.
# Usage (repo root, on the GPU machine): bash bench/run_gpu_suite.sh [bench args...]; logs go to $OUT.
set -o pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-bench/out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,memory.used --format=csv | tee "$OUT/gpu.txt"
t0=$(date +%s)
RESET_NATIVE_CUDA=ON CMAKE_BUILD_PARALLEL_LEVEL=16 python3 -m pip install --no-build-isolation --no-deps -q . \
  > "$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
echo "build: $(($(date +%s) - t0)) s"
if [ -z "$SKIP_TESTS" ]; then
  python3 -m pytest -q -x -p no:cacheprovider tests/test_nvfp4_cuda.py 2>&1 | tail -30 | tee "$OUT/pytest.log"
  compute-sanitizer --tool memcheck --error-exitcode 1 python3 bench/check_nvfp4_gpu.py 2>&1 | tail -8 |
    tee "$OUT/sanitizer.log"
  echo "tests done: $(($(date +%s) - t0)) s"
fi
python3 bench/bench_nvfp4_gpu.py "$@" 2> "$OUT/bench_progress.log" | tee "$OUT/bench.log"
echo "all done: $(($(date +%s) - t0)) s"
