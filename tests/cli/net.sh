#!/bin/bash
# virtio-net end to end: net.elf (DHCP, ARP, pings of the gateway) on vmlab's --net user
# (libslirp) on the software CPU in every ring mode and on KVM, the same lines as under QEMU
# microvm's -netdev user; byte-identical traces run after run; replay with no slirp (and a
# tampered frame diverging); pcap export read by tcpdump and tshark; hostfwd on loopback;
# UDP echo and throughput to a peer on the host's loopback (udp.elf, on vmlab and QEMU);
# command-line errors. Network rule: slirp runs restricted (vmlab's default, QEMU's
# restrict=on) and hostfwd binds 127.0.0.1 only, except for the UDP part, which needs
# restrict=off to reach 127.0.0.1 as 10.0.2.2 (the guest sends only there).
# env: BUILD (default build), VMLAB (default $BUILD/asan/vmlab).
cd "$(dirname "$0")/../.."
source tests/cli/lib.sh
G=$BUILD/guest
PY=/usr/bin/python3

need_built "$VMLAB"
need_cmd tcpdump tcpdump
need_cmd tshark tshark
need_cmd qemu-system-x86_64 qemu-system-x86
[ -r "$G/net.elf" ] || { not_ok "$G/net.elf not built (make test builds it)"; finish; exit 1; }

# The lines every VMM must print alike: net: lines with the round-trip values taken out.
net_lines() { grep '^net:' | sed -E 's/rtt=[0-9]+ (ns|cycles)/rtt=X/; s/rtt min\/median\/max [0-9\/]+ (ns|cycles)/rtt X/'; }

want_lines='net: mac 52:54:00:12:34:56
net: dhcp offer 10.0.2.15 from 10.0.2.2
net: dhcp ack 10.0.2.15
net: arp 10.0.2.2 is 52:55:0a:00:02:02
net: ping 10.0.2.2 seq=1 ttl=255 bytes=64 rtt=X
net: ping 10.0.2.2 seq=2 ttl=255 bytes=64 rtt=X
net: ping 10.0.2.2 seq=3 ttl=255 bytes=64 rtt=X
net: ping 10.0.2.2 seq=4 ttl=255 bytes=64 rtt=X
net: ping 4 sent 4 received rtt X
net: done'

# vmlab on the software CPU, every ring mode.
for opts in "" "ring=packed" "mode=irq" "ring=packed mode=irq indirect=1 event_idx=1" "mrg=1"; do
    # shellcheck disable=SC2086
    out=$(timeout 60 "$VMLAB" run --net user "$G/net.elf" -- $opts 2>&1); rc=$?
    got=$(net_lines <<<"$out")
    if [ $rc -eq 1 ] && [ "$got" = "$want_lines" ]; then ok "sim ${opts:-split poll}: DHCP, ARP, 4 pings"
    else not_ok "sim ${opts:-split poll} (exit $rc)"; printf '%s\n' "$out" | tail -12 | sed 's/^/#   /'; fi
done

# The same ELF under QEMU microvm's user networking prints the same lines.
out=$(QEMU_EXTRA="-global virtio-mmio.force-legacy=false -netdev user,id=n0,restrict=on -device virtio-net-device,netdev=n0" \
      timeout 90 guest/qemu-run.sh "$G/net.elf" 2>&1); rc=$?
got=$(net_lines <<<"$out")
if [ $rc -eq 1 ] && [ "$got" = "$want_lines" ]; then ok "QEMU microvm -netdev user: the same lines"
else not_ok "QEMU microvm (exit $rc)"; diff <(echo "$want_lines") <(echo "$got") | sed 's/^/#   /'; fi

# KVM, where /dev/kvm opens.
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    out=$(timeout 60 "$VMLAB" run --cpu kvm --net user "$G/net.elf" 2>&1); rc=$?
    got=$(net_lines <<<"$out")
    if [ $rc -eq 1 ] && [ "$got" = "$want_lines" ]; then ok "kvm: the same lines"
    else not_ok "kvm (exit $rc)"; printf '%s\n' "$out" | tail -12 | sed 's/^/#   /'; fi
else
    skip "kvm: /dev/kvm does not open here"
fi

