#!/bin/bash
# virtio-input and virtio-balloon end to end on the software CPU: the input and balloon
# guest programs driven by --at requests and by the control-socket clients (vmlab input,
# balloon, balloon_stats), traces that record the host input and replay without it,
# determinism, and refusals.
# env: BUILD (default build), VMLAB (default $BUILD/asan/vmlab).
cd "$(dirname "$0")/../.."
source tests/cli/lib.sh
G=$BUILD/guest

need_built "$VMLAB"
need_built "$G/input.elf"
need_built "$G/balloon.elf"


TAP='{"cmd":"input","index":0,"events":[[3,47,0],[3,57,1],[3,53,100],[3,54,200],[3,0,100],[3,1,200],[1,330,1],[0,0,0],[3,57,-1],[1,330,0],[0,0,0]]}'

# 1. A tap at 5 ms of virtual time reaches the guest, config space as the kind says.
out=$(timeout 120 "$VMLAB" run --quiet --input multi-touch,width=720,height=1280 \
      --at "5000000:$TAP" --trace "$TMP/tap1.vtrace" "$G/input.elf" -- leds=1 2>&1); rc=$?
expect_output "multi-touch: identity, ABS_INFO and a scripted tap arrive" 1 \
    'name "vmlab Virtio Multitouch Touchscreen"' 'EV_ABS: 0x0 0x1 0x2f 0x35 0x36 0x39 \(6\)' \
    'abs 0x35 min 0 max 719 ' 'abs 0x36 min 0 max 1279 ' 'sent LED_CAPSL on' \
    'event 0 type=3 code=47 value=0 ns=50[0-9]{5}$' 'event 2 type=3 code=53 value=100 ' \
    'event 3 type=3 code=54 value=200 ' 'event 6 type=1 code=330 value=1 ' \
    'event 10 type=0 code=0 value=0 ' 'input: done'
out=$("$VMLAB" trace replay "$TMP/tap1.vtrace" 2>&1); rc=$?
expect_output "the tap's trace replays without an input source" 0 '^replay: match'
n=$("$VMLAB" trace dump "$TMP/tap1.vtrace" 2>/dev/null | grep -c ' input virtio-input#2 len=88 ')
check "the trace holds the tap as one input event ($n)" test "$n" = 1

# 2. Same scenario, same seed: the same trace, byte for byte.
timeout 120 "$VMLAB" run --quiet --input multi-touch,width=720,height=1280 \
    --at "5000000:$TAP" --trace "$TMP/tap2.vtrace" "$G/input.elf" -- leds=1 >/dev/null 2>&1
check "a scripted tap gives a byte-identical trace twice" cmp -s "$TMP/tap1.vtrace" "$TMP/tap2.vtrace"

# 3. A swipe of 100 ms: 7 frames, 16.67 ms of virtual time apart.
SWIPE='{"cmd":"input","index":0,"frame_ns":16666666,"events":[[3,53,0],[0,0,0],[3,53,100],[0,0,0],[3,53,200],[0,0,0],[3,53,300],[0,0,0]]}'
out=$(timeout 120 "$VMLAB" run --quiet --input single-touch --at "2000000:$SWIPE" \
      "$G/input.elf" -- n=8 2>&1); rc=$?
expect_output "frame_ns spreads frames over virtual time" 1 'event 1 type=0 .* ns=20[0-9]{5}$' \
    'event 2 type=3 code=53 value=100 ns=186[0-9]{5}$' 'event 4 type=3 code=53 value=200 ns=353[0-9]{5}$' \
    'event 6 type=3 code=53 value=300 ns=520[0-9]{5}$'

# 4. Control socket: vmlab input tap / text / key into a running guest.
SOCK=$TMP/vm.sock
timeout 120 "$VMLAB" run --quiet --input keyboard --input multi-touch --socket "$SOCK" \
    "$G/input.elf" -- index=1 n=11 >"$TMP/touch.out" 2>&1 &
