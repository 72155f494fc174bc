#!/usr/bin/env bash
# The KVM tests inside a QEMU TCG guest with nested KVM (scripts/test-kvm.sh's nested path,
# 3-5 minutes on a quiet machine, up to 9 under load). It runs:
#  - where /dev/kvm does not open here: the KVM tests of `make test` then skip, and this part
#    runs them, so KVM coverage never vanishes by accident;
#  - in CI (CI=true), so the nested path itself stays tested;
#  - with VMLAB_TEST_NESTED=1.
# VMLAB_TEST_NESTED=0 turns it off, and where /dev/kvm opens (the KVM tests ran directly) it
# is not needed: either way one counted skip with its reason.
# Ends with "kvm-nested: N passed, N failed, K skipped".
# part-timeout: 1800 (run-tests.sh; up to 3 nested attempts when QEMU's nested SVM wedges)
cd "$(dirname "$0")/../.."
kvm_opens() { [ -c /dev/kvm ] && (exec 3<>/dev/kvm) 2>/dev/null; }

why=
if [ "${VMLAB_TEST_NESTED:-}" = 0 ]; then
    why="nested-KVM run turned off (VMLAB_TEST_NESTED=0)"
elif [ "${CI:-}" != true ] && [ "${VMLAB_TEST_NESTED:-}" != 1 ] && kvm_opens; then
    why="/dev/kvm opens, the KVM tests ran on it directly (VMLAB_TEST_NESTED=1 runs the nested path too)"
fi
if [ -n "$why" ]; then
    echo "SKIP $why"
    echo "kvm-nested: 0 passed, 0 failed, 1 skipped"
    exit 0
fi
if ! command -v qemu-system-x86_64 >/dev/null; then
    echo "not ok - nested KVM: qemu-system-x86_64 missing (qemu-system-x86: make deps installs it)"
    echo "kvm-nested: 0 passed, 1 failed, 0 skipped"
    exit 1
fi
# Streamed, so a part killed by its timeout still shows how far it got.
out=$(mktemp)
KVM_VIA_QEMU=1 make --no-print-directory BUILD="${BUILD:-build}" test-kvm 2>&1 | tee "$out"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -1)
rm -f "$out"
if [ -n "$line" ]; then
    [[ $line == *skipped ]] || line="$line, 0 skipped"
    echo "kvm-nested: $line"
else
    echo "kvm-nested: 0 passed, 1 failed, 0 skipped"
fi
