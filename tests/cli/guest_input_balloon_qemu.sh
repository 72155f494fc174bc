#!/bin/bash
# The input and balloon guest programs under QEMU microvm (TCG) with QEMU's
# virtio-keyboard-device, virtio-tablet-device and virtio-balloon-device (modern
# virtio-mmio): this proves the guest drivers against another VMM's devices, so that
# tests/cli/input_balloon.sh, which runs the same ELFs on vmlab, points at vmlab when it
# fails. Keys come from QEMU's monitor (sendkey), the balloon target from `balloon`.
# env: BUILD (default build) names the build directory holding guest/*.elf.
cd "$(dirname "$0")/../.."
source tests/cli/lib.sh
G=$BUILD/guest
PY=/usr/bin/python3

need_cmd qemu-system-x86_64 qemu-system-x86
need_built "$G/input.elf"
need_built "$G/balloon.elf"

# qstart "QEMU ARGS" PROG "GUEST CMDLINE": QEMU in the background, serial to $TMP/out,
# monitor on $TMP/mon; sets $qpid.
qstart() {
    rm -f "$TMP/out" "$TMP/mon"
    # shellcheck disable=SC2086
    timeout 120 qemu-system-x86_64 -M microvm,x-option-roms=off,pit=off,pic=off,rtc=off,isa-serial=on \
        -accel tcg -m 128 -nodefaults -no-user-config -nographic -serial "file:$TMP/out" \
        -monitor "unix:$TMP/mon,server=on,wait=off" -global virtio-mmio.force-legacy=false \
        -device isa-debug-exit,iobase=0xf4,iosize=4 $1 \
        -kernel "$G/$2.elf" -append "$3" </dev/null >"$TMP/qemu.log" 2>&1 &
    qpid=$!
}
# monitor COMMAND: one HMP command on the monitor socket.
monitor() {
    "$PY" -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
time.sleep(0.2)
s.sendall(sys.argv[2].encode() + b"\n")
time.sleep(0.3)
s.close()
' "$TMP/mon" "$1"
}

# Keyboard: identity, capabilities, and a key from the monitor arrives.
qstart "-device virtio-keyboard-device" input "n=4 leds=1"
wait_for 60 grep -qs "input: ready" "$TMP/out"
monitor "sendkey a"
wait "$qpid"; rc=$?
out=$(cat "$TMP/out")
expect_output "QEMU virtio-keyboard-device: name, EV_KEY, LED status, sendkey a" 1 \
    'name "QEMU Virtio Keyboard"' '^input: EV_KEY: ' '^input: EV_LED: 0x0 0x1 0x2' \
    'sent LED_CAPSL on' 'event 0 type=1 code=30 value=1 ' 'event 1 type=0 code=0 value=0 ' \
    'event 2 type=1 code=30 value=0 ' 'input: done'

# Tablet: absolute axes and their ranges (QEMU cannot script touches).
qstart "-device virtio-tablet-device" input "n=0"
wait "$qpid"; rc=$?
out=$(cat "$TMP/out")
expect_output "QEMU virtio-tablet-device: name, EV_ABS, ABS_INFO" 1 'name "QEMU Virtio Tablet"' \
    '^input: EV_ABS: 0x0 0x1 \(2\)$' '^input: abs 0x0 min 0 max 32767 ' '^input: done$'

# Balloon: QEMU's `balloon 112` on a 128 MiB guest asks for 16 MiB (4096 pages).
qstart "-device virtio-balloon-device,deflate-on-oom=on" balloon "rounds=1"
wait_for 60 grep -qs "deflate_on_oom=1" "$TMP/out"
monitor "balloon 112"
wait "$qpid"; rc=$?
out=$(cat "$TMP/out")
expect_output "QEMU virtio-balloon-device: inflate to 4096 pages, pages read zero" 1 \
    'features stats_vq=1 deflate_on_oom=1' 'target 4096 pages, actual 4096' \
    '4096 of 4096 inflated pages read zero' 'balloon: done'
finish
