#!/usr/bin/env bash
# `vmlab run --trace` and the `vmlab trace` tools as a user drives them: recording is
# deterministic, dump/info/diff/export show the run, replay matches, altered or damaged
# traces give a divergence (exit 1) or a clear error (exit 2), minimize shrinks a trace.
source "$(dirname "$0")/lib.sh"

# absolute: some steps run in other directories
case $VMLAB in /*) V=$VMLAB ;; *) V=$PWD/$VMLAB ;; esac
case $GUESTS in /*) G=$GUESTS ;; *) G=$PWD/$GUESTS ;; esac

if ! "$V" trace --help 2>/dev/null | grep -q "Usage: vmlab trace"; then
    not_ok "vmlab has the trace command ($V)"
    finish; exit
fi
ok "vmlab has the trace command"

# --- recording ----------------------------------------------------------------------------
"$V" run --quiet --serial none --trace "$TMP/h1.trace" "$G/hello.elf"; rc1=$?
"$V" run --quiet --serial none --trace "$TMP/h2.trace" "$G/hello.elf"; rc2=$?
"$V" run --quiet --serial none "$G/hello.elf"; rc0=$?
check "recording does not change the exit status ($rc0 $rc1)" test "$rc1" -eq "$rc0" -a "$rc2" -eq "$rc0"
check "same run, same seed: byte-identical traces" cmp -s "$TMP/h1.trace" "$TMP/h2.trace"

"$V" run --quiet --serial none --rng --seed 7 --trace "$TMP/rng.trace" "$G/rng.elf" >/dev/null
"$V" run --quiet --serial none --rng --seed 8 --trace "$TMP/rng8.trace" "$G/rng.elf" >/dev/null
"$V" run --quiet --serial none --block mem=64K,id=d0 --trace "$TMP/blk.trace" "$G/blk.elf" \
    -- mode=irq >/dev/null
"$V" run --quiet --serial none --console 'out=none,in=hi\n' --trace "$TMP/con.trace" \
    "$G/console.elf" >/dev/null

# --- info / dump --------------------------------------------------------------------------
info=$("$V" trace info "$TMP/h1.trace"); rc=$?
if [ $rc -eq 0 ] && grep -q "run ended with status $rc0" <<<"$info" && grep -q 'uart8250' <<<"$info"; then
    ok "info shows the devices and the exit status"
else
    not_ok "info (exit $rc): $info"
fi
nev=$(sed -nE 's/^events ([0-9]+) .*/\1/p' <<<"$info")
nlines=$("$V" trace dump --no-header "$TMP/h1.trace" | wc -l)
check "dump prints one line per event ($nlines of $nev)" test "$nlines" -eq "$nev"
nout=$(sed -nE 's/^ +pio-out +([0-9]+)$/\1/p' <<<"$info")
out=$("$V" trace dump --no-header --kind pio-out "$TMP/h1.trace")
if [ "$(wc -l <<<"$out")" -eq "$nout" ] && ! grep -vq ' pio-out ' <<<"$out"; then
    ok "dump --kind pio-out shows exactly the $nout port writes"
else
    not_ok "dump --kind pio-out"
fi
out=$("$V" trace dump --no-header --device debug-exit "$TMP/h1.trace")
check "dump --device debug-exit shows its one access" test "$(wc -l <<<"$out")" -eq 1 -a -n "$(grep 'debug-exit#1 0xf4' <<<"$out")"
t10=$("$V" trace dump --no-header "$TMP/h1.trace" | sed -n 11p | awk '{print $2}' | tr -d ns)
t20=$("$V" trace dump --no-header "$TMP/h1.trace" | sed -n 21p | awk '{print $2}' | tr -d ns)
out=$("$V" trace dump --no-header --from "$t10" --to "$t20" "$TMP/h1.trace")
bad=$(awk -v a="$t10" -v b="$t20" '{t=$2; sub("ns","",t); if (t+0 < a+0 || t+0 > b+0) print}' <<<"$out")
check "dump --from/--to keeps the events in the window" test -n "$out" -a -z "$bad"
out=$("$V" trace dump --kind bogus "$TMP/h1.trace" 2>&1); rc=$?
check "dump --kind bogus: exit 2 naming the kind" test $rc -eq 2 -a -n "$(grep "'bogus' is not an event kind" <<<"$out")"

