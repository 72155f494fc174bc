#!/usr/bin/env bash
# virtio-vsock with a Linux guest (issue 19): Debian's kernel with vsock,
# vmw_vsock_virtio_transport_common and vmw_vsock_virtio_transport from the busybox
# initramfs (vmm/kvm/linux), and guest/linux's vmlab-vsock typed at the guest's shell, one
# boot on the software CPU (LINUX_CPU=kvm: on KVM):
#  - guest-initiated: the guest connects to CID 2 port 5000, which vmlab turns into a connect
#    to UDS_5000 (`vmlab-vsock serve`, an echo server), sends 1 MiB of a seeded
#    stream while reading the echo; the CRC-32s the guest prints equal the host's;
#  - a connect to a port nothing serves on the host (no UDS_6000) is refused in the guest;
#  - host-initiated: once the guest prints that it listens on port 1234, the host sends
#    Firecracker's `CONNECT 1234` on the UDS, gets `OK <port>`, sends 1 MiB the guest echoes;
#    the CRC-32s of both directions equal on both sides, and the echo equals what was sent.
# The host's side is guest/linux's vmlab-vsock too (its serve and host-connect modes, a static
# program): no python, so the same test runs in make test-kvm's nested VM (kvm_linux_vsock.sh).
# 1 MiB is four times the guest's default vsock buffer (256 KiB), so credit flows both ways.
source "$(dirname "$0")/lib.sh"
V=${LINUX_VMLAB:-$BUILD/vmlab}
CPU=${LINUX_CPU:-sim}
KERNEL=${LINUX_KERNEL:-$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1)}
PEER=${LINUX_VSOCK_PEER:-$BUILD/guest/linux/vmlab-vsock}
MIB=1048576

need_built "$V"
need_built "$PEER"
linux_boot_or_skip linux_vsock "$KERNEL"

UDS=$TMP/v.sock
"$PEER" serve "${UDS}_5000" "$TMP/served" &
server=$!
for _ in $(seq 100); do [ -S "${UDS}_5000" ] && break; sleep 0.05; done
TYPED="\n\n\n\n\n\n\n\nvmlab-vsock connect 2 5000 $MIB 7\nvmlab-vsock connect 2 6000 64\n"
TYPED+="vmlab-vsock listen 1234 $MIB\nvmlab-poweroff\n"
linux_disk
timeout 600 "$V" run --cpu "$CPU" --mem 512M --kernel "$KERNEL" --initrd "$LINUX_INITRD" \
    --block "$LINUX_DISK" --vsock "cid=3,uds=$UDS" --serial-in "$TYPED" \
    >"$TMP/console" 2>"$TMP/err" &
vm=$!
if linux_wait_console "$TMP/console" '^VSOCK: listening on port 1234' 300 "$vm"; then
    host=$(timeout 120 "$PEER" host-connect "$UDS" 1234 $MIB 9 2>&1)
else
    host="(the guest never listened)"
fi
wait "$vm"
rc=$?
# The server logs a connection when the device closes its end; that follows the guest's close.
for _ in $(seq 100); do [ -s "$TMP/served" ] && break; sleep 0.05; done
kill "$server" 2>/dev/null
tr -d '\r' <"$TMP/console" >"$TMP/c"
guest_line() { sed -n "s/^VSOCK: $1 //p" "$TMP/c" | head -1; }

check "linux_vsock: /init loads vsock and vmw_vsock_virtio_transport, the shell runs" \
    grep -q '^VMLAB-LINUX: shell' "$TMP/c"
g=$(guest_line 'connect 2:5000'); h=$(head -1 "$TMP/served" 2>/dev/null)
# guest: "sent N crc32 A received N crc32 B"; host: "received N crc32 A sent N crc32 B"
read -r _ gs _ gsc _ gr _ grc <<<"$g"
read -r _ hr _ hrc _ hs _ hsc <<<"$h"
if [ -n "$g" ] && [ "$gs" = $MIB ] && [ "$gr" = $MIB ] && [ "$hr" = $MIB ] && [ "$hs" = $MIB ] &&
   [ "$gsc" = "$hrc" ] && [ "$grc" = "$hsc" ] && [ "$gsc" = "$grc" ]; then
    ok "linux_vsock: guest connect to CID 2 port 5000 reaches UDS_5000: 1 MiB each way, CRC-32 $gsc equal on both sides"
else
    not_ok "linux_vsock: guest connect to CID 2 port 5000 (guest '$g', host '$h')"
fi
check "linux_vsock: a guest connect to a port no host socket serves is refused (ECONNRESET)" \
    grep -q '^VSOCK: error connect: Connection reset by peer' "$TMP/c"
g=$(guest_line 'listen 1234'); read -r _ gs _ gsc _ gr _ grc <<<"$g"
read -r _ hs _ hsc _ hr _ hrc _ echo _ hport <<<"$host"
if [ -n "$g" ] && [ "$gr" = $MIB ] && [ "$gs" = $MIB ] && [ "$hs" = $MIB ] && [ "$hr" = $MIB ] &&
   [ "$grc" = "$hsc" ] && [ "$gsc" = "$hrc" ] && [ "$echo" = equal ]; then
    ok "linux_vsock: host CONNECT 1234 reaches the guest's listener (OK $hport): 1 MiB each way, CRC-32 $hsc equal on both sides"
else
    not_ok "linux_vsock: host CONNECT 1234 (guest '$g', host '$host')"
fi
check "linux_vsock: the guest saw the host as CID 2" grep -q '^VSOCK: accepted cid 2 port ' "$TMP/c"
linux_powered_off linux_vsock "$TMP/c" "$TMP/err" $rc '^VSOCK|^VMLAB-LINUX|vsock'
finish
