#!/usr/bin/env bash
# `make test-kvm-arm64`: the arm64 KVM backend, tested under nested KVM on this x86 host.
# Boots qemu-system-aarch64 (TCG, -M virt,virtualization=on,gic-version=3 -cpu max without
# pauth and SVE, which slow TCG down) with Debian's arm64 kernel (KVM built in, VHE) and an
# initramfs holding the static arm64 busybox, the static arm64 vmlab and guest programs and
# vmm/kvm/arm64/{init,tests.sh,cases.sh}. Inside, every run of cases.sh goes on arm64 KVM;
# the results come back over the console (base64 tar.gz) and are checked here:
#  - each guest program: the same output, exit status and disk as the same program built for
#    x86 on the software CPU (build/vmlab --cpu sim), and the same device-side trace events
#    (timestamps aside; the UART and exit device are ports on x86 and MMIO on arm64, mapped);
#  - each arm64 trace replays clean on x86 (`vmlab trace replay`, no CPU);
#  - bad input: exit 2 and one clear error line.
# Prints TAP lines and ends with "N passed, N failed, K skipped".
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
A64=$BUILD/arm64
SYSROOT=$A64/sysroot
VMLAB_X86=${VMLAB_X86:-$BUILD/vmlab}
OUT=$A64/nested
n=0; pass=0; fail=0; skip=0
ok() { n=$((n + 1)); pass=$((pass + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $*"; }
finish() { echo "1..$n"; echo "$pass passed, $fail failed, $skip skipped"; [ $fail -eq 0 ]; exit; }

for f in "$A64/vmlab" "$SYSROOT/boot/vmlinuz" "$SYSROOT/bin/busybox" "$VMLAB_X86" \
         "$A64/guest/hello.elf" "$BUILD/guest/hello.elf" "$A64/guest/linux/vmlab-vsock" \
         "$BUILD/guest/linux/vmlab-vsock"; do
    [ -e "$f" ] || { not_ok "arm64 nested KVM: $f missing (make ARCH=arm64 && make)"; finish; }
done
command -v qemu-system-aarch64 >/dev/null ||
    { not_ok "arm64 nested KVM: qemu-system-aarch64 missing (qemu-system-arm: make deps)"; finish; }

# KVM_ARM64_REUSE=1: check the results of the last nested runs again (developing checks).
if [ "${KVM_ARM64_REUSE:-0}" != 1 ] || [ ! -f "$OUT/initramfs.cpio.gz" ]; then
    rm -rf "$OUT"
    stage=$OUT/root
    mkdir -p "$stage"/{bin,proc,sys,dev,tmp,w/guest,w/x86,w/images}
    cp "$SYSROOT/bin/busybox" "$stage/bin/"
    cp vmm/kvm/arm64/init "$stage/init"
    chmod +x "$stage/init"
    cp "$A64/vmlab" vmm/kvm/arm64/tests.sh vmm/kvm/arm64/cases.sh vmm/kvm/arm64/hostside.sh \
        "$A64/guest/linux/vmlab-vsock" "$stage/w/"
    [ -f vmm/kvm/arm64/linux.sh ] && cp vmm/kvm/arm64/linux.sh "$stage/w/"
    cp "$A64"/guest/*.elf "$stage/w/guest/"
    # Linux on vmlab inside (linux.sh): the same kernel, the busybox initramfs for arm64.
    mkdir -p "$stage/w/linux"
    cp -L "$SYSROOT/boot/vmlinuz" "$stage/w/linux/vmlinuz"
    kver=$(basename "$(readlink -f "$SYSROOT/boot/vmlinuz")"); kver=${kver#vmlinuz-}
    MODROOT=$SYSROOT BUSYBOX=$SYSROOT/bin/busybox vmm/kvm/linux/mkinitramfs.sh \
        "$stage/w/linux/initramfs.cpio.gz" "$kver"
    cp "$BUILD/guest/hello.elf" "$stage/w/x86/"
    # KVM_ARM64_BENCH=1 (make bench-kvm-arm64): QEMU for arm64 and the timing runs too.
    if [ "${KVM_ARM64_BENCH:-0}" = 1 ]; then
        arch/arm64/fetch-qemu.sh "$A64/qemu" || { not_ok "arm64 figures: QEMU for arm64 (arch/arm64/fetch-qemu.sh)"; finish; }
        mkdir -p "$stage/q"
        cp -r "$A64/qemu/root/." "$stage/q/"
        aarch64-linux-gnu-gcc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -static \
            -o "$stage/w/timeit" vmm/kvm/arm64/timeit.c
        cp vmm/kvm/arm64/bench.sh "$stage/w/"
    fi
    /usr/bin/python3 vmm/kvm/arm64/mkimages.py "$stage/w/images"
    initrd=$OUT/initramfs.cpio.gz
    (cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1) >"$initrd"
    echo "# arm64 nested KVM: $(readlink -f "$SYSROOT/boot/vmlinuz" | xargs basename), initramfs $(du -h "$initrd" | cut -f1), qemu-system-aarch64 TCG"
fi

# boot_nested GIC DIR [KERNEL-ARGS]: one boot of the nested VM with a GICv$GIC (its KVM then
# makes that vGIC), the results into DIR/results; fails (counted) when none came back.
boot_nested() {
    local gic=$1 dir=$2 extra=${3:-} log=$2/console.log t0 qrc
    if [ "${KVM_ARM64_REUSE:-0}" = 1 ] && [ -d "$dir/results" ]; then
        echo "# KVM_ARM64_REUSE=1: the results of the last GICv$gic run"
        return 0
    fi
    rm -rf "$dir"
    mkdir -p "$dir/results"
    t0=$(date +%s%N)
    timeout "${KVM_ARM64_TIMEOUT:-600}" qemu-system-aarch64 -M virt,virtualization=on,gic-version=$gic \
        -cpu max,pauth=off,sve=off -m 1536 -smp 1 -accel tcg \
        -kernel "$SYSROOT/boot/vmlinuz" -initrd "$OUT/initramfs.cpio.gz" \
        -append "console=ttyAMA0 panic=-1 rdinit=/init $extra" \
        -display none -monitor none -serial "file:$log" -no-reboot </dev/null
    qrc=$?
    echo "# nested VM with GICv$gic: $(( ($(date +%s%N) - t0) / 1000000 )) ms, qemu status $qrc"
    grep -a '^VMLAB-ARM64: ' "$log" | tr -d '\r' | sed 's/^VMLAB-ARM64: /# /'
    grep -a '^VMLAB-ARM64-FIGURE: ' "$log" | tr -d '\r' | sed 's/^VMLAB-ARM64-FIGURE: /# figure: /'
    if ! grep -aq '^VMLAB-ARM64-RESULTS-END' "$log"; then
        not_ok "arm64 nested VM (GICv$gic) finished and sent its results (console in $log)"
        tail -8 "$log" | tr -d '\r' | sed 's/^/#   /'
        return 1
    fi
    ok "arm64 nested VM (GICv$gic) finished and sent its results"
    sed -n '/^VMLAB-ARM64-RESULTS-BEGIN/,/^VMLAB-ARM64-RESULTS-END/p' "$log" | tr -d '\r' |
        grep -v '^VMLAB-ARM64' | base64 -d | tar -xz -C "$dir/results"
}

source vmm/kvm/arm64/checks.sh
X86=$OUT/x86
rm -rf "$X86"
mkdir -p "$X86"
# Everything on the vGICv3 machine, the issue's main line.
boot_nested 3 "$OUT/gicv3" && check_results 3 "$OUT/gicv3/results"
# The vGICv2 fallback (a host GIC without v3): the guest runtime's GICv2 path (it takes the
# GIC the FDT names): device interrupts, the timer, exceptions, vsock's timer tick; the
# hung-guest check reading the v2 distributor; and Linux, whose GIC driver takes the v2 node
# vmlab writes. The list is tests.sh's QUICK_CASES.
[ "${KVM_ARM64_BENCH:-0}" = 1 ] ||
    { boot_nested 2 "$OUT/gicv2" vmlab_quick &&
      check_results 2 "$OUT/gicv2/results" \
          "$(sed -n 's/^QUICK_CASES="\(.*\)"$/\1/p' vmm/kvm/arm64/tests.sh) linux"; }
finish
