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
# skip with a visible reason (counted neither as pass nor fail)
skip() { echo "# SKIP $*"; }
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
