#!/bin/bash
# sampler25 (session 21): RESET_NATIVE_SAMPLER_FAST_FINISH (opt-in; =1 every stats pass, =single the block-per-chunk
# pass only) against the default. From the tree root with the wheel installed; about 60-75 s, at most 90 (timeouts
# 12 + 45 + 33); writes only under $OUT and /tmp.
# 1. Which stats kernel each variant launches (torch profiler, one ReSET top-p step each, B = 1 and 64): the template
#    arguments are (dtype, grouped, phased, fast): fast/fast_b must show <0, false, false, true> at B = 1 and
#    <0, true, true, true> at B = 64, single <0, false, false, true> at B = 1 and <0, true, true, false> at B = 64,
#    default/old the fast argument false.
# 2. The GPU tests of the switch (tests/test_sampler_gpu_fast_finish.py: bit for bit against =0).
# 3. The probe, SAMPLER_SWITCH_VARIANTS=s25: old, default, fast, single, default_b, fast_b in turns (one-step graph
#    replays, best of 5 x 200), B = 1, 8, 64, ReSET top-p and fixed T; every variant checked bit for bit against old.
#    Its table is printed last.
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-/tmp/sampler25_out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
date -u +"device clock %H:%M:%S UTC"
echo "== stats kernel per variant (ReSET top-p; B = 1, 64)"
SAMPLER_SWITCH_VARIANTS=s25 SAMPLER_SWITCH_KERNEL=stats_kernel SAMPLER_SWITCH_KERNEL_ROWS=1,64 timeout 12 \
  python3 bench/probes/sampler_switches.py kernels > "$OUT/kernels.txt" 2>&1
echo "kernels exit $?"
grep -E "^(B =|old|default|fast|single)" "$OUT/kernels.txt" || tail -4 "$OUT/kernels.txt"
echo "== GPU tests (tests/test_sampler_gpu_fast_finish.py)"
timeout 45 python3 -m pytest -q -x -p no:cacheprovider tests/test_sampler_gpu_fast_finish.py > "$OUT/tests.txt" 2>&1
echo "tests exit $?"
grep -E "passed|failed|error" "$OUT/tests.txt" | tail -3 || tail -20 "$OUT/tests.txt"
grep -q " failed\| error" "$OUT/tests.txt" && grep -E "^(FAILED|ERROR|E  )" "$OUT/tests.txt" | head -30
date -u +"device clock %H:%M:%S UTC"
SAMPLER_SWITCH_VARIANTS=s25 SAMPLER_SWITCH_BATCHES=1,8,64 SAMPLER_SWITCH_OUT="$OUT" timeout 33 \
  python3 bench/probes/sampler_switches.py > "$OUT/probe.txt" 2>&1
echo "probe exit $?"
date -u +"device clock %H:%M:%S UTC"
cat "$OUT/probe.txt"
