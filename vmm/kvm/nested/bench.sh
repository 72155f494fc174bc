#!/bin/bash
# `make bench-kvm`, inside the nested VM (init runs it instead of the tests when present):
# real KVM, hosted by QEMU TCG. ROUNDS rounds, each one alternating, back to back:
#   net.elf count=COUNT pings of slirp's gateway and udp.elf (COUNT 64-byte echo round trips,
#   BULK 1472-byte datagrams each way, against vmlab-bench-peer udp on 127.0.0.1), on vmlab
#   --cpu kvm --net user and on QEMU microvm -accel kvm -netdev user -device virtio-net-device;
#   then the vsock round trips (vmlab-bench-peer vsock against vsock_echo.elf: connect, 64 B,
#   4 KiB, 64 KiB, VSOCK_N each) on vmlab --cpu kvm (hybrid socket) and on QEMU microvm
#   -device vhost-vsock-device (AF_VSOCK, where vhost_vsock loads), and the guest-timed
#   ones (vsock_client.elf against vmlab-vsock serve) on vmlab --cpu kvm.
# Every run's output goes to /tmp/bench/NAME-ROUND.txt with a last line "status N"; after
# each round they come back over the console as a base64 tar.gz between
# VMLAB-BENCH-RESULTS-BEGIN R and -END R, for vmm/kvm/nested/bench_results.py on the host.
set -u
. /w/bench.env
V=/w/build/vmlab
G=/w/build/guest
P=/w/build/kvm/vmlab-bench-peer
O=/tmp/bench
mkdir -p "$O"
khz=$($P tsc-khz)
echo "VMLAB-BENCH: tsc_khz $khz, rounds $ROUNDS, count $COUNT, bulk $BULK, vsock n $VSOCK_N"
echo "$khz" >"$O/tsc_khz"
printf 'rounds %s\ncount %s\nbulk %s\nvsock_n %s\n' "$ROUNDS" "$COUNT" "$BULK" "$VSOCK_N" >"$O/env"
# QEMU's vhost-vsock-device needs vhost_vsock in this kernel (bench_stage copies it).
qvsock=1
for m in vhost_iotlb vhost vsock vmw_vsock_virtio_transport_common vhost_vsock; do
    [ -f /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko 2>/dev/null
done
[ -c /dev/vhost-vsock ] || { qvsock=0; echo "VMLAB-BENCH: no /dev/vhost-vsock: QEMU's vsock not measured"; }
echo "$qvsock" >"$O/qemu_vsock"
$P udp >/tmp/udp_peer.out &
peer=$!
for _ in $(seq 100); do grep -q '^udp_peer: port' /tmp/udp_peer.out && break; sleep 0.1; done
port=$(sed -n 's/^udp_peer: port //p' /tmp/udp_peer.out)
# QA: the QEMU command of scripts/bench.d/net.py's qemu_cmd, -accel kvm
qemu_args() {   # ELF RESTRICT ARGS...
    local elf=$1 restrict=$2
    shift 2
    QA=(qemu-system-x86_64 -M microvm,x-option-roms=off,pit=off,pic=off,rtc=off,isa-serial=on
        -accel kvm -m 128 -nodefaults -no-user-config -nographic -serial stdio
        -device isa-debug-exit,iobase=0xf4,iosize=4 -global virtio-mmio.force-legacy=false
        -netdev "user,id=n0,restrict=$restrict" -device virtio-net-device,netdev=n0
        -kernel "$elf" -append "$* tsc_khz=$khz")
}
run() {    # NAME COMMAND...: the output and status of one run
    local name=$1
    shift
    echo "VMLAB-BENCH: $name"
    timeout 600 "$@" </dev/null >"$O/$name.txt" 2>&1
    echo "status $?" >>"$O/$name.txt"
}
ping_args="count=$COUNT"
udp_args="port=$port count=$COUNT size=64 tx=$BULK rx=$BULK"
for r in $(seq "$ROUNDS"); do
    echo "VMLAB-BENCH: round $r"
    run "vmlab-kvm-ping-$r" $V run --cpu kvm --net user $G/net.elf -- $ping_args
    qemu_args $G/net.elf on $ping_args
    run "qemu-kvm-ping-$r" "${QA[@]}"
    run "vmlab-kvm-udp-$r" $V run --cpu kvm --net user,restrict=off $G/udp.elf -- $udp_args
    qemu_args $G/udp.elf off $udp_args
    run "qemu-kvm-udp-$r" "${QA[@]}"
    rm -f /tmp/v.sock /tmp/v.serial
    timeout 600 $V run --cpu kvm --serial /tmp/v.serial --vsock cid=3,uds=/tmp/v.sock \
        $G/vsock_echo.elf -- conns=1 </dev/null >/tmp/v.out 2>&1 &
    vm=$!
    run "vsock-$r" $P vsock /tmp/v.sock 1234 "$VSOCK_N" /tmp/v.serial
    wait $vm
    echo "vm status $?" >>"$O/vsock-$r.txt"
    if [ $qvsock = 1 ]; then    # the same guest and host side under QEMU, over AF_VSOCK
        rm -f /tmp/q.serial
        qemu-system-x86_64 -M microvm,x-option-roms=off,pit=off,pic=off,rtc=off,isa-serial=on \
            -accel kvm -m 128 -nodefaults -no-user-config -nographic -serial file:/tmp/q.serial \
            -device isa-debug-exit,iobase=0xf4,iosize=4 -global virtio-mmio.force-legacy=false \
            -device vhost-vsock-device,guest-cid=3 -kernel $G/vsock_echo.elf \
            -append "conns=1 tsc_khz=$khz" </dev/null >/tmp/q.out 2>&1 &
        vm=$!
        run "qemu-vsock-$r" $P vsock-cid 3 1234 "$VSOCK_N" /tmp/q.serial
        wait $vm
        echo "vm status $?" >>"$O/qemu-vsock-$r.txt"
    fi
    rm -f /tmp/c.sock /tmp/c.sock_5000
    /w/build/guest/linux/vmlab-vsock serve /tmp/c.sock_5000 /tmp/c.log &
    srv=$!
    for _ in $(seq 50); do [ -S /tmp/c.sock_5000 ] && break; sleep 0.1; done
    run "vsock-client-$r" $V run --cpu kvm --vsock cid=3,uds=/tmp/c.sock $G/vsock_client.elf -- "n=$VSOCK_N"
    kill $srv 2>/dev/null
    wait $srv 2>/dev/null
    # Each round as soon as it is done: QEMU TCG's nested SVM has been seen to wedge
    # (scripts/test-kvm.sh watch_wedge), and the rounds before a wedge still count.
    echo "VMLAB-BENCH-RESULTS-BEGIN $r"
    tar -czf - -C "$O" . | base64
    echo "VMLAB-BENCH-RESULTS-END $r"
    rm -f "$O"/*-"$r".txt
done
kill $peer
