#!/usr/bin/env bash
# Debian's kernel (linux-image-amd64) on the software CPU, on any machine: the busybox
# initramfs of vmm/kvm/linux boots to the shell prompt on the serial console, the guest
# reads what the host wrote on a virtio-blk disk and writes a pattern that reaches the
# image file, the shell runs the typed commands, the last of which powers off; vmlab exits
# 0 (the same checks as kvm_linux.sh, lib.sh linux_checks). Then the determinism the
# software CPU promises: a second boot of the same kernel, initramfs, disk and seed writes
# a byte-identical trace, and that trace replays without a CPU.
# Runs the release build ($BUILD/vmlab): the same code as the ASan one, and a boot is
# 7.8 G guest instructions (sim/README.md).
source "$(dirname "$0")/lib.sh"
V=${SIM_LINUX_VMLAB:-$BUILD/vmlab}
INITRD=$LINUX_INITRD
KERNEL=${SIM_LINUX_KERNEL:-$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1)}

need_built "$V"
linux_boot_or_skip sim_linux "$KERNEL"

# boot N: a fresh disk (same path, same bytes every time), console and trace of run N
boot() {
    linux_disk
    local t0=${EPOCHREALTIME/./}
    timeout 600 "$V" run --cpu sim --mem 512M --kernel "$KERNEL" --initrd "$INITRD" \
        --block "$LINUX_DISK" --serial-in "$LINUX_TYPED" --trace "$TMP/$1.trace" \
        >"$TMP/console$1" 2>"$TMP/err$1"
    local rc=$?
    echo "# sim_linux: boot $1 to power-off took $(((${EPOCHREALTIME/./} - t0) / 1000)) ms"
    return $rc
}

boot 1
linux_checks "$TMP/console1" "$TMP/err1" $?
cp "$LINUX_DISK" "$TMP/disk-after-1.img"
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
finish
