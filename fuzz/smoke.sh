#!/usr/bin/env bash
# `make fuzz-smoke`: every target for TIME seconds (default 20), one after another.
#   fuzz/smoke.sh TIME TARGET...
# Ends with "fuzz-smoke: N passed, N failed" (a target fails when it saved a new crash).
set -uo pipefail
cd "$(dirname "$0")/.."
time=${1:-20}; shift
p=0; f=0
for t in "$@"; do
    echo "== $t (${time}s)"
    if fuzz/run.sh "$t" "$time"; then p=$((p + 1)); else f=$((f + 1)); fi
done
echo "fuzz-smoke: $p passed, $f failed"
[ "$f" -eq 0 ]
