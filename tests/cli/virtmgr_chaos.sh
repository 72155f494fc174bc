#!/bin/bash
# Seeded chaos under vmlab virtmgr: ROUNDS (200) rounds of random actions — start detached
# VMs and attached clients, SIGKILL clients, SIGKILL VM processes, vm stop, SIGKILL or
# SIGTERM the manager itself and start a new one. After every round the manager's view
# matches the truth: every VM it lists is a live child of it, its children are exactly the
# VMs it lists, the state dir holds exactly their folders and no half-written file; after a
# manager dies, its VMs are gone and the next one lists none. At the end: no child, fd,
# socket file, temp file or folder left. Replay a failure with VIRTMGR_CHAOS_SEED=N.
source "$(dirname "$0")/lib.sh"
set +m   # no job-control notices for the clients it kills
need_built "$VMLAB"
SEED=${VIRTMGR_CHAOS_SEED:-21}
ROUNDS=${VIRTMGR_CHAOS_ROUNDS:-200}
RANDOM=$SEED

SOCK=$TMP/mgr.sock
STATE=$TMP/state
MGR=
CLIENTS=()
cleanup() { [ -n "$MGR" ] && kill -KILL $MGR 2>/dev/null; for c in "${CLIENTS[@]}"; do kill -KILL $c 2>/dev/null; done; rm -rf "$TMP"; }
trap cleanup EXIT
start_mgr() {
    : >"$TMP/mgr.log"
    "$VMLAB" virtmgr --socket "$SOCK" --state-dir "$STATE" --stop-timeout 2000 >"$TMP/mgr.log" 2>&1 &
    MGR=$!
    wait_for 60 grep -q "listening on" "$TMP/mgr.log"
    FDS0=$(ls /proc/$MGR/fd | wc -l)
}
truncate -s 1M "$TMP/d.img"
echo "{\"program\": \"$(realpath "$GUESTS/idle.elf")\", \"disks\": [{\"image\": \"$TMP/d.img\", \"writable\": true}]}" >"$TMP/vm.json"
listing() { "$VMLAB" vm list --socket "$SOCK" 2>/dev/null | awk 'NR > 1 { print $1, $3 }'; }

# consistent: the manager's list, its children and the state dir agree (echo why not)
consistent() {
    local l pids cids kids dirs
    l=$(listing) || { echo "vm list failed"; return 1; }
    pids=$(awk '{ print $2 }' <<<"$l" | sort -n | xargs)
    cids=$(awk '{ print $1 }' <<<"$l" | sort -n | xargs)
    kids=$(pgrep -P "$MGR" | sort -n | xargs)
    dirs=$(cd "$STATE" && ls -d vm-* 2>/dev/null | sed 's/vm-//' | sort -n | xargs)
    [ "$pids" = "$kids" ] || { echo "listed pids '$pids' != children '$kids'"; return 1; }
    [ "$cids" = "$dirs" ] || { echo "listed CIDs '$cids' != folders '$dirs'"; return 1; }
    [ -z "$(find "$STATE" -name '*.tmp')" ] || { echo "a temp file is left"; return 1; }
    [ -z "$(awk '{ print $1 }' <<<"$l" | sort | uniq -d)" ] || { echo "a CID twice"; return 1; }
    return 0
}
settled() { consistent >/dev/null; }

