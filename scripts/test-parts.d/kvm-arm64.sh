#!/usr/bin/env bash
# The arm64 KVM backend inside qemu-system-aarch64 TCG with nested KVM (make test-kvm-arm64:
# two nested boots, vGICv3 with every case and vGICv2 with hello, blk and Linux; 40 s in all
# on a quiet host, 1 m 50 s with the 2 cores shared by several jobs). Always runs: this
# x86 host has no other way to run arm64 KVM. VMLAB_TEST_ARM64=0 turns it off (one counted
# skip). Ends with "kvm-arm64: N passed, N failed, K skipped".
cd "$(dirname "$0")/../.."
if [ "${VMLAB_TEST_ARM64:-}" = 0 ]; then
    echo "SKIP arm64 nested-KVM run turned off (VMLAB_TEST_ARM64=0)"
    echo "kvm-arm64: 0 passed, 0 failed, 1 skipped"
    exit 0
fi
out=$(mktemp)
make --no-print-directory BUILD="${BUILD:-build}" test-kvm-arm64 2>&1 | tee "$out"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -1)
rm -f "$out"
if [ -n "$line" ]; then
    echo "kvm-arm64: $line"
else
    echo "kvm-arm64: 0 passed, 1 failed, 0 skipped"
fi
