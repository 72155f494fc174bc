# Linux on arm64 KVM (sourced by tests.sh inside the nested VM): Debian's arm64 kernel with
# the busybox initramfs of vmm/kvm/linux/ (arm64 busybox and modules) on vmlab, a 4 MiB
# virtio-blk disk whose first MiB the host side wrote; /init checksums it, writes its
# second MiB, and the typed vmlab-poweroff powers off through PSCI. Console, status and the
# disk afterwards go back to the host (checks.sh, "linux").
yes vmlab-host-wrote-this | head -c 1048576 >$R/linux.img
dd if=/dev/zero bs=1048576 count=3 2>/dev/null >>$R/linux.img
sha256sum $R/linux.img | cut -d' ' -f1 >$R/linux.sum-before
t0=$(ms)
timeout 150 $W/vmlab run --mem 512M --kernel $W/linux/vmlinuz --initrd $W/linux/initramfs.cpio.gz \
    --block $R/linux.img \
    --serial-in '\n\n\n\n\n\n\n\necho VMLAB-LINUX: shell says $((6*7))\nvmlab-poweroff\n' \
    >$R/linux.out 2>$R/linux.err
echo $? >$R/linux.rc
echo $(( $(ms) - t0 )) >$R/linux.ms
echo "VMLAB-ARM64: ran linux: status $(cat $R/linux.rc), $(cat $R/linux.ms) ms"