# --- replay -------------------------------------------------------------------------------
for t in h1 rng blk con; do
    out=$("$V" trace replay "$TMP/$t.trace" 2>&1); rc=$?
    if [ $rc -eq 0 ] && grep -q '^replay: match' <<<"$out"; then ok "replay $t: match"
    else not_ok "replay $t (exit $rc): $out"; fi
done
out=$("$V" trace replay --device virtio-blk "$TMP/blk.trace" 2>&1); rc=$?
check "replay --device virtio-blk: match" test $rc -eq 0 -a -n "$(grep '^replay: match' <<<"$out")"
out=$("$V" trace replay --device nope "$TMP/blk.trace" 2>&1); rc=$?
check "replay --device nope: exit 2" test $rc -eq 2 -a -n "$(grep 'no such device' <<<"$out")"

# Disk files: the trace carries the content the run read, so replay opens no image and
# writes no file; an image with the recorded name, changed by the run, does not matter
# (tests/cli/trace_disk.sh has the rest).
mkdir -p "$TMP/rec" "$TMP/pristine"
head -c 16384 /dev/urandom > "$TMP/pristine/disk.img"
cp "$TMP/pristine/disk.img" "$TMP/rec/disk.img"
cp "$TMP/pristine/disk.img" "$TMP/orig.img"
(cd "$TMP/rec" && "$V" run --quiet --serial none --block disk.img,id=d0 --trace ../file.trace \
    "$G/blk.elf" -- mode=irq >/dev/null)
cp "$TMP/rec/disk.img" "$TMP/after.img"
out=$(cd "$TMP/rec" && "$V" trace replay ../file.trace 2>&1); rc=$?
if [ $rc -eq 0 ] && grep -q '^replay: match' <<<"$out" && cmp -s "$TMP/rec/disk.img" "$TMP/after.img" &&
   ! cmp -s "$TMP/after.img" "$TMP/orig.img"; then
    ok "file disk changed by the run: replay still matches and leaves the file unchanged"
else
    not_ok "file disk replay (exit $rc): $out"
fi

# A trace whose recorded register value is changed (CRC fixed up): divergence at that event.
patched=$(/usr/bin/python3 - "$TMP/h1.trace" "$TMP/patched.trace" <<'PY'
import struct, sys, zlib
b = bytearray(open(sys.argv[1], 'rb').read())
hl = 16 + struct.unpack_from('<I', b, 12)[0] + 4
def varint(p):
    v = s = 0
    while True:
        x = b[p]; p += 1; v |= (x & 0x7f) << s; s += 7
        if x < 0x80: return v, p
c = hl; plen = struct.unpack_from('<I', b, c + 4)[0]; p = c + 32; idx = 0
while True:
    k = b[p] & 15; vc = b[p] & 0x40; p += 1
    _, p = varint(p)
    if vc: _, p = varint(p)
    if k == 3:                       # pio-in: device, addr delta, value
        _, p = varint(p); _, p = varint(p)
        if idx >= 10 and b[p] == 0x60:
            b[p] = 0x61; break
        _, p = varint(p)
    elif k in (1, 2, 4): _, p = varint(p); _, p = varint(p); _, p = varint(p)
    elif k in (5, 6): _, p = varint(p); _, p = varint(p); n, p = varint(p); p += n
    elif k in (7, 11): _, p = varint(p)
    elif k == 8: _, p = varint(p); _, p = varint(p)
    elif k in (9, 10): n, p = varint(p); p += n
    idx += 1
crc = zlib.crc32(bytes(b[c + 4:c + 12]) + bytes(b[c + 16:c + 32 + plen]))
struct.pack_into('<I', b, c + 12, crc)
open(sys.argv[2], 'wb').write(b)
print(idx)
PY
)
out=$("$V" trace replay "$TMP/patched.trace" 2>&1); rc=$?
if [ $rc -eq 1 ] && grep -q "^replay: divergence at event #$patched: device returned 0x60" <<<"$out" \
   && grep -q "^  > #$patched " <<<"$out" && [ "$(grep -c '^    #' <<<"$out")" -eq 5 ]; then
    ok "altered register value: exit 1, divergence at event #$patched with 5 events of context"
