#!/usr/bin/env bash
# One device call for the ReSET sampler on an installed CUDA build of reset_native: the GPU tests,
# then the CUDA benchmark; with SANITIZE=1 also compute-sanitizer (memcheck, racecheck) on the
# small-shape GPU tests. Usage (repo root, on the GPU machine): bash bench/run_sampler_gpu.sh;
# logs go to $OUT. Expected: 1-2 minutes; SANITIZE=1 adds a few minutes.
set -o pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-bench/out}
mkdir -p "$OUT"
t0=$(date +%s)
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv | tee "$OUT/sampler_gpu.txt"
python3 -c "import reset_native as r; print(r.build_info()); assert r.has_cuda(), 'not a CUDA build'" || exit 1
# Time limits: a hang (for example a one-kernel step waiting for a block that never runs) must not
# eat the whole device call.
timeout 240 python3 -m pytest -q -p no:cacheprovider --durations=8 -rf --tb=short tests/test_sampler_gpu.py \
  tests/test_sampler_gpu_batches.py tests/test_sampler_gpu_paths.py tests/test_sampler_gpu_combine.py \
  tests/test_sampler_workspace.py \
  > "$OUT/sampler_pytest.log" 2>&1
echo "pytest exit status $?"
tail -40 "$OUT/sampler_pytest.log"
echo "sampler tests done: $(($(date +%s) - t0)) s"
BENCH_SAMPLER_JSON=bench_sampler_cuda.json timeout 180 python3 bench/bench_sampler.py --device cuda 2>&1 |
  tee "$OUT/sampler_bench.log"
echo "sampler bench done: $(($(date +%s) - t0)) s"
# The same without programmatic dependent launch (plain kernel boundaries), B = 1 and 64.
RESET_NATIVE_PDL=0 BENCH_SAMPLER_JSON=bench_sampler_cuda_nopdl.json timeout 120 python3 bench/bench_sampler.py --device cuda \
  --quick --batches 1,64 2>&1 | tail -14 | tee "$OUT/sampler_bench_nopdl.log"
echo "sampler bench without PDL done: $(($(date +%s) - t0)) s"
cp bench/out/bench_sampler_cuda*.json "$OUT/" 2>/dev/null
if [ -n "$SANITIZE" ]; then
  small="test_cuda_samples_follow_restricted_softmax or (determinism and 1000) or bad_input or update_matches"
  compute-sanitizer --tool memcheck --error-exitcode 1 python3 -m pytest -q -p no:cacheprovider \
    tests/test_sampler_gpu.py -k "$small" 2>&1 | tail -8 | tee "$OUT/sampler_memcheck.log"
  compute-sanitizer --tool memcheck --error-exitcode 1 python3 -m pytest -q -p no:cacheprovider \
    tests/test_sampler_gpu_paths.py -k "6151 or 37 or staged" 2>&1 | tail -8 | tee -a "$OUT/sampler_memcheck.log"
  compute-sanitizer --tool racecheck --error-exitcode 1 python3 -m pytest -q -p no:cacheprovider \
    tests/test_sampler_gpu.py -k "determinism and 1000" 2>&1 | tail -8 | tee "$OUT/sampler_racecheck.log"
  echo "sampler sanitizers done: $(($(date +%s) - t0)) s"
fi
