#!/usr/bin/env bash
# virtio-input and virtio-balloon with a Linux guest (issue 20): Debian's kernel with
# virtio_input, evdev and virtio_balloon from the busybox initramfs (vmm/kvm/linux), one boot
# on the software CPU (LINUX_CPU=kvm: on KVM), driven through the control socket at the
# points the guest's console shows:
#  - guest/linux's vmlab-evdev finds the multi-touch device as /dev/input/eventN with the
#    configured name and capabilities (EVIOCGNAME, EVIOCGID, EVIOCGPROP, EVIOCGBIT,
#    EVIOCGABS: the 720x1280 of width=,height=); once it has the device open, `vmlab input
#    SOCKET tap 640 360` arrives as ABS_MT_POSITION_X/Y, BTN_TOUCH down and up, SYN_REPORTs;
#  - `vmlab balloon 64M SOCKET --wait` shrinks the guest's MemTotal by 64 MiB
#    (vmlab's default; with deflate_on_oom=on Linux keeps the pages in MemTotal), `balloon_stats`
#    shows the guest's own total, and `balloon 0` gives the memory back.
source "$(dirname "$0")/lib.sh"
V=${LINUX_VMLAB:-$BUILD/vmlab}
CPU=${LINUX_CPU:-sim}
KERNEL=${LINUX_KERNEL:-$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1)}

need_built "$V"
linux_boot_or_skip linux_input_balloon "$KERNEL"

SOCK=$TMP/vm.sock
# What is typed at the guest's shell. Markers the host waits for are computed by the guest
# ($((40+2))), so the tty's echo of the typed line never matches them. (The comma: typed text
# reaches the guest whole; vmlab once took it for its next device argument.)
TYPED='\n\n\n\n\n\n\n\nvmlab-evdev Multitouch 2\n'
TYPED+='mt() { awk '"'"'/^MemTotal/{print $2}'"'"' /proc/meminfo; }\n'
TYPED+='m0=$(mt); echo VMLAB-BALLOON: memtotal $m0 kB, ready $((40+2))\n'
# (The driver gives pages in rounds of 256, so the first change is not the end: wait for all.)
TYPED+='while [ "$(mt)" -gt $((m0 - 65536)) ]; do sleep 0.1; done; echo VMLAB-BALLOON: inflated memtotal $(mt) kB\n'
TYPED+='while [ "$(mt)" != "$m0" ]; do sleep 0.1; done; echo VMLAB-BALLOON: deflated memtotal $(mt) kB\n'
# (The guest powers off only after a second tap, which the host sends once `balloon 0 --wait`
# has returned: powering off at once raced the client's wait, which then found no socket.)
TYPED+='vmlab-evdev Multitouch 2 >/dev/null; vmlab-poweroff\n'
linux_disk
timeout 600 "$V" run --cpu "$CPU" --mem 512M --kernel "$KERNEL" --initrd "$LINUX_INITRD" \
    --block "$LINUX_DISK" --input multi-touch,width=720,height=1280 \
    --balloon --socket "$SOCK" --serial-in "$TYPED" \
    >"$TMP/console" 2>"$TMP/err" &
vm=$!
tap=$(linux_wait_console "$TMP/console" '^EVDEV: ready' 300 "$vm" &&
      "$V" input "$SOCK" tap 640 360 2>&1)
bal=$(linux_wait_console "$TMP/console" '^VMLAB-BALLOON: memtotal .* ready 42' 300 "$vm" &&
      "$V" balloon 64M "$SOCK" --wait --timeout 120 2>&1)
inflated=$(linux_wait_console "$TMP/console" '^VMLAB-BALLOON: inflated' 300 "$vm" &&
           tr -d '\r' <"$TMP/console" | sed -n 's/^VMLAB-BALLOON: inflated memtotal \([0-9]*\) kB.*/\1/p')
# balloon_stats answers with the last stats the guest sent and asks it for fresh ones: ask
# until they show the shrunk total (the driver sent its first ones at probe).
stats=
for _ in $(seq 300); do
    [ -n "$inflated" ] || break
    stats=$("$V" balloon_stats "$SOCK" --json 2>&1)
    grep -q "\"total_memory\":$((inflated * 1024))[,}]" <<<"$stats" && break
    sleep 0.2
done
deflate=$("$V" balloon 0 "$SOCK" --wait --timeout 120 2>&1)
# A step that failed may leave the guest waiting for memory: stop it rather than time out.
[ "$deflate" = "balloon at 0 bytes" ] || "$V" stop "$SOCK" >/dev/null 2>&1
# The go-ahead tap, repeated until the guest's evdev has it open and powers off (bounded).
for _ in $(seq 300); do
    kill -0 "$vm" 2>/dev/null || break
    "$V" input "$SOCK" tap 1 1 >/dev/null 2>&1
    sleep 0.2
done
wait "$vm"
rc=$?
tr -d '\r' <"$TMP/console" >"$TMP/c"
has() { grep -qE -- "$1" "$TMP/c"; }

