#!/usr/bin/env bash
# Guest-visible virtio-blk round trips, vmlab sim vs QEMU microvm TCG (guest/virtio/bench_latency.py).
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 guest/virtio/bench_latency.py