# Determinism: a guest that talks only to slirp gives byte-identical traces.
"$VMLAB" run --net user --trace "$TMP/a.trace" "$G/net.elf" -- count=3 >/dev/null 2>&1
"$VMLAB" run --net user --trace "$TMP/b.trace" "$G/net.elf" -- count=3 >/dev/null 2>&1
nhost=$("$VMLAB" trace dump --kind host --no-header "$TMP/a.trace" 2>/dev/null | grep -c host-)
if [ "$nhost" -ge 12 ] && cmp -s "$TMP/a.trace" "$TMP/b.trace"; then
    ok "two sim runs: byte-identical traces with $nhost frames"
else
    not_ok "determinism: $nhost frames (want >= 12), cmp: $(cmp "$TMP/a.trace" "$TMP/b.trace" 2>&1)"
fi

# Replay: no slirp, the frames come from the trace.
out=$("$VMLAB" trace replay "$TMP/a.trace" 2>&1); rc=$?
if [ $rc -eq 0 ] && grep -q '^replay: match' <<<"$out"; then ok "replay matches: ${out%%$'\n'*}"
else not_ok "replay (exit $rc): $out"; fi
out=$("$VMLAB" trace replay --device virtio-net "$TMP/a.trace" 2>&1); rc=$?
if [ $rc -eq 0 ] && grep -q '^replay: match' <<<"$out"; then ok "replay of virtio-net alone matches"
else not_ok "replay --device virtio-net (exit $rc): $out"; fi

# A frame slirp delivered, tampered with (chunk CRC made right again): replay diverges.
trace_tamper "$TMP/a.trace" "$TMP/bad.trace" 52550a000202 5     # a frame from the gateway
out=$("$VMLAB" trace replay "$TMP/bad.trace" 2>&1); rc=$?
if [ $rc -eq 1 ] && grep -q 'divergence at event' <<<"$out"; then ok "a tampered delivered frame makes replay diverge"
else not_ok "tampered frame (exit $rc): $(head -3 <<<"$out")"; fi

# pcap: tcpdump and tshark read what export writes.
if "$VMLAB" trace export --format pcap "$TMP/a.trace" -o "$TMP/a.pcap" 2>"$TMP/exp.err"; then
    td=$(tcpdump -nr "$TMP/a.pcap" 2>/dev/null)
    replies=$(grep -c 'ICMP echo reply' <<<"$td")
    if [ "$replies" -eq 3 ] && grep -q 'ARP, Reply 10.0.2.2 is-at 52:55:0a:00:02:02' <<<"$td"; then
        ok "tcpdump -r reads the pcap: ARP reply and 3 echo replies"
    else
        not_ok "tcpdump -r: $replies echo replies"; head -20 <<<"$td" | sed 's/^/#   /'
    fi
    ts=$(tshark -r "$TMP/a.pcap" 2>/dev/null)
    if grep -q 'DHCP ACK' <<<"$ts" && [ "$(grep -c . <<<"$ts")" -eq 12 ]; then
        ok "tshark -r reads the pcap: 12 frames with the DHCP ACK"
    else
        not_ok "tshark -r: $(grep -c . <<<"$ts") frames"; head -14 <<<"$ts" | sed 's/^/#   /'
    fi
else
    not_ok "trace export --format pcap: $(cat "$TMP/exp.err")"
fi
"$VMLAB" run --rng --trace "$TMP/rng.trace" "$G/rng.elf" >/dev/null 2>&1
out=$("$VMLAB" trace export --format pcap "$TMP/rng.trace" -o "$TMP/rng.pcap" 2>&1); rc=$?
if [ $rc -eq 2 ] && grep -q 'no virtio-net device' <<<"$out"; then ok "pcap of a trace without virtio-net: refused"
else not_ok "pcap without net (exit $rc): $out"; fi

# hostfwd: a host connection to 127.0.0.1:PORT reaches slirp, which looks for the guest.
port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$VMLAB" run --net "user,hostfwd=tcp:127.0.0.1:$port-:22" --max-insns 1500000000 \
    --trace "$TMP/fwd.trace" "$G/spin.elf" -- n=1500000000 >/dev/null 2>&1 &
