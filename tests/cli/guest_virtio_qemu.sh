#!/bin/bash
# Runs the virtio guest programs (blk, latency, rng, console, idle) under QEMU microvm (TCG)
# with their devices and checks exit statuses, serial output and what landed on the host
# side (disk image contents, console output file). This proves the guest driver library
# against QEMU's devices; vmlab's devices are checked with the same ELFs elsewhere.
# env: BUILD (default build) names the build directory holding guest/*.elf.
cd "$(dirname "$0")/../.."
source tests/cli/lib.sh
G=$BUILD/guest
PY=/usr/bin/python3

need_cmd qemu-system-x86_64 qemu-system-x86

# qrun MACHINE_EXTRA "QEMU ARGS" PROG "GUEST CMDLINE": sets $out and $rc.
# MACHINE_EXTRA is appended to -M microvm,... (e.g. ",acpi=off"). rt_exit(v) gives (v<<1)|1.
qrun() {
    local mext=$1 qargs=$2 prog=$3 append=$4
    # shellcheck disable=SC2086
    out=$(timeout 60 qemu-system-x86_64 \
        -M microvm,x-option-roms=off,pit=off,pic=off,rtc=off,isa-serial=on$mext \
        -accel tcg -m 128 -nodefaults -no-user-config -nographic -serial stdio \
        -device isa-debug-exit,iobase=0xf4,iosize=4 $qargs \
        -kernel "$G/$prog.elf" -append "$append" </dev/null 2>&1)
    rc=$?
}


for p in blk latency rng console idle; do
    if [ -r "$G/$p.elf" ]; then ok "$p.elf built"; else not_ok "$p.elf built ($G/$p.elf missing)"; fi
done

# A 4 MiB disk: sector s starts with s (u64 LE), then bytes (s*31+i)&0xff.
mkdisk() {
    "$PY" - "$1" <<'EOF'
import struct, sys
with open(sys.argv[1], 'wb') as f:
    for s in range(8192):
        f.write(struct.pack('<Q', s) + bytes(((s * 31 + i) & 0xff) for i in range(504)))
EOF
}
fnv() {
    "$PY" - "$1" <<'EOF'
import sys
h = 0xcbf29ce484222325
for b in open(sys.argv[1], 'rb').read():
    h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
print('0x%016x' % h)
EOF
}
# pattern_ok IMG FIRST COUNT: the sectors hold blk's write pattern
pattern_ok() {
    "$PY" - "$@" <<'EOF'
import sys
img, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
d = open(img, 'rb').read()
for s in range(first, first + count):
    want = bytes(((s * 131 + i * 7 + 0x5a) & 0xff) for i in range(512))
    if d[s * 512:(s + 1) * 512] != want:
        sys.exit(1)
EOF
}

mkdisk "$TMP/base.img"
SUM=$(fnv "$TMP/base.img")
MODERN="-global virtio-mmio.force-legacy=false"
blkdev() { echo "-drive id=d0,file=$1,format=raw,if=none${2:-} -device virtio-blk-device,drive=d0,serial=vmlab-disk0${3:-}"; }

# --- blk: everything, default ring, device found by scanning (ACPI on) ---
cp "$TMP/base.img" "$TMP/d.img"
qrun "" "$MODERN $(blkdev "$TMP/d.img")" blk ""
expect_output "blk: all ops, split ring, polled, found by scan" 1 \
    '^virtio: blk at 0xfeb02e00 irq 47 \(scan\)$' \
    '^virtio: blk ring=split mode=poll indirect=0 event_idx=0 qsize=128$' \
    "^blk: capacity 8192 sectors, checksum $SUM\$" \
    '^blk: id "vmlab-disk0"$' \
    '^blk: wrote and verified 8 sectors at 4096$' \
    '^blk: flush ok$' '^blk: read past end -> IOERR$'
check "blk: the written pattern is in the image file" pattern_ok "$TMP/d.img" 4096 8
check "blk: sectors outside the written range are unchanged" \
    cmp -s <(head -c $((4096 * 512)) "$TMP/d.img") <(head -c $((4096 * 512)) "$TMP/base.img")