check "linux_input: /init loads virtio_input and evdev: the device is /dev/input/eventN, named as the kind says" \
    has '^EVDEV: /dev/input/event[0-9]+ name "vmlab Virtio Multitouch Touchscreen"$'
check "linux_input: EVIOCGID: BUS_VIRTUAL, product 4 (multi-touch)" \
    has '^EVDEV: id bus 0x0006 vendor 0x0000 product 0x0004 version 0x0001$'
check "linux_input: EVIOCGPROP: INPUT_PROP_DIRECT (a touchscreen)" has '^EVDEV: props: 0x1 \(1\)$'
check "linux_input: EVIOCGBIT(0): EV_SYN, EV_KEY and EV_ABS" \
    has '^EVDEV: types: 0x0 0x1 0x3 \(3\)$'
check "linux_input: EVIOCGBIT(EV_KEY): BTN_TOUCH (0x14a)" has '^EVDEV: EV_KEY: 0x14a \(1\)$'
check "linux_input: EVIOCGBIT(EV_ABS): X, Y, MT_SLOT, MT_POSITION_X/Y, MT_TRACKING_ID" \
    has '^EVDEV: EV_ABS: 0x0 0x1 0x2f 0x35 0x36 0x39 \(6\)$'
check "linux_input: EVIOCGABS: ABS_MT_POSITION_X 0..719, Y 0..1279 (width=720,height=1280)" \
    bash -c 'grep -q "^EVDEV: abs 0x35 min 0 max 719 " "$1" && grep -q "^EVDEV: abs 0x36 min 0 max 1279 " "$1" &&
             grep -q "^EVDEV: abs 0x00 min 0 max 719 " "$1" && grep -q "^EVDEV: abs 0x2f min 0 max 9 " "$1"' _ "$TMP/c"
if [ "$tap" = "11 input events sent" ]; then
    ok "linux_input: vmlab input SOCKET tap 640 360 is accepted ($tap)"
else
    not_ok "linux_input: vmlab input SOCKET tap 640 360 ('$tap')"
fi
# The events evdev gave the guest, in order, as one line.
events=$(sed -n 's/^EVDEV: event type \([0-9]*\) code \([0-9]*\) value \(-\?[0-9]*\)$/\1:\2:\3/p' "$TMP/c" | tr '\n' ' ')
# (The device's ABS_MT_SLOT 0 is not among them: the input core passes a slot only on change.)
want='^3:57:[0-9]+ 3:53:640 3:54:360 3:0:640 3:1:360 1:330:1 0:0:0 3:57:-1 1:330:0 0:0:0 $'
if [[ "$events" =~ $want ]] && has '^EVDEV: done$'; then
    ok "linux_input: the tap arrives in the guest as ABS_MT_TRACKING_ID, ABS_MT_POSITION_X 640/Y 360, ABS_X/Y, BTN_TOUCH 1, SYN_REPORT, then up: $events"
else
    not_ok "linux_input: the tap in the guest (events '$events')"
fi

before=$(sed -n 's/^VMLAB-BALLOON: memtotal \([0-9]*\) kB, ready 42$/\1/p' "$TMP/c")
after=$(sed -n 's/^VMLAB-BALLOON: deflated memtotal \([0-9]*\) kB$/\1/p' "$TMP/c")
if [ "$bal" = "balloon at 67108864 bytes" ]; then
    ok "linux_balloon: vmlab balloon 64M --wait returns once the guest gave 64 MiB ($bal)"
else
    not_ok "linux_balloon: vmlab balloon 64M --wait ('$bal')"
fi
if [ -n "$before" ] && [ -n "$inflated" ] && [ $((before - inflated)) -eq 65536 ]; then
    ok "linux_balloon: the guest's MemTotal shrinks by 64 MiB ($before kB -> $inflated kB)"
else
    not_ok "linux_balloon: the guest's MemTotal shrinks by 64 MiB (before '$before', inflated '$inflated')"
fi
if [ -n "$inflated" ] && grep -q "\"total_memory\":$((inflated * 1024))[,}]" <<<"$stats" &&
   grep -qE '"free_memory":[1-9][0-9]*' <<<"$stats" && grep -q '"actual":67108864' <<<"$stats"; then
    ok "linux_balloon: balloon_stats shows the guest's stats: total_memory = its MemTotal, free_memory, actual 64 MiB"
else
    not_ok "linux_balloon: balloon_stats (want total_memory $((${inflated:-0} * 1024))): $stats"
fi
if [ "$deflate" = "balloon at 0 bytes" ] && [ -n "$before" ] && [ "$after" = "$before" ]; then
    ok "linux_balloon: vmlab balloon 0 gives the memory back (MemTotal $after kB again)"
else
    not_ok "linux_balloon: vmlab balloon 0 ('$deflate', MemTotal before '$before', after '$after')"
fi
linux_powered_off linux_input_balloon "$TMP/c" "$TMP/err" $rc '^EVDEV|^VMLAB|input|balloon'
finish
