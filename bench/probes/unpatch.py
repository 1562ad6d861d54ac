#!/usr/bin/env python3
"""Reverse-applies a `git diff` (unified, no fuzz) under a directory: unpatch.py <patch> <root>. Used by
gemv_probe.sh to rebuild the baseline sources where neither git history nor `patch` is available."""
import re
import sys


def main():
    patch, root = sys.argv[1], sys.argv[2]
    files, cur = {}, None
    for ln in open(patch).read().split("\n"):
        if ln.startswith("diff --git"):
            cur = None
        elif ln.startswith("+++ "):
            cur = ln[6:] if ln[4:6] == "b/" else ln[4:]
            files[cur] = []
        elif ln.startswith("@@") and cur:
            m = re.match(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@", ln)
            files[cur].append([int(m.group(3)), []])
        elif cur and files[cur] and ln[:1] in (" ", "+", "-"):
            files[cur][-1][1].append(ln)
    for path, hunks in files.items():
        full = f"{root}/{path}"
        lines = open(full).read().split("\n")
        for start, body in reversed(hunks):  # bottom-up keeps earlier line numbers valid
            new = [x[1:] for x in body if x[0] in " +"]
            old = [x[1:] for x in body if x[0] in " -"]
            if lines[start - 1:start - 1 + len(new)] != new:
                sys.exit(f"unpatch: hunk at {path}:{start} does not match")
            lines[start - 1:start - 1 + len(new)] = old
        open(full, "w").write("\n".join(lines))


if __name__ == "__main__":
    main()
