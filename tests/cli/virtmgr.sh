#!/bin/bash
# vmlab virtmgr + vmlab vm end to end: VMs started, listed, held by reference (a client
# killed with SIGKILL lets go), detached and stopped, told why they ended; CIDs persisted
# across a restart and exhausted with a clear error; a manager killed with SIGKILL takes its
# VMs with it and a new one cleans up; nothing leaks (fds, children, VM folders).
source "$(dirname "$0")/lib.sh"
need_built "$VMLAB"
need_cmd python3 python3

# (Background clients run $VMLAB directly, not through a shell function, so that $! is
# the client itself.)
# wait_for SECONDS CMD...: until CMD succeeds (bounded: a hang fails the check, not the run)

SOCK=$TMP/mgr.sock
STATE=$TMP/state
MGR_PID=
start_mgr() {
    local n; touch "$TMP/mgr.log"; n=$(grep -c "listening on" "$TMP/mgr.log")
    "$VMLAB" virtmgr --socket "$SOCK" --state-dir "$STATE" --stop-timeout "${STOP_MS:-10000}" "$@" \
        >>"$TMP/mgr.log" 2>&1 &
    MGR_PID=$!
    wait_for 60 bash -c '[ "$(grep -c "listening on" "$0")" -gt "$1" ]' "$TMP/mgr.log" "${n:-0}"
}
stop_mgr() { [ -n "$MGR_PID" ] && kill -TERM "$MGR_PID" 2>/dev/null && wait "$MGR_PID"; local rc=$?; MGR_PID=; return $rc; }
cleanup() { [ -n "$MGR_PID" ] && kill -KILL "$MGR_PID" 2>/dev/null; jobs -p | xargs -r kill -KILL 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
vm() { "$VMLAB" vm "$1" --socket "$SOCK" "${@:2}"; }
listed() { vm list | awk -v c="$1" '$1 == c' | grep -q .; }
not_listed() { ! listed "$1"; }
vm_pid() { vm list | awk -v c="$1" '$1 == c { print $3 }'; }
# info_is CID PYTHON-EXPR: vm info CID's JSON, as v, satisfies the expression
info_is() { python3 -c 'import json,sys; v=json.loads(sys.argv[1]); sys.exit(0 if eval(sys.argv[2]) else 1)' "$(vm info "$1")" "$2"; }
vm_dirs() { find "$STATE" -maxdepth 1 -name 'vm-*' | wc -l; }
mgr_fds() { ls /proc/"$MGR_PID"/fd | wc -l; }
mgr_children() { pgrep -P "$MGR_PID" | wc -l; }

HELLO=$GUESTS/hello.elf
IDLE=$GUESTS/idle.elf
truncate -s 1M "$TMP/idle.img"
cat >"$TMP/idle.json" <<JSON
{"name": "idler", "program": "$IDLE", "disks": [{"image": "$TMP/idle.img", "writable": true}]}
JSON

# --help everywhere.
for sub in "virtmgr" "vm" "vm run" "vm list" "vm info" "vm stop" "vm attach" "vm create-partition"; do
    out=$("$VMLAB" $sub --help 2>&1); rc=$?
    check "vmlab $sub --help" [ $rc -eq 0 ] && [[ "$out" == Usage:* ]]
done
out=$("$VMLAB" vm run --help)
for opt in --name --mem --cpus --cpu --debug --console --log --detach --kernel --program; do
    [[ "$out" == *"$opt"* ]] || not_ok "vm run --help lacks $opt"
done

start_mgr
check "the manager's socket is 0600" [ "$(stat -c %a "$SOCK")" = 600 ]
FDS0=$(mgr_fds)

# A VM that runs to its end: the console is this client's stdout, the reason on stderr,
# the exit status the VM's.
out=$(vm run --program "$HELLO" 2>"$TMP/err"); rc=$?
check "vm run: the guest's console reaches the client" grep -q "hello from vmlab guest" <<<"$out"
check "vm run: exit status is the VM's (debug-exit 0 -> 1)" [ $rc -eq 1 ]
check "vm run: the client is told the VM ended and why" \
    grep -q "^vm: VM 2048 ended: shutdown (the guest exited with code 0" "$TMP/err"

# Error at start: a program that is not a guest.
vm run --program "$TMP/idle.json" >/dev/null 2>"$TMP/err"; rc=$?
check "error at start: reported as such, status 2" \
    bash -c '[ $0 -eq 2 ] && grep -q "ended: error (error at start" "$1"' $rc "$TMP/err"

# Bad configs never reach the manager, and name the key.
echo '{"program": "/x", "disks": [{"image": "a", "wrtable": true}]}' >"$TMP/bad.json"
out=$(vm run "$TMP/bad.json" 2>&1); rc=$?
check "a config with an unknown key is refused naming its path" \
    bash -c '[ $0 -eq 2 ] && [ "$1" = "vmlab: vm run: $2: disks[0].wrtable: unknown key" ]' $rc "$out" "$TMP/bad.json"
out=$(vm run --program "$HELLO" --cpus 2 2>&1); rc=$?
check "--cpus 2 refused (one vCPU)" bash -c '[ $0 -eq 2 ] && [[ "$1" == *"--cpus '"'2'"'"* ]]' $rc "$out"

# Detached: the manager holds it; list and info show it; vm stop drops the reference.
cid=$(vm run --detach --name bg --console "$TMP/bg.console" "$TMP/idle.json")
check "vm run --detach prints the CID" [ "$cid" = 2050 ]
check "the detached VM runs (its console fills)" wait_for 120 grep -q "idle: tick 100$" "$TMP/bg.console"
check "vm list shows it detached" bash -c '"$0" vm list --socket "$1" | grep -Eq "^2050 +running +[0-9]+ +0 +yes +bg$"' "$VMLAB" "$SOCK"
info=$(vm info 2050)
check "vm info: JSON with the VM's state" python3 -c '
import json,sys; v=json.loads(sys.argv[1])
assert v["cid"]==2050 and v["detached"] is True and v["state"]=="running" and v["debug"]=="full"
assert v["disks"]==[{"kind":"image","writable":True}], v["disks"]' "$info"
# The CID goes to the VM as a virtio-vsock device exactly when vmlab run has --vsock.
if "$VMLAB" run --help | grep -q -- --vsock; then want="virtio-vsock device with this CID"
else want="CID reserved (this vmlab run has no --vsock)"; fi
check "vm info: the CID's vsock use ($want)" info_is 2050 "v['vsock'] == '$want'"
# Another client holds it too; vm stop leaves it to that client.
"$VMLAB" vm attach --socket "$SOCK" 2050 2>"$TMP/attach.err" & ATT=$!
wait_for 30 info_is 2050 'v["holders"] == 1'
out=$(vm stop 2050)
check "vm stop with another holder: the VM stays" \
    bash -c '[ "$0" = "VM 2050: the manager let go; still held by 1 client" ] && "$1" vm list --socket "$2" | grep -q "^2050 "' "$out" "$VMLAB" "$SOCK"
kill -KILL $ATT; wait $ATT 2>/dev/null
check "the last holder killed with SIGKILL: the VM is stopped" wait_for 60 not_listed 2050
check "... gracefully (control socket stop, exit 0)" grep -q "VM 2050 ended: shutdown (the guest shut down)" "$TMP/mgr.log"

# A client's SIGTERM lets go as SIGKILL does; an unrelated VM is not disturbed.
other=$(vm run --detach "$TMP/idle.json")
"$VMLAB" vm run --socket "$SOCK" "$TMP/idle.json" >/dev/null 2>&1 & RUN=$!
cid=$((other + 1))
wait_for 30 listed "$cid"
out=$(vm stop "$cid" 2>&1); rc=$?
check "vm stop of a VM not started with --detach is refused" \
    bash -c '[ $0 -eq 2 ] && [[ "$1" == *"not started with --detach; it ends when its 1 client let go" ]]' $rc "$out"
kill -TERM $RUN; wait $RUN 2>/dev/null
check "the client that started a VM ends (SIGTERM): the VM is stopped" wait_for 60 not_listed "$cid"
check "an unrelated detached VM is not disturbed" listed "$other"
# A holder is told when its VM is killed.
"$VMLAB" vm attach --socket "$SOCK" "$other" 2>"$TMP/attach.err" >/dev/null & ATT=$!
wait_for 30 info_is "$other" 'v["holders"] == 1'
vm stop "$other" >/dev/null
kill -KILL "$(vm_pid "$other")"
wait $ATT; rc=$?
check "a holder is told when its VM is killed (status 12, reason killed)" \
    bash -c '[ $0 -eq 12 ] && grep -q "ended: killed (killed by SIGKILL)" "$1"' $rc "$TMP/attach.err"

# --debug none: the console and logs are not exposed.
cid=$(vm run --detach --debug none --console "$TMP/hidden.console" "$TMP/idle.json")
check "--debug none: vm info says the console and log are hidden" \
    info_is "$cid" 'v["console"] == v["log"] == "hidden (debug none)"'
sleep 1
check "--debug none: nothing reaches the console file" [ ! -s "$TMP/hidden.console" ]
vm stop "$cid" >/dev/null
wait_for 60 not_listed "$cid"

# A VM that ignores the graceful stop (SIGSTOPped) is killed after the timeout.
stop_mgr
STOP_MS=500 start_mgr
cid=$(vm run --detach "$TMP/idle.json")
wait_for 60 bash -c '[ -S "$0/vm-$1/control.sock" ]' "$STATE" "$cid"
kill -STOP "$(vm_pid "$cid")"
vm stop "$cid" >/dev/null
check "a VM that does not stop is killed after --stop-timeout" wait_for 60 not_listed "$cid"
check "... and the manager says so" grep -q "VM $cid: no exit 500 ms after the stop request, SIGKILL" "$TMP/mgr.log"

# CIDs: persisted, not recycled across a restart.
last=$(cat "$STATE/last-cid")
check "the last CID handed out is in the state dir" [ "$last" = "$cid" ]
stop_mgr
check "the manager exits 0 on SIGTERM and removes its socket" [ ! -e "$SOCK" ]
start_mgr
cid=$(vm run --detach "$TMP/idle.json")
check "a restarted manager starts after the persisted CID" [ "$cid" = $((last + 1)) ]

# A manager killed with SIGKILL: its VMs die with it; the next one cleans up.
vpid=$(vm_pid "$cid")
kill -KILL "$MGR_PID"; wait "$MGR_PID" 2>/dev/null; MGR_PID=
check "a killed manager's VMs die with it" wait_for 30 bash -c '! kill -0 "$0" 2>/dev/null' "$vpid"
start_mgr
check "the restarted manager replaces the stale socket" [ -S "$SOCK" ]
check "... removes the dead VMs' folders" wait_for 10 bash -c '[ "$(find "$0" -maxdepth 1 -name "vm-*" | wc -l)" = 0 ]' "$STATE"
check "... and lists no VM" bash -c '[ "$("$0" vm list --socket "$1" | wc -l)" = 1 ]' "$VMLAB" "$SOCK"
stop_mgr

# Exhaustion is an error, not a hang.
rm -f "$STATE/last-cid"
start_mgr --cid-range 3000-3001
a=$(vm run --detach "$TMP/idle.json"); b=$(vm run --detach "$TMP/idle.json")
out=$(vm run --detach "$TMP/idle.json" 2>&1); rc=$?
check "CIDs exhausted: a clear error" \
    bash -c '[ $0 -eq 2 ] && [ "$1" = "vmlab: vm run: run: no free CID: all 2 CIDs in 3000..3001 are held by running VMs" ]' $rc "$out"
vm stop "$a" >/dev/null; wait_for 60 not_listed "$a"
c=$(vm run --detach "$TMP/idle.json")
check "a CID freed by a VM that ended is handed out again when the search wraps to it" [ "$c" = "$a" ]
FDS0=$(mgr_fds)
vm stop "$b" >/dev/null; vm stop "$c" >/dev/null
wait_for 60 not_listed "$b"; wait_for 60 not_listed "$c"
check "no VM folder, child or fd left once every VM ended" \
    bash -c '[ "$0" = 0 ] && [ "$1" = 0 ]' "$(vm_dirs)" "$(mgr_children)"
check "the manager holds no more fds than with VMs running (no leak)" [ "$(mgr_fds)" -le "$FDS0" ]
stop_mgr
check "nothing left in the state dir but last-cid" [ "$(ls "$STATE")" = last-cid ]
finish
