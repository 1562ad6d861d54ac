#!/bin/bash
# gemv32 (session 20), from the tree root after the wheel is installed (<= 45 s; writes only under $OUT and /tmp).
# RESET_NATIVE_GEMV_16_FORM=head (opt-in): the W4A4 rule (pad | fast quantizer | wide amax) plus kForm16HeadRefill
# (every weight slot refilled at the loop head) on the W4A4 16-bit kernels; A16 and the block-diagonal kernel
# (M <= 2) ignore it. Round 1 (old W4A4 rule): split K won (32B down M8 52.3 -> 44.8 us), two teams at M = 16 lost
# (32B gate_up 90.5 -> 111.3). Runs (W4A4, bf16 x, dynamic scale; two copies of each value; "same bits" must be True):
#   A. unset,head,unset,head on the 8 Qwen3 layers at M = 4, 8, 16 (~24 rows);
#   B. (if time is left) the same at M = 2 (block-diagonal but 32B down: no change, a noise control), 3, 6, 11, 13.
# The instance of each row (routing model, bench/probes/gemv_teams_routing.py: split/s = split K by s slices, teams =
# two teams, 2cta = two CTAs per SM; NT = 1 at M <= 8, 2 above) is printed before the tables, so that a rule (e.g.
# head on the split-K instances only) can be read off. Tables last.
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gemv32_out}
mkdir -p "$OUT"
export PYTHONDONTWRITEBYTECODE=1  # nothing written outside $OUT and /tmp
SECONDS=0
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
date -u +"device clock %H:%M:%S UTC"
unset RESET_NATIVE_GEMV_16_FORM RESET_NATIVE_GEMV_KSPLIT RESET_NATIVE_GEMV_SPLIT_AMAX RESET_NATIVE_GEMV_TEAMS \
  RESET_NATIVE_GEMV_BD RESET_NATIVE_GEMV_RING
SWEEP="python3 bench/probes/gemv_env_sweep.py --act nvfp4 --reps 3 --env RESET_NATIVE_GEMV_16_FORM"
timeout 24 $SWEEP --values unset,head,unset,head --ms 4,8,16 --layers 8b,32b > "$OUT/a_head.txt" 2>&1
echo "A rc $? at ${SECONDS} s"
if [ "$SECONDS" -le 30 ]; then
  timeout $((43 - SECONDS)) $SWEEP --values unset,head,unset,head --ms 2,3,6,11,13 --layers 8b,32b \
    > "$OUT/b_head.txt" 2>&1
  echo "B rc $? at ${SECONDS} s"
fi
date -u +"device clock %H:%M:%S UTC"
echo "== instances (routing model bench/probes/gemv_teams_routing.py, W4A4 bf16 x, no switches)"
python3 bench/probes/gemv_teams_routing.py --all 2>/dev/null | python3 -c '
import re, sys
rows = {"layer": ["M=" + str(m) for m in (2, 3, 4, 6, 8, 11, 13, 16)]}
for line in sys.stdin:
    m = re.match(r"nvfp4 (\S+)\s+\[\S+\] M=\s*(\d+): (\S+)", line)
    if m and int(m.group(2)) in (2, 3, 4, 6, 8, 11, 13, 16):
        rows.setdefault(m.group(1), []).append(m.group(3))
for layer, cells in rows.items():
    print(f"  {layer:12s} " + " ".join(f"{c:8s}" for c in cells))
'
if [ -f "$OUT/b_head.txt" ]; then
  echo "== B: W4A4 (M = 2: block-diagonal but 32B down, unchanged), unset = the rule, head = rule + kForm16HeadRefill"
  cat "$OUT/b_head.txt"
fi
echo "== A: W4A4 (bf16 x, dynamic scale), unset = the rule (pad | quant fast | amax wide), head = rule + head refill"
cat "$OUT/a_head.txt"
