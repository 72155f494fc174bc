#!/usr/bin/env bash
# A trace of a run with file-backed disks is a whole bug report: it carries the content of
# every sector the run read before writing it, so `vmlab trace replay` needs no image, from
# any folder, after the image changed or was deleted (raw, read-only, qcow2, composite with
# a read-only partition). The same run in two folders gives byte-identical traces.
# `--disk NAME=IMAGE` replays against an image and says when it differs from what the
# trace saw; a damaged disk content chunk is a clear error (exit 2).
source "$(dirname "$0")/lib.sh"

case $VMLAB in /*) V=$VMLAB ;; *) V=$PWD/$VMLAB ;; esac
case $GUESTS in /*) G=$GUESTS ;; *) G=$PWD/$GUESTS ;; esac

# A 64 KiB image with a known pattern (every sector differs).
make_image() {
    /usr/bin/python3 -c "import sys; sys.stdout.buffer.write(bytes((i * 13 + (i >> 9) * 7) & 0xff for i in range($2)))" > "$1"
}
replays_clean() {   # DESC DIR TRACE [ARGS...]: replay in DIR matches
    local desc=$1 dir=$2 t=$3 out rc; shift 3
    out=$(cd "$dir" && "$V" trace replay "$@" "$t" 2>&1); rc=$?
    if [ $rc -eq 0 ] && grep -q '^replay: match' <<<"$out" && ! grep -q 'differs' <<<"$out"; then
        ok "$desc"
    else
        not_ok "$desc (exit $rc): $(head -c 1500 <<<"$out")"
    fi
}

mkdir -p "$TMP/one/img" "$TMP/two/img" "$TMP/elsewhere"
make_image "$TMP/pristine.img" 65536
cp "$TMP/pristine.img" "$TMP/one/img/disk.img"
cp "$TMP/pristine.img" "$TMP/two/img/disk.img"
for d in one two; do
    (cd "$TMP/$d" && "$V" run --quiet --serial out.txt --seed 5 --block img/disk.img,id=d0 \
        --trace run.vtr "$G/blk.elf" -- mode=irq >/dev/null 2>&1)
done

# --- the done-when case -------------------------------------------------------------------
check "the guest wrote its disk (the image changed)" bash -c "! cmp -s '$TMP/one/img/disk.img' '$TMP/pristine.img'"
check "the guest verified its write ($(grep -o 'wrote and verified.*' "$TMP/one/out.txt"))" \
    grep -q 'blk: wrote and verified' "$TMP/one/out.txt"
check "the same run in two folders gives byte-identical traces" cmp -s "$TMP/one/run.vtr" "$TMP/two/run.vtr"
rm -f "$TMP/one/img/disk.img" "$TMP/two/img/disk.img"
replays_clean "replay from another folder after the image was deleted: match" "$TMP/elsewhere" ../one/run.vtr
make_image "$TMP/one/img/disk.img" 4096
replays_clean "replay where an unrelated file now has the image's name: match" "$TMP/one" run.vtr
info=$("$V" trace info "$TMP/one/run.vtr")
n=$(sed -nE 's/^  device 2: ([0-9]+) sector bytes recorded$/\1/p' <<<"$info")
check "trace info shows the recorded disk content ($n bytes for device 2)" test "${n:-0}" -gt 0
check "no host path in the trace" bash -c "! grep -qa '$TMP' '$TMP/one/run.vtr'"

# Absolute paths (disk and serial file) in two folders: the trace keeps file names only.
for d in one two; do
    cp "$TMP/pristine.img" "$TMP/$d/img/abs.img"
    (cd "$TMP/$d" && "$V" run --quiet --serial "$TMP/$d/abs.txt" --seed 5 \
        --block "$TMP/$d/img/abs.img,id=d0" --trace abs.vtr "$G/blk.elf" -- mode=irq >/dev/null 2>&1)
done
check "absolute paths in two folders: byte-identical traces, no folder in them" \
    bash -c "cmp -s '$TMP/one/abs.vtr' '$TMP/two/abs.vtr' && ! grep -qa '$TMP' '$TMP/one/abs.vtr'"
check "trace info shows the file names" bash -c "'$V' trace info '$TMP/one/abs.vtr' | grep -q 'args \"path=abs.img,id=d0\"'"

# Minimize keeps all the disk content in every candidate and in the result.
check_cmd="[ \$('$V' trace dump --no-header --kind irq \"\$TRACE\" | wc -l) -gt 0 ] && exit 1; exit 0"
"$V" trace minimize "$TMP/one/run.vtr" --check "$check_cmd" -o "$TMP/min.vtr" 2>/dev/null
m=$("$V" trace info "$TMP/min.vtr" 2>/dev/null | sed -nE 's/^  device 2: ([0-9]+) sector bytes recorded$/\1/p')
check "minimize keeps the disk content (${m:-none} of $n bytes)" test "${m:-0}" -eq "$n"

# --- --disk NAME=IMAGE --------------------------------------------------------------------
replays_clean "--disk d0=IMAGE with the pre-run image: match, nothing said" "$TMP/elsewhere" \
    ../one/run.vtr --disk "d0=$TMP/pristine.img"
cp "$TMP/pristine.img" "$TMP/changed.img"
printf '\xee' | dd of="$TMP/changed.img" bs=1 seek=$((5 * 512 + 17)) conv=notrunc status=none
out=$("$V" trace replay --disk "2=$TMP/changed.img" "$TMP/one/run.vtr" 2>&1); rc=$?
line="replay: disk image $TMP/changed.img for virtio-blk#2(d0) differs from what the trace saw: 1 of the 128 sectors the trace recorded differ, the first at sector 5"
if [ $rc -eq 1 ] && [ "$(grep -c 'differs' <<<"$out")" -eq 1 ] && grep -qF "$line" <<<"$out" &&
   grep -q '^replay: divergence at event' <<<"$out"; then
    ok "--disk with a changed image: one line naming the sector, then the divergence (exit 1)"
else
    not_ok "--disk with a changed image (exit $rc): $(head -c 1500 <<<"$out")"
fi
check "replay left the image it was given unchanged" bash -c "cmp -s '$TMP/pristine.img' <(cat '$TMP/pristine.img') && [ \$(cmp '$TMP/changed.img' '$TMP/pristine.img' | wc -l) -eq 1 ]"
make_image "$TMP/short.img" 32768
out=$("$V" trace replay --disk "d0=$TMP/short.img" "$TMP/one/run.vtr" 2>&1)
check "--disk with an image of another size says so" grep -q "differs from what the trace saw: its size is 32768 bytes, the trace saw 65536" <<<"$out"
out=$("$V" trace replay --disk "debug-exit=$TMP/short.img" "$TMP/one/run.vtr" 2>&1); rc=$?
check "--disk on a device without a disk file: exit 2" test $rc -eq 2 -a -n "$(grep 'has no disk file' <<<"$out")"
out=$("$V" trace replay --disk "nope=$TMP/short.img" "$TMP/one/run.vtr" 2>&1); rc=$?
check "--disk naming no device: exit 2" test $rc -eq 2 -a -n "$(grep 'no such device' <<<"$out")"

# --- read-only, qcow2 and composite disks -------------------------------------------------
mkdir -p "$TMP/ro" "$TMP/q" "$TMP/c"
cp "$TMP/pristine.img" "$TMP/ro/disk.img"
(cd "$TMP/ro" && "$V" run --quiet --serial none --block disk.img,ro --trace ro.vtr "$G/blk.elf" >/dev/null 2>&1)
rm "$TMP/ro/disk.img"
replays_clean "read-only disk: replay without the image matches" "$TMP/elsewhere" ../ro/ro.vtr

"$V" disk create-qcow2 "$TMP/q/disk.qcow2" --size 256K >/dev/null
(cd "$TMP/q" && "$V" run --quiet --serial none --block disk.qcow2 --trace q.vtr "$G/blk.elf" \
    -- ops=write wsector=100 wcount=4 >/dev/null 2>&1)
rm "$TMP/q/disk.qcow2"
replays_clean "qcow2 disk written by the guest: replay without the image matches" "$TMP/elsewhere" ../q/q.vtr

make_image "$TMP/c/boot.img" 65536
make_image "$TMP/c/data.img" 65536
(cd "$TMP/c" && "$V" disk create-composite disk.composite --label tr --partition boot:boot.img \
    --partition data:data.img:writable >/dev/null 2>&1)
boot=$("$V" disk info "$TMP/c/disk.composite" 2>/dev/null | sed -nE 's/^ +[0-9]+: boot lba ([0-9]+)-[0-9]+ .*/\1/p')
(cd "$TMP/c" && "$V" run --quiet --serial out.txt --block disk.composite --trace c.vtr "$G/blk.elf" \
    -- ops=write wsector="${boot:-40}" wcount=2 >/dev/null 2>&1)
