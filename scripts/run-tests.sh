#!/usr/bin/env bash
# Runs every test vmlab has and ends with one line "N passed, N failed".
#  - Check suites ($BUILD/tests/test_*): counts from Check's summary line
#  - tests/cli/*.sh: TAP lines (ok / not ok)
#  - extra runners (scenarios, fuzz corpora) registered in scripts/test-parts.d/*.sh, each
#    ending with its own "N passed, N failed" line
set -u
cd "$(dirname "$0")/.."
export BUILD=${BUILD:-build}
export VMLAB=${VMLAB:-$BUILD/asan/vmlab}
export VMLAB_REL=${VMLAB_REL:-$BUILD/vmlab}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export CK_FORK=yes
passed=0
failed=0
failures=()
logdir=$BUILD/test-logs
mkdir -p "$logdir"

count_tap() {   # $1 name, $2 log
    local p f
    p=$(grep -cE '^ok ' "$2" || true)
    f=$(grep -cE '^not ok ' "$2" || true)
    passed=$((passed + p)); failed=$((failed + f))
    [ "$f" -gt 0 ] && failures+=("$1: $(grep -E '^not ok ' "$2" | head -3 | tr '\n' ';')")
    echo "$1: $p passed, $f failed"
}

for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    log=$logdir/$name.log
    "$t" >"$log" 2>&1
    rc=$?
    line=$(grep -E '^[0-9]+%: Checks: ' "$log" | tail -1)
    if [ -n "$line" ]; then
        n=$(sed -E 's/.*Checks: ([0-9]+).*/\1/' <<<"$line")
        f=$(sed -E 's/.*Failures: ([0-9]+), Errors: ([0-9]+).*/\1+\2/' <<<"$line")
        f=$((f))
        passed=$((passed + n - f)); failed=$((failed + f))
        [ "$f" -gt 0 ] && failures+=("$name: $(grep -E ':[EF]:' "$log" | head -3 | tr '\n' ';')")
        echo "$name: $((n - f)) passed, $f failed"
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
    count_tap "cli/$name" "$log"
    if [ $rc -ne 0 ] && ! grep -qE '^not ok ' "$log"; then
        failed=$((failed + 1)); failures+=("cli/$name: exited $rc without a failing test line")
    fi
done

for part in scripts/test-parts.d/*.sh; do
    [ -f "$part" ] || continue
    name=$(basename "$part" .sh)
    log=$logdir/part-$name.log
    timeout 1200 bash "$part" >"$log" 2>&1
    rc=$?
    line=$(grep -E '^([A-Za-z-]+: )?[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
    if [ -n "$line" ]; then
        p=$(sed -E 's/^([A-Za-z-]+: )?([0-9]+) passed.*/\2/' <<<"$line")
        f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
        passed=$((passed + p)); failed=$((failed + f))
        # Name the failing tests, not only the log: CI shows the end of this output only.
        [ "$f" -gt 0 ] && failures+=("$name: $(grep -E '^(FAIL|ERROR|not ok)[: ]' "$log" \
            | head -3 | tr '\n' ';') see $log")
        echo "$name: $p passed, $f failed"
    else
        failed=$((failed + 1)); failures+=("$name: no summary line (exit $rc), see $log")
        echo "$name: no summary line (exit $rc)"
    fi
done

if [ ${#failures[@]} -gt 0 ]; then
    echo
    echo "Failures:"
    printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
