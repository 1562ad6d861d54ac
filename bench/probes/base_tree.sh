#!/bin/bash
# Writes the baseline cuda/ tree of the probes to <dir>/cuda: this tree's cuda/ with the files that differ
# from <base_ref> taken from git when the history is there, else by reverse-applying
# bench/probes/probe_base.patch: write it with `git diff <base_ref> -- cuda > bench/probes/probe_base.patch`
# before copying the tree to a machine without the history (it is not kept in the repository).
# Usage: bash bench/probes/base_tree.sh <base_ref> <dir>
set -e
cd "$(dirname "$0")/../.."
BASE=$1
mkdir -p "$2"
cp -r cuda "$2/cuda"
# Git only when this tree is the repository's top level: a tree copied inside another repository would
# otherwise see that repository's history (and pathspecs relative to the wrong root).
top=$(git rev-parse --show-toplevel 2>/dev/null || true)
if [ "$top" = "$(pwd -P)" ] && git rev-parse -q --verify "$BASE^{commit}" >/dev/null 2>&1; then
  for f in $(git diff --name-only "$BASE" -- cuda); do
    if git cat-file -e "$BASE:$f" 2>/dev/null; then git show "$BASE:$f" > "$2/$f"; else rm -f "$2/$f"; fi
  done
  echo "baseline: $BASE (git)"
elif [ ! -f bench/probes/probe_base.patch ]; then
  echo "base_tree.sh: no git history for $BASE and no bench/probes/probe_base.patch" >&2
  exit 1
elif command -v patch >/dev/null; then
  patch -s -R -p1 -d "$2" < bench/probes/probe_base.patch
  echo "baseline: reverse of bench/probes/probe_base.patch"
else
  python3 bench/probes/unpatch.py bench/probes/probe_base.patch "$2"
  echo "baseline: reverse of bench/probes/probe_base.patch (python)"
fi
