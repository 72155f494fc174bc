#!/usr/bin/env bash
# vmlab disk create-composite / info, checked with real tools: protoc decodes the spec we
# write, sgdisk -v finds no problems in the assembled disk, sgdisk -p lists our labels.
source "$(dirname "$0")/lib.sh"
PROTO_DIR=$(cd "$(dirname "$0")/../../devices/disk" && pwd)
SGDISK=$(command -v sgdisk || echo /usr/sbin/sgdisk)   # gdisk installs it in sbin

head -c 1048576 /dev/zero | tr '\0' 'B' > "$TMP/boot.img"
head -c 10000 /dev/zero | tr '\0' 'S' > "$TMP/sys.img"
truncate -s 2M "$TMP/data.img"

out=$("$VMLAB" disk create-composite "$TMP/disk.cdisk" --label vmtest \
      --partition boot:"$TMP/boot.img":efi --partition system:"$TMP/sys.img" \
      --partition userdata:"$TMP/data.img":writable 2>&1)
rc=$?
if [ $rc -eq 0 ] && [ -s "$TMP/disk.cdisk" ] && [ -s "$TMP/disk.cdisk.header.img" ] &&
   [ -s "$TMP/disk.cdisk.footer.img" ]; then
    ok "create-composite exits 0 and writes composite, header and footer"
else
    not_ok "create-composite exits 0 and writes composite, header and footer (rc=$rc: $out)"
fi

if [ "$(head -c 15 "$TMP/disk.cdisk" | od -An -c | tr -s ' ')" = " c o m p o s i t e _ d i s k 035" ]; then
    ok "composite file starts with the magic composite_disk\\x1d"
else
    not_ok "composite file starts with the magic composite_disk\\x1d"
fi

decoded=$(tail -c +16 "$TMP/disk.cdisk" | protoc --decode=CompositeDisk -I "$PROTO_DIR" composite.proto 2>&1)
if grep -q '^version: 2$' <<<"$decoded" && [ "$(grep -c component_disks <<<"$decoded")" -eq 6 ] &&
   grep -q 'file_path: "disk.cdisk.header.img"' <<<"$decoded" &&
   grep -q 'read_write_capability: READ_WRITE' <<<"$decoded" && grep -q '^length: ' <<<"$decoded"; then
    ok "protoc --decode=CompositeDisk decodes our spec (version 2, 6 components)"
else
    not_ok "protoc --decode=CompositeDisk decodes our spec: $decoded"
fi

# Assemble the flat disk the guest would see, component by component.
flat="$TMP/flat.img"
: > "$flat"
len=$(grep '^length: ' <<<"$decoded" | awk '{print $2}')
mapfile -t paths < <(grep 'file_path' <<<"$decoded" | sed 's/.*file_path: "\(.*\)"/\1/')
mapfile -t offs < <(awk '/component_disks/{o=0} /^  offset:/{o=$2} /^}/{print o}' <<<"$decoded")
for i in "${!paths[@]}"; do
    p=${paths[$i]}; [ "${p#/}" = "$p" ] && p="$TMP/$p"
    start=${offs[$i]}
    if [ $((i + 1)) -lt ${#paths[@]} ]; then end=${offs[$((i + 1))]}; else end=$len; fi
    head -c $((end - start)) "$p" >> "$flat"
done
if [ "$(stat -c %s "$flat")" = "$len" ]; then ok "assembled disk is $len bytes"; else not_ok "assembled disk size"; fi

v=$("$SGDISK" -v "$flat" 2>&1)
if grep -q "No problems found" <<<"$v" && ! grep -qi "warning\|problem:" <<<"$v"; then
    ok "sgdisk -v finds no problems"
else
    not_ok "sgdisk -v finds no problems: $v"
fi
p=$("$SGDISK" -p "$flat" 2>&1)
if grep -q " boot$" <<<"$p" && grep -q " system$" <<<"$p" && grep -q " userdata$" <<<"$p" &&
   grep -q "EF00  boot" <<<"$p" && grep -q "8300  system" <<<"$p"; then
    ok "sgdisk -p lists boot (EF00), system and userdata (8300)"
else
    not_ok "sgdisk -p lists our partitions: $p"
fi

info=$("$VMLAB" disk info "$TMP/disk.cdisk" 2>&1)
if grep -q '^format: composite$' <<<"$info" && grep -q "^size: $len$" <<<"$info" &&
   grep -q '^components: 6$' <<<"$info" && grep -q '^partitions: 3$' <<<"$info" &&
   grep -q ': userdata lba' <<<"$info" && grep -q ' rw raw data.img$' <<<"$info"; then
    ok "disk info shows format, size, components and partitions"
else
    not_ok "disk info: $info"
fi

# Same inputs, same bytes.
mkdir -p "$TMP/again"
cp "$TMP/disk.cdisk" "$TMP/first.cdisk"; cp "$TMP/disk.cdisk.header.img" "$TMP/first.header"
"$VMLAB" disk create-composite "$TMP/disk.cdisk" --label vmtest \
      --partition boot:"$TMP/boot.img":efi --partition system:"$TMP/sys.img" \
      --partition userdata:"$TMP/data.img":writable
if cmp -s "$TMP/disk.cdisk" "$TMP/first.cdisk" && cmp -s "$TMP/disk.cdisk.header.img" "$TMP/first.header"; then
    ok "create-composite is deterministic"
else
    not_ok "create-composite is deterministic"
fi

# A type GUID given in full.
"$VMLAB" disk create-composite "$TMP/t.cdisk" --label t \
    --partition "esp:$TMP/boot.img:C12A7328-F81F-11D2-BA4B-00A0C93EC93B" >/dev/null 2>&1
if "$VMLAB" disk info "$TMP/t.cdisk" | grep -q ': esp lba .* type C12A7328-F81F-11D2-BA4B-00A0C93EC93B'; then
    ok "--partition accepts a TYPE-GUID"
else
    not_ok "--partition accepts a TYPE-GUID"
fi
# Our GPT reader on a table sgdisk wrote.
truncate -s 8M "$TMP/sg.img"
"$SGDISK" -o -n 1:2048:4095 -c 1:alpha -t 1:EF00 -n 2:4096:8191 -c 2:beta "$TMP/sg.img" >/dev/null 2>&1
info=$("$VMLAB" disk info "$TMP/sg.img" 2>&1)
if grep -q '^format: raw$' <<<"$info" && grep -q '^partitions: 2$' <<<"$info" &&
   grep -q '1: alpha lba 2048-4095 size 1048576 type C12A7328-F81F-11D2-BA4B-00A0C93EC93B' <<<"$info" &&
   grep -q '2: beta lba 4096-8191' <<<"$info"; then
    ok "disk info reads a GPT written by sgdisk"
else
    not_ok "disk info reads a GPT written by sgdisk: $info"
fi
finish