start_mgr
# The check can fail: a folder the manager does not know of, and a half-written file, are
# each reported.
mkdir "$STATE/vm-99999"
out=$(consistent)
check "the consistency check catches a stray VM folder ($out)" [ "$out" = "listed CIDs '' != folders '99999'" ]
rmdir "$STATE/vm-99999"
touch "$STATE/last-cid.tmp"
out=$(consistent)
check "the consistency check catches a temp file ($out)" [ "$out" = "a temp file is left" ]
rm "$STATE/last-cid.tmp"
bad=0 kills_mgr=0 kills_vm=0 kills_client=0 started=0
for round in $(seq 1 "$ROUNDS"); do
    action=$((RANDOM % 20))
    nl=$(listing | wc -l)
    if [ $action -lt 5 ] && [ "$nl" -lt 6 ]; then
        "$VMLAB" vm run --socket "$SOCK" --detach "$TMP/vm.json" >/dev/null 2>&1 && started=$((started + 1))
    elif [ $action -lt 9 ] && [ "$nl" -lt 6 ]; then
        "$VMLAB" vm run --socket "$SOCK" "$TMP/vm.json" >/dev/null 2>&1 &
        CLIENTS+=($!); started=$((started + 1))
        # sometimes killed before its request is even answered
        [ $((RANDOM % 3)) -eq 0 ] && { kill -KILL $! 2>/dev/null; kills_client=$((kills_client + 1)); }
    elif [ $action -lt 12 ] && [ ${#CLIENTS[@]} -gt 0 ]; then
        i=$((RANDOM % ${#CLIENTS[@]}))
        kill -KILL "${CLIENTS[$i]}" 2>/dev/null; kills_client=$((kills_client + 1))
        CLIENTS=("${CLIENTS[@]:0:$i}" "${CLIENTS[@]:$((i + 1))}")
    elif [ $action -lt 15 ]; then
        p=$(listing | shuf -n1 --random-source=<(yes $RANDOM) | awk '{ print $2 }')
        [ -n "$p" ] && kill -KILL "$p" 2>/dev/null && kills_vm=$((kills_vm + 1))
    elif [ $action -lt 18 ]; then
        c=$(listing | shuf -n1 --random-source=<(yes $RANDOM) | awk '{ print $1 }')
        [ -n "$c" ] && "$VMLAB" vm stop --socket "$SOCK" "$c" >/dev/null 2>&1
    else
        old=$(pgrep -P "$MGR" | xargs)
        if [ $action -eq 18 ]; then kill -KILL $MGR; else kill -TERM $MGR; fi
        wait $MGR 2>/dev/null; kills_mgr=$((kills_mgr + 1))
        for p in $old; do
            wait_for 30 bash -c '! kill -0 $0 2>/dev/null' "$p" ||
                { not_ok "round $round: VM process $p outlived its manager"; bad=1; }
        done
        start_mgr
        [ -z "$(listing)" ] || { not_ok "round $round: a new manager lists VMs"; bad=1; }
    fi
    if ! wait_for 30 settled; then
        not_ok "round $round (seed $SEED, action $action): $(consistent)"
        bad=1
        break
    fi
done
[ $bad -eq 0 ] && ok "$ROUNDS seeded rounds (seed $SEED): $started VMs started, $kills_vm VM, $kills_client client and $kills_mgr manager kills; the manager's view matched after each"

# The end: every client gone, every VM stopped; nothing left.
for c in "${CLIENTS[@]}"; do kill -KILL $c 2>/dev/null; done
for c in $(listing | awk '{ print $1 }'); do "$VMLAB" vm stop --socket "$SOCK" "$c" >/dev/null 2>&1; done
check "all VMs gone once their holders are" wait_for 60 bash -c '[ -z "$("$0" vm list --socket "$1" | tail -n +2)" ]' "$VMLAB" "$SOCK"
check "no child of the manager left" bash -c '! pgrep -P "$0" >/dev/null' "$MGR"
check "the manager holds the fds it started with ($FDS0), no more" [ "$(ls /proc/$MGR/fd | wc -l)" -eq "$FDS0" ]
kill -TERM $MGR; wait $MGR; rc=$?; MGR=
check "the manager exits 0" [ $rc -eq 0 ]
check "no socket, folder or temp file left in the state dir (only last-cid)" \
    bash -c '[ "$(ls -A "$0")" = last-cid ] && [ ! -e "$1" ]' "$STATE" "$SOCK"
check "no VM process of this test left anywhere" bash -c '! pgrep -f "$0/vm-" >/dev/null' "$STATE"
finish
