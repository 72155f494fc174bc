#!/bin/bash
# Boots every guest program that needs no virtio device under QEMU microvm (TCG) through
# guest/qemu-run.sh and checks the exit status and the serial output a user would see.
# env: BUILD (default build) names the build directory holding guest/*.elf (lib.sh: GUESTS).
cd "$(dirname "$0")/../.."
source tests/cli/lib.sh
G=$GUESTS
RUN=guest/qemu-run.sh

need_cmd qemu-system-x86_64 qemu-system-x86

# check DESC WANT_STATUS EXPECTED_OUTPUT PROG [ARGS...]: exact output (all lines) and status
check() {
    local desc=$1 want_rc=$2 want_out=$3 prog=$4
    shift 4
    local out rc
    out=$("$RUN" "$G/$prog.elf" "$@" 2>&1)
    rc=$?
    if [ "$rc" = "$want_rc" ] && [ "$out" = "$want_out" ]; then
        ok "$desc"
    else
        not_ok "$desc"
        echo "#   status $rc (want $want_rc)"
        printf '%s\n' "$out" | sed 's/^/#   got: /'
        printf '%s\n' "$want_out" | sed 's/^/#   want: /'
    fi
}

# check_grep DESC WANT_STATUS REGEX PROG [ARGS...]: status and one matching line
check_grep() {
    local desc=$1 want_rc=$2 re=$3 prog=$4
    shift 4
    local out rc
    out=$("$RUN" "$G/$prog.elf" "$@" 2>&1)
    rc=$?
    if [ "$rc" = "$want_rc" ] && printf '%s\n' "$out" | grep -Eq "$re"; then
        ok "$desc"
    else
        not_ok "$desc"
        echo "#   status $rc (want $want_rc), want a line matching: $re"
        printf '%s\n' "$out" | sed 's/^/#   got: /'
    fi
}

for p in hello memtest exception timer uartirq; do
    if [ -r "$G/$p.elf" ]; then ok "$p.elf built"; else not_ok "$p.elf built ($G/$p.elf missing)"; fi
done

check "hello without arguments" 1 $'hello from vmlab guest\nargs: (none)' hello
check "hello passes words, drops kernel-style module params" 1 \
    $'hello from vmlab guest\nargs: a b=c last' hello a b=c virtio_mmio.device=512@0xfeb00e00:12 last
check "hello finds no device tree on QEMU, TSC rate from tsc_khz=" 1 $'hello from vmlab guest\nargs: fdt tsc_khz=2000000\nfdt: no\ntsc: 2000000 kHz' hello fdt tsc_khz=2000000
check "printf conversions" 1 "hello from vmlab guest
args: fmt
fmt: [  42] [42  ] [00042] [-7] [4000000000] [beef] [fedcba9876543210] [18446744073709551615] [123456789012] [0x1f] [abc] [ab ] [x] [%] [truncat 9]" hello fmt

check "memtest default 8 MiB" 1 "memtest: 8 MiB OK" memtest
check "memtest size=32" 1 "memtest: 32 MiB OK" memtest size=32
check_grep "memtest reports an injected bad word, status 3" 3 \
    '^memtest: MISMATCH at 0x[0-9a-f]+ wrote 0x[0-9a-f]+ read 0x[0-9a-f]+$' memtest inject=4660
check_grep "memtest refuses a range past the end of RAM" 5 'is not free RAM' memtest size=512

check "exception: #DE, #UD, #BP caught and recovered" 1 "exception: caught #DE (vector 0) at the instruction: recovered
exception: caught #UD (vector 6) at the instruction: recovered
exception: caught #BP (vector 3) after the instruction: recovered
exception: 3 of 3 OK" exception
check_grep "unhandled #UD: default report, status (0x7e<<1)|1" 253 \
    '^UNHANDLED EXCEPTION #UD vector=6 error=0x0 rip=0x[0-9a-f]+ cr2=0x0$' exception unhandled
check_grep "unhandled #PF: default report with CR2, status (0x7e<<1)|1" 253 \
    '^UNHANDLED EXCEPTION #PF vector=14 error=0x0 rip=0x[0-9a-f]+ cr2=0x100000000000$' exception pagefault
check_grep "failed GUEST_ASSERT_EQ: report, status (0x7f<<1)|1" 255 \
    '^ASSERT FAILED guest/progs/exception.c:[0-9]+: 1 \+ 1 == 3 \(0x2 != 0x3\)$' exception assert

check "LAPIC timer periodic and one-shot" 1 $'timer: 10 ticks\ntimer: one-shot fired, current count 0' timer
check "LAPIC timer ticks=50 count=20000 div=1" 1 $'timer: 50 ticks\ntimer: one-shot fired, current count 0' \
    timer ticks=50 count=20000 div=1

check "exception rounds=3: exceptions recur" 1 "exception: caught #DE (vector 0) at the instruction: recovered
exception: caught #UD (vector 6) at the instruction: recovered
exception: caught #BP (vector 3) after the instruction: recovered
exception: 9 of 9 OK" exception rounds=3

check "exception late: a #PF after 3 M loop iterations" 1 "exception: caught #DE (vector 0) at the instruction: recovered
exception: caught #UD (vector 6) at the instruction: recovered
exception: caught #BP (vector 3) after the instruction: recovered
exception: 3 of 3 OK
exception: caught #PF (vector 14) at the instruction: recovered" exception late

check "UART THR-empty interrupt through the I/O APIC" 1 "uartirq: this line was sent one byte per interrupt
uartirq: 52 interrupts for 51 bytes" uartirq
check_grep "uartirq refuses a GSI past the I/O APIC's pins" 5 '^uartirq: gsi 99 is past' uartirq gsi=99

finish
