#!/usr/bin/env bash
# `vmlab run` on bad input: a clear one-line error, exit status 2, no crash (ASan build).
source "$(dirname "$0")/lib.sh"

printf '#!/bin/sh\necho hi\n' > "$TMP/script.sh"
expect_error "non-ELF file" "not an ELF file" "$TMP/script.sh"
head -c 40 "$GUESTS/hello.elf" > "$TMP/trunc.elf"
expect_error "truncated ELF (inside the header)" "truncated ELF" "$TMP/trunc.elf"
head -c 3000 "$GUESTS/hello.elf" > "$TMP/trunc2.elf"
expect_error "truncated ELF (segments cut)" "past the end of the file" "$TMP/trunc2.elf"
# Another machine: patch e_machine (offset 18) to AArch64 (183 = 0xb7).
cp "$GUESTS/hello.elf" "$TMP/arm.elf"
printf '\xb7\x00' | dd of="$TMP/arm.elf" bs=1 seek=18 conv=notrunc status=none
expect_error "ELF for another machine" "ELF machine is 183" "$TMP/arm.elf"
# Move the first loadable segment to 3 GiB: outside a 128M guest's RAM.
/usr/bin/python3 - "$GUESTS/hello.elf" "$TMP/high.elf" <<'PY'
import struct, sys
d = bytearray(open(sys.argv[1], 'rb').read())
phoff, = struct.unpack_from('<Q', d, 32)
phentsize, phnum = struct.unpack_from('<HH', d, 54)
for i in range(phnum):
    o = phoff + i * phentsize
    if struct.unpack_from('<I', d, o)[0] == 1:          # PT_LOAD
        struct.pack_into('<QQ', d, o + 16, 0xc0000000, 0xc0000000)
        break
open(sys.argv[2], 'wb').write(d)
PY
expect_error "segment outside RAM" "outside RAM" "$TMP/high.elf"
# No PVH note: rename the note's owner so the loader no longer recognises it.
/usr/bin/python3 - "$GUESTS/hello.elf" "$TMP/nonote.elf" <<'PY'
import sys
d = bytearray(open(sys.argv[1], 'rb').read())
i = d.find(b'Xen\x00')
d[i:i+4] = b'Xxx\x00'
open(sys.argv[2], 'wb').write(d)
PY
expect_error "no PVH note" "no PVH entry note" "$TMP/nonote.elf"
expect_error "--mem 0" "--mem 0" --mem 0 "$GUESTS/hello.elf"
expect_error "--mem larger than the host" "larger than this host" --mem 64T "$GUESTS/hello.elf"
expect_error "unknown option" "unknown option '--bogus'" --bogus "$GUESTS/hello.elf"
expect_error "missing program file" "No such file or directory" "$TMP/does-not-exist.elf"
expect_error "unknown --cpu" "--cpu 'tcg'" --cpu tcg "$GUESTS/hello.elf"
expect_error "unknown --tsc" "--tsc 'wall' is neither 'virtual' nor 'host'" --tsc wall "$GUESTS/hello.elf"
expect_error "bad --block option" "unknown option 'frob'" --block mem=1M,frob "$GUESTS/hello.elf"

# --cpu kvm where KVM does not work: hide /dev/kvm behind /dev/null in a private mount
# namespace (needs root, as CI has).
if unshare -m true 2>/dev/null; then
    out=$(unshare -m bash -c "mount --bind /dev/null /dev/kvm 2>/dev/null || mount -t tmpfs none /dev; '$VMLAB' run --cpu kvm '$GUESTS/hello.elf'" 2>&1); rc=$?
    if [ $rc -eq 2 ] && [[ "$out" == "vmlab: --cpu kvm: KVM is not available here: /dev/kvm: "* ]]; then
        ok "--cpu kvm without a working /dev/kvm: clear error, exit 2"
    else
        not_ok "--cpu kvm without /dev/kvm (exit $rc: $out)"
    fi
    out=$(unshare -m bash -c "mount --bind /dev/null /dev/kvm 2>/dev/null || mount -t tmpfs none /dev; '$VMLAB' run --cpu auto '$GUESTS/hello.elf'" 2>&1); rc=$?
    if [ $rc -eq 1 ] && [[ "$out" == *"--cpu auto: using sim (KVM unavailable"* ]]; then
        ok "--cpu auto without KVM falls back to sim and says so"
    else
        not_ok "--cpu auto without KVM (exit $rc: $out)"
    fi
else
    skip "unshare -m not permitted: cannot hide /dev/kvm"
fi

# --serial-in is text for the guest: a comma in it is the guest's (it was taken for the next
# device argument: "unknown option 'b'", exit 2).
out=$("$VMLAB" run --quiet --serial-in 'a,b\n' "$GUESTS/hello.elf" 2>&1); rc=$?
check "--serial-in with a comma: the guest runs (exit 1), no error" \
    bash -c '[ "$1" -eq 1 ] && [[ "$2" == *"hello from vmlab guest"* && "$2" != *vmlab:* ]]' _ "$rc" "$out"
expect_error "--serial PATH with a comma" "--serial: '$TMP/a,b' has a comma" --serial "$TMP/a,b" "$GUESTS/hello.elf"

out=$("$VMLAB" 2>&1); rc=$?
check "no subcommand: usage on stderr, exit 2" test $rc -eq 2
out=$("$VMLAB" frobnicate 2>&1); rc=$?
if [ $rc -eq 2 ] && [[ "$out" == *"unknown command 'frobnicate'"* ]]; then ok "unknown subcommand: exit 2 naming it"; else not_ok "unknown subcommand (exit $rc: $out)"; fi
check "--version prints the version" bash -c "'$VMLAB' --version | grep -qE '^vmlab [0-9]+\.[0-9]+\.[0-9]+$'"
check "run --help exits 0 and documents --mem" bash -c "'$VMLAB' run --help | grep -q -- '--mem SIZE'"
check "help run is run --help" bash -c "'$VMLAB' help run | grep -q -- '--max-insns'"
finish
