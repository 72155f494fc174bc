#!/bin/bash
# Runs one guest program on vmlab and on QEMU microvm and compares serial output and status.
# usage: guest/peer-check.sh PROG.elf [guest args...]
# env: VMLAB (default $BUILD/vmlab, BUILD default build), VMLAB_ARGS (extra `vmlab run` options,
#      word-split), QEMU_EXTRA (passed on to qemu-run.sh).
# Exit 0 when both agree, 1 when they differ (a diff is printed), 2 on usage errors.
set -u
if [ $# -lt 1 ]; then
    echo "usage: $0 PROG.elf [guest args...]" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
BUILD=${BUILD:-build}
vmlab=${VMLAB:-$BUILD/vmlab}
prog=$1
shift
if [ ! -x "$vmlab" ]; then
    echo "peer-check: $vmlab not built" >&2
    exit 2
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# shellcheck disable=SC2086
timeout "${QEMU_TIMEOUT:-60}" "$vmlab" run ${VMLAB_ARGS:-} "$prog" -- "$@" >"$tmp/vmlab.out" 2>"$tmp/vmlab.err" </dev/null
vrc=$?
"$here/qemu-run.sh" "$prog" "$@" >"$tmp/qemu.out" 2>"$tmp/qemu.err"
qrc=$?
if [ "$vrc" = "$qrc" ] && cmp -s "$tmp/vmlab.out" "$tmp/qemu.out"; then
    echo "same: status $vrc, $(wc -l <"$tmp/vmlab.out") lines"
    exit 0
fi
echo "DIFFERENT: vmlab status $vrc, qemu status $qrc"
diff -u --label vmlab --label qemu "$tmp/vmlab.out" "$tmp/qemu.out"
if [ -s "$tmp/vmlab.err" ]; then
    sed 's/^/vmlab stderr: /' "$tmp/vmlab.err"
fi
exit 1
