#!/bin/bash
# --net user's libslirp runs in the helper build/vmlab-slirp so that the release vmlab is
# fully static: the release binary has no dynamic section; the helper is found next to
# vmlab (a vmlab without it refuses --net user with one line); it runs sandboxed (seccomp),
# dies with the VM; a helper killed mid-run costs the guest its link, with one line, and
# the VM runs on to its normal end; a sandboxed VM talks to it; after a guest frame it looks
# at its host sockets on a schedule that sees a reply late by at most a quarter of the time
# it took (tests/cli/slirp_poll_schedule.py plays vmlab); on KVM (--ready) it rings its wake
# pipe once when a host peer answers while it waits, never without --ready, and the POLL
# that follows brings the answer; on the software CPU with shared memory (--watch) it sets
# host_ready there instead and leaves the looks to vmlab (tests/cli/slirp_ready_wake.py
# plays vmlab). The stream's hostile cases are build/tests/test_net_slirp's.
# env: BUILD (default build), VMLAB (default $BUILD/asan/vmlab).
cd "$(dirname "$0")/../.."
source tests/cli/lib.sh
G=$BUILD/guest
HELPER=$BUILD/vmlab-slirp

need_built "$VMLAB"
need_built "$BUILD/vmlab"
need_built "$HELPER"
need_cmd readelf binutils

# The release binary: no interpreter, no shared libraries. The helper: libslirp's user.
if ! readelf -l "$BUILD/vmlab" | grep -q INTERP && ! readelf -d "$BUILD/vmlab" 2>/dev/null | grep -q NEEDED &&
   readelf -d "$HELPER" | grep -q 'NEEDED.*libslirp'; then
    ok "build/vmlab is fully static; vmlab-slirp links libslirp"
else
    not_ok "build/vmlab: $(readelf -d "$BUILD/vmlab" 2>&1 | grep NEEDED | tr -s ' ' | head -3)"
fi

# The release binary runs net.elf through its helper.
out=$(timeout 60 "$BUILD/vmlab" run --net user "$G/net.elf" -- count=2 2>&1); rc=$?
if [ $rc -eq 1 ] && grep -q '^net: ping 2 sent 2 received' <<<"$out"; then ok "static vmlab: DHCP and 2 pings through the helper"
else not_ok "static vmlab (exit $rc): $(tail -3 <<<"$out")"; fi

# No helper next to vmlab: one line, exit 2, nothing run.
mkdir -p "$TMP/alone/bin"
cp "$BUILD/vmlab" "$TMP/alone/bin/vmlab"
out=$("$TMP/alone/bin/vmlab" run --net user "$G/net.elf" 2>&1 >/dev/null); rc=$?
if [ $rc -eq 2 ] && [ "$(wc -l <<<"$out")" -eq 1 ] && grep -q 'needs vmlab-slirp next to vmlab' <<<"$out"; then
    ok "no helper: '$out'"
else not_ok "no helper (exit $rc): $out"; fi

# A VM with hostfwd (so slirp is polled every ms) on a long spin, and its helper.
start_vm() {
    port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$VMLAB" run "$@" --net "user,hostfwd=tcp:127.0.0.1:$port-:22" --max-insns 400000000 \
        "$G/spin.elf" -- n=400000000 >"$TMP/vm.out" 2>&1 &
    vpid=$!
    hpid=
    for _ in $(seq 100); do
        hpid=$(pgrep -P "$vpid" -x vmlab-slirp) && break
        sleep 0.05
    done
}
gone() { for _ in $(seq 100); do [ -e "/proc/$1" ] || return 0; sleep 0.05; done; return 1; }

start_vm
if [ -n "$hpid" ] && grep -q '^Seccomp:[[:space:]]*2' "/proc/$hpid/status"; then ok "the helper runs under a seccomp filter"
else not_ok "helper pid '$hpid': $(grep Seccomp "/proc/$hpid/status" 2>&1)"; fi
kill -KILL "$vpid"; wait "$vpid" 2>/dev/null
if [ -n "$hpid" ] && gone "$hpid"; then ok "the helper dies with the VM (SIGKILL to vmlab)"
else not_ok "helper $hpid still there after vmlab was killed"; fi

