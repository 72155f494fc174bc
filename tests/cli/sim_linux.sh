#!/usr/bin/env bash
# Debian's kernel (linux-image-amd64) on the software CPU, on any machine: the busybox
# initramfs of vmm/kvm/linux boots to the shell prompt on the serial console, the guest
# reads what the host wrote on a virtio-blk disk and writes a pattern that reaches the
# image file, the shell runs the typed commands, the last of which powers off; vmlab exits
# 0 (the same checks as kvm_linux.sh, lib.sh linux_checks), and Linux calibrates its TSC with
# the PIT through port 0x61. Then the determinism the
# software CPU promises: a second boot of the same kernel, initramfs, disk and seed writes
# a byte-identical trace, and that trace replays without a CPU. Last, the PVH route: the
# vmlinux inside the bzImage (scripts/extract-vmlinux.py) as --kernel, entered by its PVH
# note with the initrd and the ACPI RSDP in hvm_start_info, passes the same checks, and a
# snapshot taken in its middle restores into the same rest of the boot.
# Runs the release build ($BUILD/vmlab): the same code as the ASan one, and a boot is
# 6.7 G guest instructions by the bzImage, 2.2 G by PVH (sim/README.md).
source "$(dirname "$0")/lib.sh"
V=${SIM_LINUX_VMLAB:-$BUILD/vmlab}
INITRD=$LINUX_INITRD
KERNEL=${SIM_LINUX_KERNEL:-$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1)}

need_built "$V"
linux_boot_or_skip sim_linux "$KERNEL"

# --rtc-base: a bad value is one error line naming it; a machine without the clock refuses it
out=$("$V" run --cpu sim --mem 512M --kernel "$KERNEL" --rtc-base 99999999999 2>&1)
rc=$?
check "cmos-rtc: --rtc-base 99999999999 refused (status 2), naming the value ($out)" \
    test $rc -eq 2 -a -n "$(grep -F "base '99999999999'" <<<"$out")"
out=$("$V" run --cpu sim --rtc-base 5 "$BUILD/guest/hello.elf" 2>&1)
rc=$?
check "cmos-rtc: --rtc-base without a Linux machine refused (status 2: $out)" \
    test $rc -eq 2 -a -n "$(grep -F -- "--rtc-base sets the CMOS clock" <<<"$out")"

# boot N: a fresh disk (same path, same bytes every time), console and trace of run N
boot() {
    linux_disk
    local t0=${EPOCHREALTIME/./}
    timeout 600 "$V" run --cpu sim --mem 512M --kernel "${2:-$KERNEL}" --initrd "$INITRD" \
        --block "$LINUX_DISK" --serial-in "${TYPED:-$LINUX_TYPED}" --trace "$TMP/$1.trace" \
        --stats "${@:3}" >"$TMP/console$1" 2>"$TMP/err$1"
    local rc=$?
    echo "# sim_linux: boot $1 to power-off took $(((${EPOCHREALTIME/./} - t0) / 1000)) ms, $(sed -n 's/^stats: instructions //p' "$TMP/err$1") guest instructions"
    return $rc
}

boot 1
linux_checks "$TMP/console1" "$TMP/err1" $?
cp "$LINUX_DISK" "$TMP/disk-after-1.img"
# The PIT's port 0x61: Linux sets channel 2's gate there and times channel 2 against the TSC
# (quick_pit_calibrate); on the virtual clock that is the 1 GHz vCPU (999.993 MHz measured).
tr -d '\r' <"$TMP/console1" >"$TMP/c"
check "i8254: Linux calibrates the TSC with the PIT (channel 2 gated through port 0x61)" \
    grep -q "tsc: Fast TSC calibration using PIT" "$TMP/c"
mhz=$(sed -n 's/.*tsc: Detected \([0-9.]*\) MHz processor.*/\1/p' "$TMP/c" | head -1)
check "i8254: the calibration finds the virtual 1 GHz (Detected ${mhz:-no} MHz, 999.9 to 1000.1)" \
    /usr/bin/python3 -c "import sys; sys.exit(not 999.9 <= float('${mhz:-0}') <= 1000.1)"
check "i8254: the trace has Linux's port 0x61 writes on the PIT (gate on)" \
    bash -c "'$V' trace dump '$TMP/1.trace' | grep -m1 -q 'pio-out i8254#[0-9]* 0x61 (+0x21) size=1 value=0x1'"
boot 2
rc=$?
if [ $rc -eq 0 ] && cmp -s "$TMP/1.trace" "$TMP/2.trace" && cmp -s "$TMP/console1" "$TMP/console2" &&
   cmp -s "$LINUX_DISK" "$TMP/disk-after-1.img"; then
    ok "sim_linux: a second boot writes a byte-identical trace, console and disk ($(stat -c %s "$TMP/1.trace") trace bytes)"
