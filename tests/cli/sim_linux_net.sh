#!/usr/bin/env bash
# Debian's kernel on the software CPU, on the network: the virtio_net driver (with failover
# and net_failover, insmod'ed by the initramfs's /init) binds vmlab's virtio-net device on
# --net user (libslirp); busybox udhcpc gets 10.0.2.15 from slirp's DHCP server (the
# initramfs's udhcpc script sets the address and route), ping reaches the gateway 10.0.2.2
# (slirp answers echo requests to its own address itself, no ping socket needed), wget
# fetches a 256 KiB file over TCP from a server on the host's 127.0.0.1 (busybox httpd, as
# in make test-kvm's nested VM, which has no python3; reached as 10.0.2.2:PORT,
# restrict=off) with the sha256 compared, and a host connection (busybox nc) to a hostfwd
# port reaches the guest's nc -l (data both ways, checked). vmlab exits 0 after
# the guest powers off (lib.sh linux_net_*; vmm/kvm/linux/vmlab-net is the guest side).
# Then the trace: every frame is in it (tcpdump reads its pcap: the DHCP ACK, the echo
# replies, the HTTP GET), and it replays without a CPU and without slirp.
# Determinism: the boot, DHCP, ARP and the pings talk only to slirp, which runs on the
# virtual clock (deterministic by construction; not compared here), but the HTTP fetch and
# the hostfwd connection go through real host sockets, whose data arrives at whatever
# virtual time the host's scheduling gives it; so two runs' traces are not byte-identical
# (and this test does not ask them to be). The trace records what arrived, which is why its
# replay still matches.
# Runs the release build ($BUILD/vmlab), as sim_linux.sh does: a boot is ~8 G instructions.
source "$(dirname "$0")/lib.sh"
V=${SIM_LINUX_VMLAB:-$BUILD/vmlab}
KERNEL=${SIM_LINUX_KERNEL:-$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1)}

need_built "$V"
need_cmd tcpdump tcpdump
need_cmd busybox busybox-static
linux_boot_or_skip sim_linux_net "$KERNEL"
linux_net_start || { not_ok "sim_linux_net: the host's busybox httpd did not start"; finish; exit 1; }
trap 'linux_net_stop; rm -rf "$TMP"' EXIT

linux_net_boot sim_linux_net "$V" "$KERNEL" --cpu sim --trace "$TMP/net.trace"
rc=$?
linux_net_checks "$TMP/sim_linux_net.console" "$TMP/sim_linux_net.err" $rc

# Every frame is in the trace: its pcap shows the DHCP exchange, the pings and the fetch.
if "$V" trace export --format pcap "$TMP/net.trace" -o "$TMP/net.pcap" 2>"$TMP/exp.err"; then
    td=$(tcpdump -nr "$TMP/net.pcap" 2>/dev/null)
    replies=$(grep -c '10.0.2.2 > 10.0.2.15: ICMP echo reply' <<<"$td")
    # (tcpdump names HTTP on port 80 only: the GET is found in the frames' bytes, -A.)
    if [ "$replies" -eq 3 ] && grep -q 'BOOTP/DHCP, Reply' <<<"$td" &&
       tcpdump -A -nr "$TMP/net.pcap" 2>/dev/null | grep -q 'GET /blob HTTP/1.1'; then
        ok "sim_linux_net: the trace's pcap has the DHCP reply, 3 echo replies and the HTTP GET ($(grep -c . <<<"$td") frames)"
    else
        not_ok "sim_linux_net: the trace's pcap: $replies echo replies"; head -12 <<<"$td" | sed 's/^/#   /'
    fi
else
    not_ok "sim_linux_net: trace export --format pcap: $(cat "$TMP/exp.err")"
fi
linux_replay_check sim_linux_net "$V" "$TMP/net.trace"
finish
