#!/usr/bin/env bash
# vmlab disk create-qcow2 against qemu-img: check passes, info agrees, backing chains.
source "$(dirname "$0")/lib.sh"

if "$VMLAB" disk create-qcow2 "$TMP/a.qcow2" --size 100M && qemu-img check -q "$TMP/a.qcow2"; then
    ok "create-qcow2 --size 100M passes qemu-img check"
else
    not_ok "create-qcow2 --size 100M passes qemu-img check"
fi
qi=$(qemu-img info "$TMP/a.qcow2")
if grep -q "virtual size: 100 MiB (104857600 bytes)" <<<"$qi" && grep -q "compat: 1.1" <<<"$qi" &&
   grep -q "cluster_size: 65536" <<<"$qi"; then
    ok "qemu-img info: 100 MiB, qcow2 v3 (compat 1.1), 64 KiB clusters"
else
    not_ok "qemu-img info: $qi"
fi
info=$("$VMLAB" disk info "$TMP/a.qcow2")
if grep -q "^format: qcow2$" <<<"$info" && grep -q "^size: 104857600$" <<<"$info" &&
   grep -q "^qcow2_version: 3$" <<<"$info"; then
    ok "disk info reads it back"
else
    not_ok "disk info: $info"
fi

head -c 3145728 /dev/urandom > "$TMP/base.raw"
if "$VMLAB" disk create-qcow2 "$TMP/over.qcow2" --backing base.raw &&
   qemu-img check -q "$TMP/over.qcow2" &&
   qemu-img compare -q "$TMP/over.qcow2" "$TMP/base.raw"; then
    ok "create-qcow2 --backing base.raw: qemu-img sees the base's bytes"
else
    not_ok "create-qcow2 --backing base.raw"
fi
if qemu-img info "$TMP/over.qcow2" | grep -q "backing file format: raw"; then
    ok "backing format raw recorded"
else
    not_ok "backing format raw recorded"
fi
if "$VMLAB" disk create-qcow2 "$TMP/top.qcow2" --backing over.qcow2 --size 4M --cluster-size 4K &&
   qemu-img check -q "$TMP/top.qcow2" &&
   [ "$(qemu-img info "$TMP/top.qcow2" | grep -c 'cluster_size: 4096')" = 1 ]; then
    ok "qcow2 over qcow2 with 4 KiB clusters passes qemu-img check"
else
    not_ok "qcow2 over qcow2 with 4 KiB clusters"
fi
qemu-img convert -O qcow2 "$TMP/base.raw" "$TMP/q.qcow2"
if "$VMLAB" disk info "$TMP/q.qcow2" | grep -q "^size: 3145728$"; then
    ok "disk info on a qemu-img-converted image"
else
    not_ok "disk info on a qemu-img-converted image"
fi

# Images as distributions ship them: compressed (zlib, zstd), extended L2 entries.
qemu-img convert -c -O qcow2 "$TMP/base.raw" "$TMP/cz.qcow2"
qemu-img convert -c -O qcow2 -o compression_type=zstd "$TMP/base.raw" "$TMP/cs.qcow2"
qemu-img convert -O qcow2 -o extended_l2=on "$TMP/base.raw" "$TMP/x.qcow2"
# base.raw is random, so qemu-img stores its clusters uncompressed; a zero-filled tail
# and a text run compress.
{ cat "$TMP/base.raw"; head -c 1048576 /dev/zero; yes vmlab | head -c 1048576; } > "$TMP/mixed.raw"
qemu-img convert -c -O qcow2 -o compression_type=zstd "$TMP/mixed.raw" "$TMP/mz.qcow2"
for f in cz:zlib:no cs:zstd:no x:zlib:yes; do
    IFS=: read -r name ctype ext <<<"$f"
    info=$("$VMLAB" disk info "$TMP/$name.qcow2")
    if grep -q "^compression_type: $ctype$" <<<"$info" && grep -q "^extended_l2: $ext$" <<<"$info"; then
        ok "disk info $name.qcow2: compression_type $ctype, extended_l2 $ext"
    else
        not_ok "disk info $name.qcow2: $info"
    fi
done
info=$("$VMLAB" disk info "$TMP/mz.qcow2")
# 64 KiB clusters: the 1 MiB text run compresses (16 clusters); zero clusters are not stored
if grep -q "^compressed_clusters: 16$" <<<"$info" && grep -q "^compression_type: zstd$" <<<"$info"; then
    ok "disk info counts the compressed clusters (16)"
else
    not_ok "disk info compressed count: $info"
fi
if "$VMLAB" disk info "$TMP/x.qcow2" | grep -q "^compressed_clusters: 0$"; then
    ok "disk info: no compressed clusters in an uncompressed image"
else
    not_ok "disk info: no compressed clusters in an uncompressed image"
fi

# A guest on a zstd-compressed image: it reads the raw image's bytes, and its writes (into
# compressed clusters: copy-on-write) leave an image qemu-img checks clean and equal to raw.
G=$GUESTS/blk.elf
{ yes vmlab-guest | head -c 4194304; head -c 4194304 /dev/zero; } > "$TMP/g.raw"
qemu-img convert -c -O qcow2 -o compression_type=zstd "$TMP/g.raw" "$TMP/gz.qcow2"
want=$("$VMLAB" run --block "$TMP/g.raw" "$G" 2>&1 | grep checksum)
got=$("$VMLAB" run --block "$TMP/gz.qcow2" "$G" 2>&1 | grep checksum)
if [ -n "$want" ] && [ "$got" = "$want" ]; then
    ok "guest reads a compressed image as the raw one ($got)"
else
    not_ok "guest on a compressed image: '$got' vs raw '$want'"
fi
if qemu-img check -q "$TMP/gz.qcow2" && qemu-img compare -q "$TMP/gz.qcow2" "$TMP/g.raw"; then
    ok "after the guest's writes: qemu-img check clean, compare equal to raw"
else
    not_ok "after the guest's writes into compressed clusters"
fi

# An L2 entry whose data cluster is the refcount table: the guest's read fails with an I/O
# error, vmlab says why in one line, and the file is left as it was.
qemu-img convert -O qcow2 "$TMP/g.raw" "$TMP/bad.qcow2"
/usr/bin/python3 - "$TMP/bad.qcow2" <<'PY'
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
l1, rt = struct.unpack(">QQ", b[40:56])
l2 = struct.unpack(">Q", b[l1:l1 + 8])[0] & 0x00fffffffffffe00
b[l2 + 24:l2 + 32] = struct.pack(">Q", (1 << 63) | rt)
open(sys.argv[1], "wb").write(bytes(b))
PY
sum0=$(sha256sum < "$TMP/bad.qcow2")
"$VMLAB" run --block "$TMP/bad.qcow2" "$G" >"$TMP/out" 2>"$TMP/err"
rc=$?
sum1=$(sha256sum < "$TMP/bad.qcow2")
line="vmlab: qcow2 '$TMP/bad.qcow2': L2 table at offset 262144 (L1 index 0), entry 3: data cluster at offset 65536 overlaps the refcount table at offset 65536; image marked corrupt"
if [ "$(cat "$TMP/err")" = "$line" ] && grep -q "blk.status\[slot\] == VIRTIO_BLK_S_OK (0x1 != 0x0)" "$TMP/out" &&
   [ "$sum0" = "$sum1" ]; then
    ok "corrupt L2 entry: the guest gets IOERR, one log line, file unchanged (rc $rc)"
else
    not_ok "corrupt L2 entry: rc $rc, stderr '$(cat "$TMP/err")', stdout '$(tail -2 "$TMP/out")'"
fi
finish
