#!/usr/bin/env bash
# tests/cli/linux_vsock.sh on KVM (LINUX_CPU=kvm, the ASan vmlab): Debian's
# vmw_vsock_virtio_transport against vmlab's hybrid Unix socket, 1 MiB each way in both
# directions with CRC-32s compared, and a connect to a port no host socket serves refused.
# The host side is vmlab-vsock's serve/host-connect (static, no python), so it runs where
# kvm_linux.sh does (real KVM, and `make test-kvm`'s nested VM); the same counted skip elsewhere.
source "$(dirname "$0")/lib.sh"
KERNEL=${LINUX_KERNEL:-$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1)}
linux_boot_or_skip "kvm_linux_vsock" "$KERNEL" "$(linux_kvm_unfit)"
LINUX_CPU=kvm LINUX_VMLAB=$VMLAB LINUX_KERNEL=$KERNEL exec bash "$(dirname "$0")/linux_vsock.sh"
