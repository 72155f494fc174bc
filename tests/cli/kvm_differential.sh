#!/usr/bin/env bash
# Differential test (issue #11, item 3): the device side of a trace recorded on KVM equals
# the one recorded on the software CPU, timestamps aside, and a KVM trace replays clean.
# Skips, visibly, when /dev/kvm does not open.
source "$(dirname "$0")/lib.sh"
G=$GUESTS

why=$("$VMLAB" run --cpu kvm "$G/hello.elf" 2>&1 >/dev/null)
if [ $? -eq 2 ] && grep -q "KVM is not available" <<<"$why"; then
    skip_all "$why"
fi

dd if=/dev/zero of="$TMP/base.img" bs=1024 count=4096 2>/dev/null

# Port accesses to the legacy PIC (0x20-0x21, 0xa0-0xa1, ELCR 0x4d0-0x4d1) are left out:
# KVM's in-kernel irqchip decodes them, so on KVM they never reach the bus, while the
# software CPU hands them to it.
PIC_PORTS=' pio-(in|out) - 0x(20|21|a0|a1|4d0|4d1) '
# Every guest below makes at least this many device-side accesses: two empty or unreadable
# event lists are a failure, never "equal" (tests/cli/checks_fail.sh shows it).
MIN_EVENTS=20

# diff_run NAME "guest args" vmlab-options... (@DISK@: a fresh copy of the blank disk)
diff_run() {
    local name=$1 args=$2 b
    shift 2
    for b in sim kvm; do
        local opts=()
        for o in "$@"; do opts+=("${o//@DISK@/$TMP/$b.img}"); done
        cp "$TMP/base.img" "$TMP/$b.img"
        timeout "${KVM_RUN_TIMEOUT:-300}" "$VMLAB" run --cpu $b --trace "$TMP/$b.trace" "${opts[@]}" \
            "$G/${name%% *}.elf" -- $args >/dev/null 2>"$TMP/$b.err"
    done
    local why
    if why=$(same_events "$TMP/sim.trace" "$TMP/kvm.trace" $MIN_EVENTS "$PIC_PORTS"); then
        ok "kvm = sim, device side of the trace: $name ($(events_of "$TMP/kvm.trace" "$PIC_PORTS" | wc -l) events)"
    else
        not_ok "kvm = sim, device side of the trace: $name"
        printf '%s\n' "$why" | sed 's/^/#   /'
        head -3 "$TMP/kvm.err" | sed 's/^/#   kvm: /'
    fi
    # Replay reads the disk as it was at the start of the recording.
    cp "$TMP/base.img" "$TMP/kvm.img"
    local out
    out=$("$VMLAB" trace replay "$TMP/kvm.trace" 2>&1)
    if [ $? -eq 0 ] && grep -q '^replay: match' <<<"$out"; then
        ok "KVM trace replays clean: $name"
    else
        not_ok "KVM trace replays clean: $name"
        printf '%s\n' "$out" | head -4 | sed 's/^/#   /'
    fi
}

diff_run "hello" ""
diff_run "blk" "" --block "@DISK@,id=vmlab-disk0"
diff_run "blk packed" "ops=read,write,err ring=packed indirect=1 event_idx=1" --block "@DISK@"
diff_run "rng" "n=64" --rng --seed 7
diff_run "console" "" --console "out=/dev/null,in=hello from host\\n"
diff_run "fault garbage" "mode=garbage"

finish
