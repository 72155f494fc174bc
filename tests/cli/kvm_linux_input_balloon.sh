#!/usr/bin/env bash
# tests/cli/linux_input_balloon.sh on KVM (LINUX_CPU=kvm, the ASan vmlab): Debian's kernel
# reads the virtio-input device through evdev and gives memory to virtio-balloon, driven by
# the control socket, as on the software CPU. Runs where kvm_linux.sh does (real KVM, and
# `make test-kvm`'s nested VM); the same counted skip elsewhere.
source "$(dirname "$0")/lib.sh"
KERNEL=${LINUX_KERNEL:-$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1)}
linux_boot_or_skip "kvm_linux_input_balloon" "$KERNEL" "$(linux_kvm_unfit)"
LINUX_CPU=kvm LINUX_VMLAB=$VMLAB LINUX_KERNEL=$KERNEL exec bash "$(dirname "$0")/linux_input_balloon.sh"
