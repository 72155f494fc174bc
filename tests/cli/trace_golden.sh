#!/usr/bin/env bash
# Every checked-in golden trace (traces/golden/*.trace: the trace room's recipes in
# traces/golden/record.sh and the scenarios' golden_trace files) replays to a match
# against today's device models, with no CPU; and replaying each device alone matches too.
source "$(dirname "$0")/lib.sh"

shopt -s nullglob
golden=(traces/golden/*.trace)
if [ ${#golden[@]} -eq 0 ]; then
    not_ok "golden traces present in traces/golden"
    finish; exit
fi
for t in "${golden[@]}"; do
    name=$(basename "$t" .trace)
    out=$("$VMLAB" trace replay "$t" 2>&1); rc=$?
    if [ $rc -eq 0 ] && grep -q '^replay: match' <<<"$out"; then
        ok "golden $name replays: $(sed -n 's/^replay: match: //p' <<<"$out")"
    else
        not_ok "golden $name (exit $rc): $(head -c 2000 <<<"$out")"
    fi
    # Each virtio device on its own (the device filter).
    for dev in $("$VMLAB" trace info "$t" | sed -nE 's/^device ([0-9]+): (virtio-[a-z]+) .*/\1/p'); do
        out=$("$VMLAB" trace replay --device "#$dev" "$t" 2>&1); rc=$?
        if [ $rc -eq 0 ] && grep -q '^replay: match' <<<"$out"; then ok "golden $name device #$dev alone"
        else not_ok "golden $name device #$dev alone (exit $rc): $(head -c 1000 <<<"$out")"; fi
    done
done
finish
