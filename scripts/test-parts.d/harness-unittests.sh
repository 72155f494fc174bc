#!/usr/bin/env bash
# The harness's own unittest suite; prints "harness: N passed, N failed".
cd "$(dirname "$0")/../../harness"
out=$(/usr/bin/python3 -m unittest tests.test_harness 2>&1)
rc=$?
echo "$out"
total=$(sed -nE 's/^Ran ([0-9]+) tests? in .*/\1/p' <<<"$out" | tail -1)
f=$(sed -nE 's/^FAILED \((.*)\)$/\1/p' <<<"$out" | grep -oE '(failures|errors)=[0-9]+' | cut -d= -f2 | awk "{s+=\$1} END {print s+0}")
f=${f:-0}
[ -z "$total" ] && { total=0; f=1; }
[ $rc -ne 0 ] && [ "$f" -eq 0 ] && f=1
echo "harness: $((total - f)) passed, $f failed"