check "composite: the write into the read-only partition failed in the run (status IOERR)" grep -q "blk.status.*(0x1 != 0x0)" "$TMP/c/out.txt"
rm -f "$TMP/c/"*.img "$TMP/c/disk.composite"
replays_clean "composite disk with a refused write: replay without any file matches" "$TMP/elsewhere" ../c/c.vtr

# On KVM (host clock, several threads) the disk content is recorded the same way.
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    mkdir -p "$TMP/kvm"; cp "$TMP/pristine.img" "$TMP/kvm/disk.img"
    (cd "$TMP/kvm" && "$V" run --cpu kvm --quiet --serial none --block disk.img --trace k.vtr \
        "$G/blk.elf" -- mode=irq >/dev/null 2>&1)
    rm -f "$TMP/kvm/disk.img"
    replays_clean "kvm run on a file disk: replay without the image matches" "$TMP/elsewhere" ../kvm/k.vtr
else
    skip "no usable /dev/kvm: kvm recording of a file disk not tested"
fi

# The recording wrapper every file disk now has changes nothing else: such a VM snapshots.
mkdir -p "$TMP/snap"; cp "$TMP/pristine.img" "$TMP/snap/disk.img"
out=$(cd "$TMP/snap" && "$V" run --serial none --block disk.img \
    --at '2000000:{"cmd":"snapshot","op":"take","path":"s.bin"}' "$G/idle.elf" -- ticks=5 2>&1)
