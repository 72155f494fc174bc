#!/bin/bash
# virtio-net on a Linux TAP (IFF_TAP|IFF_NO_PI|IFF_VNET_HDR), inside a network namespace
# this test creates (unshare -n): traffic never leaves it. The host end of the TAP is
# 10.0.3.1; net.elf takes 10.0.3.2 and pings it (the namespace's kernel answers ARP and
# ICMP). Both --net tap=NAME and --net tapfd=N (a TAP opened by the caller, as crosvm's
# --tap-fd); the run's trace holds the kernel's frames and replays with no TAP. Offloads:
# TUN_F_CSUM exactly when the driver negotiated GUEST_CSUM (ethtool -k). On KVM (where
# /dev/kvm opens) the pings again, the TAP then read when it has a frame.
# env: BUILD (default build), VMLAB (default $BUILD/asan/vmlab).
cd "$(dirname "$0")/../.."
source tests/cli/lib.sh
G=$BUILD/guest
PY=/usr/bin/python3

need_built "$VMLAB"
need_cmd ip iproute2
need_cmd unshare util-linux
need_cmd tcpdump tcpdump
need_cmd ethtool ethtool
[ -r "$G/net.elf" ] || { not_ok "$G/net.elf not built (make test builds it)"; finish; exit 1; }
if [ "$(id -u)" -ne 0 ]; then
    skip_all "a network namespace with a TAP needs root (unshare -n, ip tuntap)"
fi

# Everything below runs in a fresh network namespace; its TAP lines come out on stdout.
VMLAB=$VMLAB G=$G TMP=$TMP PY=$PY unshare -n bash -s <<'EOF'
set -u
n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }
ip link set lo up
ip tuntap add dev vmtap0 mode tap vnet_hdr || { not_ok "ip tuntap add"; echo "1..$n"; exit 1; }
ip addr add 10.0.3.1/24 dev vmtap0 && ip link set vmtap0 up

out=$(timeout 60 "$VMLAB" run --net tap=vmtap0 --trace "$TMP/tap.trace" "$G/net.elf" -- \
      ip=10.0.3.2 gw=10.0.3.1 count=3 2>&1); rc=$?
if [ $rc -eq 1 ] && grep -q '^net: ping 3 sent 3 received' <<<"$out" &&
   grep -q '^net: arp 10.0.3.1 is ' <<<"$out"; then
    ok "tap=vmtap0: ARP and 3 pings answered by the namespace's kernel"
else
    not_ok "tap=vmtap0 (exit $rc)"; tail -6 <<<"$out" | sed 's/^/#   /'
fi
"$VMLAB" trace export --format pcap "$TMP/tap.trace" -o "$TMP/tap.pcap" 2>/dev/null
replies=$(tcpdump -nr "$TMP/tap.pcap" 2>/dev/null | grep -c '10.0.3.1 > 10.0.3.2: ICMP echo reply')
if [ "$replies" -eq 3 ]; then ok "the trace holds the kernel's 3 echo replies (tcpdump -r)"
else not_ok "echo replies in the trace: $replies"; fi
out=$("$VMLAB" trace replay "$TMP/tap.trace" 2>&1); rc=$?
if [ $rc -eq 0 ] && grep -q '^replay: match' <<<"$out"; then ok "the TAP run replays with no TAP"
else not_ok "replay (exit $rc): $(head -3 <<<"$out")"; fi

# KVM: the same pings, the TAP watched in the VMM's epoll set (build/tests/test_net_tap
# shows a frame read with no timer); the trace holds the replies and replays.
if (exec 3<>/dev/kvm) 2>/dev/null; then
    out=$(timeout 60 "$VMLAB" run --cpu kvm --net tap=vmtap0 --trace "$TMP/ktap.trace" \
          "$G/net.elf" -- ip=10.0.3.2 gw=10.0.3.1 count=5 2>&1); rc=$?
    "$VMLAB" trace export --format pcap "$TMP/ktap.trace" -o "$TMP/ktap.pcap" 2>/dev/null
    replies=$(tcpdump -nr "$TMP/ktap.pcap" 2>/dev/null | grep -c '10.0.3.1 > 10.0.3.2: ICMP echo reply')
    replay=$("$VMLAB" trace replay "$TMP/ktap.trace" 2>&1)
    if [ $rc -eq 1 ] && grep -q '^net: ping 5 sent 5 received' <<<"$out" && [ "$replies" -eq 5 ] &&
       grep -q '^replay: match' <<<"$replay"; then
        ok "--cpu kvm, tap=vmtap0: 5 pings answered, in the trace, which replays"
    else
        not_ok "--cpu kvm tap (exit $rc, $replies replies in the trace): $(tail -2 <<<"$out") $(head -2 <<<"$replay")"
    fi
else
    n=$((n + 1)); echo "ok $n # SKIP --cpu kvm over a TAP: /dev/kvm does not open"
fi

