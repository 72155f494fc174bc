#!/usr/bin/env bash
# `make test-kvm`: the KVM-backend tests (tests/test_kvm, tests/cli/kvm_*.sh).
#  - /dev/kvm opens here (and KVM_VIA_QEMU is not 1): runs them directly.
#  - otherwise: boots a QEMU TCG guest (-cpu max exposes SVM) with Debian's kernel and an
#    initramfs holding busybox, the kvm modules, the test binaries with their shared
#    libraries (found with ldd), and runs them there on nested KVM (vmm/kvm/nested/init).
# Prints TAP lines and ends with "N passed, N failed, K skipped"; exit status 0 when nothing failed.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD
export VMLAB=${VMLAB:-$BUILD/asan/vmlab}
export GUESTS=${GUESTS:-$BUILD/guest}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export CK_FORK=yes

kvm_opens() { [ -c /dev/kvm ] && (exec 3<>/dev/kvm) 2>/dev/null; }   # <> would create a missing file

# ---- direct: run everything here, print TAP, summary -------------------------------------
run_direct() {
    local n=0 pass=0 fail=0 skip=0 line name log why
    local -A skip_why=()
    log=$(mktemp)
    CK_VERBOSITY=verbose CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-120} \
        "$BUILD/tests/test_kvm" >"$log" 2>&1
    local rc=$?
    # "SKIP <test>: <reason>" (tests/skip.h): Check says P for those, they are skips.
    while IFS= read -r line; do
        name=${line#SKIP }; name=${name%%: *}
        skip_why[$name]=${line#SKIP *: }
    done < <(grep -E '^SKIP [^ :]+: ' "$log")
    # Check's verbose lines: file:line:P|F|E:tcase:test:0: message
    while IFS= read -r line; do
        name=$(cut -d: -f5 <<<"$line")
        n=$((n + 1))
        case "$(cut -d: -f3 <<<"$line")" in
            P) if [ -n "${skip_why[$name]+set}" ]; then
                   skip=$((skip + 1)); echo "ok $n - test_kvm: $name # SKIP ${skip_why[$name]}"
               else
                   pass=$((pass + 1)); echo "ok $n - test_kvm: $name"
               fi ;;
            *) fail=$((fail + 1)); echo "not ok $n - test_kvm: $name"
               echo "#   $(cut -d: -f7- <<<"$line")" ;;
        esac
    done < <(grep -E '^[^:]+:[0-9]+:[PFE]:[^:]+:[^:]+:' "$log")
    if [ $rc -ne 0 ] && [ $fail -eq 0 ]; then
        n=$((n + 1)); fail=$((fail + 1))
        echo "not ok $n - test_kvm exited $rc"; sed 's/^/#   /' "$log" | tail -5
    fi
    rm -f "$log"
    for s in tests/cli/kvm_*.sh; do
        [ -f "$s" ] || continue
        log=$(mktemp)
        timeout "${KVM_SCRIPT_TIMEOUT:-1800}" bash "$s" >"$log" 2>&1
        rc=$?
        while IFS= read -r line; do
            case "$line" in
                "ok "*"# SKIP"*) n=$((n + 1)); skip=$((skip + 1)); why=${line#*# SKIP }
                    echo "ok $n - $(basename "$s" .sh) # SKIP $why" ;;
                "1..0 # SKIP"*) n=$((n + 1)); skip=$((skip + 1))
                    echo "ok $n - $(basename "$s" .sh) # SKIP ${line#1..0 # SKIP }" ;;
                "ok "*) n=$((n + 1)); pass=$((pass + 1)); echo "ok $n - $(basename "$s" .sh): ${line#ok * - }" ;;
                "not ok "*) n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $(basename "$s" .sh): ${line#not ok * - }" ;;
                "#"*) echo "$line" ;;
            esac
        done <"$log"
        if [ $rc -ne 0 ] && ! grep -q '^not ok ' "$log"; then
            n=$((n + 1)); fail=$((fail + 1))
            echo "not ok $n - $s exited $rc"; tail -5 "$log" | sed 's/^/#   /'
        fi
        rm -f "$log"
    done
    echo "1..$n"
    echo "$pass passed, $fail failed, $skip skipped"
    [ $fail -eq 0 ]
}

