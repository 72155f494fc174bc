#!/usr/bin/env bash
# The fuzz reproducers as a user runs them: a crash file is reported (non-zero exit, the
# invariant named), a clean input passes, a directory argument runs every file, and a
# virtio-mmio input recorded as a trace (VMLAB_FUZZ_TRACE) replays with `vmlab trace replay`.
source "$(dirname "$0")/lib.sh"
R=$BUILD/fuzz-repro
if [ ! -x "$R/virtio_mmio" ] || [ ! -x "$R/qcow2" ]; then
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

seed=$(ls fuzz/corpus/virtio_mmio/* | head -1)
VMLAB_FUZZ_TRACE=$TMP/m.trace "$R/virtio_mmio" "$seed" >"$TMP/rec.out" 2>&1
check "virtio_mmio input recorded as a trace" test -s "$TMP/m.trace"
"$VMLAB" trace replay "$TMP/m.trace" >"$TMP/replay.out" 2>&1
rc=$?
check "vmlab trace replay matches the recorded fuzz input (exit $rc)" \
    bash -c "[ $rc -eq 0 ] && grep -q '^replay: match' '$TMP/replay.out'"

"$R/split_vq" /nonexistent >"$TMP/bad.out" 2>&1
rc=$?
check "missing input file: exit 2 with a message" \
    bash -c "[ $rc -eq 2 ] && grep -q 'cannot stat /nonexistent' '$TMP/bad.out'"
finish
