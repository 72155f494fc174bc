#!/usr/bin/env bash
# Linux guests through `vmlab run --kernel`.
#  - Bad input (any machine; the sim backend, since loading fails before a CPU runs): a file
#    that is not a bzImage, an ELF that is not a PVH executable, and an initrd larger than
#    the guest RAM: one clear error, exit 2.
#  - Debian's kernel (linux-image-amd64) with the busybox initramfs of vmm/kvm/linux boots on
#    `--cpu kvm`, prints on the 8250 console, finds the virtio-blk disk through vmlab's ACPI
#    tables (LNRO0005 devices in the DSDT), reads what the host wrote (sha256), writes a
#    pattern that reaches the image file, ends at a shell prompt on the serial console, runs
#    the commands typed there (--serial-in), the last of which powers off through the i8042
#    reset line (reboot=k), vmlab exiting 0. Runs where /dev/kvm is real KVM (and in
#    `make test-kvm`'s nested VM); a counted skip without /dev/kvm, and on kvm-pvm (this
#    machine kind's /dev/kvm emulates such a guest instruction by instruction: a boot takes
#    far beyond the test budget) unless KVM_LINUX=1.
#  - Then the same kernel on the network: virtio_net, udhcpc, ping, a wget from the host and
#    a hostfwd connection into the guest (lib.sh linux_net_*, as tests/cli/sim_linux_net.sh).
source "$(dirname "$0")/lib.sh"
INITRD=$LINUX_INITRD
KERNEL=${KVM_LINUX_KERNEL:-$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1)}

# An ELF goes the PVH way (a vmlinux, sim_linux.sh): one that is no PVH executable is refused
cp "$GUESTS/hello.elf" "$TMP/dyn.elf"     # e_type 3 (ET_DYN): a PVH note, but no executable
printf '\003' | dd of="$TMP/dyn.elf" bs=1 seek=16 conv=notrunc status=none
expect_error "--kernel: an ELF that is not an executable with the PVH note (exit 2)" \
    "ELF type is 3, expected 2" --cpu sim --kernel "$TMP/dyn.elf"
out=$("$VMLAB" run --cpu sim --kernel "$GUESTS/hello.elf" 2>&1)
check "--kernel: a PVH ELF is entered by its PVH note, the Linux command line in its start info" \
    grep -q "^args: console=ttyS0 reboot=k" <<<"$out"
head -c 70000 /dev/zero | tr '\0' 'x' >"$TMP/junk"
expect_error "--kernel: a text file is not a bzImage (exit 2)" "not a bzImage" \
    --cpu sim --kernel "$TMP/junk"
if [ -n "$KERNEL" ] && [ -r "$KERNEL" ]; then
    truncate -s 100M "$TMP/big.initrd"     # sparse: costs no disk
    expect_error "--initrd: 100 MiB does not fit a 128M guest next to the kernel (exit 2)" \
        "does not fit in guest RAM" --cpu sim --mem 128M --kernel "$KERNEL" --initrd "$TMP/big.initrd"
    rm -f "$TMP/big.initrd"
else
    not_ok "initrd-too-large check: no kernel in /boot (linux-image-amd64: make deps installs it)"
fi

linux_boot_or_skip "kvm_linux: boot" "$KERNEL" "$(linux_kvm_unfit)"

linux_disk
t0=${EPOCHREALTIME/./}
timeout "${KVM_LINUX_TIMEOUT:-600}" "$VMLAB" run --cpu kvm --mem 512M --kernel "$KERNEL" --initrd "$INITRD" \
    --block "$LINUX_DISK" --serial-in "$LINUX_TYPED" >"$TMP/console" 2>"$TMP/err"
rc=$?
echo "# kvm_linux: boot to power-off took $(((${EPOCHREALTIME/./} - t0) / 1000)) ms"
linux_checks "$TMP/console" "$TMP/err" $rc
# The CMOS RTC on KVM: rtc_cmos registers rtc0 and sets the system clock from it, the host's
# time of day when the VM was made (within the boot's time of the test's clock).
rtc=$(tr -d '\r' <"$TMP/console" | sed -n 's/.*rtc_cmos 00:0[0-9]: setting system clock to .* (\([0-9]*\))$/\1/p' | head -1)
if [ -n "$rtc" ] && [ "$rtc" -ge $((t0 / 1000000 - 5)) ] && [ "$rtc" -le $((${EPOCHREALTIME%.*} + 5)) ]; then
    ok "kvm_linux: rtc_cmos sets the clock from the CMOS RTC, the host's time ($rtc)"
else
    not_ok "kvm_linux: rtc_cmos sets the clock from the CMOS RTC, the host's time (got '${rtc}', boot began at $((t0 / 1000000)))"
fi

# The same machine on the network (lib.sh linux_net_*, the checks of sim_linux_net.sh; the
# host side is busybox's httpd and nc, which make test-kvm's nested VM has too).
if ! linux_net_start; then
    not_ok "kvm_linux: network boot: the host's busybox httpd did not start"
else
    trap 'linux_net_stop; rm -rf "$TMP"' EXIT
    LINUX_NET_TIMEOUT=${KVM_LINUX_TIMEOUT:-600} linux_net_boot kvm_linux "$VMLAB" "$KERNEL" --cpu kvm
    rc=$?
    linux_net_checks "$TMP/kvm_linux.console" "$TMP/kvm_linux.err" $rc
fi
finish
