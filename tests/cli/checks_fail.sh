#!/usr/bin/env bash
# The checks of other tests, fed deliberately broken input, must fail: a check that passes
# whatever the code does is a defect (issue 17, part 2). Each case names the check it covers.
cd "$(dirname "$0")/../.."
source tests/cli/lib.sh
REL=$(realpath "${VMLAB_REL:-$BUILD/vmlab}")
G=$(realpath "$GUESTS")

# A vmlab that fails at once, as one without its virtio devices would.
cat >"$TMP/broken-vmlab" <<'SH'
#!/bin/sh
echo "vmlab: --rng: device kind 'rng' is unknown" >&2
exit 2
SH
chmod +x "$TMP/broken-vmlab"

# determinism.sh "a different seed gives different rng events": two runs with the SAME seed.
for i in 1 2; do
    "$REL" run --seed 5 --serial none --rng --trace "$TMP/same$i.trace" "$G/rng.elf" 2>/dev/null
done
"$REL" run --seed 6 --serial none --rng --trace "$TMP/other.trace" "$G/rng.elf" 2>/dev/null
if why=$(events_differ "$TMP/same1.trace" "$TMP/same2.trace"); then
    not_ok "determinism: 'different seed' check passes on two same-seed traces"
else
    ok "determinism: 'different seed' check fails on two same-seed traces ($why)"
fi
check "determinism: ... and passes on seeds 5 and 6" events_differ "$TMP/same1.trace" "$TMP/other.trace"
head -c 4096 /dev/urandom >"$TMP/garbage.trace"
if events_differ "$TMP/garbage.trace" "$TMP/same1.trace" >/dev/null; then
    not_ok "determinism: 'different seed' check passes on an unreadable trace"
else
    ok "determinism: 'different seed' check fails on an unreadable trace"
fi

# kvm_differential.sh: equal device-side events, with a floor on their number.
"$REL" run --serial none --trace "$TMP/hello.trace" "$G/hello.elf" >/dev/null 2>&1
"$REL" run --serial none --max-insns 2000 --trace "$TMP/short.trace" "$G/hello.elf" >/dev/null 2>&1
check "differential: a trace equals itself (the check can pass)" \
    same_events "$TMP/hello.trace" "$TMP/hello.trace" 20
for c in "short.trace short.trace:too few events" "garbage.trace garbage.trace:cannot dump" \
         "hello.trace other.trace:events differ"; do
    pair=${c%%:*}; want=${c#*:}
    # shellcheck disable=SC2086
    if why=$(same_events $(printf "$TMP/%s " $pair) 20); then
        not_ok "differential: '$pair' passes"
    elif [[ $why == *"$want"* ]]; then
        ok "differential: '$pair' fails: $want"
    else
        not_ok "differential: '$pair' fails for another reason: $why"
    fi
done

# guest_virtio_vmlab.sh on a vmlab whose virtio devices are missing: failures, not a skip.
out=$(VMLAB="$TMP/broken-vmlab" bash tests/cli/guest_virtio_vmlab.sh 2>&1); rc=$?
if [ $rc -ne 0 ] && grep -q '^not ok ' <<<"$out" && ! grep -qi 'skip' <<<"$out"; then
    ok "guest_virtio_vmlab: a vmlab without virtio devices fails ($(grep -c '^not ok ' <<<"$out") failures)"
else
    not_ok "guest_virtio_vmlab: a vmlab without virtio devices (exit $rc): $(head -3 <<<"$out")"
fi

# Benchmarks whose subject fails report it and exit non-zero.
out=$(VMLAB="$TMP/broken-vmlab" BENCH_JSON_DIR="$TMP" /usr/bin/python3 scripts/bench.d/boot.py 2>&1); rc=$?
if [ $rc -ne 0 ] && grep -q 'benchmark failed' <<<"$out"; then
    ok "bench boot.py: a failing vmlab is a failed benchmark (exit $rc)"
else
    not_ok "bench boot.py with a failing vmlab (exit $rc): $(tail -2 <<<"$out")"
fi
out=$(VMLAB="$TMP/broken-vmlab" BENCH_JSON_DIR="$TMP" /usr/bin/python3 guest/virtio/bench_latency.py 2>&1); rc=$?
if [ $rc -ne 0 ] && grep -q 'vmlab failed before any timing' <<<"$out"; then
    ok "bench_latency.py: a failing vmlab is a failed benchmark (exit $rc)"
else
    not_ok "bench_latency.py with a failing vmlab (exit $rc): $(tail -2 <<<"$out")"
fi
finish
