#!/usr/bin/env bash
# vmlab disk: help texts, usage errors (exit 2, "vmlab: <message>"), bad images.
source "$(dirname "$0")/lib.sh"
CORPUS=$(cd "$(dirname "$0")/../data/disk" && pwd)

expect() {   # expect DESC STATUS STDERR-SUBSTRING -- command...
    local desc=$1 want=$2 msg=$3; shift 4
    local err rc
    err=$("$@" 2>&1 >/dev/null); rc=$?
    if [ "$rc" -eq "$want" ] && grep -qF -- "$msg" <<<"$err"; then ok "$desc"
    else not_ok "$desc (rc=$rc, stderr: $err)"; fi
}

if "$VMLAB" disk --help | grep -q "create-composite OUT --label NAME --partition"; then
    ok "disk --help lists create-composite"; else not_ok "disk --help lists create-composite"; fi
if "$VMLAB" disk create-composite --help | grep -q -- "--partition SPEC"; then
    ok "create-composite --help describes --partition"; else not_ok "create-composite --help"; fi
if "$VMLAB" disk create-qcow2 --help | grep -q -- "--backing FILE"; then
    ok "create-qcow2 --help describes --backing"; else not_ok "create-qcow2 --help"; fi

expect "no subcommand: exit 2" 2 "vmlab: disk: missing command" -- "$VMLAB" disk
expect "unknown subcommand: exit 2" 2 "vmlab: disk: unknown command 'frobnicate'" -- "$VMLAB" disk frobnicate
expect "create-composite without --label" 2 "vmlab: create-composite: --label is required" -- \
    "$VMLAB" disk create-composite "$TMP/x.cdisk" --partition a:"$CORPUS/comp_a.raw"
expect "create-composite without partitions" 2 "at least one --partition" -- \
    "$VMLAB" disk create-composite "$TMP/x.cdisk" --label l
expect "malformed --partition" 2 "expected LABEL:PATH" -- \
    "$VMLAB" disk create-composite "$TMP/x.cdisk" --label l --partition justalabel
expect "bad partition flag" 2 "field 'rw' is neither 'writable' nor a type GUID" -- \
    "$VMLAB" disk create-composite "$TMP/x.cdisk" --label l --partition a:"$CORPUS/comp_a.raw":rw
expect "unknown option" 2 "unknown or incomplete option '--bogus'" -- \
    "$VMLAB" disk create-composite "$TMP/x.cdisk" --bogus
expect "missing partition file" 2 "partition 'a': cannot open disk image" -- \
    "$VMLAB" disk create-composite "$TMP/x.cdisk" --label l --partition a:"$TMP/none.img"
expect "create-qcow2 bad size" 2 "--size '12Q' is not a size" -- \
    "$VMLAB" disk create-qcow2 "$TMP/x.qcow2" --size 12Q
expect "create-qcow2 without size" 2 "--size is required" -- "$VMLAB" disk create-qcow2 "$TMP/x.qcow2"
# SIZE as the second argument, as qemu-img create and crosvm create_qcow2 take it.
if "$VMLAB" disk create-qcow2 "$TMP/pos.qcow2" 16M && "$VMLAB" disk info "$TMP/pos.qcow2" |
    grep -qx "size: 16777216"; then ok "create-qcow2 OUT 16M: a 16 MiB image"
else not_ok "create-qcow2 OUT 16M"; fi
expect "create-qcow2 bad positional size" 2 "SIZE '12Q' is not a size" -- \
    "$VMLAB" disk create-qcow2 "$TMP/y.qcow2" 12Q
expect "create-qcow2 size given twice" 2 "the size is given twice" -- \
    "$VMLAB" disk create-qcow2 "$TMP/y.qcow2" 1M --size 2M
expect "create-qcow2 extra argument" 2 "expected OUT and an optional SIZE" -- \
    "$VMLAB" disk create-qcow2 "$TMP/y.qcow2" 1M extra
check "create-qcow2 refusals write nothing" test ! -e "$TMP/y.qcow2"
expect "info on a missing file" 2 "vmlab: cannot open disk image" -- "$VMLAB" disk info "$TMP/none"
expect "info on an overlapping composite" 2 "overlaps component 0" -- "$VMLAB" disk info "$CORPUS/overlap.cdisk"
expect "info on a self-including composite" 2 "includes itself" -- "$VMLAB" disk info "$CORPUS/self_cycle.cdisk"
expect "info on 11-level nesting" 2 "nesting depth 11 exceeds the limit of 10" -- "$VMLAB" disk info "$CORPUS/nest11.cdisk"
expect "info on a qcow2 with L2 outside the file" 2 "L2 table at offset 1073741824" -- \
    "$VMLAB" disk info "$CORPUS/qcow2_l2_outside.qcow2"
expect "info on a qcow2 whose compressed entry has the COPIED flag" 2 \
    "entry 0: compressed cluster with the COPIED flag (entry 0xc000000000000a00); image marked corrupt" -- \
    "$VMLAB" disk info "$CORPUS/qcow2_compressed.qcow2"
expect "info on a qcow2 whose data cluster lies outside the file" 2 \
    "L2 table at offset 2048 (L1 index 0), entry 0: data cluster at offset 1073741824 is outside the file (size 3072)" -- \
    "$VMLAB" disk info "$CORPUS/qcow2_data_outside.qcow2"
finish
