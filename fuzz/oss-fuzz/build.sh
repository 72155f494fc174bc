#!/bin/bash -eu
# OSS-Fuzz / ClusterFuzzLite build script for vmlab's fuzz targets. Honours the standard
# variables: $CC $CXX $CFLAGS $CXXFLAGS $LIB_FUZZING_ENGINE $OUT $SRC (and $WORK if set).
# Builds every fuzz/fuzz_<name>.c through fuzz/module.mk with the given compiler and flags,
# then puts into $OUT: the binaries, <name>_seed_corpus.zip, <name>.dict, <name>.options,
# and the shared libraries they need under $OUT/lib (found through an rpath), because the
# runner image has no libunicorn/json-c/protobuf-c/fdt/capstone.
# Local test:
#   CC=clang CXX=clang++ CFLAGS="-fsanitize=address,fuzzer-no-link" \
#   LIB_FUZZING_ENGINE=-fsanitize=fuzzer OUT=/tmp/out bash fuzz/oss-fuzz/build.sh
SRC_DIR=$(cd "$(dirname "$0")/../.." && pwd)
cd "$SRC_DIR"
: "${CXX:=clang++}" "${CXXFLAGS:=}"
BUILD_DIR=${WORK:-/tmp}/vmlab-oss-fuzz-build
mkdir -p "$OUT/lib" "$BUILD_DIR"
JOBS=$(nproc 2>/dev/null || echo 1)

# The sanitizers are OSS-Fuzz's ($CFLAGS); the coverage ignore list is vmlab's (see it).
make -j"$JOBS" BUILD="$BUILD_DIR" FUZZ_CC="$CC" FUZZ_LD="$CXX" \
    FUZZ_CFLAGS="$CFLAGS -fsanitize-coverage-ignorelist=$SRC_DIR/fuzz/coverage-ignore.txt" \
    FUZZ_ENGINE="$LIB_FUZZING_ENGINE $CXXFLAGS" \
    FUZZ_LDLIBS="-Wl,-rpath,'\$\$ORIGIN/lib'" FUZZ_OUT="$OUT" fuzz

for src in fuzz/fuzz_*.c; do
    t=$(basename "$src" .c); t=${t#fuzz_}
    if [ -d "fuzz/corpus/$t" ]; then
        rm -f "$OUT/${t}_seed_corpus.zip"
        (cd "fuzz/corpus/$t" && zip -q -j "$OUT/${t}_seed_corpus.zip" ./*)
    fi
    [ -f "fuzz/dict/$t.dict" ] && cp "fuzz/dict/$t.dict" "$OUT/$t.dict"
    maxlen=4096
    case $t in trace) maxlen=65536 ;; loader_pvh) maxlen=131072 ;;
               gpt|virtio_mmio|split_vq|packed_vq|qcow2) maxlen=20000 ;; esac
    printf '[libfuzzer]\nmax_len = %s\n' "$maxlen" >"$OUT/$t.options"
    [ -f "fuzz/dict/$t.dict" ] && printf 'dict = %s.dict\n' "$t" >>"$OUT/$t.options"
    # Ship the non-base shared libraries next to the binaries.
    ldd "$OUT/$t" 2>/dev/null | awk '/=> \// {print $3}' |
        grep -E 'libunicorn|libjson-c|libprotobuf-c|libfdt|libcapstone' |
        while read -r lib; do
            case $lib in "$OUT"/lib/*) ;; *) cp -L "$lib" "$OUT/lib/" ;; esac
        done
done
echo "vmlab fuzz targets in $OUT: $(cd "$OUT" && ls | grep -vE '\.(zip|dict|options)$|^lib$' | tr '\n' ' ')"
