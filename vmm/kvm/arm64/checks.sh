# The host's checks of `make test-kvm-arm64` (sourced by scripts/test-kvm-arm64.sh, bash):
# check_results GIC DIR [NAMES] checks each run of cases.sh (or only NAMES; "linux": the
# Linux boot) that the nested VM with a vGIC$GIC left in DIR, against the same program built
# for x86 on the software CPU. Uses ok/not_ok of the caller, $BUILD, $VMLAB_X86, $X86.

# Device-side events, comparable across the two machines: no event numbers or times, and
# accesses named by device and offset, read or write, whatever the bus (the UART and the
# exit device are ports on x86, MMIO on arm64). Guest-physical addresses of the program's
# rings and buffers differ with each build's code size (a CPU-side fact), so the values
# written to the queue address registers (+0x80..+0xa4) and DMA addresses and payloads
# (descriptors hold addresses) are masked; DMA kind, order and length stay, and the output
# and disk checks cover the payloads. The x86 interrupt controllers' accesses (LAPIC,
# IOAPIC: no device, "-") are left out: arm64's GIC is in the kernel and never seen.
# At least MIN events, or it is a failure.
MIN_EVENTS=20
device_events() {     # TRACE [ERE of events to leave out]
    "$VMLAB_X86" trace dump --no-header "$1" 2>/dev/null | grep -vE "${2:-^$}" |
        sed -E 's/^#[0-9]+ [0-9]+ns //; s/ (mmio-read|pio-in) / read /; s/ (mmio-write|pio-out) / write /;
                s/ (read|write) ([^ ]+) 0x[0-9a-f]+ \(/ \1 \2 (/;
                s/(write [^ ]+ \(\+0x(80|84|90|94|a0|a4)\) size=4) value=0x[0-9a-f]+/\1 value=ADDR/;
                s/ (dma-(read|write)) gpa=0x[0-9a-f]+ (len=[0-9]+).*/ \1 \3/' |
        grep -vE ' - \(\+0xfe[ce]0'
}

# A guest polling a register while it waits for the host (balloon's config space) reads it
# as often as the host's timing makes it: runs of one repeated event, or of a repeated
# pair, count once. The config generation reads (+0xfc) around each config read go: how
# many a read takes depends on whether a host change landed in the middle of it. The
# balloon's config reads (+0x100 on) go too: a poll can fall just before or just after a
# host command (one CI run had one more, between the balloon_stats command and the stats
# it asked for); what the guest read shows in its output, compared on its own.
collapse_polls() {
    grep -vE ' read [^ ]+ \(\+0xfc\) | read virtio-balloon#[0-9]+ \(\+0x1[0-9a-f]{2}\) ' |
    awk '{ o[++n] = $0
           while (n >= 2 && o[n] == o[n-1]) n--
           while (n >= 4 && o[n] == o[n-2] && o[n-1] == o[n-3]) n -= 2 }
         END { for (i = 1; i <= n; i++) print o[i] }'
}

# vsock: how the host's socket chunks a stream (and so the packets and rings' traffic)
# follows the host's timing. What must agree: the device's setup, every event before the
# first host message, and the payload bytes each way (each host-in/host-out message is a
# 13-byte header and its data: traces/FORMAT.md).
vsock_events() {    # TRACE
    local ev
    ev=$(device_events "$1" ' uart8250#0 ')
    sed -n '/ host-\(in\|out\) /q; p' <<<"$ev"
    awk '/ host-(in|out) / { for (i = 1; i <= NF; i++) if ($i ~ /^len=/) b[$2] += substr($i, 5) - 13 }
         END { printf "payload host-in %d host-out %d\n", b["host-in"], b["host-out"] }' <<<"$ev"
}

# The host's side (HOST:KIND, hostside.sh) of the x86 reruns: this machine's tools.
VSOCK_TOOL=$BUILD/guest/linux/vmlab-vsock
VMLAB_CTL=$VMLAB_X86
. vmm/kvm/arm64/hostside.sh

check_guest() {     # NAME PROGRAM "ARGS" OPTIONS... : x86 sim run, then the comparisons
    local name=$1 prog=$2 args=$3 o host= sock=$X86/$1.sock
    shift 3
    [ -f "$X86/base.img" ] || dd if=/dev/zero of="$X86/base.img" bs=1024 count=4096 2>/dev/null
    local opts=()
    for o in "$@"; do
        [[ $o == ENV:* ]] && continue      # the arm64 run's environment
        [[ $o == HOST:* ]] && { host=${o#HOST:}; continue; }
        [[ $o == *@DISK@* ]] && cp "$X86/base.img" "$X86/$name.img"
        o=${o//@SOCK@/$sock}
        opts+=("${o//@DISK@/$X86/$name.img}")
    done
    if [ ! -f "$R/$name.rc" ]; then
        not_ok "$L$name: no result from the nested VM"; return
    fi
    [ -n "$host" ] && host_start "$host" "$sock"
    timeout 120 "$VMLAB_X86" run --cpu sim --trace "$X86/$name.trace" "${opts[@]}" \
        "$BUILD/guest/$prog.elf" -- $args >"$X86/$name.out" 2>"$X86/$name.err" &
    local pid=$!
    [ -n "$host" ] && host_run "$host" "$sock" "$X86/$name.out" "$X86/$name.host"
    wait $pid
    local rc_x=$? rc_a
    [ -n "$host" ] && host_end "$host" "$sock" "$X86/$name.host"
    rc_a=$(cat "$R/$name.rc")
    # The generic timer's rate is the arm64 "TSC" rate, and latency's, vsock_client's and
    # input's figures are times: the values allowed to differ.
    local norm='s/^tsc: [0-9]+ kHz$/tsc: N kHz/; s/(_ns|_t|req_per_s)=[0-9]+/\1=N/g
        s/ in [0-9]+ ticks$/ in N ticks/; s/ ns=[0-9]+$/ ns=N/'
    # exception: the same driver, each machine's own exceptions (guest/progs/exception.c):
    # the x86 lines become the arm64 ones they stand for, the report's code addresses go.
    local x86_as_arm64=
    if [ "$prog" = exception ]; then
        x86_as_arm64='s/caught #DE \(vector 0\) at/caught a data abort (class 0x25) at/
            s/caught #UD \(vector 6\) at/caught an undefined instruction (class 0x00) at/
            s/caught #BP \(vector 3\) after/caught brk #0x3c (class 0x3c) at/
            s/caught #PF \(vector 14\) at/caught a data abort (class 0x25) at/
            s/ud2 without a handler/udf without a handler/
            s/^UNHANDLED EXCEPTION #UD vector=6 error=0x0 rip=0x[0-9a-f]+ cr2=0x[0-9a-f]+$/UNHANDLED EXCEPTION entry=4 esr=0x2000000 (class 0x0)/
            s/^UNHANDLED EXCEPTION #PF vector=14 error=0x0 rip=0x[0-9a-f]+ cr2=(0x[0-9a-f]+)$/UNHANDLED EXCEPTION entry=4 esr=0x96000004 (class 0x25) far=\1/'
        norm="$norm"'
            s/^(UNHANDLED EXCEPTION .*) elr=0x[0-9a-f]+ far=/\1 far=/
            s/^(UNHANDLED EXCEPTION .*\(class 0x0\)) far=0x[0-9a-f]+$/\1/'
    fi
    if [ "$rc_a" = "$rc_x" ] && [ -s "$R/$name.out" ] &&
        cmp -s <(sed -E "$norm" "$R/$name.out") <(sed -E "$x86_as_arm64;$norm" "$X86/$name.out"); then
        ok "${L}kvm = x86 sim: $name (status $rc_a, $(wc -l <"$R/$name.out") lines)"
    else
        not_ok "${L}kvm = x86 sim: $name (status arm64 $rc_a, x86 $rc_x)"
        diff <(sed -E "$x86_as_arm64;$norm" "$X86/$name.out") <(sed -E "$norm" "$R/$name.out") | head -8 | sed 's/^/#   /'
        head -3 "$R/$name.err" | sed 's/^/#   arm64 stderr: /'
    fi
    if [ -f "$X86/$name.img" ]; then
        if cmp -s "$X86/$name.img" "$R/$name.img"; then
            ok "${L}kvm = x86 sim: $name, the disk afterwards"
        else
            not_ok "${L}kvm = x86 sim: $name, the disk afterwards"
        fi
    fi
    # The host's side saw the same on both machines (what vmlab-vsock sent and received,
    # the control commands' answers).
    if [ -n "$host" ]; then
        if [ -s "$R/$name.host" ] && cmp -s "$R/$name.host" "$X86/$name.host"; then
            ok "${L}kvm = x86 sim, the host's side ($host): $name ($(head -1 "$R/$name.host"))"
        else
            not_ok "${L}kvm = x86 sim, the host's side ($host): $name"
            diff "$X86/$name.host" "$R/$name.host" 2>&1 | head -6 | sed 's/^/#   /'
        fi
    fi
    # A hung guest (status 6) says so, naming what it waits in.
    if [ "$rc_a" = 6 ]; then
        if grep -q '^vmlab: VM stopped: guest hung: WFI' "$R/$name.err" &&
            grep -qE '^  detail: +WFI with interrupts (masked|enabled) and no timer armed' "$R/$name.err"; then
            ok "${L}$name: hung in WFI, found ($(sed -n 's/^  detail: *//p' "$R/$name.err"))"
        else
            not_ok "${L}$name: hung in WFI, found"
            head -3 "$R/$name.err" | sed 's/^/#   /'
        fi
    fi
    # exception: its only device is the UART, whose bytes are the output compared above
    # (each machine's own exception names): no device-side comparison of its own.
    if [ "$prog" != exception ]; then
        local a x na skip=
        # latency prints its times: its UART bytes differ by design, its device traffic may not.
        [ "$name" = latency ] && skip=' uart8250#0 '
        # fault garbage writes to x86 ports with no device behind them; arm64 has no ports.
        [ "$name" = fault-garbage ] && skip=' pio-out - '
        # input prints the time of each event.
        [ "$prog" = input ] && skip=' uart8250#0 '
        if [[ $prog == vsock_* ]]; then
            a=$(vsock_events "$R/$name.trace"); x=$(vsock_events "$X86/$name.trace")
        elif [ -n "$host" ]; then
            a=$(device_events "$R/$name.trace" "$skip" | collapse_polls)
            x=$(device_events "$X86/$name.trace" "$skip" | collapse_polls)
        else
            a=$(device_events "$R/$name.trace" "$skip"); x=$(device_events "$X86/$name.trace" "$skip")
        fi
        na=$(grep -c . <<<"$a")
        if [ "$na" -ge $MIN_EVENTS ] && [ "$a" = "$x" ]; then
            ok "${L}kvm = x86 sim, device side of the trace: $name ($na events)"
        else
            not_ok "${L}kvm = x86 sim, device side of the trace: $name ($na and $(grep -c . <<<"$x") events, at least $MIN_EVENTS)"
            diff <(printf '%s\n' "$x") <(printf '%s\n' "$a") | head -6 | sed 's/^/#   /'
        fi
    fi
    [ "$name" = latency ] && echo "# arm64 KVM figure: $(grep '^RESULT' "$R/$name.out")"
    local out
    out=$("$VMLAB_X86" trace replay "$R/$name.trace" 2>&1)
    if [ $? -eq 0 ] && grep -q '^replay: match' <<<"$out"; then
        ok "${L}trace replays clean on x86: $name"
    else
        not_ok "${L}trace replays clean on x86: $name"
        head -4 <<<"$out" | sed 's/^/#   /'
    fi
}

check_bad() {       # NAME "expected text in the error line"
    local name=$1 want=$2 rc lines
    rc=$(cat "$R/$name.rc" 2>/dev/null)
    lines=$(grep -c . "$R/$name.err" 2>/dev/null)
    if [ "$rc" = 2 ] && [ "$lines" = 1 ] && grep -qF -- "$want" "$R/$name.err" && [ ! -s "$R/$name.out" ]; then
        ok "${L}bad input: $name: exit 2, $(cat "$R/$name.err")"
    else
        not_ok "${L}bad input: $name: exit 2 and one line naming '$want' (got status $rc, $lines lines)"
        head -3 "$R/$name.err" 2>/dev/null | sed 's/^/#   /'
    fi
}

c() {
    [ -n "$ONLY" ] && [[ " $ONLY " != *" $1 "* ]] && return
    case $1 in
        bad-*) ;;
        psci-off)
            if [ "$(cat "$R/$1.rc")" = 0 ] && [ ! -s "$R/$1.err" ]; then
                ok "${L}PSCI SYSTEM_OFF from a bare Image: vmlab exits 0 ($(cat "$R/$1.ms") ms)"
            else
                not_ok "${L}PSCI SYSTEM_OFF from a bare Image: vmlab exits 0 (status $(cat "$R/$1.rc"))"
                head -3 "$R/$1.err" | sed 's/^/#   /'
            fi ;;
        hello-fdt)  # the tree itself is each machine's own: found and read, the counter rate set
            if grep -qE '^fdt: yes \([0-9]+ nodes\)$' "$R/$1.out" && grep -qE '^tsc: [1-9][0-9]* kHz$' "$R/$1.out"; then
                ok "${L}hello-fdt: the program reads the FDT from x0 and the counter rate ($(grep -E '^(fdt|tsc):' "$R/$1.out" | tr '\n' ' '))"
            else
                not_ok "${L}hello-fdt: the program reads the FDT from x0 and the counter rate"
                head -5 "$R/$1.out" | sed 's/^/#   /'
            fi ;;
        *) check_guest "$@" ;;
    esac
}
# Linux (linux.sh): Debian's arm64 kernel on vmlab under arm64 KVM.
linux_arm64_checks() {
    local c=$R/linux.out field
    if [ ! -f "$R/linux.rc" ]; then
        not_ok "${L}linux: no result from the nested VM"; return
    fi
    tr -d '\r' <"$c" >"$R/linux.console"
    c=$R/linux.console
    field() { sed -n "s/^VMLAB-LINUX: $1 //p" "$c" | head -1; }
    has() { grep -q -- "$1" "$c"; }
    lin() {     # what, pattern
        if has "$2"; then ok "${L}linux: $1"; else not_ok "${L}linux: $1"; tail -3 "$c" | sed 's/^/#   /'; fi
    }
    lin "the kernel prints on the 16550 console (ns16550a from the FDT)" "Linux version"
    if [ "$GIC" = 3 ]; then
        lin "the vGICv3 from the FDT (its 32 SPIs)" "GICv3: 32 SPIs implemented"
    else
        # The v2 driver says little: its handler is installed and no GICv3 line appears.
        if has "Root IRQ handler: gic_handle_irq" && ! has "GICv3:"; then
            ok "${L}linux: the vGICv2 from the FDT (arm,cortex-a15-gic; no GICv3 seen)"
        else
            not_ok "${L}linux: the vGICv2 from the FDT (arm,cortex-a15-gic; no GICv3 seen)"
        fi
    fi
    lin "the arch timer from the FDT" "arch_timer: cp15 timer(s) running at"
    lin "PSCI 0.2 through HVC from the FDT" "psci: PSCIv"
    lin "the initramfs /init runs (busybox userspace, serial console)" "^VMLAB-LINUX: up, kernel"
    lin "virtio-mmio from the FDT: /dev/vda with the disk's 8192 sectors" "^VMLAB-LINUX: vda 8192 sectors"
    if [ "$(field 'vda sha256 before')" = "$(cat "$R/linux.sum-before")" ] && [ -s "$R/linux.sum-before" ]; then
        ok "${L}linux: the guest reads the disk the host side wrote (sha256 equal)"
    else
        not_ok "${L}linux: the guest reads the disk the host side wrote (guest '$(field 'vda sha256 before')', host $(cat "$R/linux.sum-before"))"
    fi
    lin "the guest reads back its own write after dropping caches" "^VMLAB-LINUX: vda write read back OK"
    local after
    after=$(sha256sum "$R/linux.img" | cut -d' ' -f1)
    if [ "$(field 'vda sha256 after')" = "$after" ] && [ "$after" != "$(cat "$R/linux.sum-before")" ] &&
        cmp -s <(dd if="$R/linux.img" bs=1M skip=1 count=1 2>/dev/null) <(yes vmlab-linux-was-here | head -c 1048576); then
        ok "${L}linux: the image file holds the guest's write (sha256 equal to the guest's)"
    else
        not_ok "${L}linux: the image file holds the guest's write (guest '$(field 'vda sha256 after')', file $after)"
    fi
    lin "the shell takes typed commands (--serial-in, UART interrupt on SPI 4)" "^VMLAB-LINUX: shell says 42"
    if [ "$(cat "$R/linux.rc")" = 0 ] && has "reboot: Power down"; then
        ok "${L}linux: powers off through PSCI SYSTEM_OFF, vmlab exits 0 ($(cat "$R/linux.ms") ms boot to power-off)"
    else
        not_ok "${L}linux: powers off through PSCI SYSTEM_OFF, vmlab exits 0 (status $(cat "$R/linux.rc"))"
        head -3 "$R/linux.err" | sed 's/^/#   /'
    fi
}

check_results() {   # GIC DIR [NAMES]
    GIC=$1 R=$2 ONLY=${3:-}
    L="arm64 "
    [ "$GIC" = 2 ] && L="arm64 GICv2 "
    . vmm/kvm/arm64/cases.sh
    cases
    if [ -z "$ONLY" ]; then
        check_bad bad-cpu-sim "--cpu sim: the software CPU (x86_64 unicorn) is not part of this arm64 build"
        check_bad bad-x86-elf "ELF machine is 62, expected 183 (AArch64)"
        check_bad bad-el2 "vmlab entry-EL note asks for EL2: vmlab starts arm64 guests at EL1"
        check_bad bad-magic "magic at offset 56 is 0x12345678, expected 0x644d5241"
        check_bad bad-truncated "arm64 Image: 40 bytes, the header needs 64"
        check_bad bad-image-size "image_size 0x40000000 at 0x200000 goes past the end of RAM"
        check_bad bad-initrd "initrd of 83886080 bytes does not fit in RAM above the kernel"
    fi
    [ -z "$ONLY" ] || [[ " $ONLY " == *" linux "* ]] && linux_arm64_checks
}
