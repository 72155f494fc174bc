#!/usr/bin/env bash
# vmlab-KVM vs QEMU microvm -accel kvm (skips where /dev/kvm does not open).
cd "$(dirname "$0")/../.."
exec env BUILD=${BUILD:-build} vmm/kvm/bench_kvm.sh
