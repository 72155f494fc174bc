#!/bin/bash
# The basic guest programs on vmlab (sim CPU) against QEMU microvm: same serial output, same
# exit status (guest/peer-check.sh), plus what only vmlab provides (the device tree).
# env: BUILD (default build), VMLAB (default $BUILD/asan/vmlab, as in lib.sh).
cd "$(dirname "$0")/../.."
source tests/cli/lib.sh
export BUILD VMLAB
G=$GUESTS

need_built "$VMLAB"
need_cmd qemu-system-x86_64 qemu-system-x86

# same PROG [ARGS...]: vmlab and QEMU print the same and exit with the same status
same() {
    local out
    if out=$(guest/peer-check.sh "$G/$1.elf" "${@:2}" 2>&1); then
        ok "same on vmlab and QEMU: $*"
    else
        not_ok "same on vmlab and QEMU: $*"
        printf '%s\n' "$out" | sed 's/^/#   /'
    fi
}

# Every check of tests/cli/guest_qemu.sh, so the peer catches what vmlab gets wrong. Not here:
# `hello fdt tsc_khz=`, whose output differs by design (vmlab passes a device tree and its
# TSC rate; QEMU microvm neither).
same hello
same hello a b=c virtio_mmio.device=4K@0xd0000000:5 last
same hello fmt
same memtest
same memtest size=32
same memtest inject=4660
same memtest size=512
same exception
same exception rounds=3
same exception late
same exception unhandled
same exception pagefault
same exception assert
same timer
same timer ticks=50 count=20000 div=1
same uartirq
same uartirq gsi=99

out=$(timeout 60 "$VMLAB" run "$G/hello.elf" -- fdt 2>&1)
rc=$?
if [ "$rc" = 1 ] && printf '%s\n' "$out" | grep -Eq '^fdt: yes \([0-9]+ nodes\)$'; then
    ok "vmlab passes a device tree the guest's libfdt accepts"
else
    not_ok "vmlab passes a device tree the guest's libfdt accepts"
    echo "#   status $rc"
    printf '%s\n' "$out" | sed 's/^/#   got: /'
fi

# The largest machine the CLI accepts (8 disks, rng, console, a 3.7 KB command line): its
# tree is built in a small window first and in the whole 64 KiB area when it needs more.
tmpd=$(mktemp -d); trap 'rm -rf "$tmpd"' EXIT
truncate -s 1M "$tmpd/d.img"
big=()
for i in 1 2 3 4 5 6 7 8; do big+=(--block "$tmpd/d.img,ro,id=disk$i"); done
long=$(printf 'x%.0s' $(seq 3700))
out=$(timeout 60 "$VMLAB" run "${big[@]}" --rng --console out=none "$G/hello.elf" -- fdt "$long" 2>&1)
rc=$?
if [ "$rc" = 1 ] && printf '%s\n' "$out" | grep -q '^fdt: yes (20 nodes)$' &&
    printf '%s\n' "$out" | grep -q "^args: fdt $long\$"; then
    ok "the largest machine's device tree (20 nodes, 3.7 KB of arguments) reaches the guest whole"
else
    not_ok "the largest machine's device tree (20 nodes, 3.7 KB of arguments) reaches the guest whole"
    echo "#   status $rc"
    printf '%s\n' "$out" | cut -c1-120 | sed 's/^/#   got: /'
fi

# --tsc host: RDTSC reads the host's TSC (for timing against peer VMMs), whose measured rate
# the device tree carries; the default stays the virtual clock (1 GHz, deterministic).
out=$(timeout 60 "$VMLAB" run --tsc host "$G/hello.elf" -- fdt 2>&1)
khz=$(sed -n 's/^tsc: \([0-9]*\) kHz$/\1/p' <<<"$out")
if [ -n "$khz" ] && [ "$khz" -gt 100000 ] && [ "$khz" != 1000000 ]; then
    ok "--tsc host: the guest's device tree carries the host TSC rate ($khz kHz)"
else
    not_ok "--tsc host: the guest's device tree carries the host TSC rate (got: $out)"
fi
lat() { timeout 120 "$VMLAB" run "$@" --block mem=1M "$G/latency.elf" -- op=getid n=200 2>&1 |
        sed -n 's/^RESULT .* median_ns=\([0-9]*\) .*/\1/p'; }
virt=$(lat); host=$(lat --tsc host)
if [ "$virt" = 185 ] && [ -n "$host" ] && [ "$host" != 185 ]; then
    ok "--tsc host: latency is host time ($host ns), virtual by default ($virt ns)"
else
    not_ok "--tsc host: latency is host time, virtual by default (virtual '$virt', host '$host')"
fi

finish
