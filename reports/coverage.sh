#!/usr/bin/env bash
# Second half of `make coverage` (reports/module.mk builds $COV_BUILD first): zero the
# counters, run every test against the instrumented build, capture with lcov (branch
# coverage), drop system headers, tests and generated code, write genhtml HTML and print
# the per-directory summary. A failing test does not stop the report; the tally is shown.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
COV_BUILD=${COV_BUILD:-$BUILD/cov}
COV_OUT=${COV_OUT:-reports/out/coverage}
DATA=$BUILD/coverage
RC=(--rc lcov_branch_coverage=1)
# Debian's lcov 1.16 prints "Subroutine ... redefined" perl noise on every geninfo run.
lcov() { command lcov "$@" 2> >(grep -v ' redefined at ' >&2); }
mkdir -p "$DATA"
rm -f "$DATA"/*.info

# Objects of sources deleted since the last build would keep counting: drop them.
find "$COV_BUILD/asan" -name '*.gcno' | while read -r g; do
    src=${g#"$COV_BUILD"/asan/}; src=${src%.gcno}.c
    case "$src" in "$COV_BUILD"/*|build*) continue;; esac
    [ -f "$src" ] || rm -f "$g" "${g%.gcno}.gcda" "${g%.gcno}.o"
done
lcov "${RC[@]}" -q --zerocounters --directory "$COV_BUILD" || exit 1
# Baseline of zero counts, so files no test reaches still count (as 0 %).
lcov "${RC[@]}" -q --capture --initial --directory "$COV_BUILD" -o "$DATA/base.info" || exit 1

echo "== tests against the coverage build ($COV_BUILD) =="
t0=$SECONDS
# The harness finds $COV_BUILD/vmlab (the link) through BUILD.
BUILD=$COV_BUILD VMLAB=$COV_BUILD/asan/vmlab VMLAB_REL=$COV_BUILD/vmlab scripts/run-tests.sh 2>&1 | tee "$DATA/tests.log"
tally=$(tail -n 1 "$DATA/tests.log")
echo "tests took $((SECONDS - t0)) s"

lcov "${RC[@]}" -q --capture --directory "$COV_BUILD" -o "$DATA/tests.info" || exit 1
lcov "${RC[@]}" -q -a "$DATA/base.info" -a "$DATA/tests.info" -o "$DATA/all.info" || exit 1
lcov "${RC[@]}" -q --remove "$DATA/all.info" '/usr/*' "$PWD/tests/*" "$PWD/fuzz/*" "$PWD/build*" \
    -o "$DATA/lcov.info" || exit 1
rm -rf "$COV_OUT"
genhtml "${RC[@]}" -q --branch-coverage --ignore-errors source --legend --title "vmlab ($tally)" \
    -o "$COV_OUT" "$DATA/lcov.info" || exit 1
echo
echo "coverage (lines and branches; tests: $tally)"
/usr/bin/python3 reports/coverage_summary.py "$DATA/lcov.info" . "$DATA/summary.json" "tests: $tally" || exit 1
echo "html: $COV_OUT/index.html; tracefile: $DATA/lcov.info"
