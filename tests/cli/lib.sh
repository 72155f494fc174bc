# Shared helpers for tests/cli/*.sh: TAP output and common paths.
# Usage: source "$(dirname "$0")/lib.sh"; then ok/not_ok/check, and finish at the end.
set -u
BUILD=${BUILD:-build}
VMLAB=${VMLAB:-$BUILD/asan/vmlab}
GUESTS=${GUESTS:-$BUILD/guest}
_tap_n=0
_tap_failed=0
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

ok() { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n - $*"; }
not_ok() { _tap_n=$((_tap_n + 1)); _tap_failed=$((_tap_failed + 1)); echo "not ok $_tap_n - $*"; }
# check "description" command...: ok when the command exits 0
check() { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
# skip REASON: one check that cannot run here, a TAP skip that scripts/run-tests.sh counts
# as skipped (never as passed) and names with its reason.
skip() { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n # SKIP $*"; }
# skip_all REASON: the whole script cannot run here (counted as one skip); exits.
skip_all() { echo "1..0 # SKIP $*"; exit 0; }
# need_cmd CMD PACKAGE: a command `make deps` installs; missing, it is a failure, not a skip.
need_cmd() {
    command -v "$1" >/dev/null && return 0
    not_ok "$1 not found: package $2 is missing (make deps installs it)"
    finish; exit 1
}
# need_built FILE: something `make test` builds; missing, it is a failure, not a skip.
need_built() {
    [ -x "$1" ] && return 0
    not_ok "$1 not built (make test builds it)"
    finish; exit 1
}
finish() { echo "1..$_tap_n"; [ "$_tap_failed" -eq 0 ]; }

# expect_error DESC WANT-SUBSTRING ARGS...: `vmlab run ARGS` exits 2 with one "vmlab: ..."
# line containing WANT (bad input: a clear error, nothing run).
expect_error() {
    local desc=$1 want=$2; shift 2
    local out rc
    out=$("$VMLAB" run "$@" 2>&1 >/dev/null); rc=$?
    if [ $rc -eq 2 ] && [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] && [[ "$out" == "vmlab: "*"$want"* ]]; then
        ok "$desc"
    else
        not_ok "$desc (exit $rc, stderr: $out)"
    fi
}

# wait_for SECONDS COMMAND...: retries COMMAND every 0.1 s until it succeeds (status 0) or
# SECONDS have passed (status 1).
wait_for() { local n=$(( $1 * 10 )); shift; while [ $n -gt 0 ]; do "$@" && return 0; sleep 0.1; n=$((n - 1)); done; return 1; }

# expect_output DESC WANT_RC REGEX...: the last command's status ($rc) is WANT_RC and its
# output ($out) matches every extended REGEX; on failure, says which did not match.
expect_output() {
    local desc=$1 want_rc=$2 re bad=""
    shift 2
    for re in "$@"; do
        printf '%s\n' "$out" | grep -Eq -- "$re" || bad="$bad [$re]"
    done
    if [ "$rc" = "$want_rc" ] && [ -z "$bad" ]; then
        ok "$desc"
    else
        not_ok "$desc"
        echo "#   status $rc (want $want_rc); missing:$bad"
        printf '%s\n' "$out" | tail -25 | sed 's/^/#   got: /'
    fi
}

# trace_tamper IN OUT HEX OFFSET: OUT is trace IN with the byte OFFSET bytes after the first
# occurrence of the bytes HEX flipped, and the CRC of the chunk holding it made right again
# (traces/FORMAT.md), so that only replay can notice. Fails when HEX is not in IN.
trace_tamper() {
    /usr/bin/python3 - "$@" <<'PY'
import struct, sys, zlib
b = bytearray(open(sys.argv[1], 'rb').read())
i = b.find(bytes.fromhex(sys.argv[3]))
assert i > 0, 'pattern not in the trace'
i += int(sys.argv[4])
b[i] ^= 0xff
off = 16 + struct.unpack_from('<I', b, 12)[0] + 4
while off + 32 <= len(b):
    p = struct.unpack_from('<I', b, off + 4)[0]
    if off <= i < off + 32 + p:
        crc = zlib.crc32(bytes(b[off + 4:off + 12]) + bytes(b[off + 16:off + 32 + p]))
        struct.pack_into('<I', b, off + 12, crc)
    off += 32 + p
open(sys.argv[2], 'wb').write(b)
PY
}

# events_of TRACE [FILTER-ERE]: the trace's events, one per line, without event numbers and
# time stamps, less the lines FILTER matches. Fails when `vmlab trace dump` fails.
events_of() {
    local out
    out=$("$VMLAB" trace dump --no-header "$1" 2>/dev/null) || return 1
    out=$(sed -E 's/^#[0-9]+ [0-9]+ns //' <<<"$out")
    [ -n "${2:-}" ] && out=$(grep -vE "$2" <<<"$out")
    printf '%s\n' "$out" | grep -v '^$'
    return 0
}

# same_events A B MIN [FILTER]: both traces dump, each has at least MIN events (after the
# filter), and their events are equal, time stamps aside. On failure, says why on stdout.
same_events() {
    local a b na nb
    a=$(events_of "$1" "${4:-}") || { echo "cannot dump $1"; return 1; }
    b=$(events_of "$2" "${4:-}") || { echo "cannot dump $2"; return 1; }
    na=$(grep -c . <<<"$a"); nb=$(grep -c . <<<"$b")
    if [ "$na" -lt "$3" ] || [ "$nb" -lt "$3" ]; then
        echo "too few events to compare: $na and $nb (at least $3 wanted)"; return 1
    fi
    [ "$a" = "$b" ] && return 0
    echo "events differ:"; diff <(printf '%s\n' "$a") <(printf '%s\n' "$b") | head -6
    return 1
}

# events_differ A B: both traces dump with events, and their events (with times) differ.
events_differ() {
    local a b
    a=$("$VMLAB" trace dump --no-header "$1" 2>/dev/null) && [ -n "$a" ] || { echo "cannot dump $1, or no events"; return 1; }
    b=$("$VMLAB" trace dump --no-header "$2" 2>/dev/null) && [ -n "$b" ] || { echo "cannot dump $2, or no events"; return 1; }
    [ "$a" != "$b" ] && return 0
    echo "same events"; return 1
}

# ---- Linux guests (kvm_linux.sh, sim_linux.sh): Debian's kernel, the busybox initramfs of
# vmm/kvm/linux, a virtio-blk disk, a shell on the serial console ----

# What a user types at the shell prompt /init ends in: the shell computes 6*7 (its answer
# proves the command ran; the echo of the typed line shows only the expression), then the
# power-off. Leading newlines: the input is there from the start, and the 8250 driver's
# probe and start-up read and drop the first bytes (three were seen); the rest wait in the
# tty until the shell reads them.
LINUX_TYPED='\n\n\n\n\n\n\n\necho VMLAB-LINUX: shell says $((6*7))\nvmlab-poweroff\n'

LINUX_INITRD=$BUILD/kvm/linux-initramfs.cpio.gz
# linux_boot_or_skip TEST KERNEL [REASON]: a counted skip and the end of the test when REASON
# (something about this machine) is set; a failure and the end of the test when the kernel or
# the initramfs is missing (make deps installs one, make test builds the other: never a
# reason to skip); returns when the boot can run.
linux_boot_or_skip() {
    local test=$1 kernel=$2 reason=${3:-}
    if [ -n "$reason" ]; then
        skip "$test: $reason"
        finish
        exit
    fi
    if [ -z "$kernel" ] || [ ! -r "$kernel" ] || [ ! -r "$LINUX_INITRD" ]; then
        not_ok "$test: kernel '$kernel' or $LINUX_INITRD missing (make deps installs linux-image-amd64, make test builds the initramfs)"
        finish
        exit
    fi
}

# linux_kvm_unfit: why this machine's KVM cannot boot Linux in a test's time (empty: it can).
linux_kvm_unfit() {
    if [ ! -c /dev/kvm ] || ! (exec 3<>/dev/kvm) 2>/dev/null; then
        echo "/dev/kvm does not open"
    elif [ -d /sys/module/kvm_pvm ] && [ "${KVM_LINUX:-0}" != 1 ]; then
        echo "/dev/kvm is kvm-pvm (guest code emulated, boot too slow; KVM_LINUX=1 forces it)"
    fi
}

# linux_replay_check NAME VMLAB TRACE: the trace replays without a CPU (and without slirp or
# a disk image: what the devices' backends delivered is in it).
linux_replay_check() {
    local out rc
    out=$("$2" trace replay "$3" 2>&1)
    rc=$?
    if [ $rc -eq 0 ] && grep -q '^replay: match' <<<"$out"; then
        ok "$1: the boot's trace replays without a CPU"
    else
        not_ok "$1: the boot's trace replays without a CPU (exit $rc)"
        printf '%s\n' "$out" | tail -5 | sed 's/^/#   /'
    fi
}

# linux_disk: $LINUX_DISK, 4 MiB, its first MiB a pattern written here (the guest checksums
# what it reads), the rest zero; /init writes "vmlab-linux-was-here" over the second MiB.
linux_disk() {
    LINUX_DISK=$TMP/disk.img
    yes vmlab-host-wrote-this | head -c 1048576 >"$LINUX_DISK"
    truncate -s 4194304 "$LINUX_DISK"
    LINUX_SUM_BEFORE=$(sha256sum "$LINUX_DISK" | cut -d' ' -f1)
    yes vmlab-linux-was-here | head -c 1048576 >"$TMP/guest-pattern"
}

# linux_checks CONSOLE ERR RC [TAG]: what a user sees of a boot of the disk linux_disk made;
# TAG (default linux) starts each check's name.
linux_checks() {
    local console=$1 errf=$2 rc=$3 tag=${4:-linux}
    tr -d '\r' <"$console" >"$TMP/c"
    has() { grep -q -- "$1" "$TMP/c"; }
    lacks() { ! grep -qE -- "$1" "$TMP/c"; }
    field() { sed -n "s/^VMLAB-LINUX: $1 //p" "$TMP/c" | head -1; }
    check "$tag: the kernel prints on the 8250 console" has "Linux version"
    check "$tag: the kernel finds vmlab's ACPI tables (RSDP at 0xe0000)" has "ACPI: RSDP 0x00000000000E0000"
    check "$tag: no ACPI errors or firmware-bug warnings in the kernel log" \
        lacks 'ACPI (BIOS )?(Error|Warning)|Firmware (Bug|Warn)'
    check "$tag: COM1 comes from the DSDT (PNP0501 through PnP ACPI, not the legacy probe)" \
        has "00:0[0-9]: ttyS0 at I/O 0x3f8"
    check "$tag: the initramfs /init runs (busybox userspace, serial console)" has "^VMLAB-LINUX: up, kernel"
    check "$tag: virtio-mmio through ACPI: /dev/vda appears with the disk's 8192 sectors" \
        has "^VMLAB-LINUX: vda 8192 sectors"
    if [ "$(field 'vda sha256 before')" = "$LINUX_SUM_BEFORE" ]; then
        ok "$tag: the guest reads the disk the host wrote (sha256 equal)"
    else
        not_ok "$tag: the guest reads the disk the host wrote (guest '$(field 'vda sha256 before')', host $LINUX_SUM_BEFORE)"
    fi
    check "$tag: the guest reads back its own write after dropping caches" has "^VMLAB-LINUX: vda write read back OK"
    local sum_after
    sum_after=$(sha256sum "$LINUX_DISK" | cut -d' ' -f1)
    if [ -n "$sum_after" ] && [ "$(field 'vda sha256 after')" = "$sum_after" ] &&
       [ "$sum_after" != "$LINUX_SUM_BEFORE" ] &&
       cmp -s <(dd if="$LINUX_DISK" bs=1M skip=1 count=1 2>/dev/null) "$TMP/guest-pattern" &&
       cmp -s <(head -c 1048576 "$LINUX_DISK") <(yes vmlab-host-wrote-this | head -c 1048576); then
        ok "$tag: the guest's write reached the image file (host sha256 = guest's, second MiB = pattern)"
    else
        not_ok "$tag: the guest's write reached the image file (guest '$(field 'vda sha256 after')', host $sum_after)"
    fi
    check "$tag: /init ends in a shell prompt on the serial console" has "vmlab-linux# "
    # (Not anchored: input typed before the shell reads it was echoed early, so the answer
    # follows the prompt on its line.)
    check "$tag: the shell runs a command typed on the serial line (6*7 = 42)" \
        has "VMLAB-LINUX: shell says 42"
    check "$tag: the typed power-off command runs" has "^VMLAB-LINUX: powering off"
    # What the kernel said about the tables and the devices, for the log.
    grep -E 'ACPI: (RSDP|XSDT|FACP|DSDT|APIC) |ttyS0 at|virtio_blk|^VMLAB-LINUX: (vda|up)' "$TMP/c" |
        head -20 | sed 's/^/#   console: /'
    if [ "$rc" -eq 0 ]; then
        ok "$tag: vmlab exits 0 after the i8042 reset (reboot=k)"
    else
        not_ok "$tag: vmlab exits 0 after the i8042 reset (status $rc)"
        tail -3 "$errf" | sed 's/^/#   /'
        tail -5 "$TMP/c" | sed 's/^/#   console: /'
    fi
    if ! has "VMLAB-LINUX: shell says 42"; then
        grep -E -A3 'VMLAB-LINUX: shell|vmlab-linux#' "$TMP/c" | head -20 | sed 's/^/#   console: /'
    fi
    if ! has "^VMLAB-LINUX: vda 8192 sectors"; then
        grep -E '^VMLAB-LINUX|ACPI|virtio' "$TMP/c" | head -60 | sed 's/^/#   console: /'
    fi
}

# linux_wait_console FILE ERE SECONDS PID: waits until a line of the guest's console FILE
# (still being written) matches ERE; fails after SECONDS or once process PID (the VM) ended.
# For host actions that must come at a point of the guest's run (a listener up, a device open).
linux_wait_console() {
    local n=$(($3 * 10))
    while [ $n -gt 0 ]; do
        tr -d '\r' <"$1" 2>/dev/null | grep -qE -- "$2" && return 0
        kill -0 "$4" 2>/dev/null || return 1
        sleep 0.1
        n=$((n - 1))
    done
    return 1
}

# linux_powered_off TEST CONSOLE ERR RC ERE: the check that the guest powered off and vmlab
# exited 0 (CONSOLE without CRs); then, when any check of the test failed, the end of ERR and
# the console lines matching ERE, for the log.
linux_powered_off() {
    if [ "$4" -eq 0 ] && grep -q '^VMLAB-LINUX: powering off' "$2"; then
        ok "$1: the guest powers off, vmlab exits 0"
    else
        not_ok "$1: the guest powers off, vmlab exits 0 (status $4)"
    fi
    if [ "$_tap_failed" -gt 0 ]; then
        tail -5 "$3" | sed 's/^/#   stderr: /'
        grep -E -- "$5" "$2" | tail -30 | sed 's/^/#   console: /'
    fi
}

# ---- Linux guests on the network (sim_linux_net.sh, kvm_linux.sh): Debian's virtio_net
# driver against --net user (libslirp); the guest side is vmm/kvm/linux/vmlab-net ----

# linux_net_start: the host side of a networked boot, in busybox alone (httpd, nc), so that
# it runs wherever the Linux tests do, make test-kvm's nested VM included. Serves
# $TMP/www/blob (256 KiB of /dev/urandom) over HTTP on 127.0.0.1 (the guest reaches it as
# 10.0.2.2:PORT: slirp's gateway address stands for the host's loopback when
# restrict=off); picks a loopback port for the hostfwd rule into the guest's nc -l on port
# 7000. Sets LINUX_NET_ARG (the --net argument), LINUX_NET_TYPED (what is typed at the
# guest's shell) and LINUX_NET_PID. Fails when no server starts.
linux_net_start() {
    local i http=
    mkdir -p "$TMP/www"
    head -c 262144 /dev/urandom >"$TMP/www/blob"
    head -c 65536 /dev/urandom >"$TMP/net-payload"
    # busybox httpd cannot be asked for a free port: a random one, another on failure.
    for i in 1 2 3 4 5; do
        http=$((20000 + RANDOM % 20000))
        busybox httpd -f -p "127.0.0.1:$http" -h "$TMP/www" 2>"$TMP/httpd.err" &
        LINUX_NET_PID=$!
        sleep 0.2
        if kill -0 "$LINUX_NET_PID" 2>/dev/null &&
           busybox wget -q -O /dev/null "http://127.0.0.1:$http/blob" 2>/dev/null; then
            break
        fi
        kill "$LINUX_NET_PID" 2>/dev/null
        http=
    done
    [ -n "$http" ] || { echo "# busybox httpd did not start: $(head -3 "$TMP/httpd.err")"; return 1; }
    LINUX_NET_FWD=$((40000 + RANDOM % 20000))
    LINUX_NET_ARG="user,restrict=off,hostfwd=tcp:127.0.0.1:$LINUX_NET_FWD-:7000"
    LINUX_NET_TYPED="\n\n\n\n\n\n\n\nvmlab-net $http 7000\nvmlab-poweroff\n"
}

linux_net_stop() { kill "$LINUX_NET_PID" 2>/dev/null; wait "$LINUX_NET_PID" 2>/dev/null; }

# linux_net_peer CONSOLE: the host end of the hostfwd connection. Once the guest's console
# says its nc listens (within 300 s), busybox nc connects to 127.0.0.1:$LINUX_NET_FWD, sends
# $TMP/net-payload, closes its sending side at the end of it and keeps what the guest sent
# in $TMP/net-greeting. Run it in the background while vmlab runs.
linux_net_peer() {
    local i
    for i in $(seq 3000); do
        grep -q "VMLAB-NET: nc listening" "$1" 2>/dev/null && break
        sleep 0.1
    done
    grep -q "VMLAB-NET: nc listening" "$1" || { echo "the guest's nc never listened" >&2; return 1; }
    timeout 120 busybox nc 127.0.0.1 "$LINUX_NET_FWD" <"$TMP/net-payload" >"$TMP/net-greeting"
}

# linux_net_boot NAME VMLAB KERNEL [ARGS...]: boots KERNEL with the initramfs on the network
# (vmlab run ARGS, e.g. --cpu sim), the host peer alongside; console and stderr in
# $TMP/NAME.console and $TMP/NAME.err. Returns vmlab's exit status.
linux_net_boot() {
    local name=$1 v=$2 kernel=$3 vpid ppid rc t0=${EPOCHREALTIME/./}
    shift 3
    timeout "${LINUX_NET_TIMEOUT:-300}" "$v" run --mem 512M --kernel "$kernel" --initrd "$LINUX_INITRD" \
        --net "$LINUX_NET_ARG" --serial-in "$LINUX_NET_TYPED" "$@" \
        >"$TMP/$name.console" 2>"$TMP/$name.err" &
    vpid=$!
    linux_net_peer "$TMP/$name.console" 2>"$TMP/$name.peer" &
    ppid=$!
    wait $vpid
    rc=$?
    echo "# $name: network boot to power-off took $(((${EPOCHREALTIME/./} - t0) / 1000)) ms"
    # The peer is done by now (the guest's nc ended before its power-off); if vmlab failed
    # first, the peer would wait out its 300 s for a listener that never comes.
    for _ in $(seq 50); do kill -0 $ppid 2>/dev/null || break; sleep 0.1; done
    kill $ppid 2>/dev/null
    wait $ppid || sed "s/^/#   host peer: /" "$TMP/$name.peer"
    return $rc
}

# linux_net_checks CONSOLE ERR RC: what a user sees of a networked boot (vmlab-net's lines).
linux_net_checks() {
    local console=$1 errf=$2 rc=$3 sum
    tr -d '\r' <"$console" >"$TMP/c"
    has() { grep -q -- "$1" "$TMP/c"; }
    check "linux net: virtio_net binds the device: eth0 with vmlab's MAC 52:54:00:12:34:56" \
        has "^VMLAB-NET: eth0 mac 52:54:00:12:34:56 mtu 1500"
    check "linux net: udhcpc gets 10.0.2.15/24 from slirp, router 10.0.2.2" \
        has "^VMLAB-NET: dhcp bound 10.0.2.15/24 router 10.0.2.2 on eth0"
    check "linux net: the udhcpc script sets the address on eth0" has "^VMLAB-NET: eth0 10.0.2.15/24$"
    check "linux net: busybox ping of the gateway: 3 sent, 3 received" \
        has "^VMLAB-NET: ping 3 packets transmitted, 3 packets received"
    sum=$(sha256sum "$TMP/www/blob" | cut -d' ' -f1)
    check "linux net: wget over TCP of the host's 256 KiB file (busybox httpd): sha256 equal" \
        has "^VMLAB-NET: wget sha256 $sum bytes 262144$"
    sum=$(sha256sum "$TMP/net-payload" | cut -d' ' -f1)
    check "linux net: hostfwd into the guest's nc -l: the guest got the host's 64 KiB (sha256 equal)" \
        has "^VMLAB-NET: nc received sha256 $sum bytes 65536$"
    if [ "$(cat "$TMP/net-greeting" 2>/dev/null)" = vmlab-guest-says-hello ]; then
        ok "linux net: hostfwd: the host got the guest's greeting back"
    else
        not_ok "linux net: hostfwd: the host got '$(head -c 60 "$TMP/net-greeting" 2>/dev/null)'"
    fi
    if [ "$rc" -eq 0 ]; then
        ok "linux net: vmlab exits 0 after the guest powers off"
    else
        not_ok "linux net: vmlab exits 0 after the guest powers off (status $rc)"
        tail -3 "$errf" | sed 's/^/#   /'
    fi
    grep -E '^VMLAB-NET' "$TMP/c" | head -20 | sed 's/^/#   console: /'
    if ! has "^VMLAB-NET: nc received"; then
        grep -E 'virtio|eth0|segfault|VMLAB' "$TMP/c" | tail -20 | sed 's/^/#   console: /'
    fi
}
