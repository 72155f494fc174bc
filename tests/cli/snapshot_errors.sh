#!/usr/bin/env bash
# Bad snapshot files given to `vmlab run --restore`: truncated, a flipped bit, a wrong
# version, a huge chunk length, a wrong magic, fields that are out of range behind a valid
# CRC, and random field corruption. Each gets a clear one-line error naming the chunk and
# offset, exit status 2, and no crash or sanitizer report (run with the ASan build).
source "$(dirname "$0")/lib.sh"

SNAP=$TMP/good.bin
"$VMLAB" run --block mem=1M --rng --quiet \
    --at "2000000:{\"cmd\":\"snapshot\",\"op\":\"take\",\"path\":\"$SNAP\"}" \
    "$GUESTS/idle.elf" ticks=40 >/dev/null 2>&1
if [ ! -s "$SNAP" ]; then not_ok "a snapshot to corrupt was written"; finish; exit 1; fi
ok "a snapshot to corrupt was written ($(stat -c %s "$SNAP") bytes)"

sanitizer_clean() { ! grep -qE "AddressSanitizer|runtime error|LeakSanitizer" "$1"; }

# bad NAME FILE PATTERN: restore fails with exit 2 and a message matching PATTERN
bad() {
    local name=$1 file=$2 pat=$3 rc
    "$VMLAB" run --restore "$file" >/dev/null 2>"$TMP/err"; rc=$?
    if [ $rc -eq 2 ] && grep -qE "$pat" "$TMP/err" && sanitizer_clean "$TMP/err" &&
       [ "$(wc -l <"$TMP/err")" -le 2 ]; then
        ok "$name: exit 2, $(head -c 160 "$TMP/err")"
    else
        not_ok "$name: exit $rc, want 2 and /$pat/: $(head -c 400 "$TMP/err")"
    fi
}

size=$(stat -c %s "$SNAP")
head -c $((size / 2)) "$SNAP" >"$TMP/trunc.bin"
bad "truncated to half" "$TMP/trunc.bin" "chunk .* at offset [0-9]+: .*truncated"
head -c 100 "$SNAP" >"$TMP/trunc2.bin"
bad "truncated inside the first chunk" "$TMP/trunc2.bin" "chunk 'MACH' at offset 16: .*truncated"
head -c 10 "$SNAP" >"$TMP/trunc3.bin"
bad "truncated header" "$TMP/trunc3.bin" "header at offset 0: truncated"
: >"$TMP/empty.bin"
bad "empty file" "$TMP/empty.bin" "not a vmlab snapshot"

# patch FILE OFFSET HEXBYTES: overwrite bytes in place
patch() { printf "$(echo "$3" | sed 's/../\\x&/g')" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }

cp "$SNAP" "$TMP/flip.bin"
b=$(od -An -tx1 -j $((size / 3)) -N1 "$SNAP" | tr -d ' ')
patch "$TMP/flip.bin" $((size / 3)) "$(printf %02x $((0x$b ^ 0x10)))"
bad "one bit flipped" "$TMP/flip.bin" "CRC mismatch"

cp "$SNAP" "$TMP/ver.bin"; patch "$TMP/ver.bin" 8 "07000000"
bad "wrong version" "$TMP/ver.bin" "header at offset 8: format version 7"
cp "$SNAP" "$TMP/magic.bin"; patch "$TMP/magic.bin" 0 "58"
bad "wrong magic" "$TMP/magic.bin" "not a vmlab snapshot"
cp "$SNAP" "$TMP/huge.bin"; patch "$TMP/huge.bin" 20 "ffffffff"
bad "huge chunk length" "$TMP/huge.bin" "chunk 'MACH' at offset 16: length 4294967295 exceeds"
cp "$SNAP" "$TMP/long.bin"; patch "$TMP/long.bin" 20 "00000001"
bad "chunk length past the end of the file" "$TMP/long.bin" "runs past the end of the file"
bad "missing file" "$TMP/nonexistent.bin" "No such file"