else
    not_ok "altered register value (exit $rc, want #$patched): $out"
fi

# A run on KVM (host clock, not deterministic) replays all the same.
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    "$V" run --cpu kvm --quiet --serial none --block mem=64K --trace "$TMP/kvm.trace" \
        "$G/blk.elf" -- mode=irq >/dev/null 2>&1
    out=$("$V" trace replay "$TMP/kvm.trace" 2>&1); rc=$?
    if [ $rc -eq 0 ] && grep -q '^replay: match' <<<"$out" && "$V" trace info "$TMP/kvm.trace" | grep -q 'backend kvm'; then
        ok "kvm recording replays: match"
    else
        not_ok "kvm recording replay (exit $rc): $out"
    fi
else
    skip "no usable /dev/kvm: kvm recording not tested"
fi

# --- damaged files ------------------------------------------------------------------------
size=$(stat -c %s "$TMP/blk.trace")
head -c $((size - 7)) "$TMP/blk.trace" > "$TMP/trunc.trace"
out=$("$V" trace replay "$TMP/trunc.trace" 2>&1); rc=$?
if [ $rc -eq 2 ] && grep -qE 'chunk [0-9]+ at offset [0-9]+: truncated' <<<"$out" &&
   grep -q 'intact' <<<"$out"; then
    ok "truncated trace: exit 2 naming the chunk and offset"
else
    not_ok "truncated trace (exit $rc): $out"
fi
n=$("$V" trace dump --no-header "$TMP/trunc.trace" 2>/dev/null | wc -l); "$V" trace dump "$TMP/trunc.trace" >/dev/null 2>&1; rc=$?
check "dump of a truncated trace prints the intact prefix ($n events) and exits 2" test "$n" -gt 0 -a $rc -eq 2
cp "$TMP/blk.trace" "$TMP/flip.trace"
printf '\x55' | dd of="$TMP/flip.trace" bs=1 seek=$((size / 2)) conv=notrunc status=none
out=$("$V" trace replay "$TMP/flip.trace" 2>&1); rc=$?
check "flipped byte: exit 2, CRC mismatch" test $rc -eq 2 -a -n "$(grep -E 'chunk [0-9]+ at offset [0-9]+: CRC mismatch' <<<"$out")"
cp "$TMP/h1.trace" "$TMP/v9.trace"
printf '\x09' | dd of="$TMP/v9.trace" bs=1 seek=8 conv=notrunc status=none
out=$("$V" trace replay "$TMP/v9.trace" 2>&1); rc=$?
check "version 9: exit 2, not supported" test $rc -eq 2 -a -n "$(grep 'trace format version 9 is not supported' <<<"$out")"
out=$("$V" trace dump "$G/hello.elf" 2>&1); rc=$?
check "an ELF file: exit 2, bad magic" test $rc -eq 2 -a -n "$(grep 'not a vmlab trace: bad magic' <<<"$out")"
out=$("$V" trace info "$TMP/missing.trace" 2>&1); rc=$?
check "missing file: exit 2" test $rc -eq 2 -a -n "$(grep 'No such file' <<<"$out")"
"$V" trace frob "$TMP/h1.trace" >/dev/null 2>&1; rc=$?
check "unknown trace command: exit 2" test $rc -eq 2

