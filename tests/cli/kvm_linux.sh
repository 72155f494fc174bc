#!/usr/bin/env bash
# Linux guests through `vmlab run --kernel`.
#  - Bad input (any machine; the sim backend, since loading fails before a CPU runs): a file
#    that is not a bzImage, and an initrd larger than the guest RAM: one clear error, exit 2.
#  - Debian's kernel (linux-image-amd64) with the busybox initramfs of vmm/kvm/linux boots on
#    `--cpu kvm`, prints on the 8250 console, runs /init and powers off through the i8042
#    reset line (reboot=k), vmlab exiting 0. Runs where /dev/kvm is real KVM (and in
#    `make test-kvm`'s nested VM); skips, visibly, without /dev/kvm, and on kvm-pvm (this
#    machine kind's /dev/kvm emulates such a guest instruction by instruction: a boot takes
#    far beyond the test budget) unless KVM_LINUX=1.
source "$(dirname "$0")/lib.sh"
INITRD=$BUILD/kvm/linux-initramfs.cpio.gz
KERNEL=${KVM_LINUX_KERNEL:-$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1)}

# expect_error DESC WANT-SUBSTRING ARGS...: exit 2, one "vmlab: ..." line containing WANT.
expect_error() {
    local desc=$1 want=$2; shift 2
    local out rc
    out=$("$VMLAB" run "$@" 2>&1 >/dev/null); rc=$?
    if [ $rc -eq 2 ] && [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] && [[ "$out" == "vmlab: "*"$want"* ]]; then
        ok "$desc"
    else
        not_ok "$desc (exit $rc, stderr: $out)"
    fi
}
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
    skip "kvm_linux: initrd-too-large check: no kernel in /boot (linux-image-amd64, make deps)"
fi

reason=
if [ ! -c /dev/kvm ] || ! (exec 3<>/dev/kvm) 2>/dev/null; then
    reason="/dev/kvm does not open"
elif [ -d /sys/module/kvm_pvm ] && [ "${KVM_LINUX:-0}" != 1 ]; then
    reason="/dev/kvm is kvm-pvm (guest code emulated, boot too slow; KVM_LINUX=1 forces it)"
elif [ -z "$KERNEL" ] || [ ! -r "$KERNEL" ]; then
    reason="no kernel in /boot (linux-image-amd64, make deps)"
elif [ ! -r "$INITRD" ]; then
    reason="$INITRD not built (make test-kvm builds it)"
fi
if [ -n "$reason" ]; then
    skip "kvm_linux: boot: $reason"
    finish
    exit
fi

t0=$SECONDS
timeout 600 "$VMLAB" run --cpu kvm --mem 512M --kernel "$KERNEL" --initrd "$INITRD" \
    >"$TMP/console" 2>"$TMP/err"
rc=$?
echo "# kvm_linux: boot to power-off took $((SECONDS - t0)) s"
tr -d '\r' <"$TMP/console" >"$TMP/c"
has() { grep -q -- "$1" "$TMP/c"; }
check "linux: the kernel prints on the 8250 console" has "Linux version"
check "linux: the initramfs /init runs (busybox userspace, serial console)" has "^VMLAB-LINUX: up, kernel"
check "linux: /init reaches the power-off" has "^VMLAB-LINUX: powering off"
if [ $rc -eq 0 ]; then
    ok "linux: vmlab exits 0 after the i8042 reset (reboot=k)"
else
    not_ok "linux: vmlab exits 0 after the i8042 reset (status $rc)"
    tail -3 "$TMP/err" | sed 's/^/#   /'
    tail -5 "$TMP/c" | sed 's/^/#   console: /'
fi
finish
