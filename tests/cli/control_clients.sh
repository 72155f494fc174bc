#!/usr/bin/env bash
# The control-socket clients (`vmlab stop|suspend|resume|stats|disk resize|snapshot|fault`)
# against the real server with a fake VM behind it (`test_control --serve`): exit statuses,
# human and --json output, error messages, and raw bad requests over the socket.
source "$(dirname "$0")/lib.sh"
SERVER=${SERVER:-$BUILD/tests/test_control}
SOCK=$TMP/vm.sock

# expect STATUS DESC CMD...: the command exits with STATUS; its stdout/stderr are kept in
# $TMP/out and $TMP/err for the checks that follow.
expect() {
    local want=$1 desc=$2 rc; shift 2
    "$@" >"$TMP/out" 2>"$TMP/err"; rc=$?
    if [ "$rc" -eq "$want" ]; then ok "$desc"; else
        not_ok "$desc (exit $rc, want $want; stderr: $(head -c 300 "$TMP/err"))"; fi
}
has() { grep -qF -- "$2" "$TMP/$1"; }

"$SERVER" --serve "$SOCK" >"$TMP/server.out" 2>"$TMP/server.err" &
server=$!
trap 'kill "$server" 2>/dev/null; rm -rf "$TMP"' EXIT   # never leave the server behind
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
check "server socket exists with mode 0600" \
    bash -c '[ -S "$1" ] && [ "$(stat -c %a "$1")" = 600 ]' _ "$SOCK"

expect 0 "stats succeeds" "$VMLAB" stats "$SOCK"
check "stats prints the run state" has out "running"
check "stats prints exits by kind" has out "mmio_write"
expect 0 "stats --json succeeds" "$VMLAB" stats --json "$SOCK"
check "stats --json prints one JSON line with ok:true and an integer insns" \
    /usr/bin/python3 -c 'import json,sys; l=open(sys.argv[1]).read().splitlines(); d=json.loads(l[0]); sys.exit(not (len(l)==1 and d["ok"] is True and isinstance(d["stats"]["insns"], int)))' "$TMP/out"

expect 0 "suspend succeeds" "$VMLAB" suspend "$SOCK"
check "suspend says so" has out "suspended"
expect 1 "suspend while suspended is refused with status 1" "$VMLAB" suspend "$SOCK"
check "the refusal is one 'vmlab: suspend:' line naming the reason" \
    bash -c '[ "$(wc -l <"$1")" -eq 1 ] && grep -q "^vmlab: suspend: .*already suspended" "$1"' _ "$TMP/err"
expect 0 "stats while suspended" "$VMLAB" stats "$SOCK"
check "stats shows the suspended state" has out "suspended"
expect 0 "resume succeeds" "$VMLAB" resume "$SOCK"
expect 1 "resume while running is refused" "$VMLAB" resume "$SOCK"

expect 0 "disk resize with a size suffix" "$VMLAB" disk resize 0 2M "$SOCK"
check "disk resize reports the new size in bytes" has out "disk 0 resized to 2097152 bytes"
expect 1 "disk resize of a missing disk is refused by the VM" "$VMLAB" disk resize 5 1M "$SOCK"
check "the refusal names the disk" has err "no disk 5"
expect 2 "disk resize with a bad size is a usage error" "$VMLAB" disk resize 0 12Q "$SOCK"
check "the usage error names the value" has err '"12Q"'
expect 2 "disk resize with a missing argument" "$VMLAB" disk resize 0 "$SOCK"

expect 0 "snapshot take --json" "$VMLAB" snapshot take "$TMP/snap.bin" --json "$SOCK"
check "snapshot --json prints the VM's answer" bash -c '[ "$(cat "$1")" = "{\"ok\":true}" ]' _ "$TMP/out"
expect 0 "fault inject" "$VMLAB" fault inject 1 "seed=4,eio=0.5" "$SOCK"
expect 1 "fault inject with a plan the VM rejects" "$VMLAB" fault inject 0 "bogus" "$SOCK"
check "the rejection quotes the plan" has err '"bogus"'

expect 0 "trace start" "$VMLAB" trace start "$TMP/run.vtrace" "$SOCK"
check "trace start says where" has out "tracing to $TMP/run.vtrace"
expect 1 "a second trace start is refused" "$VMLAB" trace start "$TMP/other.vtrace" "$SOCK"
expect 0 "trace stop" "$VMLAB" trace stop "$SOCK"
expect 1 "trace stop with no trace running is refused" "$VMLAB" trace stop "$SOCK"

expect 0 "stop --help" "$VMLAB" stop --help
check "help shows the argument shape" has out "usage: vmlab stop [--json] [--timeout SECONDS] SOCKET"
expect 0 "disk resize --help" "$VMLAB" disk resize --help
check "help shows the disk resize shape" has out "vmlab disk resize INDEX SIZE"
expect 2 "no socket argument" "$VMLAB" stats

# Raw requests: bad ones get an error line naming the problem and the server carries on.
check "raw bad requests get error answers, then a good one works" /usr/bin/python3 - "$SOCK" <<'PY'
import json, socket, sys
path = sys.argv[1]
def ask(data):
    s = socket.socket(socket.AF_UNIX); s.connect(path); s.settimeout(20)
    s.sendall(data)
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    s.close()
    return json.loads(buf.decode())
cases = [
    (b"\n", "empty request"),
    (b"{\"cmd\":\"stop\"\n", "malformed JSON"),
    (b"{\"cmd\":\"halt\"}\n", "unknown command \"halt\""),
    (b"{\"cmd\":\"stop\",\"now\":1}\n", "unexpected field \"now\""),
    (b"{\"cmd\":\"disk\",\"op\":\"resize\",\"index\":0}\n", "missing field \"size\""),
    (b"{\"cmd\":\"disk\",\"op\":\"resize\",\"index\":\"0\",\"size\":512}\n", "field \"index\""),
    (b"x" * 70000, "exceeds the limit of 65536 bytes"),
]
for data, want in cases:
    r = ask(data)
    if r.get("ok") is not False or want not in r.get("error", ""):
        print("unexpected answer", r, "for", data[:60]); sys.exit(1)
r = ask(b"{\"cmd\":\"stats\"}\n")
sys.exit(0 if r["ok"] is True and r["stats"]["state"] == "running" else 1)
PY

expect 0 "stop succeeds" "$VMLAB" stop "$SOCK"
wait "$server"; rc=$?
check "the served VM exits 0 after stop" [ "$rc" -eq 0 ]
check "the socket is removed when the VM exits" [ ! -e "$SOCK" ]
expect 3 "a client after the VM is gone gets status 3" "$VMLAB" stats "$SOCK"
check "... with a clear message" has err "no control socket at $SOCK"
expect 3 "a path that is not a socket gets status 3" "$VMLAB" stop /dev/null

echo keep >"$TMP/file"
expect 2 "the server refuses to replace a regular file" "$SERVER" --serve "$TMP/file"
check "... and leaves it alone" bash -c '[ "$(cat "$1")" = keep ]' _ "$TMP/file"
finish