else
    not_ok "sim_linux: a second boot writes a byte-identical trace, console and disk (status $rc)"
    "$V" trace diff "$TMP/1.trace" "$TMP/2.trace" 2>&1 | head -5 | sed 's/^/#   /'
fi
linux_disk                              # replay reads the disk the run started from
linux_replay_check sim_linux "$V" "$TMP/1.trace"

# The CMOS clock: the kernel takes its date at boot (no "RTC" complaint), and `date` typed
# in the shell prints the --rtc-base date (1000000000 = 2001-09-09 01:46:40 UTC) plus the
# few virtual seconds of the boot. The FADT and DSDT declare the RTC (PNP0B00), so Linux's
# rtc_cmos binds it: /dev/rtc0 exists and its since_epoch is that same seeded time.
if /usr/bin/python3 scripts/extract-vmlinux.py "$KERNEL" "$TMP/vmlinux" 2>"$TMP/xerr"; then
    TYPED='\n\n\n\n\n\n\n\ndate "+VMLAB-DATE: %F %H:%M"\necho VMLAB-RTC: $(ls /dev/rtc0) $(cat /sys/class/rtc/rtc0/since_epoch)\necho VMLAB-LINUX: shell says $((6*7))\nvmlab-poweroff\n' \
        boot pvh "$TMP/vmlinux" --rtc-base 1000000000 \
        --at "1500000000:{\"cmd\":\"snapshot\",\"op\":\"take\",\"path\":\"$TMP/pvh.snap\"}"
    linux_checks "$TMP/consolepvh" "$TMP/errpvh" $? linux-pvh
    # A snapshot in the middle of the boot (1.5 of its 2.4 virtual seconds: the kernel has
    # enabled NX and set its SYSCALL entry) restores into the same rest of the run: the
    # console from there on, power-off and the instruction count. Before, the restore lost
    # EFER.NXE and SCE and the SYSCALL MSRs, and the kernel triple-faulted at once.
    linux_disk                          # the disk as it was when the snapshot was taken
    timeout 600 "$V" run --restore "$TMP/pvh.snap" --stats >"$TMP/consolepvh2" 2>"$TMP/errpvh2"
    rc=$?
    n1=$(sed -n 's/^stats: instructions //p' "$TMP/errpvh"); n2=$(sed -n 's/^stats: instructions //p' "$TMP/errpvh2")
    if [ $rc -eq 0 ] && [ -s "$TMP/consolepvh2" ] && [ -n "$n2" ] && [ "$n1" = "$n2" ] &&
       /usr/bin/python3 -c 'import sys; a, b = (open(f, "rb").read() for f in sys.argv[1:]); sys.exit(not a.endswith(b))' \
           "$TMP/consolepvh" "$TMP/consolepvh2" && grep -q "VMLAB-LINUX: shell says 42" "$TMP/consolepvh2"; then
        ok "linux-pvh: restored from a snapshot at 1.5 s, the boot ends as the original did ($(wc -c <"$TMP/consolepvh2") console bytes, $n2 instructions)"
    else
        not_ok "linux-pvh: restore of the 1.5 s snapshot (exit $rc, instructions $n1 vs $n2): $(head -3 "$TMP/errpvh2" | tr '\n' ' ')"
    fi
    tr -d '\r' <"$TMP/consolepvh" >"$TMP/c"
    check "cmos-rtc: the kernel reads the RTC at boot (no 'Unable to read current time from RTC')" \
        bash -c "! grep -qi 'unable to read.*rtc' '$TMP/c'"
    check "cmos-rtc: date in the guest prints the --rtc-base date (2001-09-09 01:46)" \
        grep -q "^VMLAB-DATE: 2001-09-09 01:4[67]" "$TMP/c"
    check "cmos-rtc: rtc_cmos registers rtc0 through PNP (the FADT no longer says 'no CMOS RTC')" \
        grep -q "rtc_cmos 00:0[0-9]: registered as rtc0" "$TMP/c"
    rtc=$(sed -n 's/^VMLAB-RTC: //p' "$TMP/c" | head -1)
    secs=${rtc#/dev/rtc0 }
    if [ "${rtc%% *}" = /dev/rtc0 ] && [[ $secs =~ ^[0-9]+$ ]] && [ "$secs" -ge 1000000000 ] &&
       [ "$secs" -le 1000000030 ]; then
        ok "cmos-rtc: /dev/rtc0 exists and since_epoch is --rtc-base plus the virtual boot time ($secs)"
    else
        not_ok "cmos-rtc: /dev/rtc0 exists and since_epoch is --rtc-base plus the virtual boot time (got '$rtc')"
    fi
else
    not_ok "linux-pvh: scripts/extract-vmlinux.py takes the vmlinux out of $KERNEL ($(cat "$TMP/xerr"))"
fi
finish
