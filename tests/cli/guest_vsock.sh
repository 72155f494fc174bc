#!/bin/bash
# virtio-vsock end to end (issue 19): `vmlab run --vsock cid=N,uds=PATH` with the
# vsock_echo guest, driven through Firecracker's hybrid Unix socket by
# guest/virtio/vsock_peer.py: the hostile host clients are each closed while the VM keeps
# serving, then two connections echo 64 B, 4 KiB and 64 KiB byte for byte (the second
# sends its CONNECT line one byte per write). Then the vsock_client guest connects to CID 2
# port 5000 (PATH_5000, an echo server here) and measures round trips, and once more to a
# port nothing listens on (RST: it exits 3). On the software CPU, and on KVM where
# /dev/kvm opens. Also: reserved CIDs and a taken socket path are refused, exit 2.
cd "$(dirname "$0")/../.."
source tests/cli/lib.sh
G=$BUILD/guest
PY=/usr/bin/python3
PEER=guest/virtio/vsock_peer.py

need_built "$VMLAB"
need_built "$G/vsock_echo.elf"
need_built "$G/vsock_client.elf"

for cid in 0 1 2 4294967295 x7; do
    expect_error "--vsock cid=$cid refused naming the value" "cid=$cid is not a guest CID" \
        --vsock "cid=$cid" "$G/hello.elf"
done
"$PY" -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$TMP/taken.sock"
expect_error "--vsock uds= on a path in use" "uds=$TMP/taken.sock: Address already in use" \
    --vsock "cid=3,uds=$TMP/taken.sock" "$G/hello.elf"

# Traces hold the host socket traffic (host-in/host-out): replay from another folder, with no
# socket anywhere, rebuilds the exchange. First a host client, then a guest connect.
"$VMLAB" run --cpu sim --serial "$TMP/rec.serial" --trace "$TMP/host.vtr" \
    --vsock "cid=3,uds=$TMP/rec.sock" "$G/vsock_echo.elf" -- conns=1 2>"$TMP/rec.err" &
pid=$!
for i in $(seq 600); do
    grep -q "listening on port 1234" "$TMP/rec.serial" 2>/dev/null && break
    sleep 0.1
done
out=$("$PY" "$PEER" echo "$TMP/rec.sock" 2>&1)
wait "$pid"
check "recorded run: 3 messages echoed, nothing on stderr" \
    test "$(grep -c '^ok - ' <<<"$out")" -eq 3 -a ! -s "$TMP/rec.err"
"$PY" "$PEER" serve "$TMP/rec.sock_5000" &
srv=$!
for i in $(seq 100); do [ -S "$TMP/rec.sock_5000" ] && break; sleep 0.05; done
"$VMLAB" run --cpu sim --trace "$TMP/guest.vtr" --vsock "cid=3,uds=$TMP/rec.sock" \
    "$G/vsock_client.elf" -- n=3 >"$TMP/client.out" 2>&1
kill "$srv"
check "recorded run: the guest's connect to PATH_5000 measured 3 sizes" \
    test "$(grep -c '^RESULT size=' "$TMP/client.out")" -eq 3
# Refused guest connects: no PATH_6000, and no uds= at all (replay cannot tell the two apart).
"$VMLAB" run --cpu sim --trace "$TMP/refused.vtr" --vsock "cid=3,uds=$TMP/rec.sock" \
    "$G/vsock_client.elf" -- port=6000 >/dev/null 2>&1
"$VMLAB" run --cpu sim --trace "$TMP/nouds.vtr" --vsock "cid=3" \
    "$G/vsock_client.elf" -- port=6000 >/dev/null 2>&1
mkdir -p "$TMP/elsewhere"
vmlab_abs=$(realpath "$VMLAB")
for case in host:6 guest:6 refused:1 nouds:1; do
    t=${case%:*}
    out=$(cd "$TMP/elsewhere" && "$vmlab_abs" trace replay "$TMP/$t.vtr" 2>&1)
    rc=$?
    n=$("$VMLAB" trace dump --kind host --no-header "$TMP/$t.vtr" 2>/dev/null | grep -c host-in)
    if [ $rc -eq 0 ] && grep -q '^replay: match' <<<"$out" && [ "$n" -ge "${case#*:}" ]; then
        ok "$t: replay with no socket matches ($n host-in events): ${out%%$'\n'*}"
    else
        not_ok "$t: replay (exit $rc, $n host-in): $(head -3 <<<"$out")"
    fi
done
check "replay created no socket" test -z "$(find "$TMP/elsewhere" -type s)"
# One byte the host sent the guest (the first host read, a 'D' message), tampered with, the
# chunk CRC made right again: replay diverges.
hex=$("$VMLAB" trace dump --kind host --no-header "$TMP/host.vtr" |
      grep -m1 -oE 'host-in virtio-vsock#[0-9]+ (nested )?len=[0-9]+ data=44[0-9a-f]{30}' |
      sed 's/.*data=//')
trace_tamper "$TMP/host.vtr" "$TMP/bad.vtr" "$hex" 14
out=$(cd "$TMP/elsewhere" && "$vmlab_abs" trace replay "$TMP/bad.vtr" 2>&1); rc=$?
if [ $rc -eq 1 ] && grep -q 'divergence at event' <<<"$out"; then
    ok "a tampered host-in byte makes replay diverge"
