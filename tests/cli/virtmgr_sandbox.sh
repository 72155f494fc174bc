#!/bin/bash
# The VM process's sandbox: `vmlab run --sandbox` runs guests as before (every scenario,
# both backends) under a seccomp allow-list with no_new_privs; a device that makes a
# forbidden call (test build) kills only its VM, with SIGSYS, and the manager reports it;
# VMs the manager starts are in their own user and mount namespaces, keep only their own
# fds, and --no-sandbox turns all of it off (vm info says so).
source "$(dirname "$0")/lib.sh"
need_built "$VMLAB"
TESTSB=${TESTSB:-$BUILD/testsandbox/vmlab}
need_built "$TESTSB"
need_cmd python3 python3

HELLO=$GUESTS/hello.elf

# Same guest, same output and status, with and without the sandbox, on both backends.
for cpu in sim kvm; do
    if [ "$cpu" = kvm ] && ! [ -w /dev/kvm ]; then skip "kvm: /dev/kvm does not open here"; continue; fi
    a=$("$VMLAB" run --quiet --cpu $cpu "$HELLO" one two 2>&1); ra=$?
    b=$("$VMLAB" run --quiet --cpu $cpu --sandbox "$HELLO" one two 2>&1); rb=$?
    check "--sandbox, $cpu: same output and status as without ($ra)" \
        bash -c '[ "$0" = "$1" ] && [ "$2" = "$3" ] && [ "$2" = 1 ]' "$a" "$b" "$ra" "$rb"
done

# Every thread is filtered, the KVM backend's helper threads with their own role's list.
if [ -w /dev/kvm ]; then
    truncate -s 1M "$TMP/k.img"
    "$VMLAB" run --quiet --sandbox --cpu kvm --block "$TMP/k.img" "$GUESTS/idle.elf" >/dev/null 2>&1 &
    KP=$!
    wait_for 30 bash -c '[ "$(ls /proc/$0/task | wc -l)" -ge 2 ] && grep -q "^Seccomp:[[:space:]]*2" /proc/$0/status' $KP
    check "--sandbox, kvm: every thread of the VM process is filtered ($(ls /proc/$KP/task | wc -l) threads)" \
        bash -c 'for t in /proc/$0/task/*; do grep -q "^Seccomp:[[:space:]]*2" $t/status || exit 1; done' $KP
    kill $KP; wait $KP 2>/dev/null
else
    skip "kvm threads: /dev/kvm does not open here"
fi

# Every scenario passes with the sandbox on (a wrapper adds --sandbox to each vmlab run).
REL=$(realpath "${VMLAB_REL:-$BUILD/vmlab}")
cat >"$TMP/vmlab" <<SH
#!/bin/bash
if [ "\$1" = run ]; then shift; echo x >>"$TMP/calls"; exec "$REL" run --sandbox "\$@"; fi
exec "$REL" "\$@"
SH
chmod +x "$TMP/vmlab"
out=$(harness/vmlab-scenarios --vmlab "$TMP/vmlab" run --jobs 2 2>&1); rc=$?
check "every scenario passes with the sandbox on ($(tail -1 <<<"$out"))" \
    bash -c '[ $0 -eq 0 ] && [ "$(wc -l <"$1")" -ge 20 ]' $rc "$TMP/calls"

# The test build's UART opens a network socket after the guest's first line.
"$TESTSB" run --quiet "$HELLO" >/dev/null 2>&1; rc=$?
check "trigger build, no sandbox: the forbidden call is harmless (status 1)" [ $rc -eq 1 ]
"$TESTSB" run --quiet --sandbox "$HELLO" >"$TMP/out" 2>/dev/null; rc=$?
check "trigger build, --sandbox: killed by SIGSYS (status $rc)" \
    bash -c '[ $0 -eq $((128 + 31)) ] && grep -q "hello from vmlab guest" "$1"' $rc "$TMP/out"

