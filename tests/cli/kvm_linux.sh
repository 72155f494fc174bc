#!/usr/bin/env bash
# Linux guests through `vmlab run --kernel`.
#  - Bad input (any machine; the sim backend, since loading fails before a CPU runs): a file
#    that is not a bzImage, and an initrd larger than the guest RAM: one clear error, exit 2.
#  - Debian's kernel (linux-image-amd64) with the busybox initramfs of vmm/kvm/linux boots on
#    `--cpu kvm`, prints on the 8250 console, finds the virtio-blk disk through vmlab's ACPI
#    tables (LNRO0005 devices in the DSDT), reads what the host wrote (sha256), writes a
#    pattern that reaches the image file, ends at a shell prompt on the serial console, runs
#    the commands typed there (--serial-in), the last of which powers off through the i8042
#    reset line (reboot=k), vmlab exiting 0. Runs where /dev/kvm is real KVM (and in
#    `make test-kvm`'s nested VM); a counted skip without /dev/kvm, and on kvm-pvm (this
#    machine kind's /dev/kvm emulates such a guest instruction by instruction: a boot takes
#    far beyond the test budget) unless KVM_LINUX=1.
source "$(dirname "$0")/lib.sh"
INITRD=$BUILD/kvm/linux-initramfs.cpio.gz
KERNEL=${KVM_LINUX_KERNEL:-$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1)}

expect_error "--kernel: a PVH ELF is not a bzImage (exit 2)" "not a bzImage" \
    --cpu sim --kernel "$GUESTS/hello.elf"
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

reason=
if [ ! -c /dev/kvm ] || ! (exec 3<>/dev/kvm) 2>/dev/null; then
    reason="/dev/kvm does not open"
elif [ -d /sys/module/kvm_pvm ] && [ "${KVM_LINUX:-0}" != 1 ]; then
    reason="/dev/kvm is kvm-pvm (guest code emulated, boot too slow; KVM_LINUX=1 forces it)"
fi
if [ -n "$reason" ]; then
    skip "boot: $reason"
    finish
    exit
fi
# What make deps and make test provide is never a reason to skip.
if [ -z "$KERNEL" ] || [ ! -r "$KERNEL" ] || [ ! -r "$INITRD" ]; then
    not_ok "boot: kernel '$KERNEL' or $INITRD missing (make deps installs linux-image-amd64, make test builds the initramfs)"
    finish
    exit
fi

# The disk: 4 MiB, its first MiB a pattern written here (the guest checksums what it reads),
# the rest zero; /init writes "vmlab-linux-was-here" over the second MiB.
disk=$TMP/disk.img
yes vmlab-host-wrote-this | head -c 1048576 >"$disk"
truncate -s 4194304 "$disk"
sum_before=$(sha256sum "$disk" | cut -d' ' -f1)
yes vmlab-linux-was-here | head -c 1048576 >"$TMP/guest-pattern"

t0=${EPOCHREALTIME/./}
# What a user types at the shell prompt /init ends in: the shell computes 6*7 (its answer
# proves the command ran; the echo of the typed line shows only the expression), then the
# power-off. Leading newlines: the input is there from the start, and the 8250 driver's
# probe and start-up read and drop the first bytes (three were seen); the rest wait in the
# tty until the shell reads them.
typed='\n\n\n\n\n\n\n\necho VMLAB-LINUX: shell says $((6*7))\nvmlab-poweroff\n'
timeout 600 "$VMLAB" run --cpu kvm --mem 512M --kernel "$KERNEL" --initrd "$INITRD" \
    --block "$disk" --serial-in "$typed" >"$TMP/console" 2>"$TMP/err"
rc=$?
echo "# kvm_linux: boot to power-off took $(((${EPOCHREALTIME/./} - t0) / 1000)) ms"
tr -d '\r' <"$TMP/console" >"$TMP/c"
has() { grep -q -- "$1" "$TMP/c"; }
lacks() { ! grep -qE -- "$1" "$TMP/c"; }
field() { sed -n "s/^VMLAB-LINUX: $1 //p" "$TMP/c" | head -1; }
check "linux: the kernel prints on the 8250 console" has "Linux version"
check "linux: the kernel finds vmlab's ACPI tables (RSDP at 0xe0000)" has "ACPI: RSDP 0x00000000000E0000"
check "linux: no ACPI errors or firmware-bug warnings in the kernel log" \
    lacks 'ACPI (BIOS )?(Error|Warning)|Firmware (Bug|Warn)'
check "linux: COM1 comes from the DSDT (PNP0501 through PnP ACPI, not the legacy probe)" \
    has "00:0[0-9]: ttyS0 at I/O 0x3f8"
check "linux: the initramfs /init runs (busybox userspace, serial console)" has "^VMLAB-LINUX: up, kernel"
check "linux: virtio-mmio through ACPI: /dev/vda appears with the disk's 8192 sectors" \
    has "^VMLAB-LINUX: vda 8192 sectors"
if [ "$(field 'vda sha256 before')" = "$sum_before" ]; then
    ok "linux: the guest reads the disk the host wrote (sha256 equal)"
else
    not_ok "linux: the guest reads the disk the host wrote (guest '$(field 'vda sha256 before')', host $sum_before)"
fi
check "linux: the guest reads back its own write after dropping caches" has "^VMLAB-LINUX: vda write read back OK"
sum_after=$(sha256sum "$disk" | cut -d' ' -f1)
if [ -n "$sum_after" ] && [ "$(field 'vda sha256 after')" = "$sum_after" ] && [ "$sum_after" != "$sum_before" ] &&
   cmp -s <(dd if="$disk" bs=1M skip=1 count=1 2>/dev/null) "$TMP/guest-pattern" &&
   cmp -s <(head -c 1048576 "$disk") <(yes vmlab-host-wrote-this | head -c 1048576); then
    ok "linux: the guest's write reached the image file (host sha256 = guest's, second MiB = pattern)"
else
    not_ok "linux: the guest's write reached the image file (guest '$(field 'vda sha256 after')', host $sum_after)"
fi
check "linux: /init ends in a shell prompt on the serial console" has "vmlab-linux# "
# (Not anchored: input typed before the shell reads it was echoed early, so the answer
# follows the prompt on its line.)
check "linux: the shell runs a command typed on the serial line (6*7 = 42)" \
    has "VMLAB-LINUX: shell says 42"
check "linux: the typed power-off command runs" has "^VMLAB-LINUX: powering off"
# What the kernel said about the tables and the devices, for the log.
grep -E 'ACPI: (RSDP|XSDT|FACP|DSDT|APIC) |ttyS0 at|virtio_blk|^VMLAB-LINUX: (vda|up)' "$TMP/c" |
    head -20 | sed 's/^/#   console: /'
if [ $rc -eq 0 ]; then
    ok "linux: vmlab exits 0 after the i8042 reset (reboot=k)"
else
    not_ok "linux: vmlab exits 0 after the i8042 reset (status $rc)"
    tail -3 "$TMP/err" | sed 's/^/#   /'
    tail -5 "$TMP/c" | sed 's/^/#   console: /'
fi
if ! has "VMLAB-LINUX: shell says 42"; then
    grep -E -A3 'VMLAB-LINUX: shell|vmlab-linux#' "$TMP/c" | head -20 | sed 's/^/#   console: /'
fi
if ! has "^VMLAB-LINUX: vda 8192 sectors"; then
    grep -E '^VMLAB-LINUX|ACPI|virtio' "$TMP/c" | head -60 | sed 's/^/#   console: /'
fi
finish