check "a VM with a file-backed disk takes a snapshot" test -s "$TMP/snap/s.bin" -a -z "$(grep -i 'cannot be snapshotted' <<<"$out")"

# --- damaged disk content -----------------------------------------------------------------
# Chunk offsets and kinds (TCHK events, TDSK disk content) of a trace.
chunks() {
    /usr/bin/python3 - "$1" <<'PY'
import struct, sys
b = open(sys.argv[1], 'rb').read()
pos = 16 + struct.unpack_from('<I', b, 12)[0] + 4
i = 0
while pos < len(b):
    magic, plen = b[pos:pos + 4].decode(), struct.unpack_from('<I', b, pos + 4)[0]
    print(i, pos, magic, plen)
    pos += 32 + plen; i += 1
PY
}
read -r didx doff _ dlen < <(chunks "$TMP/one/run.vtr" | awk '$3 == "TDSK"' | head -1)
cp "$TMP/one/run.vtr" "$TMP/flip.vtr"
printf '\x5a' | dd of="$TMP/flip.vtr" bs=1 seek=$((doff + 32 + dlen / 2)) conv=notrunc status=none
out=$("$V" trace replay "$TMP/flip.vtr" 2>&1); rc=$?
check "flipped byte in the disk content: exit 2, 'disk content chunk $didx at offset $doff: CRC mismatch'" \
    test $rc -eq 2 -a -n "$(grep -F "disk content chunk $didx at offset $doff: CRC mismatch" <<<"$out")"