# --- diff ---------------------------------------------------------------------------------
out=$("$V" trace diff "$TMP/h1.trace" "$TMP/h2.trace"); rc=$?
check "diff of identical traces: exit 0" test $rc -eq 0 -a -n "$(grep 'identical' <<<"$out")"
out=$("$V" trace diff "$TMP/rng.trace" "$TMP/rng8.trace"); rc=$?
check "diff of different seeds: exit 1, headers differ" test $rc -eq 1 -a -n "$(grep 'headers differ: seed 7 vs 8' <<<"$out")"
"$V" run --quiet --serial none --trace "$TMP/args.trace" "$G/hello.elf" -- x >/dev/null
out=$("$V" trace diff "$TMP/h1.trace" "$TMP/args.trace"); rc=$?
if [ $rc -eq 1 ] && grep -q '^first difference at event #' <<<"$out" && grep -q '^- #' <<<"$out" &&
   grep -q '^+ #' <<<"$out"; then
    ok "diff of different runs: exit 1 with both events"
else
    not_ok "diff of different runs (exit $rc): $out"
fi

# --- export -------------------------------------------------------------------------------
"$V" trace export --format chrome "$TMP/blk.trace" -o "$TMP/blk.json"; rc=$?
summary=$(/usr/bin/python3 - "$TMP/blk.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
ev = d["traceEvents"]
names = [e["args"]["name"] for e in ev if e.get("name") == "thread_name"]
slices = [e for e in ev if e["ph"] == "X"]
irqs = [e for e in ev if e["ph"] == "i" and e["name"].startswith("irq")]
print(len(slices), len(irqs), int(any("virtio-blk" in n for n in names)),
      int(all(s["dur"] >= 0 for s in slices)))
PY
)
read -r nslices nirqs hasblk durok <<<"$summary"
nnotify=$("$V" trace dump --no-header --kind notify "$TMP/blk.trace" | wc -l)
check "export chrome: valid JSON, a virtio-blk track, $nnotify request slices, irq instants" \
    test $rc -eq 0 -a "$nslices" -eq "$nnotify" -a "$nirqs" -gt 0 -a "$hasblk" -eq 1 -a "$durok" -eq 1
out=$("$V" trace export --format pcap "$TMP/blk.trace" -o "$TMP/x.pcap" 2>&1); rc=$?
check "export --format pcap of a trace without virtio-net: exit 2, nothing written" \
    test $rc -eq 2 -a -n "$(grep "no virtio-net device in this trace" <<<"$out")" -a ! -e "$TMP/x.pcap"
out=$("$V" trace export --format svg "$TMP/blk.trace" -o "$TMP/x.svg" 2>&1); rc=$?
check "export --format svg: exit 2 naming the formats that exist" \
    test $rc -eq 2 -a -n "$(grep "'svg' is not a format this vmlab exports (formats: chrome, pcap)" <<<"$out")" -a ! -e "$TMP/x.svg"
check "trace --help offers the export formats that exist" \
    bash -c "'$V' trace --help | grep -q 'export --format chrome|pcap FILE'"

# --- minimize -----------------------------------------------------------------------------
# "Bug": the trace contains an interrupt. The minimal trace is one request that has one.
check_cmd="[ \$('$V' trace dump --no-header --kind irq \"\$TRACE\" | wc -l) -gt 0 ] && exit 1; exit 0"
"$V" trace minimize "$TMP/blk.trace" --check "$check_cmd" -o "$TMP/min.trace" 2>"$TMP/min.log"; rc=$?
before=$("$V" trace dump --no-header "$TMP/blk.trace" | wc -l)
after=$("$V" trace dump --no-header "$TMP/min.trace" 2>/dev/null | wc -l)
irqs=$("$V" trace dump --no-header --kind irq "$TMP/min.trace" 2>/dev/null | wc -l)
if [ $rc -eq 0 ] && [ "$after" -lt "$before" ] && [ "$irqs" -gt 0 ] && grep -q 'kept 1 of' "$TMP/min.log"; then
    ok "minimize: $before events down to $after, one request, the irq kept"
else
    not_ok "minimize (exit $rc, $before -> $after events, $irqs irqs): $(cat "$TMP/min.log")"
fi
"$V" trace minimize "$TMP/blk.trace" --check "exit 0" -o "$TMP/min2.trace" 2>"$TMP/min2.log"; rc=$?
check "minimize with a check that passes: exit 2, says so" test $rc -eq 2 -a -n "$(grep 'the check passes' "$TMP/min2.log")"

finish