# The helper killed mid-run: one line, no link, and the VM runs on to its instruction limit.
start_vm
[ -n "$hpid" ] && kill -KILL "$hpid"
wait "$vpid"; rc=$?
lines=$(grep -c 'slirp helper' "$TMP/vm.out")
if [ -n "$hpid" ] && [ $rc -eq 8 ] && [ "$lines" -eq 1 ] &&
   grep -q 'virtio-net: slirp helper: it exited.*virtio-net has no link from now on' "$TMP/vm.out"; then
    ok "helper killed: one line, the VM runs on to its end (exit $rc)"
else not_ok "helper killed (exit $rc, $lines lines): $(head -5 "$TMP/vm.out")"; fi

# After a guest frame the helper looks at its host sockets soon and keeps looking, so that
# a host peer's reply is seen late by at most a quarter of the time it took (or 10 us): the
# doubling delays seen before (10 30 70 150 310 630 1270 us) saw a reply at 80 us at 150.
looks=$(timeout 30 /usr/bin/python3 tests/cli/slirp_poll_schedule.py "$HELPER" 2>&1)
late=$(awk '/^looks/ { n = NF - 1; for (t = 1; t <= $NF; t++) { for (i = 2; i <= NF && $i < t; i++) ;
                 lim = t / 4 > 10 ? t / 4 : 10; if ($i - t > lim + 1) { print t " us seen at " $i; exit } } }
            END { if (n < 10) print "only " n " looks" }' <<<"$looks")
if grep -q '^looks 10 ' <<<"$looks" && [ -z "$late" ]; then ok "after a guest frame the helper looks again at ${looks#looks } us"
else not_ok "poll schedule: ${late:-no first look at 10 us}: $looks"; fi

# KVM: a host peer's answer while the helper waits rings its wake pipe, once, unasked; the
# POLL that follows brings the answer. Without --ready (the software CPU) nothing moves.
wake=$(timeout 60 /usr/bin/python3 tests/cli/slirp_ready_wake.py "$HELPER" 2>&1)
if [ "$(grep -c '^ok ' <<<"$wake")" -eq 5 ] && ! grep -q '^not ok' <<<"$wake"; then
    ok "--ready: the helper rings its wake pipe once when a host socket answers; the POLL brings it"
else not_ok "--ready: $(tr '\n' ' ' <<<"$wake")"; fi
wake=$(timeout 60 /usr/bin/python3 tests/cli/slirp_ready_wake.py "$HELPER" --no-ready 2>&1)
if [ "$wake" = "ok silent" ]; then ok "without --ready the helper never speaks unasked"
else not_ok "without --ready: $(tr '\n' ' ' <<<"$wake")"; fi
# The software CPU: the helper says a host peer answered in shared memory (host_ready),
# and asks for no POLLs of its own while slirp has host sockets: vmlab's looks read it.
wake=$(timeout 60 /usr/bin/python3 tests/cli/slirp_ready_wake.py "$HELPER" --watch 2>&1)
if [ "$(grep -c '^ok ' <<<"$wake")" -eq 5 ] && ! grep -q '^not ok' <<<"$wake"; then
    ok "--watch: host_ready set when a host socket answers, no POLLs asked; the POLL brings it"
else not_ok "--watch: $(tr '\n' ' ' <<<"$wake")"; fi

# A sandboxed VM (no fork, exec or new sockets of its own) talks to its helper.
out=$(timeout 60 "$VMLAB" run --sandbox --net user "$G/net.elf" -- count=2 2>&1); rc=$?
if [ $rc -eq 1 ] && grep -q '^net: ping 2 sent 2 received' <<<"$out"; then ok "--sandbox: DHCP and 2 pings"
else not_ok "--sandbox (exit $rc): $(tail -3 <<<"$out")"; fi
finish