SOCK=$TMP/mgr.sock
MGR=
trap '[ -n "$MGR" ] && kill -KILL $MGR 2>/dev/null; rm -rf "$TMP"' EXIT
# start_mgr BINARY: a manager whose VMs run as BINARY
start_mgr() {
    : >"$TMP/mgr.log"
    "$1" virtmgr --socket "$SOCK" --state-dir "$TMP/state" >"$TMP/mgr.log" 2>&1 &
    MGR=$!; MGRBIN=$1
    wait_for 60 grep -q "listening on" "$TMP/mgr.log"
}
stop_mgr() { kill -TERM $MGR; wait $MGR; local rc=$?; MGR=; return $rc; }
vm() { "$MGRBIN" vm "$1" --socket "$SOCK" "${@:2}"; }
info_is() { python3 -c 'import json,sys; v=json.loads(sys.argv[1]); sys.exit(0 if eval(sys.argv[2]) else 1)' "$(vm info "$1")" "$2"; }
pid_of() { vm list | awk -v c="$1" '$1 == c { print $3 }'; }
truncate -s 1M "$TMP/a.img" "$TMP/b.img"
for d in a b; do
    echo "{\"program\": \"$(realpath "$GUESTS/idle.elf")\", \"disks\": [{\"image\": \"$TMP/$d.img\", \"writable\": true}]}" >"$TMP/$d.json"
done

start_mgr "$VMLAB"
A=$(vm run --detach "$TMP/a.json"); B=$(vm run --detach --no-sandbox "$TMP/b.json")
wait_for 60 bash -c '[ -S "$0/state/vm-$1/control.sock" ] && [ -S "$0/state/vm-$2/control.sock" ]' "$TMP" "$A" "$B"
PA=$(pid_of "$A"); PB=$(pid_of "$B")
check "a sandboxed VM: seccomp filter and no_new_privs" \
    bash -c 'grep -q "^Seccomp:[[:space:]]*2" /proc/$0/status && grep -q "^NoNewPrivs:[[:space:]]*1" /proc/$0/status' "$PA"
check "a sandboxed VM: its own user and mount namespaces" \
    bash -c '[ "$(readlink /proc/$0/ns/user)" != "$(readlink /proc/$1/ns/user)" ] && [ "$(readlink /proc/$0/ns/mnt)" != "$(readlink /proc/$1/ns/mnt)" ]' "$PA" "$MGR"
check "vm info describes the sandbox" info_is "$A" '"own user and mount namespaces" in v["sandbox"] and "seccomp" in v["sandbox"]'
check "--no-sandbox: off" bash -c 'grep -q "^Seccomp:[[:space:]]*0" /proc/$0/status' "$PB"
check "... and vm info says so" info_is "$B" 'v["sandbox"] == "off (--no-sandbox)"'
# Only its own fds: its disk, not another VM's; no socket but its own control socket and,
# when this vmlab has virtio-vsock, its vsock socket (the manager passes --vsock then).
nsock=1; "$VMLAB" run --help | grep -q -- --vsock && nsock=2
check "a VM holds its disk, not another VM's, nor the manager's sockets" \
    bash -c 'f=$(for x in /proc/$0/fd/*; do readlink "$x"; done); grep -q "a.img" <<<"$f" && ! grep -q "b.img" <<<"$f" && [ "$(grep -c socket: <<<"$f")" -le $1 ]' "$PA" "$nsock"
vm stop "$A" >/dev/null; vm stop "$B" >/dev/null
check "the manager stops both and exits 0" stop_mgr

# A sandboxed VM whose device breaks the rules (the trigger build): SIGSYS, reported;
# another VM of the same manager goes on.
start_mgr "$TESTSB"
B=$(vm run --detach --no-sandbox "$TMP/b.json")
wait_for 60 bash -c '[ -S "$0/state/vm-$1/control.sock" ]' "$TMP" "$B"
PB=$(pid_of "$B")
vm run --program "$HELLO" >/dev/null 2>"$TMP/err"; rc=$?
check "the VM dies of SIGSYS and its client is told (status 12)" \
    bash -c '[ $0 -eq 12 ] && grep -q "ended: crash (the VM process died of SIGSYS (a system call its sandbox forbids))" "$1"' $rc "$TMP/err"
check "the manager logs it" grep -q "ended: crash (the VM process died of SIGSYS" "$TMP/mgr.log"
check "the other VM is not disturbed" bash -c 'kill -0 $0 && [ "$("$1" vm list --socket "$2" | wc -l)" = 2 ]' "$PB" "$TESTSB" "$SOCK"
vm run --no-sandbox --program "$HELLO" >/dev/null 2>&1; rc=$?
check "the same VM with --no-sandbox runs to its end (status 1)" [ $rc -eq 1 ]
vm stop "$B" >/dev/null
check "the manager exits 0" stop_mgr
finish
