#!/bin/bash
# Final probe of branch gemv22 (issue 4; run from the merged main's root after the build; <= 60 s; no pytest; writes
# only under $OUT or /tmp). gemv22 merges no kernel switch (split accumulators lost in round 2; head refill and the
# padded reduction rows were not measured: bench/probes/trials/gemv16_session18_forms.patch), only the stall probe,
# which round 2 ran on the two-team kernel at 24576x4096x16. Here the same per-phase breakdown (prologue / loop steps
# / tile epilogue) of the split-K kernel at M = 16 (8B down, 4096x12288x16: the worst M16/M1 ratio) and of the
# two-team kernel at M = 8 (24576x4096x8, one token tile: why M = 16 is slower than M = 8 with the same loop), one
# ncu process each so that the first prints even if the second runs out of time. Tables last.
set -u -o pipefail
OUT=${OUT:-/tmp/gemv22_final}
mkdir -p "$OUT"
for spec in 4096x12288x16:30 24576x4096x8:27; do
  shape=${spec%:*}
  OUT=$OUT/$shape TOP=5 timeout "${spec#*:}" bash bench/probes/gemv16_stall_where.sh "$shape" 2>&1 | tail -18 \
    || echo "gemv22 final probe: $shape did not finish in ${spec#*:} s"
done
