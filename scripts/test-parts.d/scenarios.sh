#!/usr/bin/env bash
# Every standard scenario on the software CPU and the QEMU peer (KVM ones where /dev/kvm opens).
cd "$(dirname "$0")/../.."
exec harness/vmlab-scenarios run --jobs 2 ${JUNIT:+--junit "$JUNIT"} \
    --results "${BUILD:-build}/scenario-results.json"