# --- blk: ring/mode matrix (acpi=off: devices come from virtio_mmio.device= words) ---
matrix=(
    ",acpi=off||split poll 0 0|"
    ",acpi=off||split irq 0 0|mode=irq"
    ",acpi=off||split poll 1 1|indirect=1 event_idx=1"
    ",acpi=off||split irq 1 1|mode=irq indirect=1 event_idx=1 depth=8"
    ",acpi=off|,packed=on|packed poll 0 0|ring=packed"
    ",acpi=off|,packed=on|packed irq 0 0|ring=packed mode=irq"
    ",acpi=off|,packed=on|packed irq 1 1|ring=packed mode=irq indirect=1 event_idx=1 depth=8"
    ",acpi=off|,packed=on|packed poll 0 1|ring=packed event_idx=1 qsize=5 depth=1"
    ",acpi=off|,packed=on|packed irq 0 1|ring=packed mode=irq event_idx=1 qsize=7 depth=2"
    ",acpi=off||split irq 0 1|mode=irq event_idx=1 qsize=8 depth=2"
    "||split poll 1 0|indirect=1 qsize=2 depth=2"
)
for m in "${matrix[@]}"; do
    IFS='|' read -r mext devopt want args <<<"$m"
    read -r ring mode ind eidx <<<"$want"
    cp "$TMP/base.img" "$TMP/d.img"
    qrun "$mext" "$MODERN $(blkdev "$TMP/d.img" "" "$devopt")" blk "ops=read,write,err $args"
    expect_output "blk: ring=$ring mode=$mode indirect=$ind event_idx=$eidx ($args)" 1 \
        "^virtio: blk ring=$ring mode=$mode indirect=$ind event_idx=$eidx " \
        "^blk: capacity 8192 sectors, checksum $SUM\$" \
        '^blk: wrote and verified 8 sectors at 4096$' '^blk: read past end -> IOERR$'
done
cp "$TMP/base.img" "$TMP/d.img"
qrun ",acpi=off" "$MODERN $(blkdev "$TMP/d.img")" blk "ops=read,write,err mode=irq"
expect_output "blk: irq mode found the device on the cmdline" 1 \
    '^virtio: blk at 0xfeb00e00 irq 12 \(cmdline\)$' '^blk: done \(.* [1-9][0-9]* interrupts\)$'

# --- blk: read-only disk, options the device lacks, bad options, legacy transport ---
cp "$TMP/base.img" "$TMP/ro.img"
qrun "" "$MODERN $(blkdev "$TMP/ro.img" ",readonly=on")" blk "ops=read,write,err"
expect_output "blk: read-only disk: reads work, a write gives IOERR" 1 \
    '^blk: disk of 8192 sectors, read-only$' "^blk: capacity 8192 sectors, checksum $SUM\$" \
    '^blk: write to read-only disk -> IOERR$'
check "blk: read-only image unchanged" cmp -s "$TMP/ro.img" "$TMP/base.img"

qrun "" "$MODERN $(blkdev "$TMP/d.img")" blk "ops=getid ring=packed"
expect_output "blk: ring=packed on a device without it falls back to split" 1 \
    '^virtio: ring=packed not offered by the device, not using it$' \
    '^virtio: blk ring=split ' '^blk: id "vmlab-disk0"$'

qrun "" "$MODERN $(blkdev "$TMP/d.img")" blk "ops=getid,err mode=irq"
expect_output "blk: irq mode with ACPI on: GSI 47 on QEMU's second IOAPIC" 1 \
    '^virtio: blk at 0xfeb02e00 irq 47 \(scan\)$' '^blk: read past end -> IOERR$' \
    '^blk: done \(.* [1-9][0-9]* interrupts\)$'

qrun "" "$MODERN $(blkdev "$TMP/d.img")" blk "ring=circular"
expect_output "blk: bad ring= is rejected by name" 5 '^virtio: bad ring=circular \(want split or packed\)$'

qrun "" "$MODERN $(blkdev "$TMP/d.img")" blk "wcount=3"
expect_output "blk: odd wcount= is rejected by name" 5 '^blk: bad wcount=3 \(even, 2..64\)$'

qrun "" "$(blkdev "$TMP/d.img")" blk ""
expect_output "blk: legacy (version 1) transport is refused with a hint" 3 \
    'is virtio-mmio version 1; this driver needs 2 \(QEMU: -global virtio-mmio.force-legacy=false\)$'