else
    not_ok "tampered host-in (exit $rc): $(head -3 <<<"$out")"
fi

# echo_run CPU: the whole exchange against one VM.
echo_run() {
    local cpu=$1 sock=$TMP/$1.sock serial=$TMP/$1.serial pid rc i
    rm -f "$sock" "$serial"
    timeout 300 "$VMLAB" run --cpu "$cpu" --serial "$serial" --vsock "cid=3,uds=$sock" \
        "$G/vsock_echo.elf" -- conns=2 2>"$TMP/$cpu.err" &
    pid=$!
    for i in $(seq 600); do
        grep -q "listening on port 1234" "$serial" 2>/dev/null && break
        sleep 0.1
    done
    local out
    out=$("$PY" "$PEER" hostile "$sock" 2>&1)
    if [ $? -eq 0 ] && [ "$(grep -c '^ok - ' <<<"$out")" -eq 6 ] && kill -0 "$pid" 2>/dev/null; then
        ok "$cpu: 6 hostile host clients closed, the VM still runs"
    else
        not_ok "$cpu: hostile host clients"
        sed 's/^/#   /' <<<"$out"
    fi
    out=$("$PY" "$PEER" echo "$sock" 2>&1)
    check "$cpu: 64 B, 4 KiB, 64 KiB echoed byte for byte" \
        test "$(grep -c '^ok - ' <<<"$out")" -eq 3
    out=$("$PY" "$PEER" echo "$sock" split 2>&1)
    check "$cpu: CONNECT split across 13 writes, then echoed" \
        test "$(grep -c '^ok - ' <<<"$out")" -eq 3
    wait "$pid"
    rc=$?
    if [ $rc -eq 1 ] && grep -q "vsock_echo: 2 connections served" "$serial" &&
       [ "$(grep -c 'bytes echoed' "$serial")" -eq 2 ] && ! grep -q . "$TMP/$cpu.err"; then
        ok "$cpu: guest served exactly the 2 good connections and exited 0"
    else
        not_ok "$cpu: guest exit (status $rc)"
        sed 's/^/#   serial: /' "$serial" | tail -5
        sed 's/^/#   stderr: /' "$TMP/$cpu.err" | head -5
    fi
    check "$cpu: the socket is removed at exit" test ! -e "$sock"

    # Guest-initiated: PATH_5000 echoes; PATH_6000 does not exist.
    "$PY" "$PEER" serve "${sock}_5000" &
    local srv=$!
    for i in $(seq 100); do [ -S "${sock}_5000" ] && break; sleep 0.05; done
    out=$(timeout 300 "$VMLAB" run --cpu "$cpu" --vsock "cid=3,uds=$sock" \
          "$G/vsock_client.elf" -- n=20 2>&1)
    rc=$?
    kill "$srv"
    if [ $rc -eq 1 ] && [ "$(grep -cE '^RESULT size=(64|4096|65536) n=20 min_ns=[0-9]+ median_ns=' <<<"$out")" -eq 3 ]; then
        ok "$cpu: guest connects to PATH_5000, 3 sizes of round trips checked and measured"
    else
        not_ok "$cpu: vsock_client against an echo server (status $rc)"
        tail -5 <<<"$out" | sed 's/^/#   /'
    fi
    # The same guest in the VM manager's sandbox (seccomp): its connect to PATH_5000 is
    # one of the few new sockets the filter allows.
    rm -f "${sock}_5000"
    "$PY" "$PEER" serve "${sock}_5000" &
    srv=$!
    for i in $(seq 100); do [ -S "${sock}_5000" ] && break; sleep 0.05; done
    out=$(timeout 300 "$VMLAB" run --cpu "$cpu" --sandbox --vsock "cid=3,uds=$sock" \
          "$G/vsock_client.elf" -- n=5 2>&1)
    rc=$?
    kill "$srv"
    if [ $rc -eq 1 ] && [ "$(grep -cE '^RESULT size=(64|4096|65536) n=5 ' <<<"$out")" -eq 3 ]; then
        ok "$cpu: --sandbox: the guest's connect to PATH_5000 is allowed and works"
    else
        not_ok "$cpu: --sandbox: vsock_client against an echo server (status $rc)"
        tail -3 <<<"$out" | sed 's/^/#   /'
    fi
    out=$(timeout 120 "$VMLAB" run --cpu "$cpu" --vsock "cid=3,uds=$sock" \
          "$G/vsock_client.elf" -- port=6000 2>&1)
    rc=$?
    if [ $rc -eq 7 ] && grep -q "connection to host port 6000 refused" <<<"$out"; then
        ok "$cpu: guest connect to a port with no PATH_6000 gets RST"
    else
        not_ok "$cpu: refused guest connect (status $rc)"
        tail -3 <<<"$out" | sed 's/^/#   /'
    fi
}

echo_run sim
why=$("$VMLAB" run --cpu kvm "$G/hello.elf" 2>&1 >/dev/null)
if [ $? -eq 2 ] && grep -q "KVM is not available" <<<"$why"; then
    skip "kvm: $why"
else
    echo_run kvm
fi
finish