vm=$!
wait_for 60 grep -qs "input: ready" "$TMP/touch.out"
out=$("$VMLAB" input "$SOCK" --index 1 tap 640 360 2>&1); rc=$?
expect_output "vmlab input tap is accepted" 0 '^11 input events sent$'
wait "$vm"; rc=$?
out=$(cat "$TMP/touch.out")
expect_output "the tap from the socket arrives as MT position, BTN_TOUCH, SYN_REPORT" 1 \
    'type=3 code=53 value=640 ' 'type=3 code=54 value=360 ' 'type=1 code=330 value=1 ' \
    'event 7 type=0 code=0 value=0 ' 'type=3 code=57 value=-1 ' 'input: done'

timeout 120 "$VMLAB" run --quiet --input keyboard --socket "$SOCK" "$G/input.elf" -- n=8 \
    >"$TMP/kbd.out" 2>&1 &
vm=$!
wait_for 60 grep -qs "input: ready" "$TMP/kbd.out"
out=$("$VMLAB" input "$SOCK" text 'A' 2>&1); rc=$?
expect_output "vmlab input text" 0 '^6 input events sent$'
out=$("$VMLAB" input "$SOCK" key 28 2>&1); rc=$?
wait "$vm"; rc=$?
out=$(cat "$TMP/kbd.out")
expect_output "text 'A' is shift+a; key 28 is Enter" 1 'event 0 type=1 code=42 value=1 ' \
    'event 1 type=1 code=30 value=1 ' 'event 4 type=1 code=42 value=0 ' \
    'event 6 type=1 code=28 value=1 ' 'name "vmlab Virtio Keyboard"'

# 5. Balloon by --at: inflate to 16 MiB, stats, deflate to 4 MiB. The first balloon_stats
# asks the guest for fresh numbers, the second shows them.
out=$(timeout 180 "$VMLAB" run --balloon --at '5000000:{"cmd":"balloon","size":16777216}' \
      --at '30000000:{"cmd":"balloon_stats"}' --at '35000000:{"cmd":"balloon_stats"}' --at '40000000:{"cmd":"balloon","size":4194304}' \
      --trace "$TMP/bl.vtrace" "$G/balloon.elf" -- rounds=2 2>&1); rc=$?
expect_output "balloon: inflate to 4096 pages, deflate to 1024, stats arrive, pages read zero" 1 \
    'target 4096 pages, actual 4096' 'target 1024 pages, actual 1024' \
    '"actual":16777216,"stats":\{[^}]*"free_memory":16777216' '"inflated_pages":4096' \
    '1024 of 1024 inflated pages read zero' 'balloon: done'
out=$("$VMLAB" trace replay "$TMP/bl.vtrace" 2>&1); rc=$?
expect_output "the balloon run's trace replays" 0 '^replay: match'

# 6. Balloon by the clients: --wait, balloon_stats, refusals.
timeout 180 "$VMLAB" run --quiet --balloon --socket "$SOCK" "$G/balloon.elf" >"$TMP/bl.out" 2>&1 &
vm=$!
wait_for 60 grep -qs "balloon: features stats_vq=1 deflate_on_oom=0" "$TMP/bl.out"
out=$("$VMLAB" balloon 8M "$SOCK" --wait --timeout 60 2>&1); rc=$?
expect_output "vmlab balloon 8M --wait returns once the guest got there" 0 '^balloon at 8388608 bytes$'
"$VMLAB" balloon_stats "$SOCK" >/dev/null 2>&1
wait_for 30 bash -c '"$1" balloon_stats "$2" --json | grep -q "\"stats_updates\":[2-9]"' _ "$VMLAB" "$SOCK"
out=$("$VMLAB" balloon_stats "$SOCK" --json 2>&1); rc=$?
expect_output "vmlab balloon_stats: JSON with the guest's stats" 0 '"actual":8388608' \
    '"free_memory":25165824' '"total_memory":33554432' '"minor_faults":8192'
out=$("$VMLAB" balloon 1G "$SOCK" 2>&1); rc=$?
expect_output "a balloon larger than RAM is refused" 1 'more than guest RAM'
out=$("$VMLAB" input "$SOCK" tap 1 1 2>&1); rc=$?
expect_output "input to a VM without an input device is refused" 1 'this VM has no input'
"$VMLAB" stop "$SOCK" >/dev/null 2>&1
wait "$vm"