vpid=$!
conn=$("$PY" - "$port" <<'EOF'
import socket, sys, time
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
        print("connected"); break
    except OSError:
        time.sleep(0.05)
EOF
)
wait $vpid
"$VMLAB" trace export --format pcap "$TMP/fwd.trace" -o "$TMP/fwd.pcap" 2>/dev/null
if [ "$conn" = connected ] && tcpdump -nr "$TMP/fwd.pcap" 2>/dev/null | grep -q 'ARP, Request who-has 10.0.2.15'; then
    ok "hostfwd: a loopback connection reaches slirp, which asks for the guest (ARP in the trace)"
else
    not_ok "hostfwd: '$conn'; pcap: $(tcpdump -nr "$TMP/fwd.pcap" 2>&1 | head -3)"
fi

# UDP through slirp to a peer on the host (guest/virtio/udp_peer.py on 127.0.0.1, reached as
# 10.0.2.2:PORT, so restrict=off): udp.elf's echo round trips (the reply must bring the
# request's bytes back), 64 datagrams out and 100 in, each window counted by the other side.
# The instruction limit is the receive check: slirp reads one datagram per socket and poll
# round, and with rounds fixed at 1 ms of guest time the 100 datagrams alone took 100 M
# guest instructions (exit 8 at this limit); about 4-8 M with rounds following the traffic.
"$PY" -u guest/virtio/udp_peer.py >"$TMP/udp_peer.out" 2>&1 &
upid=$!
for _ in $(seq 100); do grep -q '^udp_peer: port' "$TMP/udp_peer.out" && break; sleep 0.05; done
uport=$(sed -n 's/^udp_peer: port //p' "$TMP/udp_peer.out")
udp_want='net: udp echo 10 sent 10 received rtt X
net: udp tx 64 datagrams of 1472 bytes: host got 64 in X
net: udp rx 100 datagrams of 1472 bytes: 100 arrived in X
net: done'
udp_lines() { grep -E '^net: (udp (echo|tx|rx) [0-9]+ |done)' | sed -E 's/ rtt .*/ rtt X/; s/ in [0-9]+ .*/ in X/'; }
out=$(timeout 120 "$VMLAB" run --net user,restrict=off --max-insns 60000000 "$G/udp.elf" -- \
      port="$uport" count=10 tx=64 rx=100 2>&1); rc=$?
got=$(udp_lines <<<"$out")
if [ -n "$uport" ] && [ $rc -eq 1 ] && [ "$got" = "$udp_want" ]; then
    ok "sim: UDP echo x10, 64 datagrams to the host and 100 from it, within 60 M guest instructions"
else
    not_ok "sim UDP (exit $rc, peer port '$uport')"; printf '%s\n' "$out" | tail -6 | sed 's/^/#   /'
fi
out=$(QEMU_EXTRA="-global virtio-mmio.force-legacy=false -netdev user,id=n0 -device virtio-net-device,netdev=n0" \
      timeout 90 guest/qemu-run.sh "$G/udp.elf" port="$uport" count=10 tx=64 rx=100 2>&1); rc=$?
got=$(udp_lines <<<"$out")
if [ $rc -eq 1 ] && [ "$got" = "$udp_want" ]; then ok "QEMU microvm -netdev user: the same UDP lines"
else not_ok "QEMU UDP (exit $rc)"; diff <(echo "$udp_want") <(echo "$got") | sed 's/^/#   /'; fi
kill $upid 2>/dev/null; wait $upid 2>/dev/null

# Command-line errors: one line, exit 2, nothing run.
expect_error "--net with an unknown backend" "net=bogus is not one of none, loop, user" --net bogus "$G/net.elf"
expect_error "--net with a bad hostfwd" "hostfwd=tcp:x-:22 is not" --net user,hostfwd=tcp:x-:22 "$G/net.elf"
expect_error "--net twice" "--net: given twice" --net user --net user "$G/net.elf"
expect_error "--net with a bad mac" "mac=ff:ff:ff:ff:ff:ff is not a unicast" --net user,mac=ff:ff:ff:ff:ff:ff "$G/net.elf"
expect_error "--net tapfd that is not open" "tapfd=999 is not an open file descriptor" --net tapfd=999 "$G/net.elf"
finish
