#!/bin/bash
# ncu of the plain block-diagonal GEMV and its fused forms (bench/probes/fused_prologue_ncu.py), from the tree root
# after `pip install --no-build-isolation .` on a GPU machine with ncu; prints the table. About 30 s.
set -e
cd "$(dirname "$0")/../.."
METRICS=$(python3 -c "import sys; sys.path.insert(0, 'bench/probes'); import fused_prologue_ncu as f; print(','.join(f.METRICS))")
rm -f /tmp/fused_prologue_ncu.csv
ncu --csv --print-units base --cache-control all --clock-control none --metrics "$METRICS" \
  -k regex:gemv_bd_kernel --log-file /tmp/fused_prologue_ncu.csv python3 bench/probes/fused_prologue_ncu.py run > /dev/null
python3 bench/probes/fused_prologue_ncu.py table /tmp/fused_prologue_ncu.csv
