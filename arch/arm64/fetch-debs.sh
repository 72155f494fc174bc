#!/usr/bin/env bash
# Fetches the arm64 Debian packages that cannot be installed beside their amd64 twins
# (not Multi-Arch: same) and unpacks them under DIR (default build/arm64/sysroot):
#   libfdt-dev:arm64       libfdt.a for the static vmlab and the arm64 guest programs
#   busybox-static:arm64   the shell of the nested test VM and of Linux guests
#   linux-image-*-arm64    the kernel of the nested test VM (KVM built in) and Linux guests
# Only `apt-get download` (the Debian registry), nothing else. Quiet when all are there.
set -euo pipefail
DIR=${1:-build/arm64/sysroot}
mkdir -p "$DIR/debs"
DIR=$(cd "$DIR" && pwd)
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  dpkg --add-architecture arm64
  apt-get -o DPkg::Lock::Timeout=600 -qq update >/dev/null
fi
# The kernel package linux-image-arm64 depends on right now, e.g. linux-image-6.1.0-57-arm64.
kver=$(apt-cache depends linux-image-arm64:arm64 2>/dev/null |
  sed -n 's/.*Depends: \(linux-image-[0-9][^:]*-arm64\).*/\1/p' | head -1)
[ -n "$kver" ] || { echo "fetch-debs: no linux-image-arm64:arm64 in apt's lists (apt-get update?)" >&2; exit 1; }
for p in libfdt-dev busybox-static "$kver"; do
  [ -f "$DIR/debs/$p.done" ] && continue
  rm -f "$DIR/debs/${p}_"*.deb
  (cd "$DIR/debs" && apt-get -qq download "$p:arm64" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
  deb=$(ls "$DIR/debs/${p}_"*_arm64.deb)
  dpkg-deb -x "$deb" "$DIR"
  rm -f "$deb"
  touch "$DIR/debs/$p.done"
done
# modules.dep for modinfo -b (vmm/kvm/linux/mkinitramfs.sh): the .deb leaves it to depmod.
kdir=$(cd "$DIR/lib/modules" && ls | sort -V | tail -1)
[ -f "$DIR/lib/modules/$kdir/modules.dep" ] || /sbin/depmod -b "$DIR" "$kdir"
# A stable name for the kernel, whatever its version.
ln -sf "$(cd "$DIR/boot" && ls vmlinuz-*-arm64 | sort -V | tail -1)" "$DIR/boot/vmlinuz"
