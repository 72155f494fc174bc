#!/bin/bash
# Boot a guest program under QEMU microvm (TCG), the peer VMM vmlab is compared against.
# usage: guest/qemu-run.sh PROG.elf [guest args...]
#   Prints the guest's serial output on stdout; exits with QEMU's status, which for a guest
#   that calls rt_exit(v) is (v<<1)|1. Status 124 means the 60 s timeout hit.
# env: QEMU_EXTRA (extra QEMU arguments, word-split), QEMU_TIMEOUT (seconds, default 60),
#      QEMU_ACCEL (default tcg; kvm for a hardware-virtualized peer run)
set -u
if [ $# -lt 1 ]; then
    echo "usage: $0 PROG.elf [guest args...]" >&2
    exit 2
fi
prog=$1
shift
if [ ! -r "$prog" ]; then
    echo "qemu-run: cannot read $prog" >&2
    exit 2
fi
# shellcheck disable=SC2086
exec timeout "${QEMU_TIMEOUT:-60}" qemu-system-x86_64 \
    -M microvm,x-option-roms=off,pit=off,pic=off,rtc=off,isa-serial=on \
    -accel "${QEMU_ACCEL:-tcg}" -m 128 -nodefaults -no-user-config -nographic -serial stdio \
    -device isa-debug-exit,iobase=0xf4,iosize=4 \
    ${QEMU_EXTRA:-} -kernel "$prog" -append "$*" </dev/null
