#!/usr/bin/env bash
# Snapshot and restore on the software CPU (vmm/SNAPSHOT.md): a run snapshotted at virtual
# time T by a timed request, then `vmlab run --restore`, continues exactly as the original:
# the same serial output after T, the same exit status, the same trace events after T and
# the same final instruction count. Also: options that would change the machine are
# refused with --restore, and `snapshot take` on KVM answers "not supported on kvm".
source "$(dirname "$0")/lib.sh"

snap_req() { echo "$1:{\"cmd\":\"snapshot\",\"op\":\"take\",\"path\":\"$2\"}"; }
# events T FILE: the trace's events after time T, without event numbers, without the
# snapshot request itself (the restored run does not repeat it)
events() { "$VMLAB" trace dump "$2" --from $(($1 + 1)) --no-header | cut -d' ' -f2- |
           grep -v 'control {"cmd":"snapshot"'; }
insns() { grep '^stats: instructions' "$1"; }

# same_run NAME T GUEST [RUN-OPTIONS...] [-- GUEST-ARGS]
same_run() {
    local name=$1 t=$2 guest=$3 d=$TMP/$1 opts=() gargs=(); shift 3
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do opts+=("$1"); shift; done
    [ $# -gt 0 ] && shift && gargs=("$@")
    mkdir -p "$d"
    "$VMLAB" run --stats "${opts[@]}" --trace "$d/full.trace" \
        --at "$(snap_req "$t" "$d/snap.bin")" "$GUESTS/$guest" "${gargs[@]}" >"$d/out1" 2>"$d/err1"
    local s1=$?
    if [ ! -s "$d/snap.bin" ]; then
        not_ok "$name: snapshot written at $t ns (stderr: $(head -c 300 "$d/err1"))"; return
    fi
    ok "$name: snapshot written at $t ns ($(stat -c %s "$d/snap.bin") bytes)"
    "$VMLAB" run --stats --restore "$d/snap.bin" --trace "$d/after.trace" >"$d/out2" 2>"$d/err2"
    local s2=$?
    if [ "$s1" = "$s2" ]; then ok "$name: exit status $s2 matches"; else
        not_ok "$name: exit status $s2, original $s1 (stderr: $(head -c 300 "$d/err2"))"; fi
    local n2; n2=$(stat -c %s "$d/out2")
    if [ "$n2" -gt 0 ] && tail -c "$n2" "$d/out1" | cmp -s - "$d/out2"; then
        ok "$name: serial output after the snapshot equals the original's ($n2 bytes)"
    else not_ok "$name: serial output after the snapshot differs"; fi
    events "$t" "$d/full.trace" >"$d/ev1"; events "$t" "$d/after.trace" >"$d/ev2"
    if [ -s "$d/ev1" ] && cmp -s "$d/ev1" "$d/ev2"; then
        ok "$name: trace events after $t ns are identical ($(wc -l <"$d/ev1") events)"
    else not_ok "$name: trace events differ: $(diff "$d/ev1" "$d/ev2" | head -3 | tr '\n' ' ')"; fi
    if grep -qE "AddressSanitizer|LeakSanitizer|runtime error" "$d/err1" "$d/err2"; then
        not_ok "$name: sanitizer report: $(grep -hE "Sanitizer|runtime error" "$d/err1" "$d/err2" | head -2)"
    fi
    if [ -n "$(insns "$d/err1")" ] && [ "$(insns "$d/err1")" = "$(insns "$d/err2")" ]; then
        ok "$name: the same final instruction count ($(insns "$d/err2" | cut -d' ' -f3))"
    else not_ok "$name: final instruction counts differ: $(insns "$d/err1") / $(insns "$d/err2")"; fi
}

# idle: LAPIC timer ticks while halted, a virtio-blk write + read-back per tick (mem= disk)
same_run idle 2000000 idle.elf --block mem=1M --at '5000000:{"cmd":"stats"}' -- ticks=300
# the --at request still pending at the snapshot point runs in the restored run
if grep -q '^vmlab: at 5000000 ns: {"cmd":"stats"} -> {"ok":true' "$TMP/idle/err2"; then
    ok "idle: a pending --at request fires in the restored run"
else not_ok "idle: the pending --at request did not fire after restore"; fi
# timer: periodic LAPIC timer interrupts, rdtsc
same_run timer 1500000 timer.elf
# rng: the virtio-rng byte stream continues
same_run rng 60000 rng.elf --rng
# uartirq: UART receive interrupts over scripted input, half consumed at T
same_run uartirq 6000 uartirq.elf --serial-in 'the quick brown fox\n'
# x87: three values on the register stack and a control word of its own, loaded before T
# and printed after it (a version 1 snapshot restored them as zeros and control word 0)
same_run x87 2000000 spin.elf -- n=5000000 x87=1
if grep -q '^spin: x87 cw 0f7f sw 2800 st0 3fffb8aa3b295c17f0bc st1 3fff8000000000000000 st2 4000c90fdaa22168c235$' \
       "$TMP/x87/out2"; then
    ok "x87: the restored run prints the stack and control word loaded before the snapshot"
else not_ok "x87: after restore: $(grep 'spin: x87' "$TMP/x87/out2")"; fi

# a restored run can snapshot again; restoring that continues identically too
d=$TMP/chain; mkdir -p "$d"
"$VMLAB" run --block mem=1M --at "$(snap_req 1000000 "$d/s1.bin")" "$GUESTS/idle.elf" ticks=200 \
    >"$d/o0" 2>/dev/null; s0=$?
"$VMLAB" run --restore "$d/s1.bin" --at "$(snap_req 2500000 "$d/s2.bin")" >"$d/o1" 2>/dev/null
"$VMLAB" run --restore "$d/s2.bin" >"$d/o2" 2>/dev/null; s2=$?
n=$(stat -c %s "$d/o2")
if [ "$s0" = "$s2" ] && [ "$n" -gt 0 ] && tail -c "$n" "$d/o0" | cmp -s - "$d/o2"; then
    ok "a snapshot of a restored run restores to the same ending"
else not_ok "chained snapshot: status $s2 (want $s0) or output differs"; fi

# A snapshot of the format before (CPU section version 1, without the SYSCALL/PAT MSRs;
# written by vmlab 298b28b of spin.elf n=5000000 at 2 ms) still restores: the run ends as
# spin does.
out=$("$VMLAB" run --restore tests/data/snapshot/spin-cpu-v1.snap 2>&1); rc=$?
if [ $rc -eq 1 ] && [ "$(tail -1 <<<"$out")" = "spin: done" ]; then
    ok "a CPU section version 1 snapshot (the previous format) restores and runs to its end"
else not_ok "version 1 snapshot (exit $rc): $(tail -3 <<<"$out")"; fi

# a 128 MiB guest's snapshot holds only non-zero pages
s=$(stat -c %s "$TMP/idle/snap.bin" 2>/dev/null || echo 0)
if [ "$s" -gt 0 ] && [ "$s" -lt $((4 << 20)) ]; then ok "128 MiB guest: snapshot of $s bytes"
else not_ok "128 MiB guest: snapshot of $s bytes (want under 4 MiB)"; fi

# options that change the machine conflict with --restore
for opt in "--mem 64M" "--block mem=1M" "--cpu sim" "--rng" "--seed 3" "--max-insns 5"; do
    # shellcheck disable=SC2086
    "$VMLAB" run --restore "$TMP/idle/snap.bin" $opt >/dev/null 2>"$TMP/err"; rc=$?
    if [ $rc -eq 2 ] && grep -qF -- "--restore and ${opt%% *} exclude each other" "$TMP/err"; then
        ok "--restore with $opt: refused (exit 2)"
    else not_ok "--restore with $opt: exit $rc: $(head -c 200 "$TMP/err")"; fi
done
"$VMLAB" run --restore "$TMP/idle/snap.bin" "$GUESTS/idle.elf" >/dev/null 2>"$TMP/err"; rc=$?
if [ $rc -eq 2 ] && grep -q "exclude each other" "$TMP/err"; then ok "--restore with a PROGRAM: refused"
else not_ok "--restore with a PROGRAM: exit $rc"; fi
"$VMLAB" run --restore "$TMP/idle/snap.bin" --serial "$TMP/serial.txt" --quiet >/dev/null 2>&1
if grep -q "idle: done" "$TMP/serial.txt" 2>/dev/null; then ok "--restore with --serial FILE: output goes there"
else not_ok "--restore with --serial FILE: no output in the file"; fi

# `vmlab snapshot take PATH SOCKET` on a running VM (taken at a poll point, whenever the
# client gets there): the restored run ends exactly as the original. 20000 ticks: about 1 s
# under ASan, so the VM is still running when the client (started after tick 100) connects.
d=$TMP/sock; mkdir -p "$d"
"$VMLAB" run --block mem=1M --socket "$d/vm.sock" --serial "$d/o1" "$GUESTS/idle.elf" ticks=20000 \
    2>/dev/null &
vm=$!
for _ in $(seq 100); do [ -S "$d/vm.sock" ] && break; sleep 0.1; done
for _ in $(seq 100); do grep -q "tick 100$" "$d/o1" 2>/dev/null && break; sleep 0.1; done
"$VMLAB" snapshot take "$d/snap.bin" "$d/vm.sock" >"$d/take.out" 2>&1
wait $vm; s1=$?
"$VMLAB" run --restore "$d/snap.bin" --serial "$d/o2" 2>"$d/err2"; s2=$?
n=$(stat -c %s "$d/o2" 2>/dev/null || echo 0)
if grep -q "snapshot written to" "$d/take.out" && [ "$s1" = "$s2" ] && [ "$n" -gt 0 ] &&
   tail -c "$n" "$d/o1" | cmp -s - "$d/o2"; then
    ok "snapshot take over the socket: the restored run ends as the original (status $s2)"
else not_ok "socket snapshot: $(cat "$d/take.out") status $s1/$s2 $(head -c 200 "$d/err2")"; fi

# virtio-net over --net user, snapshotted between pings 3 and 4 (at 321000 ns: the third
# goes out at 318.4 us of virtual time, the fourth at 323.9 us; deterministic):
# the device state comes back, slirp does not (a fresh helper, as a restart would give): it
# asks for the guest's MAC again (an ARP request in the restored trace), the guest answers,
# and pings 4..8 all get their replies.
d=$TMP/net; mkdir -p "$d"
"$VMLAB" run --net user --at "$(snap_req 321000 "$d/snap.bin")" "$GUESTS/net.elf" count=8 \
    >"$d/o1" 2>"$d/err1"; s1=$?
"$VMLAB" run --restore "$d/snap.bin" --trace "$d/after.trace" >"$d/o2" 2>"$d/err2"; s2=$?
replies=$("$VMLAB" trace dump --kind host --no-header "$d/after.trace" 2>/dev/null |
          grep -c 'host-in virtio-net.* len=98 ')
if [ -s "$d/snap.bin" ] && [ $s1 -eq 1 ] && [ $s2 -eq 1 ] && ! grep -q 'seq=[1-3] ' "$d/o2" &&
   grep -q '^net: ping 10.0.2.2 seq=4 ' "$d/o2" && grep -q '^net: ping 8 sent 8 received' "$d/o2" &&
   [ "$replies" -eq 5 ] &&
   "$VMLAB" trace dump --kind host --no-header "$d/after.trace" | grep -q 'host-in virtio-net.* len=42 data=ffffffffffff'; then
    ok "net: restored between pings with a fresh slirp, pings 4..8 answered ($replies echo replies, slirp's ARP request in the trace)"
else
    not_ok "net: status $s1/$s2, $replies replies: $(tail -3 "$d/o2" | tr '\n' ' ') $(head -c 300 "$d/err2")"
fi

# too early: still in 32-bit boot code, or in compatibility mode just before the far jump
# to 64-bit code (the GDT already says 64-bit there, the CPU does not): refused, no file
for t in 1 10; do
    "$VMLAB" run --at "$(snap_req $t "$TMP/early$t.bin")" "$GUESTS/hello.elf" >/dev/null \
        2>"$TMP/early.err"
    if grep -qE '"ok":false,"error":"snapshot take: the vCPU is (not in 64-bit mode yet|in compatibility mode)' \
           "$TMP/early.err" && [ ! -e "$TMP/early$t.bin" ]; then
        ok "snapshot at $t ns (boot code, not yet 64-bit): refused"
    else not_ok "snapshot at $t ns: $(grep snapshot "$TMP/early.err" | head -c 300)"; fi
done

# snapshot take on KVM: an error response, no file
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    "$VMLAB" run --cpu kvm --at "$(snap_req 1000 "$TMP/kvm.bin")" "$GUESTS/hello.elf" \
        >/dev/null 2>"$TMP/kvm.err"
    if grep -q '"ok":false,"error":"snapshot take is not supported on kvm' "$TMP/kvm.err" &&
       [ ! -e "$TMP/kvm.bin" ]; then ok "kvm: snapshot take answers not supported on kvm"
    else not_ok "kvm: $(grep snapshot "$TMP/kvm.err" | head -c 300)"; fi
else
    skip "kvm: /dev/kvm not usable here"
fi
finish
