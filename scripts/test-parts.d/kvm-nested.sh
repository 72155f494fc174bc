#!/usr/bin/env bash
# The KVM tests inside a QEMU TCG guest with nested KVM (the path for machines without a
# usable /dev/kvm), so both paths stay tested. In CI (CI=true) or with VMLAB_TEST_NESTED=1;
# about 1.5 minutes. Ends with "kvm-nested: N passed, N failed".
cd "$(dirname "$0")/../.."
if [ "${CI:-}" != true ] && [ "${VMLAB_TEST_NESTED:-0}" != 1 ]; then
    echo "# SKIP nested-KVM run: only in CI or with VMLAB_TEST_NESTED=1 (make test-kvm KVM_VIA_QEMU=1 runs it by hand)"
    echo "kvm-nested: 0 passed, 0 failed"
    exit 0
fi
out=$(KVM_VIA_QEMU=1 make --no-print-directory BUILD="${BUILD:-build}" test-kvm 2>&1)
echo "$out"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' <<<"$out" | tail -1)
if [ -n "$line" ]; then
    echo "kvm-nested: $line"
else
    echo "kvm-nested: 0 passed, 1 failed"
fi
