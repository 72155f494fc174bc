#!/usr/bin/env bash
# The harness's own unittest suite; prints "harness: N passed, N failed, K skipped", with one
# "SKIP test: reason" line per skipped test (unittest counts a skip apart from a pass; so do we).
# With an argument, only reads that file as the suite's output (tests/cli/test_tally.sh).
if [ $# -gt 0 ]; then
    out=$(cat "$1"); rc=0
    grep -qE '^FAILED' <<<"$out" && rc=1
else
    cd "$(dirname "$0")/../../harness" || exit 1
    out=$(/usr/bin/python3 -m unittest -v tests.test_harness 2>&1)
    rc=$?
    echo "$out"
fi
total=$(sed -nE 's/^Ran ([0-9]+) tests? in .*/\1/p' <<<"$out" | tail -1)
status=$(grep -E '^(OK|FAILED)( \(.*\))?$' <<<"$out" | tail -1)
count() { grep -oE "$1=[0-9]+" <<<"$status" | cut -d= -f2 | awk '{s+=$1} END {print s+0}'; }
f=$(( $(count failures) + $(count errors) + $(count 'unexpected successes') ))
s=$(( $(count skipped) + $(count 'expected failures') ))
# "test_x (tests.test_harness.C.test_x) ... skipped 'why'"
sed -nE "s/^(test[^ ]*) .*\.\.\. skipped '(.*)'$/SKIP \1: \2/p" <<<"$out"
if [ -z "$total" ] || [ -z "$status" ]; then total=0; f=1; s=0; fi
[ $rc -ne 0 ] && [ "$f" -eq 0 ] && f=1
echo "harness: $((total - f - s)) passed, $f failed, $s skipped"
