#!/usr/bin/env bash
# `make run`: boots the demo guests on the software CPU and says what happened.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
VMLAB=$BUILD/vmlab
G=$BUILD/guest

echo "== vmlab $($VMLAB --version | cut -d' ' -f2): hello on the software CPU =="
echo "\$ vmlab run --stats $G/hello.elf -- demo"
set +e
$VMLAB run --stats "$G/hello.elf" -- demo
rc=$?
set -e
echo "(exit status $rc = guest exit code $(( (rc - 1) / 2 )) through the debug-exit port)"

if [ -f "$G/blk.elf" ]; then
    echo
    echo "== a virtio-blk disk (8 MiB in memory), a virtio-rng, same seed every run =="
    echo "\$ vmlab run --block mem=8M,id=demo-disk --rng --seed 7 $G/blk.elf"
    set +e
    $VMLAB run --block mem=8M,id=demo-disk --rng --seed 7 "$G/blk.elf"
    rc=$?
    set -e
    echo "(exit status $rc)"
fi
