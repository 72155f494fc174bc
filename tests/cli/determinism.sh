#!/usr/bin/env bash
# Same guest + same seed = same --stats and a byte-identical trace, run after run; and each
# guest program prints the same on vmlab's software CPU as on QEMU microvm (TCG).
source "$(dirname "$0")/lib.sh"
REL=$(realpath "${VMLAB_REL:-$BUILD/vmlab}")
GUESTS=$(realpath "$GUESTS")

for prog in hello timer blk; do
    args=(--seed 5 --serial none --stats)
    [ $prog = blk ] && args+=(--block mem=64K,id=d --rng)
    (cd "$TMP" && "$REL" run "${args[@]}" --trace "$TMP/$prog-1.trace" "$GUESTS/$prog.elf" 2>"$TMP/$prog-1.stats")
    (cd "$TMP" && "$REL" run "${args[@]}" --trace "$TMP/$prog-2.trace" "$GUESTS/$prog.elf" 2>"$TMP/$prog-2.stats")
    if grep -q "stats: instructions [1-9]" "$TMP/$prog-1.stats" && cmp -s "$TMP/$prog-1.stats" "$TMP/$prog-2.stats"; then
        ok "$prog: identical --stats on two runs with seed 5"
    else
        not_ok "$prog: --stats differ between runs: $(diff "$TMP/$prog-1.stats" "$TMP/$prog-2.stats" | head -4 | tr '\n' ' ')"
    fi
    check "$prog: byte-identical traces on two runs" cmp -s "$TMP/$prog-1.trace" "$TMP/$prog-2.trace"
done

# A different seed changes what the seeded rng device produces (and so the trace).
(cd "$TMP" && "$REL" run --seed 6 --serial none --rng --trace "$TMP/rng6.trace" "$GUESTS/rng.elf" 2>/dev/null)
(cd "$TMP" && "$REL" run --seed 5 --serial none --rng --trace "$TMP/rng5.trace" "$GUESTS/rng.elf" 2>/dev/null)
# The events are compared, not the files: the headers differ by the seed alone.
if why=$(VMLAB=$REL events_differ "$TMP/rng5.trace" "$TMP/rng6.trace"); then
    ok "a different seed gives different rng events"
else
    not_ok "seed has no effect on the rng events: $why"
fi

# The same program, the same output, on vmlab and on QEMU.
if command -v qemu-system-x86_64 >/dev/null; then
    for prog in hello memtest exception timer; do
        "$REL" run "$GUESTS/$prog.elf" -- x y >"$TMP/$prog.vmlab" 2>/dev/null; rv=$?
        QEMU_TIMEOUT=60 guest/qemu-run.sh "$GUESTS/$prog.elf" x y >"$TMP/$prog.qemu" 2>/dev/null; rq=$?
        tr -d '\r' <"$TMP/$prog.qemu" >"$TMP/$prog.qemu2"
        if [ $rv -eq $rq ] && cmp -s "$TMP/$prog.vmlab" "$TMP/$prog.qemu2"; then
            ok "$prog: same output and exit status ($rv) on vmlab and QEMU"
        else
            not_ok "$prog: vmlab (exit $rv) and QEMU (exit $rq) differ: $(diff "$TMP/$prog.vmlab" "$TMP/$prog.qemu2" | head -4 | tr '\n' ' ')"
        fi
    done
else
    not_ok "qemu-system-x86_64 missing (make deps installs it)"
fi
finish
