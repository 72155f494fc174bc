#!/usr/bin/env bash
# Traces from before device models owned several bus windows still replay as recorded.
# tests/data/traces/linux-pvh-format2.trace.gz is a trace format 2 recording of Debian's
# kernel (PVH route, busybox initramfs, `vmlab-poweroff` typed) by vmlab c7f3ea1, when the
# i8042's window was ports 0x60-0x64 (0x61 read 0) and the PIT's channel 2 gate was tied
# high. Today port 0x61 is the PIT's; replay must rebuild the old layout from the format 2
# header, or Linux's TSC calibration (port 0x61, channel 2) diverges.
#   made with: vmlab run --cpu sim --mem 512M --kernel vmlinux --initrd
#     build/kvm/linux-initramfs.cpio.gz --trace T --serial-in '\n\n\n\n\n\n\n\nvmlab-poweroff\n'
source "$(dirname "$0")/lib.sh"
need_built "$VMLAB"
T=$TMP/old.trace
gzip -dc tests/data/traces/linux-pvh-format2.trace.gz >"$T"

out=$("$VMLAB" trace dump "$T" 2>&1 | head -200000)
check "the fixture is a format 2 trace whose i8042 has port 0x61 (one 5-port window)" \
    grep -q "^trace format 2," <<<"$out"
check "Linux's port 0x61 accesses are the i8042's in it (the old layout)" \
    grep -Eq "pio-(in|out) i8042#2 0x61 " <<<"$out"

out=$("$VMLAB" trace replay "$T" 2>&1); rc=$?
checked=$(sed -n 's/^replay: match: .*, \([0-9]*\) device results checked$/\1/p' <<<"$out")
if [ $rc -eq 0 ] && [ "${checked:-0}" -ge 80000 ]; then
    ok "format 2 Linux trace replays to a match on its own layout ($checked device results)"
else
    not_ok "format 2 Linux trace replays to a match on its own layout (exit $rc: $(head -c 600 <<<"$out"))"
fi
out=$("$VMLAB" trace replay "$T" --device i8254 2>&1); rc=$?
check "its PIT alone replays to a match (channel 2 counts with the gate tied high: $(head -1 <<<"$out"))" \
    test $rc -eq 0
finish