qrun "" "$MODERN" blk ""
expect_output "blk: no disk attached" 3 '^virtio: no virtio-blk device #0 found$'

# --- latency ---
for op in read4k getid; do
    qrun "" "$MODERN $(blkdev "$TMP/d.img")" latency "op=$op n=300 tsc_khz=2000000"
    expect_output "latency: op=$op prints a RESULT line in ns and ticks" 1 \
        "^RESULT op=$op n=300 min_ns=[0-9]+ median_ns=[0-9]+ p90_ns=[0-9]+ p99_ns=[0-9]+ max_ns=[0-9]+ min_t=[0-9]+ median_t=[0-9]+ p90_t=[0-9]+ p99_t=[0-9]+ max_t=[0-9]+ ring=split indirect=0 event_idx=0 req_per_s=[0-9]+\$"
done
qrun "" "$MODERN $(blkdev "$TMP/d.img" "" ",packed=on")" latency "op=read512 n=100 ring=packed"
expect_output "latency: packed ring, TSC rate unknown: ticks only" 1 \
    '^RESULT op=read512 n=100 min_t=[0-9]+ median_t=[0-9]+ p90_t=[0-9]+ p99_t=[0-9]+ max_t=[0-9]+ ring=packed indirect=0 event_idx=0$'
qrun "" "$MODERN $(blkdev "$TMP/d.img")" latency "op=write"
expect_output "latency: bad op= is rejected" 5 '^latency: bad op=write '

# --- rng ---
qrun "" "$MODERN -device virtio-rng-device" rng "n=64"
expect_output "rng: 64 bytes as two hex lines" 1 '^rng: 64 bytes: [0-9a-f]{64}$' '^rng: [0-9a-f]{64}$' '^rng: done$'
qrun ",acpi=off" "$MODERN -device virtio-rng-device,packed=on" rng "n=40 ring=packed mode=irq event_idx=1"
expect_output "rng: packed ring, irq mode" 1 '^virtio: rng ring=packed mode=irq ' '^rng: 40 bytes: [0-9a-f]{64}$' '^rng: [0-9a-f]{16}$'

# --- console: scripted input through a pipe chardev backed by plain files ---
con_run() {  # MACHINE_EXTRA DEVOPT CMDLINE
    printf 'hello from host\nnot echoed\n' >"$TMP/p.in"
    : >"$TMP/p.out"
    qrun "$1" "$MODERN -device virtio-serial-device$2 -chardev pipe,id=c0,path=$TMP/p \
        -device virtconsole,chardev=c0" console "$3"
}
con_run "" "" ""
expect_output "console: hello sent, a line received" 1 '^console: sent hello$' '^console: received "hello from host"$'
check "console: host got the hello and the echo" \
    cmp -s "$TMP/p.out" <(printf 'console: hello via virtio\nhello from host\n')
con_run ",acpi=off" ",packed=on" "ring=packed mode=irq indirect=1 event_idx=1"
expect_output "console: packed ring, irq mode" 1 '^virtio: console ring=packed mode=irq ' \
    '^console: received "hello from host"$'
check "console: host got the hello and the echo (packed, irq)" \
    cmp -s "$TMP/p.out" <(printf 'console: hello via virtio\nhello from host\n')

# --- idle: timer ticks, one sector written and read back per tick ---
cp "$TMP/base.img" "$TMP/d.img"
qrun "" "$MODERN $(blkdev "$TMP/d.img")" idle "ticks=150"
expect_output "idle: 150 ticks, then exits" 1 '^idle: tick 100$' '^idle: done, 150 ticks, each sector written and verified$'
check "idle: sector 149 holds tick number 149" "$PY" -c "
import struct, sys
d = open('$TMP/d.img', 'rb').read()
sys.exit(0 if d[149*512:150*512] == struct.pack('<Q', 149) * 64 else 1)"
cp "$TMP/base.img" "$TMP/d.img"
qrun ",acpi=off" "$MODERN $(blkdev "$TMP/d.img")" idle "ticks=120 mode=irq"
expect_output "idle: irq-mode disk between timer ticks" 1 '^idle: tick 100$' '^idle: done, 120 ticks'

finish
