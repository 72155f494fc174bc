#!/usr/bin/env bash
# Installs the Debian packages vmlab needs, only those missing; quiet when all are present.
# Each package and why:
#   libunicorn-dev      software CPU backend (sim/)
#   libcapstone-dev     decoding new guest blocks to find rdtsc (sim/)
#   libfdt-dev          device tree for the guest (host builds it, guest reads it)
#   check               unit tests (tests/)
#   pkg-config          build flags
#   libjson-c-dev       control-socket protocol (vmm/control)
#   libprotobuf-c-dev protobuf-c-compiler  composite disk format (devices/disk)
#   protobuf-compiler   protoc --decode checks of composite files we write
#   gdisk               sgdisk -v checks of the GPT we write
#   qemu-system-x86 qemu-utils  the peer VMM (same guests under QEMU microvm), qemu-img checks
#   lcov                coverage reports
#   clang llvm libclang-rt-14-dev  libFuzzer + sanitizer runtimes for fuzz targets
#   afl++               AFL++ builds of the fuzz targets
#   python3-matplotlib  report plots (harness/, reports/)
#   hyperfine           boot-to-exit timing in make bench
#   busybox-static cpio linux-image-amd64  Linux guests and the nested-KVM test VM
#   kmod                modinfo: the initramfs takes virtio modules with their dependencies
#                       (build-essential's libc6-dev and zlib1g-dev: the libc.a and libz.a
#                       of the initramfs's static test programs, guest/linux/)
#   acpica-tools        iasl -d / acpiexec checks of the ACPI tables we write (tests/test_acpi)
#   zlib1g-dev libzstd-dev  qcow2 compressed clusters (deflate and zstd; static archives
#                       linked into the release binary)
#   libslirp-dev        virtio-net --net user (the helper build/vmlab-slirp, slirp_helper/), QEMU's user networking
#   tcpdump tshark      tcpdump -r / tshark -r checks of the pcap that trace export writes
#   iproute2            ip tuntap / ip addr in the TAP test's own network namespace
#   ethtool             ethtool -k: the TAP test reads the offloads vmlab set (TUNSETOFFLOAD)
#   procps              pgrep: the VM manager's tests count its child processes
#   libseccomp-dev      the VM process's system-call allow-list (vmm/sandbox.c; libseccomp.a
#                       for the static release binary)
#   gcc-aarch64-linux-gnu libc6-dev-arm64-cross  `make ARCH=arm64`: the static arm64 vmlab and
#                       arm64 guest programs (arch/arm64/arm64.mk)
#   libjson-c-dev:arm64 libprotobuf-c-dev:arm64 zlib1g-dev:arm64 libzstd-dev:arm64
#   libseccomp-dev:arm64  the arm64 vmlab's libraries (multiarch; libfdt-dev:arm64 cannot sit
#                       beside libfdt-dev, so arch/arm64/fetch-debs.sh unpacks it into the build)
#   qemu-system-arm     make test-kvm-arm64: the arm64 machine with nested KVM (TCG)
set -euo pipefail

PKGS=(
  build-essential pkg-config
  libunicorn-dev libcapstone-dev libfdt-dev check
  libjson-c-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler
  gdisk qemu-system-x86 qemu-utils lcov
  clang llvm libclang-rt-14-dev afl++
  python3-matplotlib hyperfine
  busybox-static cpio linux-image-amd64 kmod acpica-tools
  zlib1g-dev libzstd-dev
  libslirp-dev tcpdump tshark iproute2 ethtool procps
  libseccomp-dev
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-system-arm
  libjson-c-dev:arm64 libprotobuf-c-dev:arm64 zlib1g-dev:arm64 libzstd-dev:arm64
  libseccomp-dev:arm64
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
SUDO=
[ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
# Another apt or dpkg (an unattended upgrade, a second make) may hold the locks: wait for it
# (up to 10 minutes) rather than fail at once.
APT=($SUDO apt-get -o DPkg::Lock::Timeout=600 -qq)
# The :arm64 packages need the architecture known to dpkg before apt's lists are read.
dpkg --print-foreign-architectures | grep -qx arm64 || $SUDO dpkg --add-architecture arm64
"${APT[@]}" update >/dev/null
"${APT[@]}" install -y "${missing[@]}" >/dev/null
echo "deps: done"