head -c $((doff + 32 + dlen / 2)) "$TMP/one/run.vtr" > "$TMP/cut.vtr"
out=$("$V" trace replay "$TMP/cut.vtr" 2>&1); rc=$?
check "trace cut inside the disk content: exit 2, 'disk content chunk $didx ... truncated'" \
    test $rc -eq 2 -a -n "$(grep -F "disk content chunk $didx at offset $doff: truncated" <<<"$out")"
# A sector record moved to the disk's last sector (CRC made right): it overlaps another
# record or runs past the end; refused before anything is replayed.
/usr/bin/python3 - "$TMP/one/run.vtr" "$TMP/far.vtr" "$doff" <<'PY'
import struct, sys, zlib
b = bytearray(open(sys.argv[1], 'rb').read()); off = int(sys.argv[3])
plen = struct.unpack_from('<I', b, off + 4)[0]
p = off + 32
def varint(p):
    v = s = 0
    while True:
        x = b[p]; p += 1; v |= (x & 0x7f) << s; s += 7
        if x < 0x80: return v, p
while b[p] != 2:          # skip to the first sectors record (kind 2)
    k = b[p]; p += 1; _, p = varint(p); _, p = varint(p)
    if k == 1: p += 1
    else: p += 1; _, p = varint(p)
assert b[p + 1] == 2 and b[p + 2] < 0x80   # device 2, a one-byte sector number
b[p + 2] = 0x7f                             # sector 127 of a 128-sector disk
crc = zlib.crc32(bytes(b[off + 4:off + 12]) + bytes(b[off + 16:off + 32 + plen]))
struct.pack_into('<I', b, off + 12, crc)
open(sys.argv[2], 'wb').write(b)
PY
out=$("$V" trace replay "$TMP/far.vtr" 2>&1); rc=$?
check "sector content moved past its place: exit 2 naming the record" \
    test $rc -eq 2 -a -n "$(grep -E '^vmlab: trace replay: disk content of device 2: [0-9]+ bytes at sector [0-9]+ (overlap the next record|lie beyond the end of the disk)' <<<"$out")"

# --- version 1 traces ---------------------------------------------------------------------
# A version 1 trace has no disk content: it still replays against the image at its path
# (made here from the current trace: the header in version 1 form, without the device
# windows of version 3, and the event chunks only).
/usr/bin/python3 - "$TMP/one/run.vtr" "$TMP/v1.vtr" <<'PY'
import struct, sys, zlib
b = bytearray(open(sys.argv[1], 'rb').read())
hl = 16 + struct.unpack_from('<I', b, 12)[0]
p = 16
p += 1 + b[p]; p += 8; p += 1 + b[p]; p += 8    # vmlab version, seed, backend, ram
n = b[p]; p += 1
body = bytearray(b[16:p])
for _ in range(n):                              # kind, args, base, irq, space; windows
    q = p + 1 + b[p]; q += 2 + struct.unpack_from('<H', b, q)[0]; q += 13
    body += b[p:q]
    p = q + 1 + 16 * b[q]
out = bytearray(b[:16]) + body + bytes(4); out[8] = 1
struct.pack_into('<I', out, 12, len(body))
struct.pack_into('<I', out, 16 + len(body), zlib.crc32(bytes(out[:16 + len(body)])))
pos = hl + 4
while pos < len(b):
    plen = struct.unpack_from('<I', b, pos + 4)[0]
    if b[pos:pos + 4] == b'TCHK': out += b[pos:pos + 32 + plen]
    pos += 32 + plen
open(sys.argv[2], 'wb').write(out)
PY
mkdir -p "$TMP/v1"; cp "$TMP/pristine.img" "$TMP/v1/disk.img"
replays_clean "a version 1 trace replays against the image at its recorded path" "$TMP/v1" ../v1.vtr
out=$(cd "$TMP/elsewhere" && "$V" trace replay ../v1.vtr 2>&1); rc=$?
check "a version 1 trace without its image: exit 2, cannot open" test $rc -eq 2 -a -n "$(grep "cannot open disk image 'disk.img'" <<<"$out")"
finish
