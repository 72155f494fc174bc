#!/usr/bin/env bash
# `vmlab run --socket` end to end: the `idle` guest (timer ticks, a disk write and read-back
# per tick) steered by the client subcommands; bad and silent clients do not disturb it; and
# after `vmlab stop` in the middle of its disk writes, every write the guest saw acknowledged
# is in the disk file.
source "$(dirname "$0")/lib.sh"
SOCK=$TMP/vm.sock
DISK=$TMP/disk.img
SECTORS=64

expect() {
    local want=$1 desc=$2 rc; shift 2
    "$@" >"$TMP/out" 2>"$TMP/err"; rc=$?
    if [ "$rc" -eq "$want" ]; then ok "$desc"; else
        not_ok "$desc (exit $rc, want $want; stderr: $(head -c 300 "$TMP/err"))"; fi
}
# field FILE KEY: a member of the "stats" object of a --json answer
field() { /usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["stats"][sys.argv[2]])' "$1" "$2"; }
# wait_for SECONDS CMD...: until CMD succeeds (bounded; a hung VM fails the test, not the run)

truncate -s $((SECTORS * 512)) "$DISK"
"$VMLAB" run --socket "$SOCK" --block "$DISK" --serial "$TMP/serial.txt" "$GUESTS/idle.elf" \
    >"$TMP/vm.out" 2>"$TMP/vm.err" &
vm=$!
trap 'kill "$vm" 2>/dev/null; rm -rf "$TMP"' EXIT     # never leave the VM behind

check "the socket appears with mode 0600" \
    wait_for 60 bash -c '[ -S "$1" ] && [ "$(stat -c %a "$1")" = 600 ]' _ "$SOCK"
check "the guest is ticking (100 ticks, each a verified disk write)" \
    wait_for 120 grep -q "idle: tick 100$" "$TMP/serial.txt"

expect 0 "stats" "$VMLAB" stats --json "$SOCK"
if ! grep -q '"ok":true' "$TMP/out"; then
    # Every later check would wait out its client timeout: stop here, failed.
    echo "# the VM does not answer on its control socket; later checks not run"
    finish; exit 1
fi
cp "$TMP/out" "$TMP/s0.json"
check "stats says running, with instructions retired" \
    bash -c '[ "$1" = running ] && [ "$2" -gt 0 ]' _ "$(field "$TMP/s0.json" state)" "$(field "$TMP/s0.json" insns)"

expect 0 "suspend" "$VMLAB" suspend "$SOCK"
expect 0 "stats while suspended" "$VMLAB" stats --json "$SOCK"
cp "$TMP/out" "$TMP/s1.json"
sleep 0.3
expect 0 "stats again while suspended" "$VMLAB" stats --json "$SOCK"
cp "$TMP/out" "$TMP/s2.json"
check "a suspended VM reports state suspended" [ "$(field "$TMP/s1.json" state)" = suspended ]
check "a suspended VM does not advance (same insns and virtual time)" \
    bash -c '[ "$1" = "$2" ] && [ "$3" = "$4" ]' _ \
    "$(field "$TMP/s1.json" insns)" "$(field "$TMP/s2.json" insns)" \
    "$(field "$TMP/s1.json" virtual_ns)" "$(field "$TMP/s2.json" virtual_ns)"
expect 1 "suspend twice is refused" "$VMLAB" suspend "$SOCK"
expect 0 "resume" "$VMLAB" resume "$SOCK"
insns_before=$(field "$TMP/s2.json" insns)
advanced() { "$VMLAB" stats --json "$SOCK" >"$TMP/s3.json" 2>/dev/null &&
             [ "$(field "$TMP/s3.json" insns)" -gt "$insns_before" ] &&
             insns_before=$(field "$TMP/s3.json" insns); }
check "after resume the guest runs on" wait_for 60 advanced

expect 0 "disk resize grows the disk" "$VMLAB" disk resize 0 $((SECTORS * 2 * 512)) "$SOCK"
check "the disk file has the new size" [ "$(stat -c %s "$DISK")" -eq $((SECTORS * 2 * 512)) ]
expect 1 "disk resize to an odd size is refused by the device" "$VMLAB" disk resize 0 1000 "$SOCK"
check "... naming the size" grep -q "1000" "$TMP/err"
check "... and the file keeps its size" [ "$(stat -c %s "$DISK")" -eq $((SECTORS * 2 * 512)) ]

