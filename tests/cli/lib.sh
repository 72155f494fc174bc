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
