#!/usr/bin/env bash
# The fuzz reproducers as a user runs them: a crash file is reported (non-zero exit, the
# invariant named), a clean input passes, a directory argument runs every file, and an
# input of every device target (virtio_mmio, virtio_blk, virtio_console, virtio_rng, virtio_net,
# virtio_vsock) recorded as a trace (VMLAB_FUZZ_TRACE, fuzz/fz_trace.h) replays with `vmlab trace
# replay`, also when an invariant stops the run half-way (the test-only
# VMLAB_FUZZ_TEST_ABORT_AFTER fails the N-th status check).
source "$(dirname "$0")/lib.sh"
R=$BUILD/fuzz-repro
DEVICE_TARGETS="virtio_mmio virtio_blk virtio_console virtio_rng virtio_net virtio_vsock"
need=0
for t in $DEVICE_TARGETS qcow2 split_vq; do [ -x "$R/$t" ] || need=1; done
if [ $need = 1 ]; then
    make --no-print-directory BUILD="$BUILD" fuzz-repro >"$TMP/build.log" 2>&1
fi

"$R/virtio_mmio" fuzz/corpus/virtio_mmio >"$TMP/dir.out" 2>&1
rc=$?
n=$(ls fuzz/corpus/virtio_mmio | wc -l)
check "reproducer runs a whole corpus directory ($n inputs)" \
    bash -c "[ $rc -eq 0 ] && grep -q 'reproduce: $n input(s) ran' '$TMP/dir.out'"

# A qcow2 image whose L2 table maps guest data onto itself: writes corrupt it (fuzz finding,
# fuzz/crashes/README.md). While the bug is open the reproducer must keep reporting it;
# once fixed, the input passes and this test checks that instead.
crash=fuzz/crashes/qcow2/l2-maps-data-onto-itself
if grep -q "^qcow2/l2-maps-data-onto-itself" fuzz/crashes/OPEN 2>/dev/null; then
    ASAN_OPTIONS=detect_leaks=0 "$R/qcow2" "$crash" >"$TMP/crash.out" 2>&1
    rc=$?
    check "open qcow2 finding still reproduces (exit $rc, invariant named)" \
        bash -c "[ $rc -ne 0 ] && grep -q 'fuzz invariant violated' '$TMP/crash.out'"
else
    check "fixed qcow2 finding no longer crashes" "$R/qcow2" "$crash"
fi

# check that `vmlab trace replay $1` reports a match; $2 names the check.
check_replays() {
    "$VMLAB" trace replay "$1" >"$TMP/replay.out" 2>&1
    local rc=$?
    check "$2 (exit $rc)" bash -c "[ $rc -eq 0 ] && grep -q '^replay: match' '$TMP/replay.out'"
}

for t in $DEVICE_TARGETS; do
    seed=$(ls -S fuzz/corpus/$t/* | head -1)    # the largest: the most device traffic
    VMLAB_FUZZ_TRACE=$TMP/$t.trace "$R/$t" "$seed" >"$TMP/rec.out" 2>&1
    rc=$?
    check "$t input recorded as a trace (exit $rc)" \
        bash -c "[ $rc -eq 0 ] && [ -s '$TMP/$t.trace' ]"
    check_replays "$TMP/$t.trace" "$t: vmlab trace replay matches the recorded fuzz input"
    case $t in virtio_net|virtio_vsock)
        # The host side's traffic is in the trace (replay has no host side to ask).
        "$VMLAB" trace dump "$TMP/$t.trace" >"$TMP/dump.out" 2>&1
        hin=$(grep -c ' host-in ' "$TMP/dump.out"); hout=$(grep -c ' host-out ' "$TMP/dump.out")
        check "$t: the trace carries host-in ($hin) and host-out ($hout) events" \
            bash -c "[ $hin -ge 1 ] && [ $hout -ge 1 ]" ;;
    esac

    # A run stopped by an invariant (here the test knob, at the 3rd status check): the
    # reproducer fails naming it, and the trace up to that point is closed and replays.
    (VMLAB_FUZZ_TEST_ABORT_AFTER=3 VMLAB_FUZZ_TRACE=$TMP/$t.stop.trace \
        ASAN_OPTIONS=detect_leaks=0 "$R/$t" "$seed" >"$TMP/stop.out" 2>&1) 2>/dev/null
    rc=$?
    check "$t: a stopped run fails with the invariant named (exit $rc)" \
        bash -c "[ $rc -ne 0 ] && grep -q 'fuzz invariant violated' '$TMP/stop.out'"
    check_replays "$TMP/$t.stop.trace" "$t: the stopped run's trace replays"
done

# vsock's timeouts run on the device clock: a host connect the guest never answers is reset
# 2 s after its REQUEST (virtual time), and the trace replays that timer's work.
VMLAB_FUZZ_TRACE=$TMP/timeout.trace "$R/virtio_vsock" fuzz/corpus/virtio_vsock/seed-request-timeout \
    >"$TMP/rec.out" 2>&1
"$VMLAB" trace dump "$TMP/timeout.trace" >"$TMP/dump.out" 2>&1
check "virtio_vsock: an unanswered host connect is closed at 2 s of device time" \
    grep -q '^#[0-9]* 2000000000ns cpu0 host-out virtio-vsock#0 len=13 data=78' "$TMP/dump.out"
check_replays "$TMP/timeout.trace" "virtio_vsock: the timeout's trace replays"

"$R/split_vq" /nonexistent >"$TMP/bad.out" 2>&1
rc=$?
check "missing input file: exit 2 with a message" \
    bash -c "[ $rc -eq 2 ] && grep -q 'cannot stat /nonexistent' '$TMP/bad.out'"
finish
