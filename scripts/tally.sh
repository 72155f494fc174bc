# Reading a test log's verdicts: passed, failed, skipped, and why each skip happened.
# Sourced by scripts/run-tests.sh (scripts/test-kvm.sh, which also runs inside the nested-KVM
# VM, applies the same rules to its own TAP); tests/cli/test_tally.sh feeds it made-up logs. Each tally_* function sets T_PASS T_FAIL T_SKIP and T_WHY (the distinct skip
# reasons joined with " | ") and returns 1 when the log holds no verdict at all.
#
# What counts as a skip, everywhere:
#  - Check suites: a "SKIP <test>: <reason>" line (tests/skip.h); Check itself counts that
#    test as passed, so it moves from passed to skipped.
#  - TAP: "ok N # SKIP reason" (one check) and "1..0 # SKIP reason" (a whole script: one).
#  - Parts (scripts/test-parts.d): ", K skipped" on their summary line, reasons on
#    "SKIP ..." or "... # SKIP ..." lines.

_tally_why() {   # stdin: one reason per line; prints the first 5 distinct ones joined by " | "
    sed -E 's/[[:space:]]+$//' | awk 'NF && !seen[$0]++ && ++n <= 5 { printf "%s%s", (n > 1 ? " | " : ""), $0 }'
}

tally_check() {   # LOG of a Check suite (CK_VERBOSITY normal or verbose)
    local line n f
    T_PASS=0 T_FAIL=0 T_SKIP=0 T_WHY=
    line=$(grep -aE '^[0-9]+%: Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+' "$1" | tail -1)
    [ -n "$line" ] || return 1
    n=$(sed -E 's/.*Checks: ([0-9]+).*/\1/' <<<"$line")
    f=$(sed -E 's/.*Failures: ([0-9]+), Errors: ([0-9]+).*/\1+\2/' <<<"$line")
    T_FAIL=$((f))
    T_SKIP=$(grep -acE '^SKIP [^ :]+: ' "$1")
    T_PASS=$((n - T_FAIL - T_SKIP))
    if [ "$T_PASS" -lt 0 ]; then   # more skip lines than tests: the log is not to be trusted
        T_FAIL=$((T_FAIL - T_PASS)); T_PASS=0
    fi
    T_WHY=$(grep -aE '^SKIP [^ :]+: ' "$1" | sed -E 's/^SKIP [^ :]+: //' | _tally_why)
    return 0
}

tally_tap() {   # LOG of a TAP producer (tests/cli/*.sh)
    T_PASS=$(grep -aE '^ok ' "$1" | grep -acviE '#[[:space:]]*skip')
    T_FAIL=$(grep -acE '^not ok ' "$1")
    T_SKIP=$(( $(grep -aE '^ok ' "$1" | grep -aciE '#[[:space:]]*skip') +
               $(grep -acE '^1\.\.0[[:space:]]*#[[:space:]]*[Ss][Kk][Ii][Pp]' "$1") ))
    T_WHY=$(grep -aE '^(ok .*|1\.\.0[[:space:]]*)#[[:space:]]*[Ss][Kk][Ii][Pp]' "$1" |
        sed -E 's/.*#[[:space:]]*[Ss][Kk][Ii][Pp][[:space:]:]*//' | _tally_why)
    [ $((T_PASS + T_FAIL + T_SKIP)) -gt 0 ]
}

tally_part() {   # LOG of a part: its last "[name: ]N passed, N failed[, K skipped]" line
    local line
    T_PASS=0 T_FAIL=0 T_SKIP=0 T_WHY=
    # (anything after the counts, such as the harness's "(5.6 s)", is ignored)
    line=$(grep -aE '^([A-Za-z-]+: )?[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?( .*)?$' "$1" | tail -1)
    [ -n "$line" ] || return 1
    T_PASS=$(sed -E 's/^([A-Za-z-]+: )?([0-9]+) passed.*/\2/' <<<"$line")
    T_FAIL=$(sed -E 's/^[^,]* passed, ([0-9]+) failed.*/\1/' <<<"$line")
    if [[ $line =~ ^[^,]*,[^,]*\ failed,\ ([0-9]+)\ skipped ]]; then
        T_SKIP=${BASH_REMATCH[1]}
    fi
    # A column-aligned "SKIP name backend   reason" line (the scenario harness): the reason is
    # what follows the last run of two or more spaces, so one reason covers many scenarios.
    T_WHY=$(grep -aE '^SKIP |#[[:space:]]*SKIP ' "$1" |
        sed -E 's/^SKIP //; s/.*#[[:space:]]*SKIP //; s/^.*[^ ]  +([^ ])/\1/' | _tally_why)
    return 0
}
