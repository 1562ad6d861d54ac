#!/bin/bash
# eager22 (session 22), from the tree root after the wheel is installed (<= 88 s of timeouts; writes only under $OUT
# and /tmp). Every custom op's package callable runs the op's body directly outside torch.compile traces (sampler step,
# decode_attention, qk_norm_rope(_cache), rms_norm, silu_mul, nvfp4_gemv_fused); ops registered at import (dynamo
# traces through lru_cache: a compiled caller of nc.gemv / gemv_fused / ... used to trace the registration).
#   T. New tests (eager route == op bit for bit incl. mutated caches / counters / sampler state, graph replays,
#      compiled callers record the ops, error messages) + the GPU tests of every changed module, "gpu and not slow",
#      three pytest processes side by side, each stopped by SIGINT at 56 s (pytest then prints its summary).
#      Expected: t1 sampler ~30 s (eager route ~10 s, test_sampler_gpu.py ~20 s), t2 ops ~35 s (new ~15 s incl. five
#      aot_eager compiles, decode_attention ~8 s, torch_launch ~15 s with one inductor compile), t3 fused models
#      ~40 s (transformers import, tiny Qwen3/Llama generate). All must pass.
#   P. Host us per eager call, eager route vs the op (dispatcher) vs torch, sampler B = 1/8/64 and the fused ops at
#      Qwen3-8B decode shapes (~15 s).
# Tables last.
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-/tmp/eager22_out}
mkdir -p "$OUT"
export PYTHONDONTWRITEBYTECODE=1  # nothing written outside $OUT and /tmp
export TORCHINDUCTOR_CACHE_DIR=/tmp/eager22_inductor TRITON_CACHE_DIR=/tmp/eager22_triton
SECONDS=0
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
date -u +"device clock %H:%M:%S UTC"
PYTEST=(python3 -m pytest -q -m "gpu and not slow" -p no:cacheprovider --tb=short -rfEs)
timeout -s INT -k 4 56 "${PYTEST[@]}" tests/test_sampler_gpu_eager_route.py tests/test_sampler_gpu.py \
  tests/test_fused_norm.py > "$OUT/t1_sampler.txt" 2>&1 &
timeout -s INT -k 4 56 "${PYTEST[@]}" tests/test_eager_route_ops.py tests/test_decode_attention.py \
  tests/test_torch_launch.py > "$OUT/t2_ops.txt" 2>&1 &
timeout -s INT -k 4 56 "${PYTEST[@]}" tests/test_fused_decoder_ops.py tests/test_fused_gemv.py \
  > "$OUT/t3_fused_models.txt" 2>&1 &
wait
for f in "$OUT"/t[123]_*.txt; do echo "T $(basename "$f"): $(tail -n 1 "$f")"; done
echo "T done at ${SECONDS} s"
timeout 28 python3 bench/probes/eager_host_time_ops.py --calls 50 --reps 7 > "$OUT/p_host_time.txt" 2>&1
echo "P rc $? at ${SECONDS} s"
grep -hE "^(FAILED|ERROR)|passed|failed|error" "$OUT"/t[123]_*.txt | tail -n 20
echo "== P: host us per eager call (eager route / op through the dispatcher / torch yardstick)"
cat "$OUT/p_host_time.txt"
