#!/bin/bash
# Final probe of branch gemv22 (issue 4; run from the merged main's root after the build; <= 60 s; no pytest; writes
# only under $OUT or /tmp). gemv22 merges no kernel switch (split accumulators lost in round 2, head refill was not
# measured: bench/probes/trials/gemv16_session18_forms.patch), only the stall probe; round 2 ran it on the
# two-team kernel at 24576x4096x16. Here: the same per-phase breakdown of the split-K kernel at M = 16 (8B down,
# 4096x12288x16, the worst M16/M1 ratio) and of the two-team kernel at M = 8 (24576x4096x8, NT = 1: why M = 16 is
# slower than M = 8 with the same loop). Tables last.
set -u
OUT=${OUT:-/tmp/gemv22_final}
mkdir -p "$OUT"
OUT=$OUT TOP=6 timeout 57 bash bench/probes/gemv16_stall_where.sh 4096x12288x16 24576x4096x8 2>&1 | tail -40 \
  || echo "gemv22 final probe: ncu did not finish in 57 s"