# Field-level damage behind a valid CRC (python rewrites a chunk and its CRC).
mutate() {  # mutate OUT CHUNK-TAG INDEX OFFSET-IN-PAYLOAD HEXBYTES
    /usr/bin/python3 - "$SNAP" "$@" <<'PY'
import struct, sys, zlib
src, out, tag, index, off, data = sys.argv[1], sys.argv[2], sys.argv[3].encode(), int(sys.argv[4]), int(sys.argv[5]), bytes.fromhex(sys.argv[6])
b = bytearray(open(src, 'rb').read()); pos = 16; seen = 0
while pos < len(b):
    t, n = bytes(b[pos:pos+4]), struct.unpack_from('<I', b, pos + 4)[0]
    if t == tag:
        if seen == index:
            p = pos + 8 + off
            b[p:p+len(data)] = data
            crc = zlib.crc32(bytes(b[pos+8:pos+8+n]), zlib.crc32(bytes(b[pos:pos+8])))
            struct.pack_into('<I', b, pos + 8 + n, crc)
            break
        seen += 1
    pos += 12 + n
open(out, 'wb').write(b)
PY
}
mutate "$TMP/m1.bin" MACH 0 0 "0000000000000000"
bad "ram size 0" "$TMP/m1.bin" "chunk 'MACH' at offset 16: ram size 0"
mutate "$TMP/m1b.bin" MACH 0 0 "0000000000010000"
bad "ram size 256 TiB" "$TMP/m1b.bin" "chunk 'MACH': RAM size: .*larger than this host"
mutate "$TMP/m2.bin" MACH 0 31 "63000000"
bad "device count 99" "$TMP/m2.bin" "device count 99 exceeds"
mutate "$TMP/m3.bin" "CPU " 0 0 "09000000"
bad "cpu section version 9" "$TMP/m3.bin" "chunk 'CPU ' at offset [0-9]+: cpu section version 9"
mutate "$TMP/m4.bin" "RAM " 0 0 "00f0ffffff000000"
bad "ram chunk outside guest RAM" "$TMP/m4.bin" "outside guest RAM"
mutate "$TMP/m5.bin" "DEV " 0 0 "05000000"
bad "device index out of order" "$TMP/m5.bin" "device 0 \(uart8250\) expected"
mutate "$TMP/m6.bin" "TIMR" 0 0 "ffffff7f"
bad "timed request count huge" "$TMP/m6.bin" "timed request count [0-9]+ exceeds"

# Random bytes of every non-RAM chunk, CRC fixed up: an error, a guest fault or a normal
# run are all fine; a crash, a sanitizer report or a hang of vmlab itself are not.
crashes=0; runs=0
for i in $(seq 1 40); do
    case $((i % 4)) in 0) tag=MACH;; 1) tag="CPU ";; 2) tag="DEV ";; 3) tag=TIMR;; esac
    idx=0; [ "$tag" = "DEV " ] && idx=$((i % 4))
    off=$(( (i * 37) % 60 ))
    mutate "$TMP/r.bin" "$tag" "$idx" "$off" "$(printf %02x $(( (i * 73 + 11) % 256 )))"
    # (a corrupted guest may spin forever: timeout's 124 is the guest's business)
    timeout 30 "$VMLAB" run --restore "$TMP/r.bin" --serial none >/dev/null 2>"$TMP/rerr"
    rc=$?
    runs=$((runs + 1))
    if { [ $rc -ge 128 ] && [ $rc -ne 124 ]; } || ! sanitizer_clean "$TMP/rerr"; then
        crashes=$((crashes + 1)); echo "# corruption $i ($tag+$off): exit $rc: $(head -c 300 "$TMP/rerr")"
    fi
done
if [ $crashes -eq 0 ]; then ok "$runs randomly corrupted snapshots: no crash, no sanitizer report"
else not_ok "$crashes of $runs corrupted snapshots crashed vmlab or tripped a sanitizer"; fi
finish