# 7. path=SOCKET: events from a Unix socket vmlab connects to (one split across writes),
# recorded in the trace, which replays without the socket; the header has no path.
/usr/bin/python3 - "$TMP/src.sock" <<'PY' &
import socket, struct, sys, time
srv = socket.socket(socket.AF_UNIX); srv.bind(sys.argv[1]); srv.listen(1)
srv.settimeout(60)
c, _ = srv.accept()
time.sleep(0.3)
data = b"".join(struct.pack("<HHi", *e) for e in [(3, 53, 11), (3, 54, 22), (1, 330, 1), (0, 0, 0)])
c.sendall(data[:5]); time.sleep(0.1); c.sendall(data[5:])
time.sleep(1); c.close()
PY
feeder=$!
wait_for 30 test -S "$TMP/src.sock"
out=$(timeout 120 "$VMLAB" run --quiet --input "multi-touch,path=$TMP/src.sock" \
      --trace "$TMP/src.vtrace" "$G/input.elf" -- n=4 2>&1); rc=$?
wait "$feeder"
expect_output "--input path=SOCKET: events from the socket arrive whole and in order" 1 \
    'event 0 type=3 code=53 value=11 ' 'event 1 type=3 code=54 value=22 ' \
    'event 2 type=1 code=330 value=1 ' 'event 3 type=0 code=0 value=0 '
out=$("$VMLAB" trace replay "$TMP/src.vtrace" 2>&1; "$VMLAB" trace info "$TMP/src.vtrace" 2>&1); rc=$?
if [[ "$out" == *"replay: match"* && "$out" == *'args "kind=multi-touch"'* && "$out" != *path=* ]]; then
    ok "the socket's events replay from the trace; the header has no path"
else
    not_ok "the socket's events replay from the trace; the header has no path"
    printf '%s\n' "$out" | head -8 | sed 's/^/#   /'
fi
expect_error "--input path= to a socket nobody serves" "path=$TMP/none.sock: cannot connect" \
    --input "mouse,path=$TMP/none.sock" "$G/input.elf"

# 8. Snapshots: taken before a scripted tap / between inflate and deflate, restored runs
# end as the originals do.
TAPA='{"cmd":"input","index":0,"events":[[3,53,100],[0,0,0]]}'
"$VMLAB" run --quiet --input multi-touch \
    --at "10000000:{\"cmd\":\"snapshot\",\"op\":\"take\",\"path\":\"$TMP/in.snap\"}" \
    --at "20000000:$TAPA" "$G/input.elf" -- n=2 >/dev/null 2>&1
out=$("$VMLAB" run --quiet --restore "$TMP/in.snap" 2>&1); rc=$?
expect_output "an input VM restored from a snapshot gets the tap scripted after it" 1 \
    'event 0 type=3 code=53 value=100 ns=200[0-9]{5}$' 'input: done'
"$VMLAB" run --quiet --balloon --at '5000000:{"cmd":"balloon","size":16777216}' \
    --at "20000000:{\"cmd\":\"snapshot\",\"op\":\"take\",\"path\":\"$TMP/bl.snap\"}" \
    --at '40000000:{"cmd":"balloon","size":4194304}' "$G/balloon.elf" -- rounds=2 >/dev/null 2>&1
out=$("$VMLAB" run --quiet --restore "$TMP/bl.snap" 2>&1); rc=$?
expect_output "a balloon VM restored between inflate and deflate deflates as the original" 1 \
    'target 1024 pages, actual 1024' '1024 of 1024 inflated pages read zero' 'balloon: done'

# 9. Bad command lines.
expect_error "--input with an unknown kind" "kind=joystick" --input joystick "$G/input.elf"
expect_error "--input with a zero width" "width=0" --input mouse,width=0 "$G/input.elf"
expect_error "--balloon with a bad option" "deflate_on_oom=maybe" --balloon=deflate_on_oom=maybe "$G/balloon.elf"
out=$("$VMLAB" input "$SOCK" swipe 0 0 10 10 5000 2>&1); rc=$?
expect_output "a swipe longer than 1000 ms is refused before sending" 2 'MS "5000" is not an integer in 1..1000'
out=$("$VMLAB" input "$SOCK" text 'é' 2>&1); rc=$?
expect_output "text with a character no key types" 2 'has no key on a US keyboard'
finish
