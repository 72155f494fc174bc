#!/usr/bin/env bash
# Part of `make test`: replays every fuzz corpus file (fuzz/corpus/<target>/) and every
# saved crash file (fuzz/crashes/<target>/) through the plain reproducer
# ($BUILD/fuzz-repro/<target>, gcc + ASan/UBSan, no fuzzing engine). Crash files listed in
# fuzz/crashes/OPEN (bugs not fixed yet) are counted as skipped, each named.
# Ends with one line: "fuzz: N passed, N failed, K skipped" (one per input file).
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}:abort_on_error=0
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
targets=$(ls fuzz/fuzz_*.c 2>/dev/null | sed -E 's|fuzz/fuzz_(.*)\.c|\1|')
missing=0
for t in $targets; do [ -x "$BUILD/fuzz-repro/$t" ] || missing=1; done
if [ $missing = 1 ]; then
    make --no-print-directory BUILD="$BUILD" fuzz-repro >"$BUILD/fuzz-repro-build.log" 2>&1 ||
        echo "building the reproducers failed, see $BUILD/fuzz-repro-build.log"
fi
open_list=$(grep -vE '^\s*(#|$)' fuzz/crashes/OPEN 2>/dev/null | awk '{print $1}')
passed=0; failed=0; skipped=0
logdir=$BUILD/test-logs/fuzz; mkdir -p "$logdir"
for t in $targets; do
    bin=$BUILD/fuzz-repro/$t
    files=()
    for f in fuzz/corpus/"$t"/* fuzz/crashes/"$t"/*; do
        [ -f "$f" ] || continue
        case $f in *.trace) continue ;; esac   # crash traces (virtio_mmio) are not inputs
        if grep -qxF "${f#fuzz/crashes/}" <<<"$open_list"; then
            skipped=$((skipped + 1)); echo "SKIP $f: known-open crash input (fuzz/crashes/OPEN)"
            continue
        fi
        files+=("$f")
    done
    [ ${#files[@]} -gt 0 ] || continue
    if [ ! -x "$bin" ]; then
        echo "not ok - $t: reproducer $bin missing"; failed=$((failed + ${#files[@]})); continue
    fi
    # One process for the whole set; only when it fails, one per file to name the culprits.
    if timeout 600 "$bin" "${files[@]}" >"$logdir/$t.log" 2>&1; then
        passed=$((passed + ${#files[@]}))
        echo "ok - $t: ${#files[@]} inputs"
    else
        for f in "${files[@]}"; do
            if timeout 60 "$bin" "$f" >"$logdir/$t.one.log" 2>&1; then
                passed=$((passed + 1))
            else
                failed=$((failed + 1))
                echo "not ok - $t: $f (reproduce: $bin $f)"
                grep -m3 -E 'ERROR|SUMMARY|invariant|runtime error' "$logdir/$t.one.log" | sed 's/^/    /'
            fi
        done
    fi
done
echo "fuzz: $passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
