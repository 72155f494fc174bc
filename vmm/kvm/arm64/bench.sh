# The arm64 figures (make bench-kvm-arm64; sourced by init after tests.sh when present):
# boot-to-exit on vmlab and on QEMU -accel kvm in the same nested VM, best and median of N
# runs (timeit.c). The same guests on both: a bare Image that powers off through PSCI at
# once, and Debian's kernel with the busybox initramfs and a 4 MiB virtio-blk disk, powered
# off by /init (vmlab_autooff on the command line). hello.elf is vmlab-only (QEMU's virt
# machine has no RAM at 1 MiB). Lines "VMLAB-ARM64-FIGURE: ..." for the host.
T=/w/timeit
Q="/q/lib/ld-linux-aarch64.so.1 --library-path /q/lib /q/usr/bin/qemu-system-aarch64"
# -serial null: a PL011 whose output goes nowhere, so QEMU's console writes trap as vmlab's do.
QM="-M virt,gic-version=3 -accel kvm -cpu host -display none -nodefaults -serial null -no-reboot"
fig() { echo "VMLAB-ARM64-FIGURE: $*"; }
fig "psci-off Image, vmlab: $($T 10 /w/vmlab run --kernel /w/images/psci-off.img)"
fig "psci-off Image, qemu-kvm: $($T 10 $Q $QM -m 128 -kernel /w/images/psci-off.img)"
fig "hello.elf, vmlab: $($T 10 /w/vmlab run /w/guest/hello.elf)"
dd if=/dev/zero of=/tmp/bench.img bs=1048576 count=4 2>/dev/null
L=/w/linux
fig "linux boot to power-off, vmlab: $($T 3 /w/vmlab run --mem 512M --kernel $L/vmlinuz \
    --initrd $L/initramfs.cpio.gz --block /tmp/bench.img --cmdline vmlab_autooff)"
fig "linux boot to power-off, qemu-kvm: $($T 3 $Q $QM -m 512 -kernel $L/vmlinuz \
    -initrd $L/initramfs.cpio.gz -append 'console=ttyAMA0 panic=-1 vmlab_autooff' \
    -drive if=none,file=/tmp/bench.img,format=raw,id=d -device virtio-blk-device,drive=d)"
