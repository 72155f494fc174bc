#!/usr/bin/env bash
# Fuzzes one target with libFuzzer for TIME seconds (single process, ASan/UBSan).
#   fuzz/run.sh TARGET [TIME]      (make fuzz-run TARGET=x TIME=s [FUZZ_FORK=1])
# New inputs go to $BUILD/fuzz-work/TARGET (fuzz/corpus/TARGET is read as seeds, never
# written: `make fuzz-merge` folds new finds back in, minimised). Crashes go to
# fuzz/crashes/TARGET/, each printed with the command that reproduces it.
# Exit status: 0 no new crash, 1 a new crash was saved, 2 usage error.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
t=${1:-}; time=${2:-60}
bin=$BUILD/fuzz/$t
[ -n "$t" ] && [ -x "$bin" ] || { echo "usage: $0 TARGET [TIME]  (build first: make BUILD=$BUILD fuzz)"; exit 2; }
work=$BUILD/fuzz-work/$t
crashes=fuzz/crashes/$t
mkdir -p "$work" "$crashes" fuzz/corpus/"$t"
opts=(-max_total_time="$time" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048
      -artifact_prefix="$crashes/" -close_fd_mask=1)
[ -f fuzz/dict/"$t".dict ] && opts+=(-dict=fuzz/dict/"$t".dict)
# FUZZ_FORK=1: keep going after a crash (one child process at a time), to look past a
# known open bug; every distinct crashing input is still saved.
[ "${FUZZ_FORK:-0}" = 1 ] && opts+=(-fork=1 -ignore_crashes=1)
case $t in   # inputs larger than the default 4 KiB limit
    trace) opts+=(-max_len=65536) ;;
    loader_pvh) opts+=(-max_len=131072) ;;
    gpt|virtio_mmio|split_vq|packed_vq|qcow2) opts+=(-max_len=20000) ;;
esac
before=$(ls "$crashes" 2>/dev/null | sort)
"$bin" "${opts[@]}" "$work" fuzz/corpus/"$t" 2>"$work.log"
rc=$?
grep -E 'DONE|stat::average_exec' "$work.log" | tail -2
new=$(comm -13 <(echo "$before") <(ls "$crashes" 2>/dev/null | sort) | grep -v '^$' || true)
if [ -n "$new" ]; then
    echo "$t: NEW CRASH (fuzzer exit $rc); log: $work.log"
    for f in $new; do
        echo "  reproduce: make BUILD=$BUILD fuzz-repro && $BUILD/fuzz-repro/$t $crashes/$f"
        # Device-target inputs also become a vmlab trace that `vmlab trace replay`
        # reproduces (fuzz/fz_trace.h; the virtqueue targets have no device to replay).
        case $t in virtio_mmio|virtio_blk|virtio_console|virtio_rng|virtio_net) ;; *) continue ;; esac
        if [ -x "$BUILD/fuzz-repro/$t" ]; then
            VMLAB_FUZZ_TRACE=$crashes/$f.trace "$BUILD/fuzz-repro/$t" "$crashes/$f" >/dev/null 2>&1
            [ -s "$crashes/$f.trace" ] && echo "  as a trace: vmlab trace replay $crashes/$f.trace"
        fi
    done
    exit 1
fi
echo "$t: no crash in ${time}s (fuzzer exit $rc)"
exit 0