expect 0 "trace start" "$VMLAB" trace start "$TMP/run.vtrace" "$SOCK"
check "the guest keeps ticking while traced" wait_for 60 advanced
expect 0 "disk resize while tracing" "$VMLAB" disk resize 0 $((SECTORS * 2 * 512)) "$SOCK"
expect 0 "trace stop" "$VMLAB" trace stop "$SOCK"
"$VMLAB" trace dump "$TMP/run.vtrace" >"$TMP/dump.txt" 2>&1
check "the trace records control commands with their virtual time" \
    grep -qE '^#[0-9]+ [0-9]+ns cpu0 control \{"cmd":"disk","op":"resize","index":0,"size":'$((SECTORS * 2 * 512))'\}' "$TMP/dump.txt"

# Misbehaving clients: a silent one, a half request, garbage, oversized; the VM answers on.
check "bad and silent clients get errors or nothing, and a good client still gets through" \
    /usr/bin/python3 - "$SOCK" <<'PY'
import json, socket, sys
path = sys.argv[1]
def conn():
    s = socket.socket(socket.AF_UNIX); s.connect(path); s.settimeout(30); return s
def ask(data):
    s = conn(); s.sendall(data); buf = b""
    while not buf.endswith(b"\n"):
        c = s.recv(65536)
        if not c: break
        buf += c
    s.close(); return json.loads(buf.decode())
silent = conn()
half = conn(); half.sendall(b'{"cmd":"sto')
for data, want in [(b"garbage\n", "malformed JSON"), (b'{"cmd":"stop","x":1}\n', 'unexpected field "x"'),
                   (b'{"cmd":"disk","op":"resize","index":9,"size":512}\n', "9"),
                   (b"{" * 70000, "exceeds the limit")]:
    r = ask(data)
    if r.get("ok") is not False or want not in r.get("error", ""):
        print("unexpected", r); sys.exit(1)
r = ask(b'{"cmd":"stats"}\n')
sys.exit(0 if r["ok"] and r["stats"]["state"] == "running" else 1)
PY
pids=()
for i in $(seq 20); do "$VMLAB" stats "$SOCK" >/dev/null 2>&1 & pids+=($!); done
bad=0; for p in "${pids[@]}"; do wait "$p" || bad=$((bad + 1)); done
check "20 concurrent stats clients all succeed" [ "$bad" -eq 0 ]

expect 0 "stop" "$VMLAB" stop "$SOCK"
wait "$vm"; rc=$?
check "vmlab run exits 0 after stop" [ "$rc" -eq 0 ]
check "the socket is removed" [ ! -e "$SOCK" ]
expect 3 "a client after the VM is gone gets status 3" "$VMLAB" stop "$SOCK"

# Every write the guest saw acknowledged: tick t wrote sector t mod SECTORS (the capacity
# it read at boot) full of t, and "idle: tick N" follows the verified writes of 0..N-1.
last=$(grep -o "idle: tick [0-9]*" "$TMP/serial.txt" | tail -1 | awk '{print $3}')
check "no acknowledged disk write lost (ticks 0..${last:-?} against the file)" \
    /usr/bin/python3 - "$DISK" "${last:-0}" "$SECTORS" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
n, cap = int(sys.argv[2]), int(sys.argv[3])
if n < 100 or len(data) < cap * 512:
    sys.exit(1)
for s in range(cap):
    words = struct.unpack_from("<64Q", data, s * 512)
    if len(set(words)) != 1:
        print("sector", s, "torn"); sys.exit(1)
    v = words[0]
    # the newest acknowledged tick that wrote this sector
    floor = s + ((n - 1 - s) // cap) * cap if s <= n - 1 else None
    if floor is None:
        continue
    if v % cap != s or v < floor:
        print("sector", s, "holds", v, "want >=", floor); sys.exit(1)
PY
finish
