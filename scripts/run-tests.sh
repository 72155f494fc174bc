#!/usr/bin/env bash
# Runs every test vmlab has and ends with one line "N passed, N failed, K skipped".
#  - Check suites ($BUILD/tests/test_*): Check's summary line, less the tests that reported
#    "SKIP <test>: <reason>" (tests/skip.h)
#  - tests/cli/*.sh: TAP lines (ok / not ok / ok # SKIP / 1..0 # SKIP)
#  - extra runners (scenarios, fuzz corpora, nested KVM, ...) registered in
#    scripts/test-parts.d/*.sh, each ending with its own "N passed, N failed[, K skipped]" line
# scripts/tally.sh says exactly what counts. Every skip is counted and, above the summary,
# named with its reason: a part that checked nothing never looks like a part that passed.
set -u
cd "$(dirname "$0")/.."
source scripts/tally.sh
export BUILD=${BUILD:-build}
export VMLAB=${VMLAB:-$BUILD/asan/vmlab}
export VMLAB_REL=${VMLAB_REL:-$BUILD/vmlab}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export CK_FORK=yes
passed=0
failed=0
skipped=0
failures=()
skips=()
logdir=$BUILD/test-logs
mkdir -p "$logdir"

# add NAME: adds the last tally to the totals and prints the part's line.
add() {
    passed=$((passed + T_PASS)); failed=$((failed + T_FAIL)); skipped=$((skipped + T_SKIP))
    [ "$T_SKIP" -gt 0 ] && skips+=("$1: $T_SKIP skipped: ${T_WHY:-no reason given}")
    echo "$1: $T_PASS passed, $T_FAIL failed$([ "$T_SKIP" -gt 0 ] && echo ", $T_SKIP skipped")"
}

for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    log=$logdir/$name.log
    "$t" >"$log" 2>&1
    rc=$?
    if tally_check "$log"; then
        add "$name"
        [ "$T_FAIL" -gt 0 ] && failures+=("$name: $(grep -E ':[EF]:' "$log" | head -3 | tr '\n' ';')")
    else
        failed=$((failed + 1))
        failures+=("$name: crashed or printed no summary (exit $rc), see $log")
        echo "$name: no Check summary (exit $rc) — counted as 1 failure"
    fi
done

for s in tests/cli/*.sh; do
    [ -f "$s" ] || continue
    case "$s" in */lib.sh) continue;; esac
    name=$(basename "$s" .sh)
    log=$logdir/cli-$name.log
    timeout 900 bash "$s" >"$log" 2>&1
    rc=$?
    if tally_tap "$log"; then
        add "cli/$name"
        [ "$T_FAIL" -gt 0 ] && failures+=("cli/$name: $(grep -E '^not ok ' "$log" | head -3 | tr '\n' ';')")
        if [ $rc -ne 0 ] && [ "$T_FAIL" -eq 0 ]; then
            failed=$((failed + 1)); failures+=("cli/$name: exited $rc without a failing test line")
        fi
    else
        failed=$((failed + 1)); failures+=("cli/$name: no test ran (exit $rc), see $log")
        echo "cli/$name: no TAP test line (exit $rc) — counted as 1 failure"
    fi
done

for part in scripts/test-parts.d/*.sh; do
    [ -f "$part" ] || continue
    name=$(basename "$part" .sh)
    log=$logdir/part-$name.log
    # 1200 s, or what the part says on a "# part-timeout: SECONDS" line
    limit=$(sed -n 's/^# part-timeout: \([0-9][0-9]*\).*/\1/p' "$part" | head -1)
    timeout "${limit:-1200}" bash "$part" >"$log" 2>&1
    rc=$?
    if tally_part "$log"; then
        add "$name"
        # Name the failing tests, not only the log: CI shows the end of this output only.
        [ "$T_FAIL" -gt 0 ] && failures+=("$name: $(grep -E '^(FAIL|ERROR|not ok)[: ]' "$log" \
            | head -3 | tr '\n' ';') see $log")
        if [ $rc -ne 0 ] && [ "$T_FAIL" -eq 0 ]; then
            failed=$((failed + 1)); failures+=("$name: exited $rc without a failure counted, see $log")
        fi
    else
        failed=$((failed + 1)); failures+=("$name: no summary line (exit $rc), see $log")
        echo "$name: no summary line (exit $rc)"
    fi
done

if [ ${#skips[@]} -gt 0 ]; then
    echo
    echo "Skipped:"
    printf '  %s\n' "${skips[@]}"
fi
if [ ${#failures[@]} -gt 0 ]; then
    echo
    echo "Failures:"
    printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
