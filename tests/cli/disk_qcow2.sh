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
finish