# ---- nested: build an initramfs, boot it under QEMU TCG, relay the inner TAP -------------
copy_with_libs() {   # $1 file, $2 staging root: the file at the same relative path + its libs
    local f=$1 root=$2
    mkdir -p "$root/$(dirname "$f")"
    cp -L "$f" "$root/$f"
    ldd "$f" 2>/dev/null | grep -oE '/[^ ]+' | while read -r lib; do
        [ -f "$lib" ] || continue
        mkdir -p "$root$(dirname "$lib")"
        cp -Ln "$lib" "$root$lib" 2>/dev/null
    done
}

# monitor_cmd SOCKET COMMAND: one human-monitor command to the nested QEMU, its answer.
monitor_cmd() {
    /usr/bin/python3 - "$1" "$2" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
time.sleep(1)
out = b""
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
except socket.timeout:
    pass
sys.stdout.write(out.decode(errors="replace").replace("\r", ""))
PY
}

# watch_wedge WAITPID PIDFILE MONITOR LOG: QEMU TCG's nested SVM has been seen to wedge with a Linux L2
# guest: the L1 kernel never runs again, not even its own timers (QEMU uses no CPU time,
# arms no timer; seen once in CI and once in 14 runs here). Uses no CPU for
# KVM_NESTED_WEDGE seconds = wedged: the CPU state goes to LOG (what to look at next), an NMI
# is sent (one wake-up the L1 kernel takes whatever its state) and, still wedged after as
# long again, QEMU is stopped so the run ends now with what it has, not at the timeout.
watch_wedge() {
    local wpid=$1 pidf=$2 mon=$3 log=$4 limit=${KVM_NESTED_WEDGE:-60} idle=0 last= now nmi=0 pid=
    : >"$log"
    while kill -0 "$wpid" 2>/dev/null; do
        sleep 5
        [ -n "$pid" ] || pid=$(cat "$pidf" 2>/dev/null) || continue
        now=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null) || break
        if [ "$now" = "$last" ]; then idle=$((idle + 5)); else idle=0; fi
        last=$now
        [ $idle -ge "$limit" ] || continue
        if [ $nmi = 0 ]; then
            { echo "wedged: no CPU time for $idle s; registers:"
              monitor_cmd "$mon" "info registers" | grep -E '^([RE](AX|SI|IP)|R8|R12|[ECS]S |CR0|EFER|GDT|IDT)'
              monitor_cmd "$mon" "x/4i \$pc" | grep -E '^0x'
              echo "local APIC (is the L1 kernel's timer armed there?):"
              monitor_cmd "$mon" "info lapic" | grep -vE '^(\(qemu\)|QEMU .*monitor|$)'
              echo "sending an NMI"; } >>"$log" 2>&1
            monitor_cmd "$mon" "nmi" >/dev/null 2>&1
            nmi=1 idle=0
        else
            echo "still wedged $idle s after the NMI: QEMU stopped" >>"$log"
            kill "$pid" 2>/dev/null
            break
        fi
    done
}

