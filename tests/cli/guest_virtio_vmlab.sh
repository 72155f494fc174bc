#!/bin/bash
# Runs the virtio guest programs (blk, rng, console, idle, latency) on vmlab with its own
# virtio-blk, virtio-rng and virtio-console devices: the same ELFs that
# tests/cli/guest_virtio_qemu.sh proves against QEMU's devices, so a failure here points
# at vmlab. Checks exit statuses, serial output, the disk image and the console output file.
# env: BUILD (default build), VMLAB (default $BUILD/asan/vmlab).
cd "$(dirname "$0")/../.."
source tests/cli/lib.sh
G=$BUILD/guest
PY=/usr/bin/python3

need_built "$VMLAB"

# vrun PROG "GUEST ARGS" VMLAB-OPTION...: sets $out and $rc
vrun() {
    local prog=$1 args=$2
    shift 2
    # shellcheck disable=SC2086
    out=$(timeout 120 "$VMLAB" run "$@" "$G/$prog.elf" -- $args 2>&1)
    rc=$?
}


"$PY" - "$TMP/base.img" <<'EOF'
import struct, sys
with open(sys.argv[1], 'wb') as f:
    for s in range(8192):
        f.write(struct.pack('<Q', s) + bytes(((s * 31 + i) & 0xff) for i in range(504)))
EOF
SUM=$("$PY" - "$TMP/base.img" <<'EOF'
import sys
h = 0xcbf29ce484222325
for b in open(sys.argv[1], 'rb').read():
    h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
print('0x%016x' % h)
EOF
)
pattern_ok() {
    "$PY" - "$@" <<'EOF'
import sys
img, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
d = open(img, 'rb').read()
for s in range(first, first + count):
    if d[s * 512:(s + 1) * 512] != bytes(((s * 131 + i * 7 + 0x5a) & 0xff) for i in range(512)):
        sys.exit(1)
EOF
}

# --- blk ---
cp "$TMP/base.img" "$TMP/d.img"
vrun blk "" --block "$TMP/d.img,id=vmlab-disk0"
expect_output "blk: all ops, split ring, polled, found in the FDT" 1 \
    '^virtio: blk at 0xd0000000 irq 5 \(fdt\)$' \
    "^blk: capacity 8192 sectors, checksum $SUM\$" '^blk: id "vmlab-disk0"$' \
    '^blk: wrote and verified 8 sectors at 4096$' '^blk: flush ok$' '^blk: read past end -> IOERR$'
check "blk: the written pattern is in the image file" pattern_ok "$TMP/d.img" 4096 8

for args in "mode=irq" "indirect=1 event_idx=1" "mode=irq indirect=1 event_idx=1 depth=8" \
    "ring=packed" "ring=packed mode=irq" "ring=packed mode=irq indirect=1 event_idx=1 depth=8" \
    "ring=packed event_idx=1 qsize=5 depth=1" "mode=irq event_idx=1 qsize=8 depth=2" \
    "indirect=1 qsize=2 depth=2"; do
    cp "$TMP/base.img" "$TMP/d.img"
    vrun blk "ops=read,write,err $args" --block "$TMP/d.img"
    ring=split; mode=poll
    case " $args" in *" ring=packed"*) ring=packed ;; esac
    case " $args" in *" mode=irq"*) mode=irq ;; esac
    expect_output "blk: $args" 1 "^virtio: blk ring=$ring mode=$mode " \
        "^blk: capacity 8192 sectors, checksum $SUM\$" \
        '^blk: wrote and verified 8 sectors at 4096$' '^blk: read past end -> IOERR$'
done

cp "$TMP/base.img" "$TMP/ro.img"
vrun blk "ops=read,write,err" --block "$TMP/ro.img,ro"
expect_output "blk: read-only disk: reads work, a write gives IOERR" 1 \
    '^blk: disk of 8192 sectors, read-only$' "^blk: capacity 8192 sectors, checksum $SUM\$" \
    '^blk: write to read-only disk -> IOERR$'
check "blk: read-only image unchanged" cmp -s "$TMP/ro.img" "$TMP/base.img"

vrun blk "" --rng
expect_output "blk: no disk attached" 3 '^virtio: no virtio-blk device #0 found$'

# --- rng: deterministic for a given seed ---
vrun rng "n=64" --rng --seed 7
first=$out
expect_output "rng: 64 bytes" 1 '^rng: 64 bytes: [0-9a-f]{64}$' '^rng: [0-9a-f]{64}$' '^rng: done$'
vrun rng "n=64 ring=packed mode=irq event_idx=1" --rng --seed 7
if [ "$rc" = 1 ] && [ "$(grep '^rng: [0-9a-f ]*' <<<"$out" | sed 's/^rng: 64 bytes://')" = \
     "$(grep '^rng: [0-9a-f ]*' <<<"$first" | sed 's/^rng: 64 bytes://')" ]; then
    ok "rng: same seed, same bytes (split/poll vs packed/irq)"
else
    not_ok "rng: same seed, same bytes (split/poll vs packed/irq)"
    printf '%s\n---\n%s\n' "$first" "$out" | sed 's/^/#   /'
fi

vrun rng "n=64" --rng --seed 8
if [ "$rc" = 1 ] && [ "$(grep '^rng: ' <<<"$out")" != "$(grep '^rng: ' <<<"$first")" ]; then
    ok "rng: another seed, other bytes"
else
    not_ok "rng: another seed, other bytes (status $rc)"
fi

# --- console: scripted input ---
for args in "" "ring=packed mode=irq indirect=1 event_idx=1"; do
    vrun console "$args" --console "out=$TMP/con.out,in=hello from host\\nnot echoed\\n"
    expect_output "console: hello sent, a line received ($args)" 1 '^console: sent hello$' \
        '^console: received "hello from host"$'
    check "console: output file has the hello and the echo ($args)" \
        cmp -s "$TMP/con.out" <(printf 'console: hello via virtio\nhello from host\n')
done

# --- idle ---
cp "$TMP/base.img" "$TMP/d.img"
vrun idle "ticks=150" --block "$TMP/d.img"
expect_output "idle: 150 ticks, then exits" 1 '^idle: tick 100$' \
    '^idle: done, 150 ticks, each sector written and verified$'
check "idle: sector 149 holds tick number 149" "$PY" -c "
import struct, sys
d = open('$TMP/d.img', 'rb').read()
sys.exit(0 if d[149*512:150*512] == struct.pack('<Q', 149) * 64 else 1)"
vrun idle "ticks=120 mode=irq ring=packed" --block "$TMP/d.img"
expect_output "idle: irq mode, packed ring" 1 '^idle: done, 120 ticks'

# --- latency (short runs: the figures belong to benchmarks) ---
for op in getid read4k; do
    vrun latency "op=$op n=500" --block "$TMP/d.img"
    expect_output "latency: op=$op n=500 RESULT line" 1 "^RESULT op=$op n=500 .*median_t=[0-9]+ "
done

finish
