#!/usr/bin/env bash
# The test runner's own counting (scripts/tally.sh and the parts' summary lines): a skip is
# counted as a skip with its reason, never as a pass; a log with no verdict is a failure.
cd "$(dirname "$0")/../.."
source tests/cli/lib.sh
source scripts/tally.sh

# expect_tally DESC "P F S" [WHY-SUBSTRING]: the last tally_* call's counts (and reason)
expect_tally() {
    local got="$T_PASS $T_FAIL $T_SKIP"
    if [ "$got" = "$2" ] && [[ "$T_WHY" == *"${3:-}"* ]]; then ok "$1"
    else not_ok "$1: got '$got' why '$T_WHY', want '$2' why '${3:-}'"; fi
}

cat >"$TMP/check.log" <<'LOG'
Running suite(s): kvm
SKIP probe_says_kvm_is_there: /dev/kvm: No such file or directory
SKIP port_io_reaches_the_bus: /dev/kvm: No such file or directory
80%: Checks: 5, Failures: 1, Errors: 0
t.c:1:F:x:y:0: Assertion failed
LOG
tally_check "$TMP/check.log"
expect_tally "Check: SKIP lines move tests from passed to skipped, with the reason" "2 1 2" "/dev/kvm: No such file"

printf 'Running suite(s): x\nSKIP test_kvm: no kvm\n' >"$TMP/nosummary.log"
if tally_check "$TMP/nosummary.log"; then not_ok "Check: a log without Check's summary has no verdict"
else ok "Check: a log without Check's summary has no verdict (the runner counts a failure)"; fi

cat >"$TMP/tap.log" <<'LOG'
ok 1 - boots
not ok 2 - reads the disk
ok 3 # SKIP kvm: /dev/kvm not usable here
ok 4 - writes # skip lowercase also counts
# SKIP a comment line alone is not a test
1..4
LOG
tally_tap "$TMP/tap.log"
expect_tally "TAP: passes, failures and skip directives are counted apart" "1 1 2" "kvm: /dev/kvm not usable here"

echo "1..0 # SKIP /dev/kvm does not open" >"$TMP/all.log"
tally_tap "$TMP/all.log"
expect_tally "TAP: a plan of 1..0 with a skip directive is one skip with its reason" "0 0 1" "/dev/kvm does not open"

echo "1..0" >"$TMP/none.log"
if tally_tap "$TMP/none.log"; then not_ok "TAP: a script that ran nothing has no verdict"
else ok "TAP: a script that ran nothing has no verdict (the runner counts a failure)"; fi

cat >"$TMP/part.log" <<'LOG'
SKIP boot-hello                   kvm   KVM unavailable (/dev/kvm: No such file or directory)
SKIP blk-rw                       kvm   KVM unavailable (/dev/kvm: No such file or directory)
scenarios: 30 passed, 0 failed, 2 skipped (5.6 s)
LOG
tally_part "$TMP/part.log"
expect_tally "part: ', K skipped' on the summary line, reasons from SKIP lines" "30 0 2" "KVM unavailable"
if [ "$T_WHY" = "KVM unavailable (/dev/kvm: No such file or directory)" ]; then
    ok "part: a reason shared by column-aligned scenario lines is named once"
else
    not_ok "part: scenario skip reasons: '$T_WHY'"
fi

printf 'scenarios: 10 passed, 1 failed (5.6 s)\n' >"$TMP/part2.log"
tally_part "$TMP/part2.log"
expect_tally "part: a summary without skips" "10 1 0"

# The harness's unittest output: skips are not passes.
cat >"$TMP/unittest.log" <<'LOG'
test_a (tests.test_harness.A.test_a) ... ok
test_b (tests.test_harness.A.test_b) ... skipped 'needs build/vmlab'
test_c (tests.test_harness.A.test_c) ... ok
----------------------------------------------------------------------
Ran 3 tests in 0.1s

OK (skipped=1)
LOG
bash scripts/test-parts.d/harness-unittests.sh "$TMP/unittest.log" >"$TMP/hu.out"
tally_part "$TMP/hu.out"
expect_tally "harness: 'OK (skipped=1)' is 2 passed, 1 skipped" "2 0 1" "needs build/vmlab"

cat >"$TMP/unittest2.log" <<'LOG'
test_a (tests.test_harness.A.test_a) ... FAIL
----------------------------------------------------------------------
Ran 4 tests in 0.1s

FAILED (failures=1, errors=1, skipped=1)
LOG
bash scripts/test-parts.d/harness-unittests.sh "$TMP/unittest2.log" >"$TMP/hu2.out"
tally_part "$TMP/hu2.out"
expect_tally "harness: failures, errors and skips from 'FAILED (...)'" "1 2 1"

# The nested-KVM part turned off is a counted skip, never "0 passed, 0 failed".
VMLAB_TEST_NESTED=0 bash scripts/test-parts.d/kvm-nested.sh >"$TMP/nested.out"
tally_part "$TMP/nested.out"
expect_tally "kvm-nested with VMLAB_TEST_NESTED=0: one counted skip" "0 0 1" "VMLAB_TEST_NESTED=0"
finish
