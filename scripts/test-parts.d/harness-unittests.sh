#!/usr/bin/env bash
# The harness's own unittest suite; prints "harness: N passed, N failed".
cd "$(dirname "$0")/../../harness"
out=$(/usr/bin/python3 -m unittest -v tests.test_harness 2>&1)
rc=$?
echo "$out"
p=$(grep -cE '\.\.\. ok$' <<<"$out")
f=$(grep -cE '\.\.\. (FAIL|ERROR)$' <<<"$out")
[ $rc -ne 0 ] && [ "$f" -eq 0 ] && f=1
echo "harness: $p passed, $f failed"
