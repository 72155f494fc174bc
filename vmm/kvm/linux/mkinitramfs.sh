#!/usr/bin/env bash
# Builds the busybox initramfs for Linux guests: mkinitramfs.sh OUT.cpio.gz [KERNEL_VERSION]
# (busybox-static, cpio and linux-image-amd64 are in scripts/deps.sh). Debian's kernel has
# virtio_mmio and virtio_blk as modules: they go in /lib/modules and /init loads them.
# Status (vmm/kvm/README.md): boots to /init and powers off on the KVM backend; /dev/vda
# does not appear yet, because Debian's kernel finds virtio-mmio devices only via ACPI.
set -euo pipefail
out=$1
here=$(cd "$(dirname "$0")" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
kver=${2:-$(ls /lib/modules | sort -V | tail -1)}
mkdir -p "$stage"/{bin,proc,sys,dev,tmp,lib/modules}
for m in drivers/virtio/virtio drivers/virtio/virtio_ring drivers/virtio/virtio_mmio \
         drivers/block/virtio_blk; do
    for ext in .ko .ko.xz; do
        f=/lib/modules/$kver/kernel/$m$ext
        [ -f "$f" ] || continue
        case $ext in
            .ko) cp "$f" "$stage/lib/modules/" ;;
            .ko.xz) xz -dc "$f" > "$stage/lib/modules/$(basename "$m").ko" ;;
        esac
    done
done
cp /bin/busybox "$stage/bin/busybox"
cp "$here/init" "$stage/init"
chmod +x "$stage/init"
(cd "$stage" && find . | cpio -o -H newc --quiet | gzip -9) > "$out"
