#!/usr/bin/env bash
# For the arm64 figures only (make bench-kvm-arm64): QEMU for arm64 hosts, to run beside
# vmlab inside the nested arm64 VM. Downloads qemu-system-arm:arm64 and the arm64 libraries
# it needs (apt-get --download-only: Debian's registry, nothing installed), unpacks them,
# and gathers into DIR (default build/arm64/qemu) usr/bin/qemu-system-aarch64, the dynamic
# loader and every shared library it loads (found with aarch64-linux-gnu-readelf, from the
# unpacked packages or the :arm64 libraries make deps installed).
set -euo pipefail
DIR=${1:-build/arm64/qemu}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
[ -x "$DIR/root/usr/bin/qemu-system-aarch64" ] && exit 0
debs=$DIR/debs
unpack=$DIR/unpacked
mkdir -p "$debs/partial" "$unpack"
apt-get install --download-only -y -qq --no-install-recommends \
    -o Dir::Cache::archives="$debs" qemu-system-arm:arm64 >/dev/null
for d in "$debs"/*_arm64.deb "$debs"/*_all.deb; do
    [ -f "$d" ] && dpkg-deb -x "$d" "$unpack"
done
root=$DIR/root
mkdir -p "$root/usr/bin" "$root/lib"
cp "$unpack/usr/bin/qemu-system-aarch64" "$root/usr/bin/"
cp -L /lib/ld-linux-aarch64.so.1 "$root/lib/"
find_lib() {
    local d
    for d in "$unpack/usr/lib/aarch64-linux-gnu" "$unpack/lib/aarch64-linux-gnu" \
             /usr/lib/aarch64-linux-gnu /lib/aarch64-linux-gnu; do
        [ -e "$d/$1" ] && { echo "$d/$1"; return 0; }
    done
    return 1
}
todo=("$root/usr/bin/qemu-system-aarch64")
declare -A seen=()
while [ ${#todo[@]} -gt 0 ]; do
    f=${todo[0]}; todo=("${todo[@]:1}")
    for lib in $(aarch64-linux-gnu-readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
        [ -n "${seen[$lib]+x}" ] && continue
        seen[$lib]=1
        p=$(find_lib "$lib") || { echo "fetch-qemu: $lib not found" >&2; exit 1; }
        cp -L "$p" "$root/lib/$lib"
        todo+=("$root/lib/$lib")
    done
done
rm -rf "$unpack" "$debs"
echo "fetch-qemu: $(ls "$root/lib" | wc -l) libraries, $(du -sh "$root" | cut -f1)"
