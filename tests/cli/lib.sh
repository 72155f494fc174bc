# Shared helpers for tests/cli/*.sh: TAP output and common paths.
# Usage: source "$(dirname "$0")/lib.sh"; then ok/not_ok/check, and finish at the end.
set -u
BUILD=${BUILD:-build}
VMLAB=${VMLAB:-$BUILD/asan/vmlab}
GUESTS=${GUESTS:-$BUILD/guest}
_tap_n=0
_tap_failed=0
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

ok() { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n - $*"; }
not_ok() { _tap_n=$((_tap_n + 1)); _tap_failed=$((_tap_failed + 1)); echo "not ok $_tap_n - $*"; }
# check "description" command...: ok when the command exits 0
check() { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
# skip REASON: one check that cannot run here, a TAP skip that scripts/run-tests.sh counts
# as skipped (never as passed) and names with its reason.
skip() { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n # SKIP $*"; }
# skip_all REASON: the whole script cannot run here (counted as one skip); exits.
skip_all() { echo "1..0 # SKIP $*"; exit 0; }
# need_cmd CMD PACKAGE: a command `make deps` installs; missing, it is a failure, not a skip.
need_cmd() {
    command -v "$1" >/dev/null && return 0
    not_ok "$1 not found: package $2 is missing (make deps installs it)"
    finish; exit 1
}
# need_built FILE: something `make test` builds; missing, it is a failure, not a skip.
need_built() {
    [ -x "$1" ] && return 0
    not_ok "$1 not built (make test builds it)"
    finish; exit 1
}
finish() { echo "1..$_tap_n"; [ "$_tap_failed" -eq 0 ]; }

# expect_error DESC WANT-SUBSTRING ARGS...: `vmlab run ARGS` exits 2 with one "vmlab: ..."
# line containing WANT (bad input: a clear error, nothing run).
expect_error() {
    local desc=$1 want=$2; shift 2
    local out rc
    out=$("$VMLAB" run "$@" 2>&1 >/dev/null); rc=$?
    if [ $rc -eq 2 ] && [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] && [[ "$out" == "vmlab: "*"$want"* ]]; then
        ok "$desc"
    else
        not_ok "$desc (exit $rc, stderr: $out)"
    fi
}

# events_of TRACE [FILTER-ERE]: the trace's events, one per line, without event numbers and
# time stamps, less the lines FILTER matches. Fails when `vmlab trace dump` fails.
events_of() {
    local out
    out=$("$VMLAB" trace dump --no-header "$1" 2>/dev/null) || return 1
    out=$(sed -E 's/^#[0-9]+ [0-9]+ns //' <<<"$out")
    [ -n "${2:-}" ] && out=$(grep -vE "$2" <<<"$out")
    printf '%s\n' "$out" | grep -v '^$'
    return 0
}

# same_events A B MIN [FILTER]: both traces dump, each has at least MIN events (after the
# filter), and their events are equal, time stamps aside. On failure, says why on stdout.
same_events() {
    local a b na nb
    a=$(events_of "$1" "${4:-}") || { echo "cannot dump $1"; return 1; }
    b=$(events_of "$2" "${4:-}") || { echo "cannot dump $2"; return 1; }
    na=$(grep -c . <<<"$a"); nb=$(grep -c . <<<"$b")
    if [ "$na" -lt "$3" ] || [ "$nb" -lt "$3" ]; then
        echo "too few events to compare: $na and $nb (at least $3 wanted)"; return 1
    fi
    [ "$a" = "$b" ] && return 0
    echo "events differ:"; diff <(printf '%s\n' "$a") <(printf '%s\n' "$b") | head -6
    return 1
}

# events_differ A B: both traces dump with events, and their events (with times) differ.
events_differ() {
    local a b
    a=$("$VMLAB" trace dump --no-header "$1" 2>/dev/null) && [ -n "$a" ] || { echo "cannot dump $1, or no events"; return 1; }
    b=$("$VMLAB" trace dump --no-header "$2" 2>/dev/null) && [ -n "$b" ] || { echo "cannot dump $2, or no events"; return 1; }
    [ "$a" != "$b" ] && return 0
    echo "same events"; return 1
}
