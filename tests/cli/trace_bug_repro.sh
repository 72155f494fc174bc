#!/usr/bin/env bash
# A device bug caught in a trace reproduces on replay without any CPU: record with a build
# whose UART has a deliberate bug (every 16th LSR read says "busy"), then replay the trace
# with that build (it matches: the bug is reproduced) and with the correct build (replay
# reports the divergence at the first buggy read).
source "$(dirname "$0")/lib.sh"
BUG=$(realpath -m "$BUILD/testbug/vmlab")
VMLAB=$(realpath "$VMLAB")
GUESTS=$(realpath "$GUESTS")

check "test-only buggy build exists" test -x "$BUG"
(cd "$TMP" && "$BUG" run --serial none --trace bug.trace "$GUESTS/hello.elf" >/dev/null 2>&1)
check "a run of the buggy build recorded a trace" test -s "$TMP/bug.trace"
out=$("$BUG" trace replay "$TMP/bug.trace" 2>&1); rc=$?
check "replay with the buggy device matches the trace (bug reproduced)" test $rc -eq 0
out=$("$VMLAB" trace replay "$TMP/bug.trace" 2>&1); rc=$?
if [ $rc -eq 1 ] && grep -qiE 'diverge|differ|mismatch' <<<"$out"; then
    ok "replay with the fixed device diverges, naming the event"
else
    not_ok "replay with the fixed device: exit $rc: $(head -3 <<<"$out")"
fi
ev=$(grep -oE '#[0-9]+|event [0-9]+' <<<"$out" | head -1)
check "the divergence names an event number ($ev)" test -n "$ev"
(cd "$TMP" && "$VMLAB" run --serial none --trace good.trace "$GUESTS/hello.elf" >/dev/null 2>&1)
out=$("$BUG" trace replay "$TMP/good.trace" 2>&1); rc=$?
check "and the buggy device diverges from a correct run's trace" test $rc -eq 1
finish