run_nested() {
    local kernel kver stage out log
    kernel=${KVM_NESTED_KERNEL:-$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1)}
    if [ -z "$kernel" ] || [ ! -r "$kernel" ]; then
        echo "not ok 1 - nested KVM: no kernel in /boot (install linux-image-amd64: make deps)"
        echo "0 passed, 1 failed"
        return 1
    fi
    kver=${kernel##*/vmlinuz-}
    local mods=/lib/modules/$kver/kernel
    stage=$BUILD/kvm-nested/root
    rm -rf "$BUILD/kvm-nested"
    mkdir -p "$stage"/{bin,proc,sys,dev,tmp,lib/modules,w}
    cp /bin/busybox "$stage/bin/busybox"
    for m in virt/lib/irqbypass arch/x86/kvm/kvm arch/x86/kvm/kvm-amd arch/x86/kvm/kvm-intel \
             drivers/crypto/ccp/ccp; do
        for ext in .ko .ko.xz .ko.zst; do
            [ -f "$mods/$m$ext" ] || continue
            case $ext in
                .ko) cp "$mods/$m$ext" "$stage/lib/modules/" ;;
                .ko.xz) xz -dc "$mods/$m$ext" >"$stage/lib/modules/$(basename "$m").ko" ;;
                .ko.zst) zstd -qdc "$mods/$m$ext" >"$stage/lib/modules/$(basename "$m").ko" ;;
            esac
        done
    done
    cp vmm/kvm/nested/init "$stage/init"
    chmod +x "$stage/init"
    copy_with_libs /bin/bash "$stage"
    ln -sf bash "$stage/bin/sh.bash"
    # The tree the inner run sees at /w, with BUILD=build.
    (
        cd "$stage/w" && mkdir -p scripts tests/cli build/tests build/asan build/guest
    )
    cp scripts/test-kvm.sh "$stage/w/scripts/"
    cp tests/cli/lib.sh tests/cli/kvm_*.sh tests/cli/linux_input_balloon.sh "$stage/w/tests/cli/"
    # kvm_linux_vsock.sh: linux_vsock.sh and its host side, vmlab-vsock (static, no python).
    cp tests/cli/linux_vsock.sh "$stage/w/tests/cli/"
    mkdir -p "$stage/w/build/guest/linux"
    cp "$BUILD/guest/linux/vmlab-vsock" "$stage/w/build/guest/linux/"
    # vmlab-slirp: --net user's helper, which vmlab finds one directory above build/asan/
    # (the Linux network boot of kvm_linux.sh).
    for f in "$BUILD/tests/test_kvm" "$BUILD/asan/vmlab" "$BUILD/vmlab-slirp"; do
        copy_with_libs "$f" "$stage"
        mkdir -p "$stage/w/build/$(dirname "${f#$BUILD/}")"
        mv "$stage/$f" "$stage/w/build/${f#$BUILD/}"
    done
    cp "$BUILD"/guest/*.elf "$stage/w/build/guest/"
    # The Linux-guest test (tests/cli/kvm_linux.sh, `vmlab run --kernel`): the kernel and
    # the busybox initramfs.
    mkdir -p "$stage/boot"
    cp "$kernel" "$stage/boot/"
    if [ -r "$BUILD/kvm/linux-initramfs.cpio.gz" ]; then
        mkdir -p "$stage/w/build/kvm"
        cp "$BUILD/kvm/linux-initramfs.cpio.gz" "$stage/w/build/kvm/"
    fi
    # KVM_BENCH=1 (make bench-kvm): the net/vsock figures instead of the tests (bench.sh).
    [ "${KVM_BENCH:-0}" = 1 ] && bench_stage "$stage" "$kver"
    out=$BUILD/kvm-nested/initramfs.cpio.gz
    (cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1) >"$out"
    log=$BUILD/kvm-nested/console.log
    echo "# nested KVM: $kernel, initramfs $(du -h "$out" | cut -f1), QEMU TCG -cpu max"
    # All of it under KVM_NESTED_TIMEOUT (1500 s), below the 1800 s run-tests.sh gives this
    # part (its "part-timeout"), so a hang inside still reports what ran before it (a run
    # takes 3-5 min quiet, up to 9 loaded). A nested VM that wedged (watch_wedge: QEMU
    # stopped after an NMI did not help) is a defect of QEMU TCG's nested SVM, not of what
    # runs inside: it is run again, up to 3 attempts in all, said here, within the same
    # bound (3 of 4 CI-shaped runs of one day wedged, one twice; the L1 halted with its timer
    # vector pending in IRR and IF set, not delivered: QEMU's SVM interrupt gate). Any other
    # failure is reported as it is.
    local mon=$BUILD/kvm-nested/monitor.sock pidf=$BUILD/kvm-nested/qemu.pid
    local wedge=$BUILD/kvm-nested/wedge.log deadline=$((SECONDS + ${KVM_NESTED_TIMEOUT:-1500}))
    local attempt qrc
    for attempt in 1 2 3; do
        rm -f "$mon" "$pidf"
        timeout "$((deadline - SECONDS))" qemu-system-x86_64 -accel tcg -cpu max -m 2048 -smp 1 \
            -kernel "$kernel" -initrd "$out" \
            -append "console=ttyS0 quiet panic=-1 rdinit=/init" \
            -display none -monitor "unix:$mon,server,nowait" -serial "file:$log" -no-reboot \
            -pidfile "$pidf" </dev/null &
        local tpid=$!
        watch_wedge "$tpid" "$pidf" "$mon" "$wedge"
        wait "$tpid"
        qrc=$?
        [ -s "$wedge" ] || break
        echo "# attempt $attempt: the nested VM wedged (no CPU time used for ${KVM_NESTED_WEDGE:-60} s):"
        sed 's/^/#   /' "$wedge"
        grep -q 'QEMU stopped' "$wedge" || break        # the NMI brought it back
        [ $attempt -lt 3 ] && [ $((deadline - SECONDS)) -ge 300 ] || break
        echo "# attempt $attempt: its console ended with:"
        tail -3 "$log" | tr -d '\r' | sed 's/^/#   /'
        echo "# running the nested VM again, attempt $((attempt + 1)) of 3 (QEMU TCG nested-SVM wedge, see above)"
    done
    grep -a '^VMLAB-NESTED:' "$log" | sed 's/^/# /'
    [ "${KVM_BENCH:-0}" = 1 ] && { bench_results "$log"; return; }
    if ! grep -aq '^VMLAB-NESTED-END' "$log"; then
        # What finished before the hang still counts; the hang is one failure more.
        local partial
        partial=$(sed -n '/VMLAB-NESTED-BEGIN/,$p' "$log" | tr -d '\r' | grep -aE '^(ok|not ok|#)')
        [ -n "$partial" ] && echo "$partial"
        echo "not ok - nested VM did not finish (qemu status $qrc, console in $log)"
        tail -5 "$log" | sed 's/^/#   /'
        echo "$(grep '^ok ' <<<"$partial" | grep -vc '# SKIP') passed," \
             "$(($(grep -c '^not ok ' <<<"$partial") + 1)) failed," \
             "$(grep '^ok ' <<<"$partial" | grep -c '# SKIP') skipped"
        return 1
    fi
    sed -n '/VMLAB-NESTED-BEGIN/,/VMLAB-NESTED-END/p' "$log" | tr -d '\r' \
        | grep -avE '^VMLAB-NESTED' | grep -aE '^(ok |not ok |#|1\.\.|[0-9]+ passed, [0-9]+ failed)'
    # Everything skipped inside the VM that exists to run these tests is a failure.
    grep -aq -E '^0 passed, 0 failed' "$log" && { echo "not ok - nested run had no tests"; return 1; }
    grep -aq -E '^[0-9]+ passed, 0 failed' "$log"
}

# ---- make bench-kvm: what the nested VM needs for bench.sh, and its figures back ----------
bench_stage() {   # $1 staging root, $2 the nested kernel's version
    local root=$1 f
    cp vmm/kvm/nested/bench.sh "$root/w/"
    printf 'ROUNDS=%s\nCOUNT=%s\nBULK=%s\nVSOCK_N=%s\n' "${ROUNDS:-5}" "${COUNT:-500}" \
        "${BULK:-2000}" "${VSOCK_N:-200}" >"$root/w/bench.env"
    mkdir -p "$root/w/build/kvm"
    cp "$BUILD/vmlab" "$root/w/build/"
    cp "$BUILD/kvm/vmlab-bench-peer" "$root/w/build/kvm/"
    # QEMU's vhost-vsock-device: vhost_vsock and what it needs (bench.sh loads them).
    local kmod=/lib/modules/$2
    for f in vhost_iotlb vhost vsock vmw_vsock_virtio_transport_common vhost_vsock; do
        f=$(find "$kmod" -name "$f.ko" | head -1)
        [ -n "$f" ] && cp "$f" "$root/lib/modules/"
    done
    # QEMU (dynamic: its libraries by ldd) and the firmware microvm loads from its data dir.
    copy_with_libs "$(command -v qemu-system-x86_64)" "$root"
    mkdir -p "$root/usr/share/qemu"
    for f in bios-microvm.bin qboot.rom pvh.bin linuxboot_dma.bin kvmvapic.bin; do
        [ -e "/usr/share/qemu/$f" ] && cp -L "/usr/share/qemu/$f" "$root/usr/share/qemu/"
    done
}

bench_results() {   # $1 console log
    /usr/bin/python3 vmm/kvm/nested/bench_results.py "$1"
}

if [ "${KVM_TEST_INNER:-0}" = 1 ] || { [ "${KVM_VIA_QEMU:-0}" != 1 ] && kvm_opens; }; then
    [ "${KVM_TEST_INNER:-0}" = 1 ] || echo "# /dev/kvm opens: running the KVM tests directly"
    run_direct
else
    what="the KVM tests"
    [ "${KVM_BENCH:-0}" = 1 ] && what="the KVM benchmarks (make bench-kvm)"
    kvm_opens || echo "# /dev/kvm does not open here: running $what in a nested-KVM VM"
    [ "${KVM_VIA_QEMU:-0}" = 1 ] && echo "# KVM_VIA_QEMU=1: running $what in a nested-KVM VM"
    run_nested
fi
