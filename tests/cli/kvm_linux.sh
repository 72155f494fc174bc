#!/usr/bin/env bash
# Debian's kernel (linux-image-amd64) with the busybox initramfs of vmm/kvm/linux boots on
# the KVM backend through the bzImage loader, runs /init with the serial console, and
# powers off cleanly (reboot=k: the i8042 reset line), via $BUILD/kvm/kvm_linux_boot.
# Runs where /dev/kvm is real KVM (and in `make test-kvm`'s nested VM); skips, visibly,
# without /dev/kvm, and on kvm-pvm (this machine kind's /dev/kvm emulates such a guest
# instruction by instruction: a boot takes far beyond the test budget) unless KVM_LINUX=1.
source "$(dirname "$0")/lib.sh"
BOOT=$BUILD/kvm/kvm_linux_boot
INITRD=$BUILD/kvm/linux-initramfs.cpio.gz
KERNEL=${KVM_LINUX_KERNEL:-$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1)}

reason=
if [ ! -c /dev/kvm ] || ! (exec 3<>/dev/kvm) 2>/dev/null; then
    reason="/dev/kvm does not open"
elif [ -d /sys/module/kvm_pvm ] && [ "${KVM_LINUX:-0}" != 1 ]; then
    reason="/dev/kvm is kvm-pvm (guest code emulated, boot too slow; KVM_LINUX=1 forces it)"
elif [ -z "$KERNEL" ] || [ ! -r "$KERNEL" ]; then
    reason="no kernel in /boot (linux-image-amd64, make deps)"
elif [ ! -x "$BOOT" ] || [ ! -r "$INITRD" ]; then
    reason="$BOOT or $INITRD not built (make test-kvm builds them)"
fi
if [ -n "$reason" ]; then
    skip "kvm_linux: $reason"
    echo "1..0 # SKIP $reason"
    exit 0
fi

timeout 600 "$BOOT" "$KERNEL" "$INITRD" "console=ttyS0 reboot=k panic=-1" 400 \
    >"$TMP/console" 2>"$TMP/err"
rc=$?
tr -d '\r' <"$TMP/console" >"$TMP/c"
has() { grep -q -- "$1" "$TMP/c"; }
check "linux: the kernel prints on the 8250 console" has "Linux version"
check "linux: the initramfs /init runs (busybox userspace, serial console)" has "^VMLAB-LINUX: up, kernel"
check "linux: /init reaches the power-off" has "^VMLAB-LINUX: powering off"
if [ $rc -eq 0 ] && grep -q "i8042 reset" "$TMP/err"; then
    ok "linux: powers off cleanly through the i8042 reset line (status 0)"
else
    not_ok "linux: powers off cleanly (status $rc)"
    tail -3 "$TMP/err" | sed 's/^/#   /'
    tail -5 "$TMP/c" | sed 's/^/#   console: /'
fi
finish
