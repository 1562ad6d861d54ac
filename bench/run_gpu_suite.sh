#!/usr/bin/env bash
# One device call for everything on the GPU: build, every gpu-marked test, the GPU benchmarks (NVFP4 GEMV,
# ReSET sampler, end-to-end decode and its per-kernel profile), then compute-sanitizer on the NVFP4 sweep.
# Usage (repo root, on the GPU machine): bash bench/run_gpu_suite.sh [bench_nvfp4_gpu.py args...]
# Few files on purpose (a lent machine returns only a handful): every log goes to $OUT/suite.log, plus the
# benchmarks' JSON files; the summary is printed last. About 8 minutes on an H200 (session 4: tests ~150 s).
# PART=tests runs build + tests + sanitizer only, PART=bench build + benchmarks only (two calls of < 600 s);
# SKIP_E2E=1 skips the end-to-end benchmark and profile.
set -o pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-bench/out}
PART=${PART:-all}
mkdir -p "$OUT"
LOG="$OUT/suite.log"
: > "$LOG"
t0=$(date +%s)
stamp() { echo "== $1: $(($(date +%s) - t0)) s" | tee -a "$LOG"; }
section() { echo "######## $1" >> "$LOG"; }
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,memory.used --format=csv | tee -a "$LOG"
section build
RESET_NATIVE_CUDA=ON CMAKE_BUILD_PARALLEL_LEVEL=16 python3 -m pip install --no-build-isolation --no-deps -q . \
  >> "$LOG" 2>&1 || { tail -40 "$LOG"; exit 1; }
python3 -c "import reset_native as r; print(r.build_info()); print('has_cuda:', r.has_cuda())" | tee -a "$LOG"
stamp build
if [ "$PART" != bench ]; then
  section pytest
  timeout 420 python3 -m pytest -q -p no:cacheprovider -m gpu -rf tests > "$OUT/pytest.tmp" 2>&1
  rc=$?
  cat "$OUT/pytest.tmp" >> "$LOG"
  tests_line="gpu tests rc=$rc: $(tail -1 "$OUT/pytest.tmp")"
  grep -E "^FAILED|^ERROR" "$OUT/pytest.tmp" | head -10
  rm -f "$OUT/pytest.tmp"
  echo "$tests_line"
  stamp tests
  section sanitizer
  timeout 240 compute-sanitizer --tool memcheck --error-exitcode 1 python3 bench/check_nvfp4_gpu.py \
    > "$OUT/sanitizer.tmp" 2>&1
  sanitizer_line="sanitizer rc=$?: $(tail -2 "$OUT/sanitizer.tmp" | tr '\n' ' ')"
  cat "$OUT/sanitizer.tmp" >> "$LOG"
  rm -f "$OUT/sanitizer.tmp"
  echo "$sanitizer_line"
  stamp sanitizer
fi
if [ "$PART" != tests ]; then
  section bench_nvfp4_gpu
  OUT="$OUT" timeout 300 python3 bench/bench_nvfp4_gpu.py "$@" 2>/dev/null > "$OUT/nvfp4.tmp"
  cat "$OUT/nvfp4.tmp" >> "$LOG"
  stamp bench_nvfp4
  section bench_sampler
  BENCH_SAMPLER_JSON=bench_sampler_cuda.json timeout 120 python3 bench/bench_sampler.py --device cuda --quick \
    > "$OUT/sampler.tmp" 2>&1
  cat "$OUT/sampler.tmp" >> "$LOG"
  cp bench/out/bench_sampler_cuda.json "$OUT/" 2>/dev/null
  stamp bench_sampler
  if [ -z "$SKIP_E2E" ]; then
    section bench_e2e
    timeout 300 python3 bench/bench_e2e.py --repeats 1 --new-tokens 96 --json "$OUT/bench_e2e.json" \
      > "$OUT/e2e.tmp" 2>&1
    cat "$OUT/e2e.tmp" >> "$LOG"
    stamp bench_e2e
    section e2e_profile
    timeout 150 python3 bench/bench_e2e.py --profile --batch 1 > "$OUT/profile.tmp" 2>&1
    cat "$OUT/profile.tmp" >> "$LOG"
    stamp e2e_profile
  fi
fi
echo "---- summary"
[ -n "$tests_line" ] && echo "$tests_line" && echo "$sanitizer_line"
if [ "$PART" != tests ]; then
  tail -3 "$OUT/nvfp4.tmp"
  grep -E "^\| cuda" "$OUT/sampler.tmp"
  if [ -z "$SKIP_E2E" ]; then
    grep -E "^ +[0-9]+ +[0-9.]+ " "$OUT/e2e.tmp"
    grep -E "GPU kernel time per decode step" "$OUT/profile.tmp"
  fi
  rm -f "$OUT"/*.tmp
fi
stamp all
