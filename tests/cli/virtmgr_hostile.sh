#!/bin/bash
# Hostile clients of vmlab virtmgr: malformed and oversized messages, unknown commands and
# fields, fds of the wrong kind passed as disks (a socket, a directory, a FIFO), too many
# fds, a client that sends fds and disconnects mid-request, another uid. Each gets a clear
# error (or is dropped), the manager keeps serving, and nothing leaks.
source "$(dirname "$0")/lib.sh"
need_built "$VMLAB"
need_cmd python3 python3

SOCK=$TMP/mgr.sock
touch "$TMP/mgr.log"
"$VMLAB" virtmgr --socket "$SOCK" --state-dir "$TMP/state" >"$TMP/mgr.log" 2>&1 &
MGR=$!
trap 'kill -KILL $MGR 2>/dev/null; rm -rf "$TMP"' EXIT
wait_for 60 grep -q "listening on" "$TMP/mgr.log"
mgr_fds() { ls /proc/$MGR/fd | wc -l; }
FDS0=$(mgr_fds)

# client.py CASE: one hostile exchange; prints the manager's answer(s), one per line.
cat >"$TMP/client.py" <<'PY'
import json, os, socket, sys
path, case, prog = sys.argv[1], sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(path)
def ask(data, fds=()):
    socket.send_fds(s, [data], list(fds)) if fds else s.send(data)
    print(s.recv(70000).decode())
def run_with(fds, disks):
    cfg = {"program": prog, "disks": disks}
    ask(json.dumps({"cmd": "run", "config": cfg}).encode(), fds)
if case == "malformed":
    ask(b'{"cmd": "list"')
    ask(b'[1, 2]')
    ask(b'{"cmd": "list"} trailing')
    ask(b'{"cmd": "list"}')                     # the connection still works
elif case == "oversized":
    ask(b'{"cmd": "list", "pad": "' + b'x' * 70000 + b'"}')
    ask(b'{"cmd": "list"}')
elif case == "fields":
    ask(b'{"cmd": "reboot"}')
    ask(b'{"cmd": 7}')
    ask(b'{"cmd": "info", "cid": "2048"}')
    ask(b'{"cmd": "info", "cid": 2048, "verbose": true}')
    ask(b'{"cmd": "run", "config": {"program": "relative.elf"}}')
    ask(b'{"cmd": "list"}', [os.open("/dev/null", os.O_RDONLY)])
elif case == "socket":
    a, b = socket.socketpair()
    run_with([a.fileno()], [{"image_fd": 0}])
elif case == "directory":
    run_with([os.open("/", os.O_RDONLY | os.O_DIRECTORY)], [{"image_fd": 0}])
elif case == "fifo":
    os.mkfifo(sys.argv[4])
    run_with([os.open(sys.argv[4], os.O_RDWR)], [{"image_fd": 0}])
elif case == "toomany":
    fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(20)]
    run_with(fds, [{"image_fd": 0}])
elif case == "unnamed":
    run_with([os.open("/dev/null", os.O_RDONLY)], [])
elif case == "vanish":
    # fds and a request, then gone before reading the answer
    cfg = {"program": prog, "disks": [{"image_fd": 0, "writable": True}]}
    socket.send_fds(s, [json.dumps({"cmd": "run", "config": cfg}).encode()],
                    [os.open(sys.argv[4], os.O_RDWR)])
    os._exit(0)
PY
client() { python3 "$TMP/client.py" "$SOCK" "$1" "$(realpath "$GUESTS/idle.elf")" "${2:-}"; }
# expect CASE LINE# SUBSTRING: the CASE's answer number LINE# contains SUBSTRING
expect() {
    local out; out=$(client "$1" "${4:-}" 2>&1 | sed -n "${2}p")
    if [[ "$out" == *"$3"* ]]; then ok "$1: $3"; else not_ok "$1: want '$3', got '$out'"; fi
}

expect malformed 1 '"error":"message is not a JSON object (the message ends inside it)"'
expect malformed 2 '"error":"message is not a JSON object (another JSON type)"'
expect malformed 3 '"error":"message is not a JSON object'
expect malformed 4 '"vms":[]'
expect oversized 1 'exceeds the limit of 65536 bytes'
expect oversized 2 '"vms":[]'
expect fields 1 'cmd: unknown command \"reboot\"'
expect fields 2 'cmd: missing, or not a string'
expect fields 3 'info: cid: expected a CID (an integer), got \"2048\"'
expect fields 4 'info: unknown field \"verbose\"'
expect fields 5 "program: 'relative.elf' is not an absolute path"
expect fields 6 'list: takes no file descriptors, got 1'
expect socket 1 'disks[0].image_fd: fd index 0 is a socket, not a regular file or block device'
expect directory 1 'disks[0].image_fd: fd index 0 is a directory, not a regular file'
expect fifo 1 'disks[0].image_fd: fd index 0 is a FIFO, not a regular file' "$TMP/fifo"
expect toomany 1 'more than 16 file descriptors in one message'
expect unnamed 1 'the request carries 1 fds but the config names only 0 of them'

# A client that sends fds and a request and vanishes: the VM it started has no holder
# left and is stopped; the manager goes on.
truncate -s 1M "$TMP/disk.img"
client vanish "$TMP/disk.img"
check "a client gone mid-request: its VM is started and stopped again" \
    wait_for 60 grep -q "VM 2048 ended: shutdown" "$TMP/mgr.log"
check "refused requests used no CID (the vanished client's VM got 2048)" grep -q "VM 2048: started" "$TMP/mgr.log"
check "the manager still serves" bash -c '"$0" vm list --socket "$1" >/dev/null' "$VMLAB" "$SOCK"
check "no fd of any hostile client stays open in the manager" [ "$(mgr_fds)" -eq "$FDS0" ]
check "no VM folder or child left" bash -c '[ -z "$(ls "$0"/state | grep vm-)" ] && ! pgrep -P "$1" >/dev/null' "$TMP" "$MGR"

# Another uid: the socket file (0600) already keeps it out; with the file opened up,
# SO_PEERCRED still refuses it.
if [ "$(id -u)" -ne 0 ]; then
    skip "another uid: needs root to run a client as uid 65534"
else
    chmod 755 "$TMP"
    out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$VMLAB" vm list --socket "$SOCK" 2>&1)
    check "another uid: the 0600 socket refuses the connection" grep -q "Permission denied" <<<"$out"
    chmod 666 "$SOCK"
    out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$VMLAB" vm list --socket "$SOCK" 2>&1)
    check "another uid: refused by SO_PEERCRED ($out)" \
        grep -q "peer uid 65534 differs from the manager's uid 0" <<<"$out"
    chmod 600 "$SOCK"; chmod 700 "$TMP"
fi
kill -TERM $MGR; wait $MGR; rc=$?
check "the manager exits 0 after all this" [ $rc -eq 0 ]
finish
