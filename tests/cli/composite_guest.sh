#!/usr/bin/env bash
# A guest reads a crosvm/AVF composite disk through virtio-blk: its whole-disk checksum
# (GPT header, three partitions, GPT footer) matches the host's, a write to the writable
# partition lands in that partition's file, and a write into a read-only partition fails
# with IOERR and changes no file.
source "$(dirname "$0")/lib.sh"
REL=${VMLAB_REL:-$BUILD/vmlab}
G=$GUESTS/blk.elf

/usr/bin/python3 - "$TMP" <<'PY'
import os, sys
d = sys.argv[1]
for name, size, seed in (("boot", 64 << 10, 1), ("system", 128 << 10, 2), ("data", 64 << 10, 3)):
    with open(os.path.join(d, name + ".img"), "wb") as f:
        f.write(bytes((i * 7 + seed * 31 + (i >> 9)) & 0xff for i in range(size)))
PY
"$REL" disk create-composite "$TMP/disk.composite" --label guesttest \
    --partition boot:"$TMP/boot.img" --partition system:"$TMP/system.img" \
    --partition data:"$TMP/data.img":writable >"$TMP/create.out" 2>&1
check "create-composite with two read-only and one writable partition" test -s "$TMP/disk.composite"
cp "$TMP/boot.img" "$TMP/boot.orig"; cp "$TMP/system.img" "$TMP/system.orig"

# The host's view: the components concatenated in order (what the guest must read).
want=$(/usr/bin/python3 - "$TMP" <<'PY'
import os, sys
d = sys.argv[1]
# Component order as create-composite writes them: header, partitions (padded), footer.
parts = [d + "/disk.composite.header.img", d + "/boot.img", d + "/system.img", d + "/data.img"]
if os.path.exists(d + "/disk.composite.filler.img"):
    parts.insert(3, d + "/disk.composite.filler.img")
parts.append(d + "/disk.composite.footer.img")
h = 0xcbf29ce484222325
for p in parts:
    for b in open(p, "rb").read():
        h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
print("0x%016x" % h)
PY
)
"$REL" run --serial "$TMP/read.out" --block "$TMP/disk.composite,id=composite" "$G" -- ops=read >/dev/null 2>"$TMP/read.err"
rc=$?
got=$(sed -nE 's/^blk: capacity [0-9]+ sectors, checksum (0x[0-9a-f]+)$/\1/p' "$TMP/read.out")
if [ $rc -eq 1 ] && [ -n "$got" ] && [ "$got" = "$want" ]; then
    ok "the guest's whole-disk checksum equals the host's ($got)"
else
    not_ok "guest checksum '$got' (exit $rc) vs host $want: $(head -3 "$TMP/read.out" "$TMP/read.err" | tr '\n' ' ')"
fi

# Sector numbers of the data partition from the GPT (disk info prints first/last LBA).
"$REL" disk info "$TMP/disk.composite" >"$TMP/info.out" 2>&1
first=$(sed -nE 's/^ +[0-9]+: data lba ([0-9]+)-[0-9]+ .*/\1/p' "$TMP/info.out")
check "disk info lists the data partition with its first LBA ($first)" test -n "$first"
"$REL" run --serial "$TMP/write.out" --block "$TMP/disk.composite" "$G" -- ops=write wsector=$first wcount=4 >/dev/null 2>&1
rc=$?
check "the guest writes and verifies 4 sectors in the writable partition" \
    bash -c "[ $rc -eq 1 ] && grep -q 'blk: wrote and verified 4 sectors at $first' '$TMP/write.out'"
/usr/bin/python3 - "$TMP/data.img" "$first" <<'PY' && ok "the write landed at the start of data.img" || not_ok "data.img does not hold the guest's pattern"
import sys
data, first = open(sys.argv[1], "rb").read(), int(sys.argv[2])
for k in range(4):
    s = first + k
    want = bytes((s * 131 + i * 7 + 0x5a) & 0xff for i in range(512))
    if data[k * 512:(k + 1) * 512] != want:
        sys.exit(1)
PY
check "read-only partitions unchanged" bash -c "cmp -s '$TMP/boot.img' '$TMP/boot.orig' && cmp -s '$TMP/system.img' '$TMP/system.orig'"
"$REL" run --serial "$TMP/ro.out" --block "$TMP/disk.composite" "$G" -- ops=write wsector=$((first - 8)) wcount=4 >/dev/null 2>&1
rc=$?
check "a guest write into a read-only partition fails (exit $rc) and the files are unchanged" \
    bash -c "[ $rc -ne 1 ] && cmp -s '$TMP/boot.img' '$TMP/boot.orig' && cmp -s '$TMP/system.img' '$TMP/system.orig'"
finish
