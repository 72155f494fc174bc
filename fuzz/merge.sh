#!/usr/bin/env bash
# `make fuzz-merge`: minimises fuzz/corpus/TARGET with libFuzzer's -set_cover_merge=1 (-merge=1
# with a greedy set cover: the fewest inputs keeping all coverage), folding in
# what fuzz-run found ($BUILD/fuzz-work/TARGET). Keeps only inputs that add coverage.
#   fuzz/merge.sh TARGET...
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
for t in "$@"; do
    bin=$BUILD/fuzz/$t
    [ -x "$bin" ] || { echo "$t: $bin missing (make BUILD=$BUILD fuzz)"; exit 2; }
    tmp=$(mktemp -d)
    mkdir -p "$BUILD/fuzz-work/$t"
    maxlen=4096
    case $t in trace) maxlen=4096 ;; loader_pvh) maxlen=131072 ;;
               gpt|virtio_mmio|split_vq|packed_vq|qcow2) maxlen=20000 ;; esac
    if "$bin" -set_cover_merge=1 -max_len=$maxlen -close_fd_mask=1 "$tmp" fuzz/corpus/"$t" \
            "$BUILD/fuzz-work/$t" >"$tmp.log" 2>&1; then
        before=$(ls fuzz/corpus/"$t" | wc -l)
        rm -f fuzz/corpus/"$t"/*
        cp "$tmp"/* fuzz/corpus/"$t"/
        echo "$t: $before -> $(ls fuzz/corpus/"$t" | wc -l) files, $(du -sk fuzz/corpus/"$t" | cut -f1) KiB"
    else
        echo "$t: merge failed, corpus left as it was (log $tmp.log)"
    fi
    rm -rf "$tmp"
done
