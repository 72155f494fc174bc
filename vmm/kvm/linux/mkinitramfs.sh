#!/usr/bin/env bash
# Builds the busybox initramfs for Linux guests: mkinitramfs.sh OUT.cpio.gz [KERNEL_VERSION]
# (busybox-static, cpio, kmod and linux-image-amd64 are in scripts/deps.sh). Debian's kernel
# has virtio, virtio_ring, virtio_mmio, virtio_blk and virtio_net (with failover and
# net_failover) as modules: they go in /lib/modules, with their dependencies (modinfo -F
# depends) first, and /lib/modules/order lists them in load order for /init (insmod, no
# modprobe). A module built into the kernel (modinfo says "(builtin)") is skipped.
# MODROOT=DIR and BUSYBOX=FILE build it for another architecture: modules from
# DIR/lib/modules (arm64: Debian's arm64 kernel unpacked by arch/arm64/fetch-debs.sh).
# The network part: udhcpc's hook (udhcpc.script) and the test command vmlab-net.
set -euo pipefail
out=$1
here=$(cd "$(dirname "$0")" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
MODROOT=${MODROOT:-/}
BUSYBOX=${BUSYBOX:-/bin/busybox}
kver=${2:-$(ls "$MODROOT/lib/modules" | sort -V | tail -1)}
mkdir -p "$stage"/{bin,proc,sys,dev,tmp,lib/modules,etc/udhcpc}
PATH=$PATH:/sbin:/usr/sbin

order=()
add_module() {    # $1 module name: its dependencies, then itself, each once
    local m=$1 f d
    for d in "${order[@]}"; do [ "$d" = "$m" ] && return 0; done
    f=$(modinfo -b "$MODROOT" -k "$kver" -F filename "$m" 2>/dev/null | head -1) || true
    case $f in
        "") echo "mkinitramfs: module $m not found for kernel $kver" >&2; return 1 ;;
        *.ko|*.ko.xz|*.ko.zst|*.ko.gz) ;;
        *) return 0 ;;          # (builtin)
    esac
    for d in $(modinfo -b "$MODROOT" -k "$kver" -F depends "$m" | tr ',' ' '); do
        add_module "$d"
    done
    for d in "${order[@]}"; do [ "$d" = "$m" ] && return 0; done
    case $f in
        *.ko) cp "$f" "$stage/lib/modules/$m.ko" ;;
        *.ko.xz) xz -dc "$f" >"$stage/lib/modules/$m.ko" ;;
        *.ko.zst) zstd -qdc "$f" >"$stage/lib/modules/$m.ko" ;;
        *.ko.gz) gzip -dc "$f" >"$stage/lib/modules/$m.ko" ;;
    esac
    order+=("$m")
}
for m in virtio_mmio virtio_blk virtio_net; do
    add_module "$m"
done
# vsock, input and balloon (tests/cli/linux_vsock.sh, linux_input_balloon.sh): each loads
# after its dependencies; evdev gives the input devices their /dev/input/eventN.
for m in vmw_vsock_virtio_transport virtio_input evdev virtio_balloon; do
    add_module "$m"
done
printf '%s\n' "${order[@]}" >"$stage/lib/modules/order"
cp "$BUSYBOX" "$stage/bin/busybox"
cp "$here/init" "$stage/init"
# Test programs for /bin (guest/linux/, static): INITRAMFS_PROGS="FILE...".
for p in ${INITRAMFS_PROGS:-}; do
    cp "$p" "$stage/bin/"
done
cp "$here/udhcpc.script" "$stage/etc/udhcpc/default.script"
cp "$here/vmlab-net" "$stage/bin/vmlab-net"
chmod +x "$stage/init" "$stage/etc/udhcpc/default.script" "$stage/bin/vmlab-net"
(cd "$stage" && find . | cpio -o -H newc --quiet | gzip -9) > "$out"
