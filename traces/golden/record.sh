#!/usr/bin/env bash
# Re-records the trace room's golden traces (`make traces-golden`): small runs of the guest
# test programs on the software CPU. Each line below is the whole recipe of one trace; a
# file-backed disk is made fresh in a scratch folder (the trace carries the content the
# run read, so it replays anywhere without the image). The other *.trace files in this directory
# belong to scenarios (scenarios/*.toml golden_trace; `harness/vmlab-scenarios run
# --update-baselines` re-records them): never write those names here.
# tests/cli/trace_golden.sh replays every *.trace in this directory.
#   usage: traces/golden/record.sh VMLAB GUESTS_DIR OUT_DIR
set -euo pipefail
V=$1 G=$2 OUT=$3
abs() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
V=$(abs "$V") G=$(abs "$G") OUT=$(abs "$OUT")
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
rec() {     # NAME EXPECTED-EXIT ARGS... (run in the scratch folder)
    local name=$1 want=$2 rc=0; shift 2
    (cd "$SCRATCH" && "$V" run --quiet --serial none --seed 1 --trace "$OUT/$name.trace" "$@" \
        >/dev/null) || rc=$?
    if [ "$rc" -ne "$want" ]; then
        echo "golden $name: vmlab exited $rc, expected $want" >&2
        exit 1
    fi
    echo "golden $name: $(stat -c %s "$OUT/$name.trace") bytes"
}
rec blk-split-8k     1 --block mem=8K,id=d0 "$G/blk.elf" -- mode=irq
rec blk-packed-8k    1 --block mem=8K,id=d0 "$G/blk.elf" -- mode=irq ring=packed indirect=1 event_idx=1
rec rng-console-blk  1 --rng --console 'out=none,in=x\n' --block mem=8K "$G/rng.elf"
# A 64 KiB raw image with a fixed pattern; the guest reads it all, then writes 8 sectors.
/usr/bin/python3 -c 'import sys; sys.stdout.buffer.write(bytes((i * 13 + (i >> 9) * 7) & 0xff for i in range(65536)))' > "$SCRATCH/disk.img"
rec blk-file-64k     1 --block disk.img,id=d0 "$G/blk.elf" -- mode=irq