# Offloads follow the driver: with csum=1 net.elf negotiates GUEST_CSUM and vmlab sets
# TUN_F_CSUM (ethtool shows tx-checksumming on); the kernel then hands over UDP with a
# partial checksum, which the backend completes (tcpdump: "udp sum ok" in the trace).
csum_run() {    # csum_run TAP NET TRACE GUEST-ARGS...: samples tx-checksumming during the run
    local tap=$1 net=$2 tr=$3; shift 3
    "$VMLAB" run --net "tap=$tap" --trace "$tr" "$G/net.elf" -- "ip=$net.2" "gw=$net.1" "$@" \
        >"$TMP/csum.out" 2>&1 &
    local vm=$! i sent=
    states=
    for i in $(seq 40); do
        states+=$(ethtool -k "$tap" | sed -n 's/^tx-checksumming: \(o[nf]*\).*/\1 /p')
        # UDP to the guest once its driver is up (offloads are set at DRIVER_OK)
        if [ -z "$sent" ] && [[ "$states" == *on* || $i -eq 10 ]]; then
            sent=1
            "$PY" -c '
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(3):
    s.sendto(b"vmlab-udp-" * 4, ("'"$net"'.2", 9)); time.sleep(0.02)'
        fi
        sleep 0.05
    done
    wait $vm
}
csum_run vmtap0 10.0.3 "$TMP/csum.trace" count=60 csum=1
"$VMLAB" trace export --format pcap "$TMP/csum.trace" -o "$TMP/csum.pcap" 2>/dev/null
good=$(tcpdump -vvnr "$TMP/csum.pcap" 2>/dev/null | grep -c '10.0.3.2.9: \[udp sum ok\]')
bad=$(tcpdump -vvnr "$TMP/csum.pcap" 2>/dev/null | grep -c 'bad udp cksum')
if [[ "$states" == *on* ]] && [ "$good" -ge 1 ] && [ "$bad" -eq 0 ] &&
   grep -q '^net: ping 60 sent 60 received' "$TMP/csum.out"; then
    ok "csum=1 (GUEST_CSUM): tx-checksumming on, $good UDP datagrams with whole checksums"
else
    not_ok "csum=1: tx-checksumming '$states', UDP sum ok $good, bad $bad; $(tail -2 "$TMP/csum.out")"
fi
# A fresh TAP: what is seen "on" could only come from this run.
ip tuntap add dev vmtap2 mode tap vnet_hdr
ip addr add 10.0.5.1/24 dev vmtap2 && ip link set vmtap2 up
csum_run vmtap2 10.0.5 "$TMP/nocsum.trace" count=20
if [[ "$states" != *on* ]] && [[ "$states" == *off* ]] && grep -q '^net: ping 20 sent 20 received' "$TMP/csum.out"; then
    ok "no GUEST_CSUM: tx-checksumming stays off (TUNSETOFFLOAD 0)"
else
    not_ok "no GUEST_CSUM: tx-checksumming '$states'; $(tail -2 "$TMP/csum.out")"
fi

# tapfd=N: the caller opens and attaches the TAP, vmlab inherits the descriptor.
ip tuntap add dev vmtap1 mode tap vnet_hdr
ip addr add 10.0.4.1/24 dev vmtap1 && ip link set vmtap1 up
out=$("$PY" - "$VMLAB" "$G/net.elf" <<'PYEOF' 2>&1
import fcntl, os, struct, subprocess, sys
IFF_TAP, IFF_NO_PI, IFF_VNET_HDR, TUNSETIFF = 0x0002, 0x1000, 0x4000, 0x400454ca
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", b"vmtap1", IFF_TAP | IFF_NO_PI | IFF_VNET_HDR))
r = subprocess.run([sys.argv[1], "run", "--net", f"tapfd={fd}", sys.argv[2], "--",
                    "ip=10.0.4.2", "gw=10.0.4.1", "count=2"], pass_fds=(fd,),
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
print(r.stdout.decode(errors="replace"))
print("exit", r.returncode)
PYEOF
)
if grep -q '^exit 1$' <<<"$out" && grep -q '^net: ping 2 sent 2 received' <<<"$out"; then
    ok "tapfd=N: a TAP opened by the caller, 2 pings answered"
else
    not_ok "tapfd"; tail -6 <<<"$out" | sed 's/^/#   /'
fi

# A descriptor that is not a TAP: one error line, exit 2.
out=$("$VMLAB" run --net tapfd=0 "$G/net.elf" 2>&1 </dev/null >/dev/null); rc=$?
if [ $rc -eq 2 ] && [[ "$out" == "vmlab: "*"tapfd=0 is not a TAP opened with IFF_TAP|IFF_NO_PI|IFF_VNET_HDR"* ]]; then
    ok "tapfd of a non-TAP descriptor: refused with one line"
else
    not_ok "tapfd=0 (exit $rc): $out"
fi
echo "1..$n"
[ "$failed" -eq 0 ]
EOF
