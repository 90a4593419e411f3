#!/usr/bin/env python3
"""Sizes of the harness's Rust sources: lines per file and per function (an approximation
without a parser: a function runs from its `fn` line to the first line after it that closes a
brace at the `fn` line's indentation; test modules included). Exits 1 when a file is over
MAX_FILE lines or a function over MAX_FN lines.

    python3 loadtest/tools/sizes.py [dir ...]   # default: loadtest/src
"""
import os
import re
import sys

MAX_FILE, MAX_FN = 600, 120
FN = re.compile(r"^(\s*)(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)")


def functions(lines):
    for i, line in enumerate(lines):
        m = FN.match(line)
        if not m or line.rstrip().endswith(";"):
            continue
        indent = m.group(1)
        for j in range(i, len(lines)):
            if lines[j].startswith(indent + "}") or (j == i and line.rstrip().endswith("}")):
                yield m.group(7), i + 1, j - i + 1
                break


def main(dirs):
    bad = 0
    files, fns = [], []
    for d in dirs:
        for root, _, names in os.walk(d):
            for n in sorted(names):
                if not n.endswith(".rs"):
                    continue
                p = os.path.join(root, n)
                lines = open(p, encoding="utf-8").read().split("\n")
                files.append((len(lines) - (lines[-1] == ""), p))
                fns.extend((size, f"{p}:{at} {name}") for name, at, size in functions(lines))
    print(f"largest files (limit {MAX_FILE} lines):")
    for size, p in sorted(files, reverse=True)[:8]:
        print(f"  {size:5}  {p}")
    print(f"largest functions (limit {MAX_FN} lines):")
    for size, where in sorted(fns, reverse=True)[:8]:
        print(f"  {size:5}  {where}")
    for size, p in files:
        if size > MAX_FILE:
            print(f"OVER: {p} has {size} lines")
            bad += 1
    for size, where in fns:
        if size > MAX_FN:
            print(f"OVER: {where} has {size} lines")
            bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["loadtest/src"]))
